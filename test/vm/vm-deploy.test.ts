/**
 * A whole deploy in a UEFI VM, and the clone booting on its own. The golden system is the
 * VM image itself (Debian with its kernel, systemd and GRUB EFI), captured on the host into
 * a cloner-server on loopback with a layout of an EFI system partition (vfat, /boot/efi) on
 * the first disk and an ext4 root on LVM on a RAID1 of both disks. In the VM (OVMF),
 * `cloner-agent deploy` partitions its two blank disks,
 * restores the tree over the network, writes the node's identity (hostname, a networkd
 * file for its MAC, interface name pinned by a .link file), runs the image's post-script
 * chrooted (it enables networkd and a unit that reports to the serial console; it does not
 * touch mdadm.conf or the initramfs: the agent writes the node's arrays into mdadm.conf and
 * regenerates the initramfs itself, since the root moved to LVM on md), installs GRUB and
 * writes the EFI boot entry. Then the VM is started again through its firmware
 * alone: it boots the clone from its disks, whose report on the serial console gives the
 * node's hostname, its root (the LV) and its address on eth0.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { withTempDir } from '../helpers/fixtures.ts';
import { sh } from '../helpers/loop.ts';
import { withServer } from '../helpers/server.ts';
import { clonerAgainst } from '../helpers/cli.ts';
import { ensureVmImage } from './image.ts';
import { VM_GUEST_ADDRESS, VM_GUEST_MAC, VM_HOST_ADDRESS, vmUnavailable, withVm } from './harness.ts';
import { POST_SCRIPT_HEAD } from './golden-report.ts';

/** Two disks: an ESP on the first, a RAID1 of both, LVM on it, the root an LV. */
const BOOT_LAYOUT = {
  format: 'cloner-layout/1',
  disks: [
    { id: 'a', match: { serial: 'TARGET' }, table: 'gpt', partitions: [{ id: 'esp', size: '128M', type: 'esp', name: 'EFI system' }, { id: 'a2', size: 'grow', type: 'raid', name: 'mirror-a' }] },
    { id: 'b', match: { serial: 'MIRROR' }, table: 'gpt', partitions: [{ id: 'b1', size: '128M', type: 'linux', name: 'spare' }, { id: 'b2', size: 'grow', type: 'raid', name: 'mirror-b' }] },
  ],
  raids: [{ id: 'md0', name: 'system', level: 1, members: ['a2', 'b2'] }],
  volumeGroups: [{ name: 'vg0', pvs: ['md0'], lvs: [{ name: 'root', size: 'grow' }] }],
  filesystems: [
    { device: 'esp', type: 'vfat', mount: '/boot/efi', label: 'ESP' },
    { device: 'vg0/root', type: 'ext4', mount: '/', label: 'root' },
  ],
};

/** What the clone need not carry: the test image's Node, docs, locales, most drivers. */
const EXCLUDES = [
  '/usr/local/*',
  '/usr/share/locale/*',
  '/usr/share/doc/*',
  '/usr/share/man/*',
  '/usr/lib/modules/*/kernel/sound',
  '/usr/lib/modules/*/kernel/drivers/!(net|virtio|block|char|md|nvme)',
  '/usr/lib/modules/*/kernel/drivers/net/!(*.ko)',
  // Full perl goes; perl-base (Essential) and /usr/share/perl5 stay: update-initramfs needs
  // linux-version, which needs both.
  '/usr/lib/x86_64-linux-gnu/perl/*',
  '/usr/share/perl/*',
  '/usr/lib/firmware/*',
  '/usr/lib/python3*',
  '/usr/bin/python3*',
  '/usr/lib/modules/*/kernel/fs/!(fat|nls|ext4|jbd2|mbcache.ko|xfs)',
  '/usr/lib/modules/*/kernel/drivers/char/!(*.ko)',
  '/usr/lib/modules/*/kernel/drivers/block/!(*.ko|zram)',
];

/** The image's post-script: networkd on, a console report at boot, the kernel on ttyS0. */
const POST_SCRIPT = `${POST_SCRIPT_HEAD}printf 'GRUB_DEFAULT=0\nGRUB_TIMEOUT=0\nGRUB_DISTRIBUTOR=Debian\nGRUB_CMDLINE_LINUX="console=ttyS0"\n' > /etc/default/grub
echo "post-script ran on $CLONER_NODE"
`;

