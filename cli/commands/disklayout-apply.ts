/**
 * disklayout-apply (beyond cv-cloner): partition, format and mount a stored layout on this
 * machine's disks, as the agent does during a deploy; --dry-run prints every command and
 * makes the real run's safety checks (a disk in use or read-only, no --force outside the
 * cloner boot environment; no disk that fits, a disk too small, a --disks device that is
 * not there): what would stop the real run is printed first and the exit is non-zero.
 */
import type { CAC } from 'cac';
import { UsageError } from '../errors.ts';
import { ClonerError } from '../../core/errors.ts';

/** A dry run whose real run would refuse (exit 2, like the refusal itself). */
class RefusedError extends ClonerError {
  override readonly code = 'LAYOUT_REFUSED';
}
import { splitList } from '../../core/format.ts';
import { backendOptions, withBackend, type BackendArgs } from '../backend.ts';

interface Options extends BackendArgs {
  disklayout?: string;
  layoutVersion?: string;
  disks?: string;
  excludeDevices?: string;
  target?: string;
  dryRun?: boolean;
  force?: boolean;
  json?: boolean;
}

export function register(cli: CAC): void {
  backendOptions(cli.command('disklayout-apply', 'Partition, format and mount a stored disk layout on this machine (erases the disks)'))
    .option('--disklayout <name>', 'Disk layout name')
    // Not --version: cac's global --version (the program's) would take it.
    .option('--layout-version <n>', 'A version of the layout other than the latest')
    .option('--disks <disks>', 'Only these disks may be used, e.g. /dev/sdb,/dev/sdc (loop devices only this way)')
    .option('--exclude-devices <disks>', 'Never touch these disks')
    .option('--target <dir>', 'Mount the filesystems here')
    .option('--dry-run', 'Print the commands and what would stop the real run; run none (exit 2 when the real run would refuse)')
    .option('--force', 'Allow it outside the cloner boot environment')
    .option('--json', 'Print the result as JSON')
    .action(async (o: Options) => {
      const { applyLayout, formatPlan } = await import('../../core/layout/apply.ts');
      if (!o.disklayout) throw new UsageError('--disklayout is required', 'list layouts with: cloner disklayout');
      const version = o.layoutVersion === undefined ? undefined : Number(o.layoutVersion);
      if (version !== undefined && !(Number.isInteger(version) && version > 0)) throw new UsageError(`bad --layout-version ${o.layoutVersion}`, 'give a version number, e.g. --layout-version 2');
      await withBackend(o, async (backend) => {
        const { layout } = await backend.loadLayout(String(o.disklayout), version);
        const plan = await applyLayout(layout, {
          devices: o.disks ? splitList(o.disks) : undefined,
          exclude: splitList(o.excludeDevices),
          target: o.target,
          dryRun: !!o.dryRun,
          force: !!o.force,
          log: o.json || o.dryRun ? undefined : (line) => process.stdout.write(`${line}\n`),
        });
        if (o.json) process.stdout.write(`${JSON.stringify(plan, null, 2)}\n`);
        else if (o.dryRun) process.stdout.write(formatPlan(plan));
        if (o.dryRun && plan.refusals.length) {
          const [first, ...more] = plan.refusals;
          throw new RefusedError(`the real run would refuse: ${first.message}${more.length ? ` (and ${more.length} more reason${more.length > 1 ? 's' : ''}, listed above)` : ''}`, first.hint);
        }
        if (o.json || o.dryRun) return;
        process.stdout.write(`done: ${plan.disks.map((d) => `${d.id}=${d.device}`).join(', ')}; root ${plan.rootDevice ?? '-'}; EFI system partition ${plan.espDevice ?? '-'}\n${plan.fstab}`);
      });
    });
}
