/** image-list: every image with its revisions, last update and logical size. */
import type { CAC } from 'cac';
import { backendOptions, withBackend } from '../backend.ts';
import { formatBytes } from '../progress.ts';

export function register(cli: CAC): void {
  backendOptions(cli.command('image-list', 'List the images of a store'))
    .option('--json', 'Print JSON')
    .action(async (o: { store?: string; json?: boolean }) => {
      await withBackend(o, async (backend) => {
        const rows = (await backend.listImages()).map((img) => {
          const last = img.revisions.at(-1);
          return { name: img.name, revisions: img.revisions.length, updated: last?.created ?? img.created, bytes: last?.stats.bytes ?? 0, files: last?.stats.files ?? 0, layout: last?.layout ?? null };
        });
        if (o.json) {
          process.stdout.write(JSON.stringify(rows, null, 2) + '\n');
          return;
        }
        process.stdout.write(`${'IMAGE'.padEnd(24)} ${'REVS'.padStart(4)}  ${'UPDATED'.padEnd(24)} ${'FILES'.padStart(9)} ${'SIZE'.padStart(10)}  LAYOUT\n`);
        for (const r of rows) {
          process.stdout.write(`${r.name.padEnd(24)} ${String(r.revisions).padStart(4)}  ${r.updated.padEnd(24)} ${String(r.files).padStart(9)} ${formatBytes(r.bytes).padStart(10)}  ${r.layout ?? '-'}\n`);
        }
      });
    });
}
