/** gc: drop chunks no image references; repack packs more than 5% dead. */
import type { CAC } from 'cac';
import { collectGarbage } from '../../core/tree/images.ts';
import { formatBytes } from '../progress.ts';
import { withStoreArg } from '../store-arg.ts';

export function register(cli: CAC): void {
  cli
    .command('gc', 'Free the space of chunks no image revision references')
    .option('--store <dir>', 'Local image store directory')
    .option('--json', 'Print JSON')
    .action(async (o: { store?: string; json?: boolean }) => {
      await withStoreArg(o.store, async (store) => {
        const r = await collectGarbage(store);
        if (o.json) process.stdout.write(JSON.stringify(r, null, 2) + '\n');
        else process.stdout.write(`gc: ${r.liveChunks} live chunks; deleted ${r.deletedChunks} chunks, repacked ${r.repackedPacks} and deleted ${r.deletedPacks} packs, freed ${formatBytes(r.freedBytes)}\n`);
      });
    });
}
