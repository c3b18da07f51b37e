/**
 * Reading chunks out of packs, with a cache of open pack file handles.
 *
 * `getMany` looks every id up, sorts the locations by pack and offset, and reads
 * neighbouring chunks with one read per run (up to 8 MiB, bridging gaps under 64 KiB),
 * so a restore of many small files costs one read per stretch of a pack, not one per
 * chunk. `locate` + `readInOrder` serve a fetch that must answer in the order asked: the
 * locations come from batched multi-gets (one lookup an id, which also tells what is
 * missing), then the asked list is cut into windows of about WINDOW_BYTES of data; each
 * window is read with the same coalesced runs into one buffer, reused from window to
 * window, and handed out in the asked order: a request of any length holds about one
 * window in memory and reads a GB without allocating a GB (less GC). Reads do not take the store's
 * gate: a concurrent repack may move a chunk and delete its old pack, so a read that meets
 * ENOENT (or a short pack) looks that chunk up once more, on its own.
 *
 * Handles are cached (at most 64 open); one is closed only when no read is using it, so
 * a descriptor is never closed under a read (and reused by another open) while in use.
 */
import * as fs from 'node:fs/promises';
import { readCachedFirst } from '../native/fsx.ts';
import type { ChunkId } from './chunk-id.ts';
import { decodeChunk, type EncodedChunk } from './codec.ts';
import { ChunkCorruptError, ChunkMissingError } from './errors.ts';
import type { Located, Location, LocationIndex } from './location-index.ts';
import { packPath, type PackId } from './store-dir.ts';

const MAX_OPEN_HANDLES = 64;
const LOOKUP_BATCH = 4096;
const MAX_RUN = 8 * 1024 * 1024;
const MAX_GAP = 64 * 1024;
/** Data bytes `readInOrder` reads and yields at a time (a single larger chunk is a window of its own). */
const WINDOW_BYTES = 1024 * 1024;

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
    const found = await this.locate(ids);
    const located = found.map((loc, i) => {
      if (loc === undefined) throw new ChunkMissingError(ids[i]);
      return { id: ids[i], loc };
    });
    located.sort(byPackOffset);
    for (const { from, to, pack, start, end } of spans(located)) {
      const read = await this.readRun(pack, start, Buffer.allocUnsafe(end - start));
      for (let k = from; k < to; k++) {
        const { id, loc } = located[k];
        // null: the pack moved (repack) or is short: a single, re-located read.
        if (read === null) yield [id, await this.get(id)];
        else yield [id, decodeChunk({ id, codec: loc.codec, rawLength: loc.rawLength, data: read.slice(loc) })];
      }
    }
  }

  /** The location of each of `ids` in the order asked (undefined: not indexed), by batched multi-gets. */
  async locate(ids: readonly ChunkId[]): Promise<Array<Location | undefined>> {
    if (ids.length <= LOOKUP_BATCH) return this.index.getMany(ids);
    const out: Array<Location | undefined> = [];
    for (let i = 0; i < ids.length; i += LOOKUP_BATCH) out.push(...(await this.index.getMany(ids.slice(i, i + LOOKUP_BATCH))));
    return out;
  }

  /**
   * The stored forms (not decoded) of `located`, in the order given, duplicates repeated,
   * as arrays of about `windowBytes` of data each (see the module comment). The data of an
   * array are views of one buffer reused from array to array: they hold until the next
   * array is asked for (copy what must outlive that). A chunk whose pack is gone by the
   * time it is read is looked up again (ChunkMissingError when it is gone for good,
   * ChunkCorruptError when its pack is short).
   */
  async *readInOrder(located: readonly Located[], windowBytes = WINDOW_BYTES): AsyncGenerator<EncodedChunk[]> {
    let scratch = Buffer.alloc(0);
    for (let at = 0; at < located.length; ) {
      let end = at;
      for (let bytes = 0; end < located.length && (end === at || bytes + located[end].loc.storedLength <= windowBytes); end++) bytes += located[end].loc.storedLength;
      const window = located.slice(at, end).map((l, position) => ({ ...l, position }));
      window.sort(byPackOffset);
      const runs = [...spans(window)];
      const total = runs.reduce((sum, r) => sum + r.end - r.start, 0);
      if (scratch.length < total) scratch = Buffer.allocUnsafeSlow(total);
      const out = new Array<EncodedChunk>(window.length);
      let into = 0;
      for (const { from, to, pack, start, end } of runs) {
        const read = await this.readRun(pack, start, scratch.subarray(into, into + end - start));
        into += end - start;
        for (let k = from; k < to; k++) {
          const { id, loc, position } = window[k];
          out[position] = read === null ? await this.getEncoded(id) : { id, codec: loc.codec, rawLength: loc.rawLength, data: read.slice(loc) };
        }
      }
      yield out;
      at = end;
    }
  }

  /** Reads `into.length` bytes of `pack` from `start` into `into`; null when the pack is gone (ENOENT) or shorter. */
  private async readRun(pack: PackId, start: number, into: Buffer): Promise<RunBytes | null> {
    try {
      // What the page cache holds is copied at once; a read that would wait goes through the thread pool.
      const bytesRead = await this.withPack(pack, async (handle) => {
        let got = 0;
        for (let n = 1; got < into.length && n > 0; got += n) n = await readCachedFirst(handle.fd, into, got, into.length - got, start + got);
        return got;
      });
      return bytesRead === into.length ? new RunBytes(into, start) : null;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      return null;
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

/**
 * Cuts `sorted` (by pack, then offset) into runs of neighbouring chunks, each read with one
 * read: [start, end) of `pack` holds the chunks sorted[from..to).
 */
function* spans(sorted: readonly Located[]): Generator<{ from: number; to: number; pack: PackId; start: number; end: number }> {
  for (let i = 0; i < sorted.length; ) {
    const first = sorted[i].loc;
    let j = i + 1;
    let end = first.offset + first.storedLength;
    while (j < sorted.length) {
      const next = sorted[j].loc;
      if (next.pack !== first.pack || next.offset - end > MAX_GAP || next.offset + next.storedLength - first.offset > MAX_RUN) break;
      end = Math.max(end, next.offset + next.storedLength);
      j++;
    }
    yield { from: i, to: j, pack: first.pack, start: first.offset, end };
    i = j;
  }
}

/** Orders locations by pack, then by offset in the pack. */
function byPackOffset(a: Located, b: Located): number {
  return a.loc.pack < b.loc.pack ? -1 : a.loc.pack > b.loc.pack ? 1 : a.loc.offset - b.loc.offset;
}

/** The bytes of a pack from offset `start`, read in one go. */
class RunBytes {
  private readonly bytes: Buffer;
  private readonly start: number;
  constructor(bytes: Buffer, start: number) {
    this.bytes = bytes;
    this.start = start;
  }
  /** The stored bytes of the chunk at `loc` (a view, no copy). */
  slice(loc: Location): Buffer {
    const at = loc.offset - this.start;
    return this.bytes.subarray(at, at + loc.storedLength);
  }
}
