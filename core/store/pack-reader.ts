/**
 * Reading chunks out of packs, with a cache of open pack file handles.
 *
 * `getMany` looks every id up, sorts the locations by pack and offset, and reads
 * neighbouring chunks with one read per run (up to 8 MiB, bridging gaps under 64 KiB),
 * so a restore of many small files costs one read per stretch of a pack, not one per
 * chunk. Reads do not take the store's gate: a concurrent repack may move a chunk and
 * delete its old pack, so a read that meets ENOENT looks the chunk up once more.
 *
 * Handles are cached (at most 64 open); one is closed only when no read is using it, so
 * a descriptor is never closed under a read (and reused by another open) while in use.
 */
import * as fs from 'node:fs/promises';
import type { ChunkId } from './chunk-id.ts';
import { decodeChunk, type EncodedChunk } from './codec.ts';
import { ChunkCorruptError, ChunkMissingError } from './errors.ts';
import type { Located, LocationIndex } from './location-index.ts';
import { packPath, type PackId } from './store-dir.ts';

const MAX_OPEN_HANDLES = 64;
const LOOKUP_BATCH = 4096;
const MAX_RUN = 8 * 1024 * 1024;
const MAX_GAP = 64 * 1024;

export class PackReader {
  private readonly dir: string;
  private readonly index: LocationIndex;
  private readonly handles = new Map<PackId, { handle: Promise<fs.FileHandle>; users: number }>();

  constructor(dir: string, index: LocationIndex) {
    this.dir = dir;
    this.index = index;
  }

  /**
   * The stored form of chunk `id`, not decoded (its hash is not checked here).
   * Throws ChunkMissingError when it is not indexed or its pack is gone, ChunkCorruptError
   * when the pack is shorter than the index says.
   */
  async getEncoded(id: ChunkId): Promise<EncodedChunk> {
    for (let attempt = 0; ; attempt++) {
      const loc = await this.index.get(id);
      if (!loc) throw new ChunkMissingError(id);
      try {
        const data = Buffer.allocUnsafe(loc.storedLength);
        const { bytesRead } = await this.withPack(loc.pack, (handle) => handle.read(data, 0, loc.storedLength, loc.offset));
        if (bytesRead !== loc.storedLength) throw new ChunkCorruptError(id, `pack ${loc.pack} is truncated`);
        return { id, codec: loc.codec, rawLength: loc.rawLength, data };
      } catch (err) {
        // A concurrent repack may have moved the chunk and removed its old pack: look again once.
        if ((err as NodeJS.ErrnoException).code === 'ENOENT' && attempt === 0) continue;
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new ChunkMissingError(id);
        throw err;
      }
    }
  }

  /** The raw bytes of chunk `id`, checked against its BLAKE3 (ChunkCorruptError otherwise). */
  async get(id: ChunkId): Promise<Buffer> {
    return decodeChunk(await this.getEncoded(id));
  }

  /**
   * Each distinct id of `ids` once, decoded and checked, in pack order. Throws
   * ChunkMissingError (before yielding anything) when one is not indexed.
   */
  async *getMany(ids: readonly ChunkId[]): AsyncIterable<[ChunkId, Buffer]> {
    const located: Located[] = [];
    for (let i = 0; i < ids.length; i += LOOKUP_BATCH) {
      const batch = ids.slice(i, i + LOOKUP_BATCH);
      (await this.index.getMany(batch)).forEach((loc, j) => {
        if (loc === undefined) throw new ChunkMissingError(batch[j]);
        located.push({ id: batch[j], loc });
      });
    }
    located.sort((a, b) => (a.loc.pack < b.loc.pack ? -1 : a.loc.pack > b.loc.pack ? 1 : a.loc.offset - b.loc.offset));
    let i = 0;
    while (i < located.length) {
      const first = located[i].loc;
      let j = i + 1;
      let end = first.offset + first.storedLength;
      while (j < located.length) {
        const next = located[j].loc;
        if (next.pack !== first.pack || next.offset - end > MAX_GAP || next.offset + next.storedLength - first.offset > MAX_RUN) break;
        end = Math.max(end, next.offset + next.storedLength);
        j++;
      }
      let run: Buffer | null = null;
      try {
        const buffer = Buffer.allocUnsafe(end - first.offset);
        const { bytesRead } = await this.withPack(first.pack, (handle) => handle.read(buffer, 0, buffer.length, first.offset));
        run = bytesRead === buffer.length ? buffer : null;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        run = null;
      }
      for (let k = i; k < j; k++) {
        const { id, loc } = located[k];
        if (run === null) {
          // The pack moved (repack) or is short: fall back to a single, re-located read.
          yield [id, await this.get(id)];
          continue;
        }
        const start = loc.offset - first.offset;
        yield [id, decodeChunk({ id, codec: loc.codec, rawLength: loc.rawLength, data: run.subarray(start, start + loc.storedLength) })];
      }
      i = j;
    }
  }

  /** Closes the cached handle of `pack` (if any) and deletes the pack file. */
  async drop(pack: PackId): Promise<void> {
    const slot = this.handles.get(pack);
    this.handles.delete(pack);
    await slot?.handle.then((h) => h.close()).catch(() => undefined);
    await fs.rm(packPath(this.dir, pack), { force: true });
  }

  /** Closes every cached handle. */
  async close(): Promise<void> {
    for (const slot of this.handles.values()) await slot.handle.then((h) => h.close()).catch(() => undefined);
    this.handles.clear();
  }

  /** Runs `read` with an open handle of the pack (see the module comment on the cache). */
  private async withPack<T>(pack: PackId, read: (handle: fs.FileHandle) => Promise<T>): Promise<T> {
    let slot = this.handles.get(pack);
    if (!slot) {
      const opening = fs.open(packPath(this.dir, pack), 'r');
      slot = { handle: opening, users: 0 };
      this.handles.set(pack, slot);
      opening.catch(() => this.handles.get(pack) === slot && this.handles.delete(pack));
    }
    slot.users++;
    try {
      return await read(await slot.handle);
    } finally {
      slot.users--;
      this.evictIdleHandles();
    }
  }

  private evictIdleHandles(): void {
    if (this.handles.size <= MAX_OPEN_HANDLES) return;
    for (const [pack, slot] of this.handles) {
      if (this.handles.size <= MAX_OPEN_HANDLES) break;
      if (slot.users > 0) continue;
      this.handles.delete(pack);
      void slot.handle.then((h) => h.close()).catch(() => undefined);
    }
  }
}
