/**
 * disklayout-rollback (beyond cv-cloner, named after image-rollback): make an earlier
 * version of a disk layout the latest again, as a new version with its content; images
 * and nodes that use the layout get it at their next deploy.
 */
import type { CAC } from 'cac';
import { backendOptions, withBackend, type BackendArgs } from '../backend.ts';
import { UsageError } from '../errors.ts';

/** A --layout-version value: a version number. */
export function layoutVersionArg(value: string | undefined): number {
  const n = Number(value);
  if (value === undefined || !(Number.isInteger(n) && n > 0)) throw new UsageError(value === undefined ? '--layout-version is required' : `bad --layout-version ${value}`, 'give a version number, e.g. --layout-version 2 (see them with: cloner disklayout --json)');
  return n;
}

export function register(cli: CAC): void {
  backendOptions(cli.command('disklayout-rollback', 'Make an earlier version of a disk layout the latest again'))
    .option('--disklayout <name>', 'Disk layout name')
    // Not --version: cac's global --version (the program's) would take it.
    .option('--layout-version <n>', 'The version to go back to')
    .option('--json', 'Print the result as JSON')
    .action(async (o: BackendArgs & { disklayout?: string; layoutVersion?: string; json?: boolean }) => {
      if (!o.disklayout) throw new UsageError('--disklayout is required', 'list layouts with: cloner disklayout');
      const version = layoutVersionArg(o.layoutVersion);
      await withBackend(o, async (backend) => {
        const r = await backend.rollbackLayout(String(o.disklayout), version);
        process.stdout.write(o.json ? `${JSON.stringify(r, null, 2)}\n` : `disk layout ${r.name} version ${r.version} = version ${r.from} (now the latest)\n`);
      });
    });
}
