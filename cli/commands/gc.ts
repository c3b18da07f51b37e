/** gc: drop chunks no image references; repack packs more than 5% dead (on the server, or a local store). */
import type { CAC } from 'cac';
import { backendOptions, withBackend, type BackendArgs } from '../backend.ts';
import { formatBytes } from '../progress.ts';

export function register(cli: CAC): void {
  backendOptions(cli.command('gc', 'Free the space of chunks no image revision references'))
    .option('--json', 'Print JSON')
    .action(async (o: BackendArgs & { json?: boolean }) => {
      await withBackend(o, async (backend) => {
        const r = await backend.gc();
        if (o.json) process.stdout.write(JSON.stringify(r, null, 2) + '\n');
        else process.stdout.write(`gc: ${r.liveChunks} live chunks; deleted ${r.deletedChunks} chunks, repacked ${r.repackedPacks} and deleted ${r.deletedPacks} packs, freed ${formatBytes(r.freedBytes)}${r.keptForUploads?.chunks ? `; kept ${r.keptForUploads.chunks} chunks (${formatBytes(r.keptForUploads.bytes)}) of uploads not yet committed` : ''}\n`);
      });
    });
}
