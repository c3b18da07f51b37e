/**
 * Boot entries of a deployed node (the agent's bootloader phase, and `cloner fix-efiboot`
 * on an installed system).
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
 * An image without GRUB is left as it is, with a warning. Returns the warnings.
 */
import * as fs from 'node:fs';
import path from 'node:path';
import type { ApplyPlan } from '../core/layout/apply.ts';
import type { Layout } from '../core/layout/model.ts';
import { run } from '../core/layout/probe.ts';
import { haveTool } from '../core/tools.ts';
import { ClonerError } from '../core/errors.ts';
import { NODE_STATE_DIR } from '../core/tree/capture.ts';

export const EFI_LOADER_DIR = 'cloner';
/** The record of the last deploy on a node, under its root. */
export const NODE_STATE_FILE = `${NODE_STATE_DIR.slice(1)}/deployed.json`;

export class BootError extends ClonerError {
  override readonly code = 'BOOT_FAILED';
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
  log: (line: string) => void;
}

const inTarget = (target: string, ...candidates: string[]) => candidates.find((c) => fs.existsSync(path.join(target, c))) ?? null;

/** Boot entries (efibootmgr -v): number, label, whether active. */
export async function efiEntries(): Promise<Array<{ num: string; label: string; path: string }>> {
  const { stdout } = await run(['efibootmgr', '-v']);
  const out = [];
  for (const line of stdout.split('\n')) {
    const m = /^Boot([0-9A-Fa-f]{4})\*?\s+(.*?)\t(.*)$/.exec(line) ?? /^Boot([0-9A-Fa-f]{4})\*?\s+(\S.*?)\s{2,}(.*)$/.exec(line);
    if (m) out.push({ num: m[1], label: m[2].trim(), path: m[3] });
  }
  return out;
}

/**
 * Replaces the boot entries of earlier systems: every entry that loads a file from a disk
 * partition (HD(...)/File(...), an installed OS) or carries `label` goes; firmware entries
 * (network boot, the shell, removable media) stay. One new entry for `loader` on the ESP
 * then comes first in BootOrder.
 */
