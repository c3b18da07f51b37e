/**
 * The spec's whole deploy loop, bare metal style, with real parts only (test/vm/pxe-lab.ts):
 * three blank qemu nodes at once, two under SeaBIOS and one under OVMF, iPXE in their NICs'
 * ROM, each with an ipmi_sim BMC; dnsmasq runs the snippet of `netboot dnsmasq-config`.
 * The golden is the cached Debian VM root (plus GRUB for BIOS, as a BIOS cluster's golden
 * has), through an overlay; `cloner make-installer --root` builds and uploads the installer,
 * `cloner new-image` captures the image. Then the admin's commands, verbatim: nodes set
 * cloner_image, netboot --set cloner, power on, status --watch. The UEFI node's image is
 * set only after it booted: its first deploy fails ("no image assigned"), the installer
 * keeps it up and retries after its back-off, and the retry deploys. While the second BIOS
 * node restores, the server is stopped for 15 s and started again: the agents retry their
 * requests and finish, and status --watch rides the outage out. Each node: PXE ->
 * /boot.ipxe -> installer -> partitions, restores, identity, GRUB -> netboot back to local
 * -> reboot -> iPXE exits to the disk -> the clone reports its hostname and address on the
 * serial console. Then `cloner power off` stops the VMs through their BMCs.
 * Milestone times are printed (bench:netboot runs the same lab). The nodes have
 * CLONER_PXE_LAB_TIMEOUT_S (1300) from power-on to every clone up, and never past 45 s
 * before the runner's limit (test/run.ts gives this file 1500 s).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { skipUnless } from '../helpers/skip.ts';
import { ensureVmImage } from './image.ts';
import { labDeploy, withGolden } from './pxe-lab-flow.ts';
import { pxeLabUnavailable, withPxeLab, type Timeline } from './pxe-lab.ts';

// The runner kills a file at CLONER_TEST_FILE_TIMEOUT_S (SIGKILL: no teardown); the lab gives up
// 45 s before, so it fails with everything torn down instead.
const FILE_DEADLINE = Date.now() + (Number(process.env.CLONER_TEST_FILE_TIMEOUT_S ?? 600) - 45) * 1000;

const NAME = 'three blank VMs (two SeaBIOS, one OVMF; iPXE in the NIC ROM) are deployed at once through dnsmasq, /boot.ipxe, the installer and ipmi_sim power, then boot their clones; the one armed without an image retries by itself, a server outage mid-restore is ridden out';

skipUnless(test, pxeLabUnavailable(), NAME, async () => {
  const image = await ensureVmImage();
  await withGolden(image.rootImage, async (golden) => {
    await withPxeLab([{ name: 'pxebios', firmware: 'bios' }, { name: 'pxebios2', firmware: 'bios' }, { name: 'pxeuefi', firmware: 'uefi' }], async (lab) => {
      const timeline: Timeline = {};
      const run = await labDeploy(lab, golden, { lateImage: ['pxeuefi'], outage: { node: 'pxebios2', downMs: 15_000 }, timeline, timeoutMs: Number(process.env.CLONER_PXE_LAB_TIMEOUT_S ?? 1300) * 1000, deadline: FILE_DEADLINE });
      console.log(`setup: make-installer ${run.setup.installer} s, new-image ${run.setup.capture} s`);
      for (const [node, marks] of Object.entries(timeline)) console.log(`${node}: ${Object.entries(marks).map(([k, v]) => `${k} ${v ?? '-'} s`).join(', ')}`);

      const [bios, bios2, uefi] = lab.nodes;
      for (const n of lab.nodes) {
        const report = /cloner-report: hostname=(\S+) root=(\S+) ([^\r\n]*)/.exec(n.console());
        assert.ok(report, `${n.name}: no report from its clone\n${n.console().slice(-3000)}`);
        assert.is(report![1], n.name, 'the clone has its own hostname');
        assert.match(report![3], new RegExp(`^eth0 UP ${n.ip.replace(/\./g, '\\.')}/24`), 'the clone has its own address');
        const shown = JSON.parse(lab.cloner('nodes', 'show', n.name, '--json')) as { netboot: string; lastDeploy: { ok: boolean } };
        assert.is(shown.netboot, 'local', `${n.name}: the deploy set its netboot back to local`);
        assert.is(shown.lastDeploy.ok, true);
        assert.match(n.console(), /cloner: deploy done; rebooting/);
        assert.ok(timeline[n.name].clone! > timeline[n.name].deployed!, 'the clone came up after the deploy');
      }
      // iPXE took /boot.ipxe's answers: the installer while armed, then (netboot local) the disk.
      // Under OVMF the agent's EFI entry may come first after the deploy (no second PXE then).
      for (const n of lab.nodes) assert.match(n.console(), new RegExp(`cloner: ${n.name} boots the cloner installer `));
      assert.match(bios.console(), /cloner: pxebios boots the cloner installer [\s\S]*cloner: pxebios boots from disk/, 'the BIOS node PXE-booted again and was sent to its disk');
      console.log(`the UEFI node's installer fetch: ${/could not fetch or boot the installer; trying again/.test(uefi.console()) ? 'cut by the outage, tried again by the script with the same token' : 'not hit by the outage'}`);
      console.log(`the UEFI node after its deploy: ${/cloner: pxeuefi boots from disk/.test(uefi.console()) ? 'PXE again, sent to its disk' : 'straight to its EFI entry'}`);
      assert.match(lab.dnsmasqLog(), new RegExp(`DHCPACK\\(eth0\\) ${bios.ip.replace(/\./g, '\\.')} ${bios.mac}`), 'the BIOS node got its reserved address');
      // The node armed without an image: attempt 1 failed on that, attempt 2 deployed.
      assert.match(uefi.console(), /cloner: .*has no image assigned[\s\S]*Retrying in 30 s[\s\S]*cloner: deploy attempt 2/);
      // The outage: the restoring node retried its requests until the server was back, and its deploy went on.
      assert.match(bios2.console(), /retry \d+ of (fetching chunks|a request to the server) in [\d.]+ s[\s\S]*cloner: deploy done; rebooting/);
      for (const n of [bios, bios2]) assert.not.match(n.console(), /deploy failed/, `${n.name} rode the outage out without failing its deploy`);
      // status --watch, as the admin ran it for the BIOS nodes, said the outage and ended when both were done.
      assert.is(run.watch.code, 0, run.watch.out);
      assert.match(run.watch.out, /the server does not answer[\s\S]*the server answers again/);
      for (const n of [bios, bios2]) assert.match(run.watch.out, new RegExp(`${n.name}\\s+local\\s+lab(@1)?\\s+done`));

      // Power through the BMCs: off stops the VMs.
      const all = lab.nodes.map((n) => n.name).join(',');
      const before = lab.cloner('power', '--nodes', all, 'status');
      for (const n of lab.nodes) assert.match(before, new RegExp(`${n.name}: on`));
      lab.cloner('power', '--nodes', all, 'off');
      const off = Date.now() + 30_000;
      let status = '';
      while (Date.now() < off) {
        status = lab.cloner('power', '--nodes', all, 'status');
        if (!/: on/.test(status)) break;
        await new Promise((r) => setTimeout(r, 1000));
      }
      assert.not.match(status, /: on/, status);
      assert.is(spawnSync('pgrep', ['-f', `ifname=pxet0,`]).status, 1, 'the BIOS node\'s qemu is gone');
    });
  });
});

test.run();
