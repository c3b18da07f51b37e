/**
 * Writing packs. `PackWriter.add` appends an encoded chunk to the open batch in memory.
 * The batch is sealed when it reaches the target size, when `flush()` is called, or
 * `commitDelayMs` after its first chunk. The first seal of a pack writes it to tmp/,
 * fsyncs it, renames it into packs/ and fsyncs the directory; while that pack is under
 * the target size, the next seals append their records to its end (write, fsync, through
 * the handle it was written with, kept open until the pack ends), so
 * packs fill across batches and uploads instead of one small pack per batch. Either way
 * all of a batch's index entries are committed in one synced LevelDB batch only after
 * its bytes are durable; each `add` resolves after that. A chunk is therefore never
 * visible (has/get) before its bytes are durable, and a crash at any moment leaves at
 * worst an unindexed pack or an unindexed tail after a pack's indexed records (garbage
 * for prune; repair's scan reports such a torn tail), or a tmp file (removed on open).
 * A failed append ends that pack (the next batch starts a new one), and `flush()` ends
 * it too: prune and repair, which flush first, never see a pack still growing, and the
 * server flushes at each revision commit, so a pack holds one upload's chunks (deleting
 * an image frees whole packs). Seals run one at a time, in order. A pack is written only
 * when the disk keeps the index's headroom after it (space.ts); otherwise its adds fail
 * with StoreFullError.
 */
import { randomBytes } from 'node:crypto';
import { constants as fsc } from 'node:fs';
import * as fs from 'node:fs/promises';
import path from 'node:path';
import type { ChunkId } from './chunk-id.ts';
import type { EncodedChunk } from './codec.ts';
import { SerialQueue } from './gate.ts';
import type { Located, LocationIndex } from './location-index.ts';
import { PACK_MAGIC, RECORD_HEADER_BYTES, recordHeader } from './pack.ts';
import { ensureRoom, isNoSpace, spaceOf, storeFull } from './space.ts';
import { fsyncDir, packPath, type PackId } from './store-dir.ts';

/** A pack being filled in memory: its bytes as parts, and the index entries they make. */
export class OpenPack {
  id: PackId = randomBytes(8).toString('hex');
  parts: Buffer[] = [PACK_MAGIC];
  readonly entries: Located[] = [];
  size = PACK_MAGIC.length;
  timer: NodeJS.Timeout | null = null;
  readonly committed: Promise<void>;
  resolve!: () => void;
  reject!: (err: Error) => void;
  constructor() {
    this.committed = new Promise<void>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    // A failed commit is reported through each add's promise; never leave it unhandled here.
    this.committed.catch(() => undefined);
  }
  append(chunk: EncodedChunk): void {
    const header = recordHeader(chunk);
    const offset = this.size + RECORD_HEADER_BYTES;
    this.parts.push(header, chunk.data);
    this.size = offset + chunk.data.length;
    this.entries.push({
      id: chunk.id,
      loc: { pack: this.id, offset, storedLength: chunk.data.length, rawLength: chunk.rawLength, codec: chunk.codec },
    });
  }
  /** Makes these records a continuation of pack `id`, whose file is `base` bytes long (no magic, offsets moved). */
  continueAt(id: PackId, base: number): void {
    const shift = base - PACK_MAGIC.length;
    this.id = id;
    this.parts = this.parts.slice(1);
    this.size += shift;
    for (const e of this.entries) {
      e.loc.pack = id;
      e.loc.offset += shift;
    }
  }
}

/**
 * Appends `parts` to pack `packId`, whose file must be `base` bytes long: every byte
 * written, fsync. On failure the file is cut back to `base` (best effort: what is past
 * it is never indexed either way) and the error passes as in writePackFile. With `open`,
 * the handle the pack was written through and kept by its only writer (PackWriter's
 * growing pack): used as it is, its size taken as known, left open; otherwise the file is
 * opened, its size checked, and closed.
 */
export async function appendPackFile(dir: string, packId: PackId, base: number, parts: Buffer[], open?: fs.FileHandle): Promise<void> {
  const total = parts.reduce((sum, p) => sum + p.length, 0);
  const handle = open ?? (await fs.open(packPath(dir, packId), fsc.O_WRONLY));
  try {
    if (!open) {
      const { size } = await handle.stat();
      if (size !== base) throw Object.assign(new Error(`pack ${packId} is ${size} bytes on disk, ${base} expected`), { code: 'EIO' });
    }
    await writeAll(handle, parts, total, base);
    await handle.sync();
  } catch (err) {
    await handle.truncate(base).catch(() => undefined);
    if (isNoSpace(err)) throw storeFull(dir, (await spaceOf(dir)).free, total, err);
    throw err;
  } finally {
    if (!open) await handle.close();
  }
}