const blocker = vmUnavailable({ uefi: true, net: { hostPorts: [] } });
if (blocker) {
  console.log(`skipped: deploy and boot a clone in a UEFI VM: ${blocker}`);
  test.skip('deploy and boot a clone in a UEFI VM', () => {});
} else {
  test('in a UEFI VM, cloner-agent deploys a bootable image onto an ESP and LVM on RAID1 with its EFI entry; the clone boots from its disks with its own hostname and address', async () => {
    const image = await ensureVmImage();
    await withTempDir(async (dir) => {
      const golden = path.join(dir, 'golden');
      await mkdir(golden);
      sh(['mount', '-o', 'ro,loop', image.rootImage, golden]);
      try {
        await withServer(async (server) => {
          const remote = ['--server', server.url, '--token-file', path.join(server.dataDir, 'admin.token')];
          const cloner = clonerAgainst(remote);
          await writeFile(path.join(dir, 'layout.json'), JSON.stringify(BOOT_LAYOUT));
          await writeFile(path.join(dir, 'post.sh'), POST_SCRIPT);
          cloner('disklayout-upload', '--disklayout', 'uefi', '--file', path.join(dir, 'layout.json'));
          cloner('new-image', '--image', 'vmimg', '--root', golden, '--disklayout', 'uefi', '--exclude-paths', EXCLUDES.join(','), '--yes');
          cloner('script', '--image', 'vmimg', '--type', 'post', '--set', path.join(dir, 'post.sh'));
          cloner('nodes', 'add', 'clone1', `eth0.mac=${VM_GUEST_MAC}`, `eth0.ip=${VM_GUEST_ADDRESS}/24`, 'hostname=clone1.cluster', 'cloner_image=vmimg', 'netboot=cloner');
          const port = Number(new URL(server.url).port);

          await withVm({ uefi: true, disks: [{ size: '1536M', serial: 'TARGET' }, { size: '1536M', serial: 'MIRROR' }], net: { hostPorts: [port] }, memoryMiB: 1536, timeoutMs: 14 * 60_000 }, async (vm) => {
            await copyFile(path.join(server.dataDir, 'admin.token'), path.join(vm.jobDir, 'token'));
            // The disk held another system, with its own EFI entry.
            await vm.runOk(`set -e
              printf 'label: gpt\\nsize=64MiB, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B\\n' | sfdisk --quiet /dev/disk/by-id/virtio-TARGET
              udevadm settle
              efibootmgr -q -c -d /dev/disk/by-id/virtio-TARGET -p 1 -L 'old os' -l '\\EFI\\debian\\grubx64.efi'
              efibootmgr | grep -q 'old os'`);
            const t = performance.now();
            const run = await vm.runRetryingCrash(`node bin/cloner-agent.js deploy --server http://${VM_HOST_ADDRESS}:${port} --token-file /job/token --node clone1 --disks /dev/disk/by-id/virtio-TARGET,/dev/disk/by-id/virtio-MIRROR --force --no-reboot --stall-s 60 2>&1`, { timeoutMs: 9 * 60_000 });
            console.log(`deploy in the VM: ${((performance.now() - t) / 1000).toFixed(0)} s`);
            assert.is(run.code, 0, run.output);
            assert.match(run.output, /post-script: post-script ran on clone1/);
            assert.match(run.output, /\[done\] clone1 has vmimg revision 1/);
            const entries = await vm.runOk('efibootmgr -v');
            assert.match(entries, /^BootOrder: (\w{4})/m);
            const first = /^BootOrder: (\w{4})/m.exec(entries)![1];
            assert.match(entries, new RegExp(`^Boot${first}\\* cloner vmimg\\s.*HD\\(1,GPT,.*\\\\EFI\\\\cloner\\\\grubx64\\.efi`, 'm'), 'the new system\'s entry comes first');
            assert.not.match(entries, /old os/, 'the earlier system\'s entry is gone');
            // fix-efiboot, from the installed system, brings a lost entry back.
            const deleted = await vm.runOk(`set -e
              mkdir -p /mnt/clone && mount /dev/vg0/root /mnt/clone && mount /dev/disk/by-id/virtio-TARGET-part1 /mnt/clone/boot/efi
              efibootmgr -q -b ${first} -B
              efibootmgr | grep -c 'cloner vmimg' || true`);
            assert.match(deleted, /^0$/m, 'the entry was deleted');
            const fix = await vm.runRetryingCrash('node bin/cloner.js fix-efiboot --root /mnt/clone && umount /mnt/clone/boot/efi /mnt/clone && efibootmgr -v');
            assert.is(fix.code, 0, fix.output);
            const fixed = fix.output;
            assert.match(fixed, /EFI entry "cloner vmimg": \/dev\/vdb partition 1, \\EFI\\cloner\\grubx64\.efi/);
            const order = /^BootOrder: (\w{4})/m.exec(fixed)![1];
            assert.match(fixed, new RegExp(`^Boot${order}\\* cloner vmimg\\s.*\\\\EFI\\\\cloner\\\\grubx64\\.efi`, 'm'), 'fix-efiboot put it first again');
            const node = JSON.parse(cloner('nodes', 'show', 'clone1', '--json')) as { netboot: string; lastDeploy: { ok: boolean } };
            assert.is(node.netboot, 'local');
            assert.is(node.lastDeploy.ok, true);

            await vm.bootFromDisk();
            const t2 = performance.now();
            const console_ = await vm.waitForConsole(/cloner-report: hostname=\S+ [^\r\n]*[\r\n]/, 150_000);
            console.log(`the clone booted and reported in ${((performance.now() - t2) / 1000).toFixed(0)} s`);
            const report = /cloner-report: hostname=(\S+) root=(\S+) ([^\r\n]*)/.exec(console_)!;
            assert.ok(report, console_.slice(-3000));
            assert.is(report[1], 'clone1', console_.slice(-3000));
            assert.is(report[2], '/dev/mapper/vg0-root', 'the clone runs from its LV on the mirror');
            assert.match(report[3], new RegExp(`^eth0 UP ${VM_GUEST_ADDRESS.replace(/\./g, '\\.')}/24`), 'networkd gave eth0 (named by the .link file) its address');
          });
        });
      } finally {
        spawnSync('umount', [golden]);
      }
    });
  });
}

test.run();
