/**
 * disklayout-delete (beyond cv-cloner): delete one version of a disk layout; the version
 * before it becomes the latest when it was the latest. Deleting the only version deletes
 * the layout, refused while an image's latest revision or a node uses it. Says what it
 * removes and asks first, unless --yes; the stored object is freed by the next gc.
 */
import type { CAC } from 'cac';
import { backendOptions, withBackend, type BackendArgs } from '../backend.ts';
import { confirm } from '../confirm.ts';
import { UsageError } from '../errors.ts';
import { layoutVersionArg } from './disklayout-rollback.ts';

export function register(cli: CAC): void {
  backendOptions(cli.command('disklayout-delete', 'Delete a version of a disk layout (the one before becomes the latest); asks first'))
    .option('--disklayout <name>', 'Disk layout name')
    // Not --version: cac's global --version (the program's) would take it.
    .option('--layout-version <n>', 'The version to delete')
    .option('--yes', 'Do not ask')
    .option('--json', 'Print the result as JSON')
    .action(async (o: BackendArgs & { disklayout?: string; layoutVersion?: string; yes?: boolean; json?: boolean }) => {
      if (!o.disklayout) throw new UsageError('--disklayout is required', 'list layouts with: cloner disklayout');
      const version = layoutVersionArg(o.layoutVersion);
      const name = String(o.disklayout);
      await withBackend(o, async (backend) => {
        const stored = await backend.loadLayout(name, version);
        const count = (await backend.listLayouts()).find((l) => l.name === name)?.versions ?? 0;
        const latest = (await backend.loadLayout(name)).version;
        const after = count === 1 ? 'the layout goes with it' : version === latest ? 'the version before it becomes the latest' : 'the latest stays';
        if (!o.json) process.stdout.write(`disk layout ${name} version ${version} (stored ${stored.created}, ${stored.layout.disks.length} disk(s)): ${after}\n`);
        if (!(await confirm(`Delete disk layout ${name} version ${version}?`, o.yes))) {
          process.stdout.write('nothing deleted\n');
          return;
        }
        const r = await backend.deleteLayoutVersion(name, version);
        process.stdout.write(o.json ? `${JSON.stringify(r, null, 2)}\n` : `deleted disk layout ${r.name} version ${r.deleted}; ${r.latest === null ? 'no version is left' : `latest is version ${r.latest}`}; run gc to free its space\n`);
      });
    });
}
