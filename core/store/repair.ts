/**
 * Index repair: rebuilds the location index from the packs alone, as restic's
 * `repair index` does. Every pack file is read and scanned (pack.ts `scanPack`, which
 * skips past damaged records); each record whose data decodes to its id is indexed at
 * its place, in one synced batch per pack. Records that fail are left out and their
 * pack is reported damaged. The refs (image records) in the same LevelDB are not
 * touched: they cannot be derived from the packs.
 *
 * When the LevelDB itself cannot be opened (damaged files), `repairLevelDb` runs
 * LevelDB's own repair first, which salvages what its log and table files still hold;
 * the location index is then rebuilt from the packs anyway.
 */
import { ClassicLevel } from 'classic-level';
import * as fs from 'node:fs/promises';
import { verifyChunk } from './codec.ts';
import type { Located, LocationIndex } from './location-index.ts';
import { scanPack } from './pack.ts';
import { indexPath, listPacks, packPath, type PackId } from './store-dir.ts';

export interface RebuildReport {
  /** Pack files read. */
  packs: number;
  /** Chunks indexed. */
  chunks: number;
  /** Packs with a bad magic, damaged records, a torn tail or data that does not hash to its id. */
  damagedPacks: PackId[];
}

/**
 * Clears `index` and refills it from every pack under `dir` (see the module comment).
 * The caller holds the store exclusively. Reads one pack into memory at a time; throws
 * fs or LevelDB errors as they come (the index is then partial: run it again).
 */
export async function rebuildLocations(dir: string, index: LocationIndex): Promise<RebuildReport> {
  await index.clear();
  const result: RebuildReport = { packs: 0, chunks: 0, damagedPacks: [] };
  for (const pack of await listPacks(dir)) {
    const bytes = await fs.readFile(packPath(dir, pack));
    const { records, cleanEnd } = scanPack(bytes);
    let damaged = !cleanEnd;
    const entries: Located[] = [];
    for (const r of records) {
      try {
        verifyChunk({ id: r.id, codec: r.codec, rawLength: r.rawLength, data: bytes.subarray(r.dataOffset, r.dataOffset + r.storedLength) });
      } catch {
        damaged = true;
        continue;
      }
      entries.push({ id: r.id, loc: { pack, offset: r.dataOffset, storedLength: r.storedLength, rawLength: r.rawLength, codec: r.codec } });
    }
    await index.put(entries);
    if (damaged) result.damagedPacks.push(pack);
    result.packs++;
    result.chunks += entries.length;
  }
  return result;
}

/**
 * Runs LevelDB's repair (RepairDB) on the index of the store at `dir`: it rewrites the
 * index from whatever log and table files are still readable. The store must not be open.
 */
export async function repairLevelDb(dir: string): Promise<void> {
  await ClassicLevel.repair(indexPath(dir));
}
