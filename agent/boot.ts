/**
 * The boot loader of a deployed node (the agent's bootloader phase).
 *
 * GRUB is installed from the image itself (chroot: the image's own grub-install and
 * grub.cfg generator, so the boot loader matches its kernel):
 *   - the layout has an EFI system partition: `grub-install --target=x86_64-efi
 *     --no-nvram` into \EFI\cloner\ plus the removable path \EFI\BOOT\BOOTX64.EFI (firmware
 *     with no entry still boots it); then the EFI entries are set with efibootmgr: the
 *     entries of earlier systems (any loader on a disk partition, or our label) go,
 *     firmware entries (network, shell) stay, and one new entry points at
 *     HD(partition of the ESP)\EFI\cloner\grubx64.efi, first in BootOrder;
 *   - no ESP: `grub-install --target=i386-pc` onto the disk holding /boot (or /);
 *   - then update-grub (or grub-mkconfig -o /boot/grub/grub.cfg).
 * First, when the identity step changed a block-device reference of the boot chain (fstab,
 * resume=, mdadm.conf, crypttab, ...), the golden's initramfs is looked inside
 * (agent/initramfs.ts): when it holds a reference that changed, a stale copy of a changed
 * file, lacks what the layout's RAID/LVM needs, or cannot be read, it is made anew with the
 * image's own tool (regenerateInitramfs); otherwise it is kept, with the reason logged (and
 * recorded, so a re-deploy with the same inputs does not look again). GRUB's config is
 * generated after it, so both name the node's devices.
 * When that tool fails the deploy fails (InitramfsError: the tool, its exit status and last
 * output lines): the boot configuration already names the node's devices while the golden's
 * initramfs still names the golden's, a node that would wait at boot for devices it does not
 * have; the phase stops before grub-install so nothing claims the node bootable.
 * An image without GRUB is left as it is, with a warning. Returns the warnings. Given what
 * the last deploy made (agent/boot-made.ts), the initramfs and GRUB steps are skipped when
 * their inputs (image files, the node's boot configuration, devices) are the same and what
 * they made is still on the node; the EFI entry is set every time. The EFI
 * entry rules are core/boot/efi.ts (shared with `cloner fix-efiboot`).
 */
import * as fs from 'node:fs';
import path from 'node:path';
import type { ApplyPlan } from '../core/layout/apply.ts';
import type { Layout } from '../core/layout/model.ts';
import { EFI_LOADER_DIR, setEfiEntry } from '../core/boot/efi.ts';
import { ClonerError } from '../core/errors.ts';
import { haveTool, run } from '../core/tools.ts';
import type { BootMade } from './boot-made.ts';
import { INITRAMFS_RULES, initramfsVerdict, type InitramfsInputs } from './initramfs.ts';

export class InitramfsError extends ClonerError {
  override readonly code = 'INITRAMFS_FAILED';
}

/** Where a layout's EFI system partition is: its disk and number (for efibootmgr) and mount point. */
export interface EspLocation {
  disk: string | null;
  partition: number;
  mount: string;
}

export interface BootOptions {
  target: string;
  layout: Layout;
  applied: ApplyPlan | null;
  esp: EspLocation | null;
  label: string;
  disks?: string[];
  /** Make the initramfs anew first (the identity step changed a device reference it holds). */
  initramfs?: boolean;
  /** What the identity step changed (agent/initramfs.ts): without, the initramfs is made anew whenever `initramfs` is set. */
  initramfsInputs?: InitramfsInputs;
  /** What the last deploy made (agent/boot-made.ts): a step made from the same inputs is not run again. */
  made?: BootMade;
  /** The node's file systems (UUIDs, devices), a GRUB input besides the files. */
  devices?: string[];
  log: (line: string) => void;
}

/**
 * The image's own initramfs tool, chrooted: update-initramfs (initramfs-tools), dracut,
 * mkinitcpio, for every kernel of the image. Returns a warning when the image has none.
 */
export async function regenerateInitramfs(target: string, log: (line: string) => void, why = "the boot configuration names the node's devices now"): Promise<string | null> {
  const chroot = (argv: string[]) => run(['chroot', target, ...argv]);
  const tool = inTarget(target, 'usr/sbin/update-initramfs', 'sbin/update-initramfs', 'usr/bin/dracut', 'usr/sbin/dracut', 'sbin/dracut', 'usr/bin/mkinitcpio', 'usr/sbin/mkinitcpio');
  if (!tool) return 'the boot configuration names the node\'s devices now, but the image has no initramfs tool (update-initramfs, dracut, mkinitcpio): its initramfs still names the golden\'s';
  const argv = tool.endsWith('update-initramfs') ? [`/${tool}`, '-u', '-k', 'all'] : tool.endsWith('dracut') ? [`/${tool}`, '--regenerate-all', '--force'] : [`/${tool}`, '-P'];
  log(`initramfs: ${argv.join(' ')} (${why})`);
  try {
    await chroot(argv);
  } catch (err) {
    const cause = (err as Error & { cause?: { code?: number | string; signal?: string | null } }).cause;
    const status = typeof cause?.code === 'number' ? `exit ${cause.code}` : cause?.signal ? `signal ${cause.signal}` : 'failed';
    const last = (err as Error).message.replace(/^.*? failed: /, '');
    throw new InitramfsError(`the image's initramfs tool failed (${argv.join(' ')}, ${status}): ${last}`, "the node's boot configuration names its new devices but its initramfs would still name the golden's: fix the image's initramfs tool (its output above), then deploy again");
  }
  return null;
}

