/**
 * The admin's side of the PXE lab (pxe-lab.ts), shared by test/vm/pxe-lab.test.ts and
 * bench:netboot: the golden (the cached VM root through an overlay that adds GRUB for BIOS,
 * as a BIOS cluster's golden carries grub-pc), then the spec's commands in order:
 * make-installer, disklayout-upload, new-image, script --type post, nodes add, nodes set
 * cloner_image, netboot --set cloner, power on, status --watch; the milestones of every
 * node are followed until each clone reports on its console. Optionally the server is
 * stopped while one node restores and started again (an outage the nodes ride out).
 */
import { spawnSync } from 'node:child_process';
import { cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { finished } from '../helpers/netns.ts';
import { followLab, teardownOnSignal, type Milestone, type PxeLab, type Timeline } from './pxe-lab.ts';
import { POST_SCRIPT_HEAD } from './golden-report.ts';

/** Mounts the VM image read-only with an overlay adding the host's GRUB i386-pc modules; always unmounted. */
export async function withGolden<T>(rootImage: string, work: (golden: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(path.join(tmpdir(), 'pxe-golden-'));
  const [lower, upper, workDir, golden] = ['lower', 'upper', 'work', 'golden'].map((d) => path.join(dir, d));
  const mounted: string[] = [];
  const mount = (argv: string[], at: string) => {
    const r = spawnSync('mount', [...argv, at], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`mount ${argv.join(' ')} ${at}: ${r.stderr.trim()}`);
    mounted.unshift(at);
  };
  const ran = teardownOnSignal(() => {
    for (const at of mounted.splice(0)) spawnSync('umount', [at]);
    spawnSync('rm', ['-rf', dir]);
  });
  try {
    for (const d of [lower, upper, workDir, golden]) await mkdir(d);
    mount(['-o', 'ro,loop', rootImage], lower);
    mount(['-t', 'overlay', 'overlay', '-o', `lowerdir=${lower},upperdir=${upper},workdir=${workDir}`], golden);
    await cp('/usr/lib/grub/i386-pc', path.join(golden, 'usr/lib/grub/i386-pc'), { recursive: true });
    return await work(golden);
  } finally {
    for (const at of mounted.splice(0)) spawnSync('umount', [at]);
    ran();
    await rm(dir, { recursive: true, force: true });
  }
}

/** BIOS: a dos table, one bootable ext4 root (GRUB goes to the MBR). UEFI: an ESP and an ext4 root. */
const LAYOUTS = {
  bios: { format: 'cloner-layout/1', disks: [{ id: 'sys', table: 'dos', partitions: [{ id: 'root', size: 'grow', type: 'linux', bootable: true }] }], filesystems: [{ device: 'root', type: 'ext4', mount: '/', label: 'root' }] },
  uefi: {
    format: 'cloner-layout/1',
    disks: [{ id: 'sys', table: 'gpt', partitions: [{ id: 'esp', size: '64M', type: 'esp', name: 'EFI system' }, { id: 'root', size: 'grow', type: 'linux', name: 'root' }] }],
    filesystems: [{ device: 'esp', type: 'vfat', mount: '/boot/efi', label: 'ESP' }, { device: 'root', type: 'ext4', mount: '/', label: 'root' }],
  },
};

/** What the clone need not carry (as the VM deploy test): the image's Node, docs, locales, most drivers. */
const EXCLUDES = [
  '/usr/local/*', '/usr/share/locale/*', '/usr/share/doc/*', '/usr/share/man/*', '/usr/lib/modules/*/kernel/sound',
  '/usr/lib/modules/*/kernel/drivers/!(net|virtio|block|char|md|nvme)', '/usr/lib/modules/*/kernel/drivers/net/!(*.ko)',
  '/usr/lib/x86_64-linux-gnu/perl/*', '/usr/share/perl/*', '/usr/lib/firmware/*', '/usr/lib/python3*', '/usr/bin/python3*',
  '/usr/lib/modules/*/kernel/fs/!(fat|nls|ext4|jbd2|mbcache.ko|xfs)', '/usr/lib/modules/*/kernel/drivers/char/!(*.ko)',
  '/usr/lib/modules/*/kernel/drivers/block/!(*.ko|zram)',
];

/** The image's post-script: networkd on, a console report at boot, the kernel on ttyS0, no GRUB wait. */
const POST_SCRIPT = `${POST_SCRIPT_HEAD}# A text console for GRUB: these nodes have no graphics (gfxterm would find no video mode).
printf 'GRUB_DEFAULT=0\\nGRUB_TIMEOUT=0\\nGRUB_DISTRIBUTOR=Debian\\nGRUB_TERMINAL=console\\nGRUB_CMDLINE_LINUX="console=ttyS0"\\n' > /etc/default/grub
echo "post-script ran on $CLONER_NODE"
`;

/** qemu start -> DHCP answered -> installer running -> agent's first attempt -> deploy done -> clone up. */
export const LAB_MILESTONES: Milestone[] = [
  { name: 'dhcp', source: 'dnsmasq', pattern: /DHCPACK/ },
  { name: 'installer', source: 'console', pattern: /cloner: installer for / },
  { name: 'agent', source: 'console', pattern: /cloner: deploy attempt 1/ },
  { name: 'deployed', source: 'console', pattern: /cloner: deploy done; rebooting/ },
  { name: 'clone', source: 'console', pattern: /cloner-report: hostname=\S+ [^\r\n]*[\r\n]/ },
];

export interface LabRun {
  /** Seconds: make-installer (build + upload), new-image (capture). */
  setup: { installer: number; capture: number };
  installer: { version: string; bytes: { vmlinuz: number; 'initrd.img': number; total: number } };
  /** `cloner status --watch` for the nodes whose image was set before power-on. */
  watch: { code: number | null; out: string };
}

const seconds = (t: number) => Number(((performance.now() - t) / 1000).toFixed(1));

/**
 * Builds the installer and the image from `golden`, registers the lab's nodes, arms them
 * and powers them on; nodes named in `lateImage` get their image only once their first
 * deploy failed for lack of one. Resolves when every clone reported (`timeline` filled,
 * seconds from power-on); throws after `timeoutMs` with the consoles' ends.
 */
export async function labDeploy(
  lab: PxeLab,
  golden: string,
  o: {
    lateImage?: string[];
    /** Stops the server for `downMs` once this node has restored some data, then starts it again (same data, same address). */
    outage?: { node: string; downMs: number };
    timeline: Timeline;
    timeoutMs: number;
    /** Date.now() by which to give up, setup included. */ deadline?: number;
  },
): Promise<LabRun> {
  let t = performance.now();
  const built = JSON.parse(lab.cloner('make-installer', '--root', golden, '--json')) as { version: string; bytes: { vmlinuz: number; 'initrd.img': number; total: number } };
  const installer = seconds(t);
  for (const [name, layout] of Object.entries(LAYOUTS)) {
    await writeFile(path.join(lab.dir, `${name}.json`), JSON.stringify(layout));
    lab.cloner('disklayout-upload', '--disklayout', name, '--file', path.join(lab.dir, `${name}.json`));
  }
  t = performance.now();
  lab.cloner('new-image', '--image', 'lab', '--root', golden, '--disklayout', 'uefi', '--exclude-paths', EXCLUDES.join(','), '--yes');
  const capture = seconds(t);
  await writeFile(path.join(lab.dir, 'post.sh'), POST_SCRIPT);
  lab.cloner('script', '--image', 'lab', '--type', 'post', '--set', path.join(lab.dir, 'post.sh'));
  const late = new Set(o.lateImage ?? []);
  for (const n of lab.nodes) {
    lab.cloner('nodes', 'add', n.name, `eth0.mac=${n.mac}`, `eth0.ip=${n.ip}/24`, `hostname=${n.name}.lab`, `cloner_layout=${n.firmware}`, 'bmc.type=ipmi', `bmc.address=${n.bmcAddress}`, 'bmc.username=admin', 'bmc.password=bmc-secret');
  }
  const all = lab.nodes.map((n) => n.name).join(',');
  const early = lab.nodes.filter((n) => !late.has(n.name)).map((n) => n.name).join(',');
  if (early) lab.cloner('nodes', 'set', '--nodes', early, 'cloner_image=lab');
  lab.cloner('netboot', '--nodes', all, '--set', 'cloner');
  const t0 = performance.now();
  lab.cloner('power', '--nodes', all, 'on');
  const watcher = early ? finished(lab.spawnCloner(['status', '--nodes', early, '--watch', '--interval', '2', '--timeout', String(Math.ceil(o.timeoutMs / 1000) + 60)])) : Promise.resolve({ code: 0, out: '' });
  const imaged = new Set<string>();
  const timeoutMs = Math.max(0, Math.min(o.timeoutMs, (o.deadline ?? Infinity) - Date.now()));
  let outage: Promise<void> | null = null;
  let serverDown = false;
  await followLab(lab, LAB_MILESTONES, t0, o.timeline, async (tl) => {
    const victim = o.outage && lab.nodes.find((n) => n.name === o.outage!.node);
    if (victim && !outage && /cloner: restore: data, [1-9]/.test(victim.console())) {
      serverDown = true;
      outage = (async () => {
        console.log(`${victim.name} is restoring: the server stops for ${o.outage!.downMs / 1000} s`);
        await lab.server.stop();
        await new Promise((r) => setTimeout(r, o.outage!.downMs));
        await lab.server.restart();
        serverDown = false;
        console.log('the server is back');
      })();
    }
    if (serverDown) return false;
    if (outage) await outage;
    for (const n of lab.nodes) {
      if (late.has(n.name) && !imaged.has(n.name) && /cloner: deploy failed \(exit \d+\)/.test(n.console())) {
        lab.cloner('nodes', 'set', '--nodes', n.name, 'cloner_image=lab');
        imaged.add(n.name);
      }
    }
    return lab.nodes.every((n) => tl[n.name].clone !== null);
  }, timeoutMs);
  return { setup: { installer, capture }, installer: { version: built.version, bytes: built.bytes }, watch: await watcher };
}
