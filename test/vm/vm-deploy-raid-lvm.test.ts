/**
 * A deploy onto RAID1 + LVM in the VM (the host kernel has neither): two blank disks get
 * an ESP, a RAID1 of their second partitions, a volume group on it with an ext4 root and
 * an xfs /srv; the tree is restored over the network and checked file by file against
 * the host's copy; fstab names the new file systems by UUID. A second deploy finds the
 * disks already carrying the layout, keeps them (no mkfs) and fetches nothing.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { copyFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { dir, file, hardlink, makeTree, seededBytes, symlink, withTempDir } from '../helpers/fixtures.ts';
import { withServer } from '../helpers/server.ts';
import { clonerAgainst } from '../helpers/cli.ts';
import { VM_GUEST_MAC, VM_HOST_ADDRESS, vmUnavailable, withVm } from './harness.ts';

const RAID_LAYOUT = {
  format: 'cloner-layout/1',
  disks: [
    { id: 'a', match: { serial: 'DISKA' }, table: 'gpt', partitions: [{ id: 'esp', size: '64M', type: 'esp', name: 'EFI system' }, { id: 'a2', size: 'grow', type: 'raid' }] },
    { id: 'b', match: { serial: 'DISKB' }, table: 'gpt', partitions: [{ id: 'b1', size: '64M', type: 'linux' }, { id: 'b2', size: 'grow', type: 'raid' }] },
  ],
  raids: [{ id: 'md0', name: 'system', level: 1, members: ['a2', 'b2'] }],
  volumeGroups: [{ name: 'vg0', pvs: ['md0'], lvs: [{ name: 'root', size: '600M' }, { name: 'srv', size: 'grow' }] }],
  filesystems: [
    { device: 'esp', type: 'vfat', mount: '/boot/efi', label: 'ESP' },
    { device: 'vg0/root', type: 'ext4', mount: '/', label: 'root' },
    { device: 'vg0/srv', type: 'xfs', mount: '/srv', label: 'srv' },
  ],
};

const blocker = vmUnavailable({ uefi: true, net: { hostPorts: [] } });
if (blocker) {
  console.log(`skipped: deploy onto RAID1 + LVM in a VM: ${blocker}`);
  test.skip('deploy onto RAID1 + LVM in a VM', () => {});
} else {
  test('cloner-agent deploys onto RAID1 + LVM (ext4 /, xfs /srv, ESP); a re-deploy keeps the arrays and fetches nothing', async () => {
    await withTempDir(async (work) => {
      const golden = path.join(work, 'golden');
      await makeTree(golden, {
        'etc/hostname': file('golden\n'),
        'etc/systemd/network': dir(),
        'usr/lib/app/data.bin': file(seededBytes(21, 4 << 20)),
        'usr/lib/app/data-link.bin': hardlink('usr/lib/app/data.bin'),
        'usr/bin/app': symlink('../lib/app/data.bin'),
        'srv/www/index.html': file('<h1>node</h1>\n'),
        'srv/big.bin': file(seededBytes(22, 2 << 20)),
      });
      const sums = spawnSync('sh', ['-c', 'find . -type f ! -path ./etc/hostname | sort | xargs sha256sum'], { cwd: golden, encoding: 'utf8' }).stdout;
      await withServer(async (server) => {
        const remote = ['--server', server.url, '--token-file', path.join(server.dataDir, 'admin.token')];
        const cloner = clonerAgainst(remote);
        await writeFile(path.join(work, 'layout.json'), JSON.stringify(RAID_LAYOUT));
        cloner('disklayout-upload', '--disklayout', 'mirror', '--file', path.join(work, 'layout.json'));
        cloner('new-image', '--image', 'small', '--root', golden, '--disklayout', 'mirror', '--yes');
        cloner('nodes', 'add', 'mirror1', `eth0.mac=${VM_GUEST_MAC}`, 'eth0.ip=198.18.0.15/24', 'cloner_image=small');
        const port = Number(new URL(server.url).port);
        await withVm({ uefi: true, disks: [{ size: '1536M', serial: 'DISKA' }, { size: '1536M', serial: 'DISKB' }], net: { hostPorts: [port] }, timeoutMs: 8 * 60_000 }, async (vm) => {
          await copyFile(path.join(server.dataDir, 'admin.token'), path.join(vm.jobDir, 'token'));
          await writeFile(path.join(vm.jobDir, 'sums'), sums);
          const deploy = `node bin/cloner-agent.js deploy --server http://${VM_HOST_ADDRESS}:${port} --token-file /job/token --node mirror1 --disks /dev/disk/by-id/virtio-DISKA,/dev/disk/by-id/virtio-DISKB --force --no-reboot 2>&1`;
          const run1 = await vm.runRetryingCrash(deploy, { timeoutMs: 4 * 60_000 });
          assert.is(run1.code, 0, run1.output);
          const first = run1.output;
          assert.match(first, /\[done\] mirror1 has small revision 1/);
          const checked = await vm.runOk(`set -e
            mdadm --detail /dev/md/system | grep -E 'Raid Level|Raid Devices'
            lvs --noheadings -o lv_name vg0 | tr -d ' '
            mkdir -p /mnt/n && mount /dev/vg0/root /mnt/n && mount /dev/vg0/srv /mnt/n/srv
            (cd /mnt/n && sha256sum -c --quiet /job/sums && echo sums-ok)
            cat /mnt/n/etc/hostname /mnt/n/etc/fstab
            echo "root=$(blkid -s UUID -o value /dev/vg0/root) srv=$(blkid -s UUID -o value /dev/vg0/srv)"
            umount /mnt/n/srv /mnt/n`);
          assert.match(checked, /Raid Level : raid1/);
          assert.match(checked, /Raid Devices : 2/);
          assert.match(checked, /^root\nsrv$/m);
          assert.match(checked, /^sums-ok$/m, 'every file as on the golden tree');
          assert.match(checked, /^mirror1$/m);
          const uuids = /root=(\S+) srv=(\S+)/.exec(checked)!;
          assert.match(checked, new RegExp(`^UUID=${uuids[1]} / ext4 `, 'm'));
          assert.match(checked, new RegExp(`^UUID=${uuids[2]} /srv xfs `, 'm'));

          const run2 = await vm.runRetryingCrash(deploy, { timeoutMs: 3 * 60_000 });
          assert.is(run2.code, 0, run2.output);
          const again = run2.output;
          assert.match(again, /already carry the layout: keeping their file systems/);
          assert.not.match(again, /mkfs/);
          assert.match(again, /fetched 0 B/);
        });
      });
    });
  });
}

test.run();
