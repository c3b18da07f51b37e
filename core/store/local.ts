/**
 * The local pack store: chunks LZ4-compressed into append-only pack files, indexed by
 * LevelDB. It is the embedded store of the server and of every local command.
 *
 *   DIR/config.json        format version and chunker parameters (every client cuts alike)
 *   DIR/index/             LevelDB: c/<id 32 bytes> -> location, r/<name> -> ref record
 *   DIR/packs/ab/<id>.pack pack files (see pack.ts), fanned out by the first byte
 *   DIR/tmp/               packs being written
 *
 * Write path: `put` appends the encoded chunk to the open pack in memory. The pack is
 * sealed when it reaches the target size, when `flush()` is called, or `commitDelayMs`
 * after its first chunk. Sealing writes the pack to tmp/, fsyncs it, renames it into
 * packs/, fsyncs the directory, and only then commits all its index entries in one
 * synced LevelDB batch; each `put` resolves after that batch. A chunk is therefore never
 * visible (has/get) before its bytes are durable, and a crash at any moment leaves at
 * worst an unindexed pack (garbage for GC) or a tmp file (removed on open).
 *
 * Read path: `getMany` looks every id up, sorts the locations by pack and offset, and
 * reads neighbouring chunks with one read per run, so a restore of many small files
 * costs one read per stretch of a pack, not one per chunk.
 *
 * GC safety: ids answered present by `has`/`hasMany`, or written by `put`, are added to
 * every open guard (`guard()`); `prune` never drops an id held by a guard. An upload holds
 * a guard until its revision commits; GC holds one from before its mark phase.
 */
import { ClassicLevel } from 'classic-level';
import { randomBytes } from 'node:crypto';
import { constants as fsc } from 'node:fs';
import * as fs from 'node:fs/promises';
import path from 'node:path';
import { DEFAULT_CHUNKER_PARAMS, validateChunkerParams, type ChunkerParams } from '../chunker/fastcdc.ts';
import { assertChunkId, chunkIdOf, type ChunkId } from './chunk-id.ts';
import { decodeChunk, encodeChunk, type Codec, type EncodedChunk } from './codec.ts';
import { ChunkCorruptError, ChunkMissingError, StoreFormatError, StoreLockedError } from './errors.ts';
import { SerialQueue, SharedExclusiveGate } from './gate.ts';
import type { ChunkReader, ChunkWriter, EncodedChunkReader, PrunableStore, PruneReport, RefStore } from './interfaces.ts';
import { PACK_MAGIC, RECORD_HEADER_BYTES, recordHeader, scanPack } from './pack.ts';

export const STORE_FORMAT = 1;

export interface StoreConfig {
  format: number;
  chunker: ChunkerParams;
}

export interface LocalStoreOptions {
  /** Create the store if DIR has none. */
  create?: boolean;
  /** Chunker parameters recorded in a newly created store. */
  chunker?: ChunkerParams;
  packTargetBytes?: number;
  commitDelayMs?: number;
}

interface Location {
  pack: string;
  offset: number;
  storedLength: number;
  rawLength: number;
  codec: Codec;
}

const LOCATION_BYTES = 21;

type IndexOp = { type: 'put'; key: Buffer; value: Buffer } | { type: 'del'; key: Buffer };

function encodeLocation(loc: Location): Buffer {
  const b = Buffer.alloc(LOCATION_BYTES);
  b.write(loc.pack, 0, 8, 'hex');
  b.writeUInt32LE(loc.offset, 8);
  b.writeUInt32LE(loc.storedLength, 12);
  b.writeUInt32LE(loc.rawLength, 16);
  b.writeUInt8(loc.codec, 20);
  return b;
}

function decodeLocation(b: Buffer): Location {
  return {
    pack: b.toString('hex', 0, 8),
    offset: b.readUInt32LE(8),
    storedLength: b.readUInt32LE(12),
    rawLength: b.readUInt32LE(16),
    codec: b.readUInt8(20) as Codec,
  };
}

