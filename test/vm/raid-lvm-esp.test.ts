/**
 * What this host's kernel cannot do, done in the VM with real tools: two disks with GPT,
 * a vfat EFI system partition and an md RAID1 member each; LVM on the array with an ext4
 * root LV and an xfs data LV; all mounted as a node would have them, written, then torn
 * down, re-assembled from the on-disk metadata alone and checked.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { withVm, vmUnavailable } from './harness.ts';

const ESP_GUID = 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B';
const RAID_GUID = 'A19D880F-05FC-4D3B-A006-743F0F84911E';

const blocker = vmUnavailable();
if (blocker) {
  console.log(`skipped: RAID/LVM/ESP in a VM: ${blocker}`);
  test.skip('md RAID1 + LVM + vfat ESP', () => {});
} else {
  test('md RAID1 + LVM + a mounted vfat ESP are built, written, re-assembled from disk and checked', async () => {
    await withVm({ disks: [{ size: '1G', serial: 'RAID-A' }, { size: '1G', serial: 'RAID-B' }] }, async (vm) => {
      await vm.runOk(`set -e
        A=/dev/disk/by-id/virtio-RAID-A B=/dev/disk/by-id/virtio-RAID-B
        for d in $A $B; do
          printf 'label: gpt\\nsize=128MiB, type=${ESP_GUID}, name="EFI system"\\ntype=${RAID_GUID}, name=raid\\n' | sfdisk --quiet $d
        done
        udevadm settle
        mkfs.vfat -F 32 -n ESP $A-part1 >/dev/null
        mdadm --create /dev/md/root --run --quiet --level=1 --raid-devices=2 --metadata=1.2 $A-part2 $B-part2
        udevadm settle
        pvcreate -q /dev/md/root
        vgcreate -q vg0 /dev/md/root
        lvcreate -q -y -L 400M -n root vg0
        lvcreate -q -y -l 100%FREE -n data vg0
        udevadm settle
        mkfs.ext4 -q -L root /dev/vg0/root
        mkfs.xfs -q -L data /dev/vg0/data
        mkdir -p /mnt/t
        mount /dev/vg0/root /mnt/t
        mkdir -p /mnt/t/boot/efi /mnt/t/data
        mount $A-part1 /mnt/t/boot/efi
        mount /dev/vg0/data /mnt/t/data
        mkdir -p /mnt/t/boot/efi/EFI/cloner
        echo loader > /mnt/t/boot/efi/EFI/cloner/test.efi
        head -c 8M /dev/urandom > /mnt/t/data/blob
        cp /mnt/t/data/blob /mnt/t/blob
        sha256sum /mnt/t/data/blob | cut -d' ' -f1 > /tmp/sum
      `);

      const mounts = JSON.parse(await vm.runOk('findmnt -J -R -o TARGET,FSTYPE,SOURCE /mnt/t')) as { filesystems: Array<{ target: string; fstype: string; source: string; children?: unknown[] }> };
      const flat: Record<string, string> = {};
      const walk = (list: typeof mounts.filesystems) => list.forEach((m) => { flat[m.target] = m.fstype; walk((m.children ?? []) as typeof list); });
      walk(mounts.filesystems);
      assert.equal(flat, { '/mnt/t': 'ext4', '/mnt/t/boot/efi': 'vfat', '/mnt/t/data': 'xfs' });

      const md = await vm.runOk('mdadm --detail --export /dev/md/root');
      assert.match(md, /MD_LEVEL=raid1/);
      assert.match(md, /MD_DEVICES=2/);
      const lvs = JSON.parse(await vm.runOk('lvs --reportformat json --units b --nosuffix -o vg_name,lv_name,lv_size,devices 2>/dev/null')) as { report: Array<{ lv: Array<Record<string, string>> }> };
      const lvNames = lvs.report[0].lv.map((lv) => `${lv.vg_name}/${lv.lv_name}`).sort();
      assert.equal(lvNames, ['vg0/data', 'vg0/root']);
      assert.ok(lvs.report[0].lv.every((lv) => lv.devices.startsWith('/dev/md')), JSON.stringify(lvs));
      assert.is(Number(lvs.report[0].lv.find((lv) => lv.lv_name === 'root')!.lv_size), 400 * 1024 * 1024);

      // Tear the stack down and bring it back from what is on the disks.
      const after = await vm.runOk(`set -e
        umount -R /mnt/t
        vgchange -q -an vg0 >/dev/null
        mdadm --stop --quiet /dev/md/root
        test ! -e /dev/md/root
        mdadm --assemble --scan --quiet
        udevadm settle
        vgchange -q -ay vg0 >/dev/null
        udevadm settle
        fsck.vfat -n /dev/disk/by-id/virtio-RAID-A-part1 >/dev/null
        e2fsck -fn /dev/vg0/root >/dev/null 2>&1
        xfs_repair -n /dev/vg0/data >/dev/null 2>&1
        mount /dev/vg0/root /mnt/t
        mount /dev/disk/by-id/virtio-RAID-A-part1 /mnt/t/boot/efi
        mount /dev/vg0/data /mnt/t/data
        cat /mnt/t/boot/efi/EFI/cloner/test.efi
        test "$(sha256sum /mnt/t/data/blob | cut -d' ' -f1)" = "$(cat /tmp/sum)"
        test "$(sha256sum /mnt/t/blob | cut -d' ' -f1)" = "$(cat /tmp/sum)"
        blkid -o value -s LABEL /dev/vg0/root /dev/vg0/data /dev/disk/by-id/virtio-RAID-A-part1
        cat /proc/mdstat
        umount -R /mnt/t
      `);
      assert.match(after, /^loader\nroot\ndata\nESP\n/, after);
      assert.match(after, /md\d+ : active (\(auto-read-only\) )?raid1 vd[bc]2\[\d\] vd[bc]2\[\d\]/, after);
    });
  });
}

test.run();
