/**
 * Prune and repack: drops every indexed chunk that is neither live nor guarded, then
 * reclaims the space. Per pack (every pack the index names, and every pack file on disk,
 * so unindexed packs a crash left behind go too):
 *   1. the dead chunks' index entries are deleted (one synced batch);
 *   2. a pack with no live chunk is deleted;
 *   3. a pack whose live records fill under 95% of the file is repacked: its live chunks
 *      are copied, still encoded, into a new pack written durably and indexed, and only
 *      then is the old pack deleted. A crash in between leaves the chunk in two packs,
 *      never in none.
 * Dead packs are deleted in a first pass and repacks done in a second, so a full disk gets
 * space back before any new pack is written; a repack that does not fit is skipped.
 * The caller runs this under the store's exclusive gate (no put or has interleaves) after
 * flushing the pack writer; reads may still run and retry a pack that disappears.
 */
import * as fs from 'node:fs/promises';
import type { ChunkId } from './chunk-id.ts';
import { StoreFullError } from './errors.ts';
import { REPACK_MARGIN } from './space.ts';
import type { PruneReport } from './interfaces.ts';
import type { Located, LocationIndex } from './location-index.ts';
import { PACK_MAGIC, RECORD_HEADER_BYTES } from './pack.ts';
import type { PackReader } from './pack-reader.ts';
import { OpenPack, type PackWriter } from './pack-writer.ts';
import { listPacks, packPath, type PackId } from './store-dir.ts';

/** Repack a pack once more than this share of its bytes is dead. */
const REPACK_LIVE_SHARE = 0.95;

export interface PruneParts {
  dir: string;
  index: LocationIndex;
  reader: Pick<PackReader, 'drop'>;
  writer: Pick<PackWriter, 'writeAndIndex'>;
}

/**
 * Drops every chunk for which `keep(id)` is false (see the module comment). Returns what
 * was deleted and freed (bytes of pack files). Throws fs or LevelDB errors as they come;
 * whatever finished before is consistent.
 */
export async function prunePacks(parts: PruneParts, keep: (id: ChunkId) => boolean): Promise<PruneReport> {
  const { dir, index, reader } = parts;
  const report: PruneReport = { deletedChunks: 0, repackedPacks: 0, deletedPacks: 0, freedBytes: 0 };
  const byPack = await index.byPack();
  for (const pack of await listPacks(dir)) if (!byPack.has(pack)) byPack.set(pack, []);
  // Pass 1 only deletes (index entries, then dead packs), so on a full disk it frees space
  // before pass 2 needs any for new packs.
  const toRepack: Array<{ pack: PackId; live: Located[]; liveBytes: number; freed: number }> = [];
  for (const [pack, entries] of byPack) {
    const live = entries.filter((e) => keep(e.id));
    const liveSet = new Set(live);
    const dead = entries.filter((e) => !liveSet.has(e));
    if (dead.length) {
      await index.delete(dead.map((e) => e.id));
      report.deletedChunks += dead.length;
    }
    let fileSize = 0;
    try {
      fileSize = (await fs.stat(packPath(dir, pack))).size;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      continue;
    }
    const liveBytes = live.reduce((sum, e) => sum + RECORD_HEADER_BYTES + e.loc.storedLength, PACK_MAGIC.length);
    if (live.length === 0) {
      await reader.drop(pack);
      report.deletedPacks++;
      report.freedBytes += fileSize;
    } else if (liveBytes < fileSize * REPACK_LIVE_SHARE) {
      toRepack.push({ pack, live, liveBytes, freed: fileSize - liveBytes });
    }
  }
  // Pass 2: repacks, the smallest live part first (it needs the least room, and each one
  // done frees room for the next). One that does not fit (StoreFullError) and every later
  // one is left for a later gc: the old packs stay whole and indexed.
  toRepack.sort((a, b) => a.liveBytes - b.liveBytes);
  for (const [i, { pack, live, freed }] of toRepack.entries()) {
    try {
      await repack(parts, pack, live);
    } catch (err) {
      if (!(err instanceof StoreFullError)) throw err;
      report.skippedRepacks = toRepack.length - i;
      break;
    }
    report.repackedPacks++;
    report.freedBytes += freed;
  }
  return report;
}

/** Copies the `live` chunks of `oldPack` into a new durable, indexed pack, then deletes the old one. */
async function repack({ dir, reader, writer }: PruneParts, oldPack: PackId, live: Located[]): Promise<void> {
  const bytes = await fs.readFile(packPath(dir, oldPack));
  const fresh = new OpenPack();
  for (const { id, loc } of live) {
    fresh.append({ id, codec: loc.codec, rawLength: loc.rawLength, data: bytes.subarray(loc.offset, loc.offset + loc.storedLength) });
  }
  await writer.writeAndIndex(fresh, REPACK_MARGIN);
  await reader.drop(oldPack);
}
