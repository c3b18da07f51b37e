/** verify: re-read every chunk and every image's references. */
import type { CAC } from 'cac';
import { listImages, treeChunkIds } from '../../core/tree/images.ts';
import { withStoreArg } from '../store-arg.ts';

export function register(cli: CAC): void {
  cli
    .command('verify', 'Check every stored chunk (BLAKE3) and that every image is complete')
    .option('--store <dir>', 'Local image store directory')
    .option('--json', 'Print JSON')
    .action(async (o: { store?: string; json?: boolean }) => {
      await withStoreArg(o.store, async (store) => {
        const report = await store.verify();
        const incomplete: Array<{ image: string; revision: number; missing: number; error?: string }> = [];
        for (const image of await listImages(store)) {
          for (const rev of image.revisions) {
            try {
              const ids = [...(await treeChunkIds(store, rev.tree))];
              const present = await store.hasMany(ids);
              const missing = present.filter((p) => !p).length;
              if (missing) incomplete.push({ image: image.name, revision: rev.n, missing });
            } catch (err) {
              incomplete.push({ image: image.name, revision: rev.n, missing: -1, error: (err as Error).message });
            }
          }
        }
        const ok = report.missing.length === 0 && report.corrupt.length === 0 && incomplete.length === 0;
        if (o.json) process.stdout.write(JSON.stringify({ ok, ...report, incomplete }, null, 2) + '\n');
        else {
          process.stdout.write(`checked ${report.checked} chunks: ${report.missing.length} missing, ${report.corrupt.length} corrupt\n`);
          for (const id of report.missing) process.stdout.write(`missing ${id}\n`);
          for (const id of report.corrupt) process.stdout.write(`corrupt ${id}\n`);
          for (const i of incomplete) process.stdout.write(`image ${i.image} revision ${i.revision} is incomplete: ${i.error ?? `${i.missing} chunks missing`}\n`);
        }
        if (!ok) process.exitCode = 3;
      });
    });
}