/**
 * Writes a whole pack durably: a new file in tmp/ (exclusive create, mode 0600), every
 * byte written (a short write is continued, a write that makes no progress is an error),
 * its size checked, fsync, rename to packs/ab/<id>.pack (creating and fsyncing the fan-out
 * directory when new), fsync the fan-out directory. On any failure the tmp file is removed
 * and nothing is renamed; ENOSPC/EDQUOT become StoreFullError, other fs errors (EEXIST on
 * an id clash...) pass as they are. With `keepOpen`, the handle (write-only) is not closed
 * but returned, for appends (the rename does not change the file it writes to).
 */
export async function writePackFile(dir: string, packId: PackId, parts: Buffer[], keepOpen = false): Promise<fs.FileHandle | undefined> {
  const tmp = path.join(dir, 'tmp', `${packId}.pack`);
  const fanout = path.join(dir, 'packs', packId.slice(0, 2));
  const total = parts.reduce((sum, p) => sum + p.length, 0);
  const handle = await fs.open(tmp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, 0o600);
  try {
    try {
      await writeAll(handle, parts, total);
      const { size } = await handle.stat();
      if (size !== total) throw Object.assign(new Error(`pack ${packId} is ${size} bytes on disk, ${total} written`), { code: 'EIO' });
      await handle.sync();
    } finally {
      if (!keepOpen) await handle.close();
    }
  } catch (err) {
    if (keepOpen) await handle.close();
    await fs.rm(tmp, { force: true });
    if (isNoSpace(err)) throw storeFull(dir, (await spaceOf(dir)).free, total, err);
    throw err;
  }
  try {
    try {
      await fs.mkdir(fanout, { mode: 0o700 });
      await fsyncDir(path.join(dir, 'packs'));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    await fs.rename(tmp, packPath(dir, packId));
    await fsyncDir(fanout);
  } catch (err) {
    if (keepOpen) await handle.close();
    throw err;
  }
  return keepOpen ? handle : undefined;
}

/**
 * Writes every byte of `parts` from offset 0. writev may write less than asked (a disk
 * filling up mid-call); the rest is written again from where it stopped, so a short count
 * is never mistaken for the whole, and the ENOSPC of the next call surfaces.
 */
async function writeAll(handle: fs.FileHandle, parts: Buffer[], total: number, start = 0): Promise<void> {
  let pending = parts;
  let position = start;
  while (position < start + total) {
    const { bytesWritten } = await handle.writev(pending, position);
    if (bytesWritten <= 0) throw Object.assign(new Error('write made no progress'), { code: 'ENOSPC' });
    position += bytesWritten;
    let skip = bytesWritten;
    let i = 0;
    while (i < pending.length && skip >= pending[i].length) skip -= pending[i++].length;
    pending = pending.slice(i);
    if (skip > 0) pending[0] = pending[0].subarray(skip);
  }
}

export interface PackWriterOptions {
  /** Seal a pack once it holds this many bytes; default 32 MiB. */
  packTargetBytes?: number;
  /** Seal a pack this long after its first chunk; default 50 ms. */
  commitDelayMs?: number;
}

export class PackWriter {
  private readonly dir: string;
  private readonly index: LocationIndex;
  private readonly packTargetBytes: number;
  private readonly commitDelayMs: number;
  private openPack: OpenPack | null = null;
  /** Chunks appended but not yet indexed: a second add of one waits for the first. */
  private readonly pending = new Map<ChunkId, Promise<void>>();
  /** Adds whose encode (in a codec worker) has not resolved yet: a flush waits for them. */
  private readonly encoding = new Set<Promise<void>>();
  private readonly commits = new SerialQueue();
  /**
   * The pack the next seal appends to (its id, durable size, and the handle it was written
   * through, kept open: no open, fstat and close a seal), while under the target size.
   */
  private tail: { id: PackId; size: number; handle: fs.FileHandle } | null = null;

  constructor(dir: string, index: LocationIndex, opts: PackWriterOptions = {}) {
    this.dir = dir;
    this.index = index;
    this.packTargetBytes = opts.packTargetBytes ?? 32 * 1024 * 1024;
    this.commitDelayMs = opts.commitDelayMs ?? 50;
  }

  /**
   * Stores chunk `id` unless it is indexed or being written already; resolves once it is
   * durable and indexed. `encode` is called only when the chunk is really appended; when it
   * is asynchronous (a codec worker), the chunk is appended once it resolves and a second
   * add of the same id waits for the first meanwhile.
   * Rejects with the fs or LevelDB error of a failed seal (nothing of that pack is indexed),
   * or with the error of `encode`.
   */
  async add(id: ChunkId, encode: () => EncodedChunk | Promise<EncodedChunk>): Promise<void> {
    const inFlight = this.pending.get(id);
    if (inFlight) return inFlight;
    if ((await this.index.getSoon(id)) !== undefined) return;
    const raced = this.pending.get(id);
    if (raced) return raced;
    const encoded = encode();
    if (!(encoded instanceof Promise)) return this.append(id, encoded);
    // Two stages: `appended` (what a flush waits for before it seals) and `whole` (durable).
    let committed: Promise<void> | undefined;
    const appended = encoded.then((chunk) => {
      committed = this.append(id, chunk); // from here on, pending holds the pack's promise
    });
    const whole = appended.then(() => committed);
    this.pending.set(id, whole);
    this.encoding.add(appended);
    const done = () => {
      this.encoding.delete(appended);
      if (this.pending.get(id) === whole) this.pending.delete(id);
    };
    appended.then(done, done);
    return whole;
  }

  private append(id: ChunkId, chunk: EncodedChunk): Promise<void> {
    const pack = this.currentPack();
    pack.append(chunk);
    this.pending.set(id, pack.committed);
    if (pack.size >= this.packTargetBytes) this.seal(pack);
    return pack.committed;
  }

  /** Seals the open batch, waits until every seal issued so far has committed (or failed), and ends the growing pack. */
  async flush(): Promise<void> {
    // Chunks still being encoded were added before this flush: they are part of it.
    while (this.encoding.size) await Promise.allSettled([...this.encoding]);
    if (this.openPack) this.seal(this.openPack);
    await this.commits.run(() => this.endTail());
  }

  /** Ends the growing pack: the next seal starts a new one. */
  private async endTail(): Promise<void> {
    const tail = this.tail;
    this.tail = null;
    await tail?.handle.close().catch(() => undefined);
  }

  /**
   * Writes a pack and indexes its entries (the seal path, and repacks, which call it
   * directly, outside the queue, with a small `margin` of free space instead of the headroom).
   */
  async writeAndIndex(pack: OpenPack, margin?: number): Promise<void> {
    await ensureRoom(this.dir, pack.size, margin);
    await writePackFile(this.dir, pack.id, pack.parts);
    await this.indexPut(pack);
  }

  private async indexPut(pack: OpenPack): Promise<void> {
    try {
      await this.index.put(pack.entries);
    } catch (err) {
      // The pack stays: an unindexed pack is garbage for prune, never a lost chunk.
      if (isNoSpace(err)) throw storeFull(this.dir, (await spaceOf(this.dir)).free, pack.size, err);
      throw err;
    }
  }

  private currentPack(): OpenPack {
    if (!this.openPack) {
      const pack = new OpenPack();
      pack.timer = setTimeout(() => this.seal(pack), this.commitDelayMs);
      this.openPack = pack;
    }
    return this.openPack;
  }

  private seal(pack: OpenPack): void {
    if (this.openPack !== pack) return;
    this.openPack = null;
    if (pack.timer) clearTimeout(pack.timer);
    void this.commits.run(async () => {
      const tail = this.tail;
      this.tail = null;
      let handle = tail?.handle;
      try {
        if (tail) {
          pack.continueAt(tail.id, tail.size);
          await ensureRoom(this.dir, pack.size - tail.size);
          await appendPackFile(this.dir, tail.id, tail.size, pack.parts, tail.handle);
        } else {
          await ensureRoom(this.dir, pack.size);
          handle = await writePackFile(this.dir, pack.id, pack.parts, pack.size < this.packTargetBytes);
        }
        await this.indexPut(pack);
        if (pack.size < this.packTargetBytes && handle) {
          this.tail = { id: pack.id, size: pack.size, handle };
          handle = undefined;
        }
        pack.resolve();
      } catch (err) {
        pack.reject(err as Error);
      } finally {
        // Any failure ends the pack (the next batch starts a new one), and a full one ends too.
        await handle?.close().catch(() => undefined);
        for (const e of pack.entries) if (this.pending.get(e.id) === pack.committed) this.pending.delete(e.id);
      }
    });
  }
}
