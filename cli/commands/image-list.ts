/** image-list: every image with its revisions, last update, logical size, the stored bytes only it uses, and its layout. */
import type { CAC } from 'cac';
import { backendOptions, withBackend } from '../backend.ts';
import { formatBytes } from '../progress.ts';

export function register(cli: CAC): void {
  backendOptions(cli.command('image-list', 'List the images of a store'))
    .option('--json', 'Print JSON')
    .action(async (o: { store?: string; json?: boolean }) => {
      await withBackend(o, async (backend) => {
        const [usageRows, images] = await Promise.all([backend.usage(), backend.listImages()]);
        const usage = new Map(usageRows.map((u) => [u.name, u]));
        const rows = images.map((img) => {
          const last = img.revisions.at(-1);
          const use = usage.get(img.name);
          return { name: img.name, revisions: img.revisions.length, updated: last?.created ?? img.created, bytes: last?.stats.bytes ?? 0, files: last?.stats.files ?? 0, uniqueStoredBytes: use?.uniqueBytes ?? 0, storedBytes: use?.totalBytes ?? 0, layout: last?.layout ?? null };
        });
        if (o.json) {
          process.stdout.write(JSON.stringify(rows, null, 2) + '\n');
          return;
        }
        process.stdout.write(`${'IMAGE'.padEnd(24)} ${'REVS'.padStart(4)}  ${'UPDATED'.padEnd(24)} ${'FILES'.padStart(9)} ${'SIZE'.padStart(10)} ${'UNIQUE'.padStart(10)}  LAYOUT\n`);
        for (const r of rows) {
          process.stdout.write(`${r.name.padEnd(24)} ${String(r.revisions).padStart(4)}  ${r.updated.padEnd(24)} ${String(r.files).padStart(9)} ${formatBytes(r.bytes).padStart(10)} ${formatBytes(r.uniqueStoredBytes).padStart(10)}  ${r.layout ?? '-'}\n`);
        }
      });
    });
}