/** A pack being filled in memory. */
class OpenPack {
  readonly id = randomBytes(8).toString('hex');
  readonly parts: Buffer[] = [PACK_MAGIC];
  readonly entries: Array<{ id: ChunkId; location: Location }> = [];
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
    // A failed commit is reported through each put's promise; never leave it unhandled here.
    this.committed.catch(() => undefined);
  }
  append(chunk: EncodedChunk): void {
    const header = recordHeader(chunk);
    const offset = this.size + RECORD_HEADER_BYTES;
    this.parts.push(header, chunk.data);
    this.size = offset + chunk.data.length;
    this.entries.push({
      id: chunk.id,
      location: { pack: this.id, offset, storedLength: chunk.data.length, rawLength: chunk.rawLength, codec: chunk.codec },
    });
  }
}

/** Ids touched (answered present or written) while it is open. */
export class TouchGuard {
  readonly ids = new Set<ChunkId>();
  private readonly owner: Set<TouchGuard>;
  constructor(owner: Set<TouchGuard>) {
    this.owner = owner;
    owner.add(this);
  }
  has(id: ChunkId): boolean {
    return this.ids.has(id);
  }
  release(): void {
    this.owner.delete(this);
  }
}

export interface VerifyReport {
  checked: number;
  missing: ChunkId[];
  corrupt: ChunkId[];
}

export class LocalStore implements ChunkReader, ChunkWriter, EncodedChunkReader, PrunableStore, RefStore {
  readonly dir: string;
  readonly config: StoreConfig;
  private readonly db: ClassicLevel<string, string>;
  private readonly chunkIndex;
  private readonly refIndex;
  private readonly packTargetBytes: number;
  private readonly commitDelayMs: number;
  private openPack: OpenPack | null = null;
  private readonly pending = new Map<ChunkId, Promise<void>>();
  private readonly commits = new SerialQueue();
  private readonly refLock = new SerialQueue();
  private readonly gate = new SharedExclusiveGate();
  private readonly guards = new Set<TouchGuard>();
  private readonly handles = new Map<string, { handle: Promise<fs.FileHandle>; users: number }>();
  private closed = false;

  private constructor(dir: string, config: StoreConfig, db: ClassicLevel<string, string>, opts: LocalStoreOptions) {
    this.dir = dir;
    this.config = config;
    this.db = db;
    this.chunkIndex = db.sublevel<Buffer, Buffer>('c', { keyEncoding: 'buffer', valueEncoding: 'buffer' });
    this.refIndex = db.sublevel<string, string>('r', { keyEncoding: 'utf8', valueEncoding: 'utf8' });
    this.packTargetBytes = opts.packTargetBytes ?? 32 * 1024 * 1024;
    this.commitDelayMs = opts.commitDelayMs ?? 50;
  }

  static async open(dir: string, opts: LocalStoreOptions = {}): Promise<LocalStore> {
    const configPath = path.join(dir, 'config.json');
    let config: StoreConfig;
    try {
      config = parseConfig(await fs.readFile(configPath, 'utf8'), configPath);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      if (!opts.create) {
        throw new StoreFormatError(`no store at ${dir}`, 'check the path, or create a store with new-image --init');
      }
      config = { format: STORE_FORMAT, chunker: validateChunkerParams({ ...(opts.chunker ?? DEFAULT_CHUNKER_PARAMS) }) };
      await fs.mkdir(path.join(dir, 'packs'), { recursive: true });
      await writeFileDurably(configPath, JSON.stringify(config, null, 2) + '\n');
    }
    await fs.mkdir(path.join(dir, 'packs'), { recursive: true });
    // Packs still in tmp/ were never renamed into place, so nothing points at them.
    await fs.rm(path.join(dir, 'tmp'), { recursive: true, force: true });
    await fs.mkdir(path.join(dir, 'tmp'), { recursive: true });
    const db = new ClassicLevel<string, string>(path.join(dir, 'index'));
    try {
      await db.open();
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      if (cause?.message?.includes('lock') || (err as { code?: string }).code === 'LEVEL_LOCKED') {
        throw new StoreLockedError(`store ${dir} is in use by another process`, 'stop the other cloner-server or command using it, then retry');
      }
      throw err;
    }
    return new LocalStore(dir, config, db, opts);
  }

