/**
 * repair-index: rebuild a local store's chunk index from its pack files (like restic's
 * `repair index`); runs LevelDB's own repair first when the index cannot be opened.
 * Local stores only: a server's store is repaired on its host, with the server stopped.
 * Exit 3 when damaged packs were found (their damaged chunks are left out).
 */
import type { CAC } from 'cac';
import { UsageError } from '../errors.ts';

interface RepairIndexArgs {
  store?: string;
  server?: string;
  json?: boolean;
}

export function register(cli: CAC): void {
  cli
    .command('repair-index', 'Rebuild the chunk index of a local store from its pack files')
    .option('--store <dir>', 'The local store directory (stop any cloner-server using it first)')
    .option('--server <server>', 'Not offered: repair-index works on a store directory only')
    .option('--json', 'Print JSON')
    .action(async (o: RepairIndexArgs) => {
      if (o.server) {
        throw new UsageError('repair-index is not offered against a server', 'on the server host, stop cloner-server and run: cloner repair-index --store DATA_DIR/store');
      }
      if (!o.store) throw new UsageError('repair-index needs --store DIR', 'give the store directory, e.g. --store /var/lib/cloner/store (with cloner-server stopped)');
      const { LocalStore } = await import('../../core/store/local.ts');
      const r = await LocalStore.repairIndex(String(o.store));
      if (o.json) process.stdout.write(JSON.stringify(r, null, 2) + '\n');
      else {
        if (r.levelDbRepaired) process.stdout.write('the index could not be opened: LevelDB repair ran first\n');
        process.stdout.write(`repair-index: read ${r.packs} packs, indexed ${r.chunks} chunks; ${r.damagedPacks.length} damaged packs; ${r.images} image records kept\n`);
        for (const pack of r.damagedPacks) process.stdout.write(`damaged pack ${pack}\n`);
        if (r.damagedPacks.length) process.stdout.write('run `cloner verify --store` to list the images that lost chunks\n');
        if (r.images === 0) process.stdout.write('no image records are left in the index: capture the images again (new-image)\n');
      }
      if (r.damagedPacks.length) process.exitCode = 3;
    });
}
