/**
 * bench:netboot: the PXE lab of test/vm/pxe-lab.ts (network namespace, dnsmasq proxy DHCP +
 * TFTP from `cloner netboot dnsmasq-config`, the site's DHCP server, cloner-server, one
 * ipmi_sim BMC and one blank qemu VM under TCG per node) run end to end, as the admin does
 * it: make-installer from the cached VM root (size, build + upload time), new-image, then
 * per node, in seconds from `cloner power on`: DHCP answered, the installer running, the
 * agent's first deploy attempt, deploy done, and the clone up (it reported on its console).
 * Nodes: `node bench/netboot.ts [bios|uefi|both]` (default both: a SeaBIOS and an OVMF node
 * at once; each VM gets 2 vCPUs of this machine's cores).
 */
import { ensureVmImage } from '../test/vm/image.ts';
import { labDeploy, withGolden } from '../test/vm/pxe-lab-flow.ts';
import { pxeLabUnavailable, withPxeLab, type LabNodeSpec, type Timeline } from '../test/vm/pxe-lab.ts';

const which = process.argv[2] ?? 'both';
if (!['bios', 'uefi', 'both'].includes(which)) {
  console.error(`usage: node bench/netboot.ts [bios|uefi|both] (got ${which})`);
  process.exit(2);
}
const blocker = pxeLabUnavailable();
if (blocker) {
  console.error(`bench:netboot cannot run here: ${blocker}`);
  process.exit(1);
}
const specs: LabNodeSpec[] = [];
if (which !== 'uefi') specs.push({ name: 'pxebios', firmware: 'bios' });
if (which !== 'bios') specs.push({ name: 'pxeuefi', firmware: 'uefi' });

const image = await ensureVmImage();
await withGolden(image.rootImage, async (golden) => {
  await withPxeLab(specs, async (lab) => {
    const timeline: Timeline = {};
    const run = await labDeploy(lab, golden, { timeline, timeoutMs: 20 * 60_000 });
    const mb = (n: number) => (n / 1e6).toFixed(1);
    const b = run.installer.bytes;
    console.log(`installer ${run.installer.version}: vmlinuz ${mb(b.vmlinuz)} MB + initrd ${mb(b['initrd.img'])} MB = ${mb(b.total)} MB (goal 80 MB); make-installer (build + upload) ${run.setup.installer} s; new-image ${run.setup.capture} s`);
    console.log(`${specs.length} node(s) at once, TCG, seconds from power on:`);
    console.log(`${'node'.padEnd(10)} ${'DHCP'.padStart(6)} ${'installer'.padStart(9)} ${'agent'.padStart(6)} ${'deployed'.padStart(8)} ${'clone up'.padStart(8)}   agent->deployed  reboot->clone`);
    for (const [node, t] of Object.entries(timeline)) {
      const cell = (v: number | null, w: number) => String(v ?? '-').padStart(w);
      const span = (a: number | null, z: number | null) => (a !== null && z !== null ? (z - a).toFixed(1) : '-');
      console.log(`${node.padEnd(10)} ${cell(t.dhcp, 6)} ${cell(t.installer, 9)} ${cell(t.agent, 6)} ${cell(t.deployed, 8)} ${cell(t.clone, 8)}   ${span(t.agent, t.deployed).padStart(15)}  ${span(t.deployed, t.clone).padStart(13)}`);
    }
  });
});