export async function setEfiEntry(o: { disk: string; partition: number; label: string; loader?: string; log: (line: string) => void; dryRun?: boolean }): Promise<string[]> {
  const actions: string[] = [];
  for (const entry of await efiEntries()) {
    if (entry.label === o.label || /HD\(.*\/File\(/i.test(entry.path)) {
      actions.push(`remove Boot${entry.num} (${entry.label})`);
      o.log(`removing the EFI entry of an earlier system: Boot${entry.num} (${entry.label})`);
      if (!o.dryRun) await run(['efibootmgr', '-q', '-b', entry.num, '-B']);
    }
  }
  const loader = o.loader ?? `\\EFI\\${EFI_LOADER_DIR}\\grubx64.efi`;
  actions.push(`create "${o.label}": ${o.disk} partition ${o.partition}, ${loader}`);
  o.log(`EFI entry "${o.label}": ${o.disk} partition ${o.partition}, ${loader}`);
  if (!o.dryRun) await run(['efibootmgr', '-q', '-c', '-d', o.disk, '-p', String(o.partition), '-L', o.label, '-l', loader]);
  return actions;
}

/** The disk and partition number of a partition device, from sysfs. */
export function partitionOf(device: string): { disk: string; partition: number } {
  const sys = fs.realpathSync(`/sys/class/block/${path.basename(fs.realpathSync(device))}`);
  return { disk: `/dev/${path.basename(path.dirname(sys))}`, partition: Number(fs.readFileSync(`${sys}/partition`, 'utf8')) };
}

/** What the agent leaves on a deployed node (NODE_STATE_DIR/deployed.json). */
export interface DeployedRecord {
  node: string;
  image: string;
  revision: number;
  efiLabel: string;
  at: string;
}

/**
 * `cloner fix-efiboot`: on an installed system (its root at `root`, / by default), finds
 * the ESP mounted at root/boot/efi, its loader (\EFI\<dir>\shimx64.efi or grubx64.efi,
 * the removable \EFI\BOOT path last) and replaces the boot entries as a deploy does.
 */
export async function fixEfiBoot(o: { root: string; label?: string; log: (line: string) => void; dryRun?: boolean }): Promise<string[]> {
  const root = path.resolve(o.root);
  const espMount = path.join(root, 'boot/efi');
  const mounts = fs.readFileSync('/proc/self/mounts', 'utf8').split('\n').map((l) => l.split(' '));
  const mounted = mounts.find((m) => m[1]?.replace(/\\040/g, ' ') === espMount);
  if (!mounted) throw new BootError(`no EFI system partition is mounted at ${espMount}`, 'mount it (mount /boot/efi) and run again');
  if (!fs.existsSync('/sys/firmware/efi')) throw new BootError('this system did not boot through EFI: its boot entries cannot be changed', 'boot it in UEFI mode');
  const efi = path.join(espMount, 'EFI');
  const dirs = fs.existsSync(efi) ? fs.readdirSync(efi).sort((a, b) => (a.toUpperCase() === 'BOOT' ? 1 : 0) - (b.toUpperCase() === 'BOOT' ? 1 : 0)) : [];
  let loader: string | null = null;
  for (const dir of dirs) {
    for (const file of ['shimx64.efi', 'grubx64.efi', 'BOOTX64.EFI']) {
      if (fs.existsSync(path.join(efi, dir, file))) {
        loader = `\\EFI\\${dir}\\${file}`;
        break;
      }
    }
    if (loader) break;
  }
  if (!loader) throw new BootError(`no boot loader under ${efi}`, 'install one (grub-install --target=x86_64-efi) first');
  let label = o.label;
  if (!label) {
    try {
      label = (JSON.parse(fs.readFileSync(path.join(root, NODE_STATE_FILE), 'utf8')) as DeployedRecord).efiLabel;
    } catch {
      label = 'cloner';
    }
  }
  const { disk, partition } = partitionOf(mounted[0]);
  return setEfiEntry({ disk, partition, label, loader, log: o.log, dryRun: o.dryRun });
}

export async function installBootloader(o: BootOptions): Promise<string[]> {
  const warnings: string[] = [];
  const grubInstall = inTarget(o.target, 'usr/sbin/grub-install', 'sbin/grub-install', 'usr/sbin/grub2-install');
  if (!grubInstall) {
    warnings.push('the image has no grub-install: boot loader left as the image has it');
    return warnings;
  }
  const chroot = (argv: string[]) => run(['chroot', o.target, ...argv]);
  if (o.esp) {
    const efiDir = o.esp.mount;
    const efiTarget = inTarget(o.target, 'usr/lib/grub/x86_64-efi') ? 'x86_64-efi' : null;
    if (!efiTarget) {
      warnings.push('the layout has an EFI system partition but the image has no GRUB EFI modules (grub-efi-amd64-bin): boot loader not installed');
      return warnings;
    }
    o.log(`grub-install (EFI) into ${efiDir}`);
    await chroot([`/${grubInstall}`, '--target=x86_64-efi', `--efi-directory=${efiDir}`, `--bootloader-id=${EFI_LOADER_DIR}`, '--no-nvram']);
    await chroot([`/${grubInstall}`, '--target=x86_64-efi', `--efi-directory=${efiDir}`, '--removable', '--no-nvram']);
    if (!fs.existsSync('/sys/firmware/efi')) warnings.push('this node did not boot through EFI: no EFI entry written (the firmware finds \\EFI\\BOOT\\BOOTX64.EFI)');
    else if (!haveTool('efibootmgr')) warnings.push('efibootmgr is not on this node: no EFI entry written (the firmware finds \\EFI\\BOOT\\BOOTX64.EFI)');
    else if (!o.esp.disk) warnings.push('the ESP\'s disk is not known: no EFI entry written');
    else await setEfiEntry({ disk: o.esp.disk, partition: o.esp.partition, label: o.label, log: o.log });
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
    o.log(`grub-install (BIOS) onto ${disk}`);
    await chroot([`/${grubInstall}`, '--target=i386-pc', disk]);
  }
  const updateGrub = inTarget(o.target, 'usr/sbin/update-grub');
  if (updateGrub) await chroot([`/${updateGrub}`]);
  else await chroot(['grub-mkconfig', '-o', '/boot/grub/grub.cfg']);
  return warnings;
}