  // ---- reader -------------------------------------------------------------------------

  async has(id: ChunkId): Promise<boolean> {
    return (await this.hasMany([id]))[0];
  }

  async hasMany(ids: readonly ChunkId[]): Promise<boolean[]> {
    for (const id of ids) assertChunkId(id);
    return this.gate.shared(async () => {
      const found = await this.chunkIndex.getMany(ids.map((id) => Buffer.from(id, 'hex')));
      const answer = found.map((v) => v !== undefined);
      ids.forEach((id, i) => answer[i] && this.touch(id));
      return answer;
    });
  }

  async get(id: ChunkId): Promise<Buffer> {
    return decodeChunk(await this.getEncoded(id));
  }

  async getEncoded(id: ChunkId): Promise<EncodedChunk> {
    assertChunkId(id);
    for (let attempt = 0; ; attempt++) {
      const loc = await this.locate(id);
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

  async *getMany(ids: Iterable<ChunkId>): AsyncIterable<[ChunkId, Buffer]> {
    const unique = [...new Set(ids)];
    unique.forEach(assertChunkId);
    const LOOKUP_BATCH = 4096;
    const located: Array<{ id: ChunkId; loc: Location }> = [];
    for (let i = 0; i < unique.length; i += LOOKUP_BATCH) {
      const batch = unique.slice(i, i + LOOKUP_BATCH);
      const values = await this.chunkIndex.getMany(batch.map((id) => Buffer.from(id, 'hex')));
      values.forEach((v, j) => {
        if (v === undefined) throw new ChunkMissingError(batch[j]);
        located.push({ id: batch[j], loc: decodeLocation(v) });
      });
    }
    located.sort((a, b) => (a.loc.pack < b.loc.pack ? -1 : a.loc.pack > b.loc.pack ? 1 : a.loc.offset - b.loc.offset));
    // Coalesce neighbours of one pack into reads of up to 8 MiB, bridging gaps under 64 KiB.
    const MAX_RUN = 8 * 1024 * 1024;
    const MAX_GAP = 64 * 1024;
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

  // ---- writer -------------------------------------------------------------------------

  /**
   * `knownId` lets an in-process producer that has just hashed the bytes skip a second
   * hash; it must be the BLAKE3 of `data`. Bytes from outside go through `putEncoded`.
   */
  async put(data: Uint8Array, knownId?: ChunkId): Promise<ChunkId> {
    const id = knownId ?? chunkIdOf(data);
    // Copy now: the caller may refill its read buffer before the chunk is encoded.
    const copy = Buffer.from(data);
    return this.store(id, () => encodeChunk(copy, id));
  }

  async putEncoded(chunk: EncodedChunk): Promise<ChunkId> {
    assertChunkId(chunk.id);
    decodeChunk(chunk); // never trust a caller's id: the bytes must hash to it
    return this.store(chunk.id, () => chunk);
  }

  private async store(id: ChunkId, encode: () => EncodedChunk): Promise<ChunkId> {
    this.assertOpen();
    return this.gate.shared(async () => {
      this.touch(id);
      const inFlight = this.pending.get(id);
      if (inFlight) {
        await inFlight;
        return id;
      }
      if ((await this.chunkIndex.get(Buffer.from(id, 'hex'))) !== undefined) return id;
      const raced = this.pending.get(id);
      if (raced) {
        await raced;
        return id;
      }
      const pack = this.currentPack();
      pack.append(encode());
      this.pending.set(id, pack.committed);
      if (pack.size >= this.packTargetBytes) this.seal(pack);
      await pack.committed;
      return id;
    });
  }

  async flush(): Promise<void> {
    if (this.openPack) this.seal(this.openPack);
    await this.commits.run(async () => undefined);
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
      try {
        await this.writePack(pack.id, pack.parts);
        await this.indexBatch(pack.entries.map((e) => ({ type: 'put', key: Buffer.from(e.id, 'hex'), value: encodeLocation(e.location) })));
        pack.resolve();
      } catch (err) {
        pack.reject(err as Error);
      } finally {
        for (const e of pack.entries) if (this.pending.get(e.id) === pack.committed) this.pending.delete(e.id);
      }
    });
  }

  /** tmp file, fsync, rename into packs/, fsync the directory. */
  private async writePack(packId: string, parts: Buffer[]): Promise<void> {
    const tmp = path.join(this.dir, 'tmp', `${packId}.pack`);
    const fanout = path.join(this.dir, 'packs', packId.slice(0, 2));
    const handle = await fs.open(tmp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, 0o644);
    try {
      await handle.writev(parts);
      await handle.sync();
    } finally {
      await handle.close();
    }
    try {
      await fs.mkdir(fanout);
      await fsyncDir(path.join(this.dir, 'packs'));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    await fs.rename(tmp, this.packPath(packId));
    await fsyncDir(fanout);
  }

  // ---- guards, verify, prune, rebuild ----------------------------------------------------

  /** Ids touched from now until `release()` are never pruned. */
  guard(): TouchGuard {
    return new TouchGuard(this.guards);
  }

  private touch(id: ChunkId): void {
    for (const g of this.guards) g.ids.add(id);
  }

  private isGuarded(id: ChunkId): boolean {
    for (const g of this.guards) if (g.has(id)) return true;
    return false;
  }

  /** Every indexed chunk id, in index order. */
  async *ids(): AsyncIterable<ChunkId> {
    for await (const key of this.chunkIndex.keys()) yield key.toString('hex');
  }

  /** Re-reads every indexed chunk pack by pack and checks its BLAKE3. */
  async verify(onProgress?: (checked: number) => void): Promise<VerifyReport> {
    const report: VerifyReport = { checked: 0, missing: [], corrupt: [] };
    const byPack = await this.locationsByPack();
    for (const [pack, entries] of byPack) {
      let bytes: Buffer | null = null;
      try {
        bytes = await fs.readFile(this.packPath(pack));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
      for (const { id, loc } of entries) {
        report.checked++;
        if (!bytes || loc.offset + loc.storedLength > bytes.length) {
          report.missing.push(id);
          continue;
        }
        try {
          decodeChunk({ id, codec: loc.codec, rawLength: loc.rawLength, data: bytes.subarray(loc.offset, loc.offset + loc.storedLength) });
        } catch (err) {
          if (!(err instanceof ChunkCorruptError)) throw err;
          report.corrupt.push(id);
        }
      }
      onProgress?.(report.checked);
    }
    return report;
  }

  private async locationsByPack(): Promise<Map<string, Array<{ id: ChunkId; loc: Location }>>> {
    const byPack = new Map<string, Array<{ id: ChunkId; loc: Location }>>();
    for await (const [key, value] of this.chunkIndex.iterator()) {
      const loc = decodeLocation(value);
      let list = byPack.get(loc.pack);
      if (!list) byPack.set(loc.pack, (list = []));
      list.push({ id: key.toString('hex'), loc });
    }
    return byPack;
  }

  /**
   * Drops every chunk that is neither live nor guarded: index entries first, then packs.
   * A pack with no live chunk is deleted; one whose dead share is over 5% is repacked
   * (live chunks copied to a new durable pack, index updated, then the old pack deleted).
   * Runs under the exclusive gate, so no put or lookup interleaves with the sweep.
   */
  async prune(isLive: (id: ChunkId) => boolean): Promise<PruneReport> {
    await this.flush();
    return this.gate.exclusively(async () => {
      const report: PruneReport = { deletedChunks: 0, repackedPacks: 0, deletedPacks: 0, freedBytes: 0 };
      const byPack = await this.locationsByPack();
      const onDisk = await this.packFiles();
      for (const pack of onDisk) if (!byPack.has(pack)) byPack.set(pack, []);
      for (const [pack, entries] of byPack) {
        const live = entries.filter((e) => isLive(e.id) || this.isGuarded(e.id));
        const liveSet = new Set(live);
        const dead = entries.filter((e) => !liveSet.has(e));
        if (dead.length) {
          await this.indexBatch(dead.map((e) => ({ type: 'del', key: Buffer.from(e.id, 'hex') })));
          report.deletedChunks += dead.length;
        }
        let fileSize = 0;
        try {
          fileSize = (await fs.stat(this.packPath(pack))).size;
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
          continue;
        }
        const liveBytes = live.reduce((sum, e) => sum + RECORD_HEADER_BYTES + e.loc.storedLength, PACK_MAGIC.length);
        if (live.length === 0) {
          await this.dropPack(pack);
          report.deletedPacks++;
          report.freedBytes += fileSize;
        } else if (liveBytes < fileSize * 0.95) {
          await this.repack(pack, live);
          report.repackedPacks++;
          report.freedBytes += fileSize - liveBytes;
        }
      }
      return report;
    });
  }

  private async repack(oldPack: string, live: Array<{ id: ChunkId; loc: Location }>): Promise<void> {
    const bytes = await fs.readFile(this.packPath(oldPack));
    const fresh = new OpenPack();
    for (const { id, loc } of live) {
      fresh.append({ id, codec: loc.codec, rawLength: loc.rawLength, data: bytes.subarray(loc.offset, loc.offset + loc.storedLength) });
    }
    await this.writePack(fresh.id, fresh.parts);
    await this.indexBatch(fresh.entries.map((e) => ({ type: 'put', key: Buffer.from(e.id, 'hex'), value: encodeLocation(e.location) })));
    await this.dropPack(oldPack);
  }

  private async dropPack(pack: string): Promise<void> {
    const slot = this.handles.get(pack);
    this.handles.delete(pack);
    await slot?.handle.then((h) => h.close()).catch(() => undefined);
    await fs.rm(this.packPath(pack), { force: true });
  }

  /** Rebuilds the chunk index from the packs alone (after the index was lost or damaged). */
  async rebuildIndex(): Promise<{ packs: number; chunks: number; damagedPacks: string[] }> {
    await this.flush();
    return this.gate.exclusively(async () => {
      await this.chunkIndex.clear();
      const result = { packs: 0, chunks: 0, damagedPacks: [] as string[] };
      for (const pack of await this.packFiles()) {
        const bytes = await fs.readFile(this.packPath(pack));
        const { records, cleanEnd } = scanPack(bytes);
        if (!cleanEnd) result.damagedPacks.push(pack);
        const ops: IndexOp[] = [];
        for (const r of records) {
          const chunk: EncodedChunk = { id: r.id, codec: r.codec, rawLength: r.rawLength, data: bytes.subarray(r.dataOffset, r.dataOffset + r.storedLength) };
          try {
            decodeChunk(chunk);
          } catch {
            if (!result.damagedPacks.includes(pack)) result.damagedPacks.push(pack);
            continue;
          }
          const loc: Location = { pack, offset: r.dataOffset, storedLength: r.storedLength, rawLength: r.rawLength, codec: r.codec };
          ops.push({ type: 'put', key: Buffer.from(r.id, 'hex'), value: encodeLocation(loc) });
        }
        await this.indexBatch(ops);
        result.packs++;
        result.chunks += ops.length;
      }
      return result;
    });
  }

  async stats(): Promise<{ chunks: number; packs: number; packBytes: number; rawBytes: number }> {
    let chunks = 0;
    let rawBytes = 0;
    for await (const value of this.chunkIndex.values()) {
      chunks++;
      rawBytes += decodeLocation(value).rawLength;
    }
    let packBytes = 0;
    const packs = await this.packFiles();
    for (const p of packs) packBytes += (await fs.stat(this.packPath(p))).size;
    return { chunks, packs: packs.length, packBytes, rawBytes };
  }

  // ---- refs ---------------------------------------------------------------------------

  async getRef(name: string): Promise<string | undefined> {
    return this.refIndex.get(name);
  }

  async casRef(name: string, expected: string | undefined, value: string | undefined): Promise<boolean> {
    this.assertOpen();
    return this.refLock.run(async () => {
      const current = await this.refIndex.get(name);
      if (current !== expected) return false;
      const op = value === undefined ? { type: 'del' as const, key: name } : { type: 'put' as const, key: name, value };
      await this.db.batch([{ ...op, sublevel: this.refIndex } as never], { sync: true });
      return true;
    });
  }

  async listRefs(prefix: string): Promise<Array<[string, string]>> {
    const out: Array<[string, string]> = [];
    for await (const [k, v] of this.refIndex.iterator({ gte: prefix, lt: prefix + '\uffff' })) out.push([k, v]);
    return out;
  }

  /** Runs `work` while no prune can sweep (revision commits check presence inside it). */
  withoutPrune<T>(work: () => Promise<T>): Promise<T> {
    return this.gate.shared(work);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.flush();
    this.closed = true;
    for (const slot of this.handles.values()) await slot.handle.then((h) => h.close()).catch(() => undefined);
    this.handles.clear();
    await this.db.close();
  }

  // ---- helpers ------------------------------------------------------------------------

  /** One synced LevelDB batch on the chunk index: all of it lands, or none. */
  private async indexBatch(ops: IndexOp[]): Promise<void> {
    if (ops.length === 0) return;
    await this.db.batch(ops.map((op) => ({ ...op, sublevel: this.chunkIndex }) as never), { sync: true });
  }

  private assertOpen(): void {
    if (this.closed) throw new StoreFormatError(`store ${this.dir} is closed`);
  }

  /** Bytes each chunk takes in its pack (absent ids are left out). */
  async storedSizes(ids: readonly ChunkId[]): Promise<Map<ChunkId, number>> {
    const out = new Map<ChunkId, number>();
    for (let i = 0; i < ids.length; i += 10_000) {
      const batch = ids.slice(i, i + 10_000);
      const values = await this.chunkIndex.getMany(batch.map((id) => Buffer.from(id, 'hex')));
      values.forEach((v, j) => v !== undefined && out.set(batch[j], decodeLocation(v).storedLength));
    }
    return out;
  }

  private async locate(id: ChunkId): Promise<Location> {
    const value = await this.chunkIndex.get(Buffer.from(id, 'hex'));
    if (value === undefined) throw new ChunkMissingError(id);
    return decodeLocation(value);
  }

  private packPath(pack: string): string {
    return path.join(this.dir, 'packs', pack.slice(0, 2), `${pack}.pack`);
  }

  /**
   * Runs `read` with an open handle of the pack. Handles are cached (at most 64); one is
   * closed only when no read is using it, so a file descriptor is never closed under a
   * read (and reused by another open) while it is in use.
   */
  private async withPack<T>(pack: string, read: (handle: fs.FileHandle) => Promise<T>): Promise<T> {
    let slot = this.handles.get(pack);
    if (!slot) {
      const opening = fs.open(this.packPath(pack), 'r');
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
    if (this.handles.size <= 64) return;
    for (const [pack, slot] of this.handles) {
      if (this.handles.size <= 64) break;
      if (slot.users > 0) continue;
      this.handles.delete(pack);
      void slot.handle.then((h) => h.close()).catch(() => undefined);
    }
  }

  private async packFiles(): Promise<string[]> {
    const out: string[] = [];
    for (const fan of await fs.readdir(path.join(this.dir, 'packs'))) {
      for (const f of await fs.readdir(path.join(this.dir, 'packs', fan))) {
        if (/^[0-9a-f]{16}\.pack$/.test(f)) out.push(f.slice(0, 16));
      }
    }
    return out.sort();
  }
}

function parseConfig(text: string, where: string): StoreConfig {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new StoreFormatError(`${where} is not valid JSON`, 'restore it from a backup; it holds the chunker parameters');
  }
  const cfg = value as StoreConfig;
  if (cfg?.format !== STORE_FORMAT) {
    throw new StoreFormatError(`${where}: unsupported store format ${JSON.stringify(cfg?.format)}`, `this cloner reads format ${STORE_FORMAT}`);
  }
  return { format: cfg.format, chunker: validateChunkerParams(cfg.chunker) };
}

export async function fsyncDir(dir: string): Promise<void> {
  const handle = await fs.open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export async function writeFileDurably(file: string, content: string | Buffer): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  await fs.writeFile(tmp, content, { flush: true });
  await fs.rename(tmp, file);
  await fsyncDir(path.dirname(file));
}
