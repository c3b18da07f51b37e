/**
 * EFI boot entries of an installed system, through efibootmgr: read them, and replace the
 * entries of earlier systems with one for this system's loader (used by the agent's
 * bootloader phase and by `cloner fix-efiboot` on an installed node).
 *
 * Rule: every entry that loads a file from a disk partition (HD(...)/File(...), an
 * installed OS) or carries our label goes; firmware entries (network boot, the shell,
 * removable media) stay; one new entry for the loader on the ESP comes first in BootOrder.
 * `fixEfiBoot` finds the ESP mounted at ROOT/boot/efi and its loader (\EFI\<dir>\shimx64.efi
 * or grubx64.efi, the removable \EFI\BOOT path last); its label is the one the deploy
 * recorded in NODE_STATE_FILE.
 */
import * as fs from 'node:fs';
import path from 'node:path';
import { ClonerError } from '../errors.ts';
import { run } from '../tools.ts';
import { NODE_STATE_DIR } from '../tree/select.ts';

export const EFI_LOADER_DIR = 'cloner';
/** The record of the last deploy on a node, under its root. */
export const NODE_STATE_FILE = `${NODE_STATE_DIR.slice(1)}/deployed.json`;

export class BootError extends ClonerError {
  override readonly code = 'BOOT_FAILED';
}

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