const inTarget = (target: string, ...candidates: string[]) => candidates.find((c) => fs.existsSync(path.join(target, c))) ?? null;

/** Runs every step: no record of what was made (BootMade without a target). */
const ALWAYS: Pick<BootMade, 'step'> = { step: async (_step, _args, make) => (await make(), true) };

export async function installBootloader(o: BootOptions): Promise<string[]> {
  const warnings: string[] = [];
  const made = o.made ?? ALWAYS;
  if (o.initramfs) {
    let w: string | null = null;
    const inputs = o.initramfsInputs;
    // Only the golden's own initramfs is looked inside; one the last deploy made is made again when its inputs changed.
    const golden = inputs && !(o.made?.holds('initramfs') ?? false);
    // The rules' version too: a decision to keep the image's made under older rules (before
    // the golden-hardware ones) is looked at again once.
    const args = inputs ? ['rules', INITRAMFS_RULES, 'refs', ...[...inputs.refs].sort(), 'files', ...[...inputs.files].sort(), 'layers', ...inputs.layers] : [];
    const ran = await made.step('initramfs', args, async () => {
      if (golden) {
        const verdict = await initramfsVerdict(o.target, inputs);
        if (!verdict.rebuild) return o.log(`initramfs: kept the image's (${verdict.why})`);
        o.log(`initramfs: made anew: ${verdict.why}`);
        w = await regenerateInitramfs(o.target, o.log, verdict.why);
      } else w = await regenerateInitramfs(o.target, o.log);
    });
    if (!ran) o.log(o.made?.madeNothing('initramfs') ? "initramfs: kept the image's, as the last deploy decided (same kernels, initramfs files, boot configuration and changes)" : 'initramfs: kept as the last deploy made it (same kernels, initramfs files and boot configuration)');
    if (w) warnings.push(w);
  }
  const grubInstall = inTarget(o.target, 'usr/sbin/grub-install', 'sbin/grub-install', 'usr/sbin/grub2-install');
  if (!grubInstall) {
    warnings.push('the image has no grub-install: boot loader left as the image has it');
    return warnings;
  }
  const chroot = (argv: string[]) => run(['chroot', o.target, ...argv]);
  const installs: string[][] = [];
  if (o.esp) {
    const efiDir = o.esp.mount;
    const efiTarget = inTarget(o.target, 'usr/lib/grub/x86_64-efi') ? 'x86_64-efi' : null;
    if (!efiTarget) {
      warnings.push('the layout has an EFI system partition but the image has no GRUB EFI modules (grub-efi-amd64-bin): boot loader not installed');
      return warnings;
    }
    installs.push([`/${grubInstall}`, '--target=x86_64-efi', `--efi-directory=${efiDir}`, `--bootloader-id=${EFI_LOADER_DIR}`, '--no-nvram']);
    installs.push([`/${grubInstall}`, '--target=x86_64-efi', `--efi-directory=${efiDir}`, '--removable', '--no-nvram']);
  } else {
    const bootFs = (o.layout.filesystems ?? []).find((f) => f.mount === '/boot') ?? (o.layout.filesystems ?? []).find((f) => f.mount === '/');
    const diskId = o.layout.disks.find((d) => d.partitions.some((p) => p.id === bootFs?.device))?.id ?? o.layout.disks[0]?.id;
    const disk = o.applied?.disks.find((d) => d.id === diskId)?.device ?? (o.disks?.length === 1 ? o.disks[0] : null);
    if (!inTarget(o.target, 'usr/lib/grub/i386-pc')) {
      warnings.push('the image has no GRUB BIOS modules (grub-pc-bin): boot loader not installed');
      return warnings;
    }
    if (!disk) {
      warnings.push('the boot disk is not known: boot loader not installed');
      return warnings;
    }
    installs.push([`/${grubInstall}`, '--target=i386-pc', disk]);
  }
  const updateGrub = inTarget(o.target, 'usr/sbin/update-grub');
  const mkconfig = updateGrub ? [`/${updateGrub}`] : ['grub-mkconfig', '-o', '/boot/grub/grub.cfg'];
  // The step's arguments: the commands, and the devices GRUB's files name (the file systems' UUIDs).
  const grub = async () => {
    o.log(o.esp ? `grub-install (EFI) into ${o.esp.mount}` : `grub-install (BIOS) onto ${installs[0].at(-1)}`);
    for (const argv of installs) await chroot(argv);
    await chroot(mkconfig);
  };
  if (!(await made.step('grub', [...installs.flat(), ...mkconfig, ...(o.devices ?? [])], grub))) o.log('grub: kept as the last deploy installed it (same GRUB, kernels, boot configuration and devices)');
  if (o.esp) {
    if (!fs.existsSync('/sys/firmware/efi')) warnings.push('this node did not boot through EFI: no EFI entry written (the firmware finds \\EFI\\BOOT\\BOOTX64.EFI)');
    else if (!haveTool('efibootmgr')) warnings.push('efibootmgr is not on this node: no EFI entry written (the firmware finds \\EFI\\BOOT\\BOOTX64.EFI)');
    else if (!o.esp.disk) warnings.push('the ESP\'s disk is not known: no EFI entry written');
    else await setEfiEntry({ disk: o.esp.disk, partition: o.esp.partition, label: o.label, log: o.log });
  }
  return warnings;
}
