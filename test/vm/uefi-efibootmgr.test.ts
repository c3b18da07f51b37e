/**
 * A UEFI node in the VM: OVMF firmware with its own variable store. Inside, an EFI system
 * partition gets GRUB (grub-install --no-nvram), efibootmgr writes a boot entry for it and
 * one more that is then deleted, and after a reboot (qemu restarted on the same variable
 * store, as a node's NVRAM) the entry is still there, pointing at the ESP's partition and
 * loader, and the deleted one is still gone.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { withVm, vmUnavailable } from './harness.ts';

const ESP_GUID = 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B';

const blocker = vmUnavailable({ uefi: true });
if (blocker) {
  console.log(`skipped: UEFI boot entries in a VM: ${blocker}`);
  test.skip('UEFI efibootmgr entries survive a reboot', () => {});
} else {
  test('under OVMF, an efibootmgr entry written for the ESP survives a reboot and a deleted one stays deleted', async () => {
    await withVm({ uefi: true, disks: [{ size: '512M', serial: 'BOOT' }] }, async (vm) => {
      const disk = '/dev/disk/by-id/virtio-BOOT';
      const made = await vm.runOk(`set -e
        test -d /sys/firmware/efi/efivars
        printf 'label: gpt\\nsize=200MiB, type=${ESP_GUID}, name="EFI system"\\n' | sfdisk --quiet ${disk}
        udevadm settle
        mkfs.vfat -F 32 -n ESP ${disk}-part1 >/dev/null
        mkdir -p /mnt/esp
        mount ${disk}-part1 /mnt/esp
        grub-install --target=x86_64-efi --efi-directory=/mnt/esp --boot-directory=/mnt/esp/boot --bootloader-id=cloner --no-nvram 2>&1
        test -s /mnt/esp/EFI/cloner/grubx64.efi
        umount /mnt/esp
        efibootmgr -q -c -d ${disk} -p 1 -L "Cloner test" -l '\\EFI\\cloner\\grubx64.efi'
        efibootmgr -q -c -d ${disk} -p 1 -L "Cloner stale" -l '\\EFI\\stale\\grubx64.efi'
        stale=$(efibootmgr | sed -n 's/^Boot\\([0-9A-F]\\{4\\}\\)\\* Cloner stale.*/\\1/p')
        efibootmgr -q -b "$stale" -B
        blkid -o value -s PARTUUID ${disk}-part1
        efibootmgr -v
      `);
      const partuuid = made.split('\n').find((l) => /^[0-9a-f-]{36}$/.test(l));
      assert.ok(partuuid, made);
      assert.match(made, /Cloner test/);
      assert.not.match(made, /Cloner stale/);

      await vm.reboot();
      const listed = await vm.runOk('test -d /sys/firmware/efi/efivars && efibootmgr -v');
      const entry = listed.split('\n').find((l) => l.includes('Cloner test'));
      assert.ok(entry, `the entry did not survive the reboot:\n${listed}`);
      assert.match(entry!, new RegExp(`HD\\(1,GPT,${partuuid},`, 'i'));
      assert.match(entry!, /File\(\\EFI\\cloner\\grubx64\.efi\)/);
      assert.not.match(listed, /Cloner stale/);
      const number = /^Boot([0-9A-F]{4})/.exec(entry!)![1];
      assert.match(listed, new RegExp(`^BootOrder: .*${number}`, 'm'));
    });
  });
}

test.run();
