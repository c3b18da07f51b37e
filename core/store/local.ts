/**
 * The local pack store: chunks LZ4-compressed into append-only pack files, indexed by
 * LevelDB. It is the embedded store of the server and of every local command.
 *
 * `LocalStore` is a facade over the parts, each in its own module (as restic splits
 * repository, checker, prune and repair):
 *   store-dir.ts       directory layout, config.json, durable writes
 *   location-index.ts  chunk id -> pack location, in LevelDB
 *   refs.ts            named records with compare-and-set, in the same LevelDB
 *   pack-writer.ts     the write path: open pack, seal, fsync, then index
 *   pack-reader.ts     the read path: coalesced reads through a pack handle cache
 *   guard.ts           touch guards that keep ids from prune
 *   checker.ts         verify
 *   prune.ts           prune and repack
 *   repair.ts          index rebuild from the packs
 *   space.ts           free space: headroom kept for the index, the reserve file
 *
 * Concurrency: puts, `hasMany` and `withoutPrune` work take the gate shared; prune and
 * index rebuild take it exclusively, so no put or presence answer interleaves with a
 * sweep. Reads take no gate (see pack-reader.ts).
 */
import type { ClassicLevel } from 'classic-level';
import type { ChunkerParams } from '../chunker/fastcdc.ts';
import * as fs from 'node:fs/promises';
import { assertChunkId, chunkIdOf, type ChunkId } from './chunk-id.ts';
import { verifyStore, type VerifyReport } from './checker.ts';
import { decodeChunk, encodeChunk, inThreadCodec, verifyChunk, type ChunkCodec, type EncodedChunk } from './codec.ts';
import { defaultCodec, ownedCopy } from './codec-pool.ts';
import { StoreFormatError, StoreFullError, StoreIndexDamagedError } from './errors.ts';
import { SharedExclusiveGate } from './gate.ts';
import { Guards, type TouchGuard } from './guard.ts';
import type { ChunkReader, ChunkWriter, EncodedChunkReader, PrunableStore, PruneReport, RefStore } from './interfaces.ts';
import { LocationIndex, openIndexDb, type Located } from './location-index.ts';
import { PackReader } from './pack-reader.ts';
import { PackWriter } from './pack-writer.ts';
import { prunePacks } from './prune.ts';
import { RefIndex } from './refs.ts';
import { rebuildLocations, repairLevelDb, type RebuildReport } from './repair.ts';
import { dropReserve, ensureReserve } from './space.ts';
import { listPacks, packPath, prepareStoreDir, restrictModes, type StoreConfig } from './store-dir.ts';

export { fsyncDir, STORE_FORMAT, writeFileDurably, type StoreConfig } from './store-dir.ts';
export { TouchGuard } from './guard.ts';
export type { VerifyReport } from './checker.ts';
export type { RebuildReport } from './repair.ts';

export interface LocalStoreOptions {
  /** Create the store if DIR has none. */
  create?: boolean;
  /** Chunker parameters recorded in a newly created store. */
  chunker?: ChunkerParams;
  /** Seal a pack once it holds this many bytes; default 32 MiB. */
  packTargetBytes?: number;
  /** Seal a pack this long after its first chunk; default 50 ms. */
  commitDelayMs?: number;
  /** Where `put` compresses: default the process's codec (codec-pool.ts: worker threads from 4 cores up, in-thread below). */
  codec?: ChunkCodec;
}

export interface RepairIndexReport extends RebuildReport {
  /** True when the LevelDB could not be opened and LevelDB's own repair was run first. */
  levelDbRepaired: boolean;
  /** Refs (image records, layouts, attachments, nodes) the index still holds. */
  refs: number;
  /** Of those, image records. */
  images: number;
}

export class LocalStore implements ChunkReader, ChunkWriter, EncodedChunkReader, PrunableStore, RefStore {
  readonly dir: string;
  readonly config: StoreConfig;
  private readonly db: ClassicLevel<string, string>;
  private readonly index: LocationIndex;
  private readonly refs: RefIndex;
  private readonly reader: PackReader;
  private readonly writer: PackWriter;
  private readonly guards = new Guards();
  private readonly gate = new SharedExclusiveGate();
  private epoch = 0;
  private readonly codec: ChunkCodec;
  private closed = false;
  /** What an admin should know about this open (e.g. it used the reserve of a full disk). */
  readonly notices: string[] = [];

  private constructor(dir: string, config: StoreConfig, db: ClassicLevel<string, string>, opts: LocalStoreOptions) {
    this.dir = dir;
    this.config = config;
    this.db = db;
    this.index = new LocationIndex(db);
    this.refs = new RefIndex(db);
    this.reader = new PackReader(dir, this.index);
    this.writer = new PackWriter(dir, this.index, opts);
    this.codec = opts.codec ?? defaultCodec();
  }

  /**
   * Opens the store at `dir` (creating it with `opts.create`). Throws StoreFormatError
   * when there is no store (and no `create`) or its config is bad, StoreLockedError when
   * another process has it open, StoreIndexDamagedError when its LevelDB is damaged
   * (see repairIndex), StoreFullError when its disk is full and no reserve is left to
   * open in. Puts the store's modes right (0700/0600) and writes its reserve file.
   */
  static async open(dir: string, opts: LocalStoreOptions = {}): Promise<LocalStore> {
    const config = await prepareStoreDir(dir, opts);
    const notices: string[] = [];
    let db: ClassicLevel<string, string>;
    try {
      db = await openIndexDb(dir);
    } catch (err) {
      // A full disk: open in the room the reserve file gives back (space.ts), so the
      // server can start and gc can free space.
      if (!(err instanceof StoreFullError) || !(await dropReserve(dir))) throw err;
      db = await openIndexDb(dir);
      notices.push(`the filesystem of ${dir} was full: the store opened in the space of its reserve file; uploads are refused until space is freed (cloner image-delete, then cloner gc)`);
    }
    const store = new LocalStore(dir, config, db, opts);
    store.notices.push(...notices);
    try {
      await restrictModes(dir);
      await ensureReserve(dir);
    } catch (err) {
      await store.close();
      throw err;
    }
    return store;
  }

  /**
   * Repairs the index of the closed store at `dir` (`cloner repair-index`): when its
   * LevelDB cannot be opened, runs LevelDB's repair; then rebuilds every chunk location
   * from the packs. Throws StoreFormatError when `dir` holds no store, StoreLockedError
   * when another process has it open.
   */
  static async repairIndex(dir: string): Promise<RepairIndexReport> {
    let store: LocalStore;
    let levelDbRepaired = false;
    try {
      store = await LocalStore.open(dir);
    } catch (err) {
      if (!(err instanceof StoreIndexDamagedError)) throw err;
      await repairLevelDb(dir);
      levelDbRepaired = true;
      store = await LocalStore.open(dir);
    }
    try {
      const rebuilt = await store.rebuildIndex();
      const refs = await store.listRefs('');
      return { ...rebuilt, levelDbRepaired, refs: refs.length, images: refs.filter(([name]) => name.startsWith('image/')).length };
    } finally {
      await store.close();
    }
  }

  // ---- reader -------------------------------------------------------------------------

  async has(id: ChunkId): Promise<boolean> {
    return (await this.hasMany([id]))[0];
  }

  /**
   * Which ids are stored; those that are are touched (open guards hold them), since an
   * uploader told "present" skips them and relies on them until its revision commits.
   */
  async hasMany(ids: readonly ChunkId[]): Promise<boolean[]> {
    return this.presence(ids, true);
  }

  /** Like hasMany, for readers (fetches): nothing is touched, so reads hold nothing from gc. */
  async present(ids: readonly ChunkId[]): Promise<boolean[]> {
    return this.presence(ids, false);
  }

  private async presence(ids: readonly ChunkId[], touch: boolean): Promise<boolean[]> {
    for (const id of ids) assertChunkId(id);
    return this.gate.shared(async () => {
      const answer = (await this.index.getMany(ids)).map((loc) => loc !== undefined);
      if (touch) ids.forEach((id, i) => answer[i] && this.guards.touch(id));
      return answer;
    });
  }

  async get(id: ChunkId): Promise<Buffer> {
    return decodeChunk(await this.getEncoded(id));
  }

  async getEncoded(id: ChunkId): Promise<EncodedChunk> {
    assertChunkId(id);
    return this.reader.getEncoded(id);
  }

  /**
   * A fetch answered in the order asked (the server's /v1/chunks/fetch): one batched lookup
   * of `ids`, which touches nothing. `missing`: the ids not stored, in the order asked.
   * When none is, `batches()` yields the stored forms (not decoded) in the order asked,
   * duplicates repeated, in arrays of about 1 MiB of data, read coalesced per pack
   * (pack-reader.ts); an array's data are views of a buffer reused for the next array, valid
   * until the next is asked for (encode or copy them first). A chunk gone between lookup and read (a repack moved it) is looked up
   * again; one gone for good makes the iteration throw ChunkMissingError.
   * Throws InvalidChunkError on a malformed id.
   */
  async getEncodedInOrder(ids: readonly ChunkId[]): Promise<{ missing: ChunkId[]; batches: () => AsyncIterable<EncodedChunk[]> }> {
    for (const id of ids) assertChunkId(id);
    const locations = await this.gate.shared(() => this.reader.locate(ids));
    const missing: ChunkId[] = [];
    const located: Located[] = [];
    locations.forEach((loc, i) => (loc === undefined ? missing.push(ids[i]) : located.push({ id: ids[i], loc })));
    return { missing, batches: () => this.reader.readInOrder(missing.length ? [] : located) };
  }

  async *getMany(ids: Iterable<ChunkId>): AsyncIterable<[ChunkId, Buffer]> {
    const unique = [...new Set(ids)];
    unique.forEach(assertChunkId);
    yield* this.reader.getMany(unique);
  }

  /** Bytes each chunk takes in its pack (absent ids are left out). */
  async storedSizes(ids: readonly ChunkId[]): Promise<Map<ChunkId, number>> {
    const out = new Map<ChunkId, number>();
    for (let i = 0; i < ids.length; i += 10_000) {
      const batch = ids.slice(i, i + 10_000);
      (await this.index.getMany(batch)).forEach((loc, j) => loc !== undefined && out.set(batch[j], loc.storedLength));
    }
    return out;
  }

  // ---- writer -------------------------------------------------------------------------

  /**
   * `knownId` lets an in-process producer that has just hashed the bytes skip a second
   * hash; it must be the BLAKE3 of `data`. Bytes from outside go through `putEncoded`.
   */
  async put(data: Uint8Array, knownId?: ChunkId): Promise<ChunkId> {
    const id = knownId ?? chunkIdOf(data);
    // Copy now: the caller may refill its read buffer before the chunk is encoded. The copy
    // owns its memory, so a codec worker takes it over without another copy.
    const copy = ownedCopy(data);
    if (this.codec === inThreadCodec) return this.store(id, () => encodeChunk(copy, id));
    return this.store(id, () => this.codec.encodeMany([{ id, raw: copy }]).then(([chunk]) => chunk));
  }

  async putEncoded(chunk: EncodedChunk): Promise<ChunkId> {
    assertChunkId(chunk.id);
    // Never trust a caller's id: the bytes must hash to it. Checked in-thread: in a codec
    // worker (the server's uploads) it only moved CPU between threads of a server that shares
    // its cores with the uploader on the bench, for +60-80 MB of server RSS and no time won.
    verifyChunk(chunk);
    return this.store(chunk.id, () => chunk);
  }

  private async store(id: ChunkId, encode: () => EncodedChunk | Promise<EncodedChunk>): Promise<ChunkId> {
    this.assertOpen();
    return this.gate.shared(async () => {
      this.guards.touch(id);
      await this.writer.add(id, encode);
      return id;
    });
  }

  async flush(): Promise<void> {
    await this.writer.flush();
  }

  // ---- guards and maintenance -----------------------------------------------------------

  /** Ids touched from now until `release()` are never pruned. */
  guard(): TouchGuard {
    return this.guards.guard();
  }

  /**
   * Prunes and index rebuilds so far in this process: the only ways a stored chunk goes (both
   * under the exclusive gate), so what a commit checked holds while it is unchanged.
   */
  get pruneEpoch(): number {
    return this.epoch;
  }

  /** Runs `work` while no prune can sweep (revision commits check presence inside it). */
  withoutPrune<T>(work: () => Promise<T>): Promise<T> {
    return this.gate.shared(work);
  }

  /** Re-reads every indexed chunk pack by pack: BLAKE3 of the data and the pack's record headers (checker.ts). */
  async verify(onProgress?: (checked: number) => void): Promise<VerifyReport> {
    return verifyStore(this.dir, this.index, onProgress);
  }

  /**
   * Drops every chunk that is neither live nor guarded and repacks packs over 5% dead
   * (prune.ts). Flushes first; runs under the exclusive gate.
   */
  async prune(isLive: (id: ChunkId) => boolean): Promise<PruneReport> {
    await this.flush();
    // Chunks kept only because an upload not yet committed touched them: reported apart.
    const keptForUploads: ChunkId[] = [];
    const report = await this.gate.exclusively(async () => {
      this.epoch++;
      // Puts between the flush above and the gate may have grown a pack: end it, so no later
      // seal appends through a handle to a pack this prune deletes (its chunks would be lost).
      await this.writer.flush();
      return prunePacks({ dir: this.dir, index: this.index, reader: this.reader, writer: this.writer }, (id) => {
        if (isLive(id)) return true;
        if (!this.guards.isGuarded(id)) return false;
        keptForUploads.push(id);
        return true;
      });
    });
    await ensureReserve(this.dir); // a full disk may have used it
    const locations = await this.index.getMany(keptForUploads);
    report.keptForUploads = { chunks: keptForUploads.length, bytes: locations.reduce((sum, loc) => sum + (loc?.storedLength ?? 0), 0) };
    return report;
  }

  /** Rebuilds the chunk index from the packs alone (repair.ts). Flushes first; runs under the exclusive gate. */
  async rebuildIndex(): Promise<RebuildReport> {
    await this.flush();
    return this.gate.exclusively(async () => {
      this.epoch++;
      await this.writer.flush(); // as in prune: no append to a pack the rebuild may set aside
      return rebuildLocations(this.dir, this.index);
    });
  }

  /** Indexed chunks and their raw bytes; pack files and their bytes on disk. */
  async stats(): Promise<{ chunks: number; packs: number; packBytes: number; rawBytes: number }> {
    let chunks = 0;
    let rawBytes = 0;
    for await (const { loc } of this.index.entries()) {
      chunks++;
      rawBytes += loc.rawLength;
    }
    let packBytes = 0;
    const packs = await listPacks(this.dir);
    for (const p of packs) packBytes += (await fs.stat(packPath(this.dir, p))).size;
    return { chunks, packs: packs.length, packBytes, rawBytes };
  }

  // ---- refs ---------------------------------------------------------------------------

  async getRef(name: string): Promise<string | undefined> {
    return this.refs.getRef(name);
  }

  async casRef(name: string, expected: string | undefined, value: string | undefined): Promise<boolean> {
    this.assertOpen();
    return this.refs.casRef(name, expected, value);
  }

  async listRefs(prefix: string): Promise<Array<[string, string]>> {
    return this.refs.listRefs(prefix);
  }

  /** Flushes pending puts, closes pack handles and the LevelDB. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.flush();
    this.closed = true;
    await this.reader.close();
    await this.db.close();
  }

  private assertOpen(): void {
    if (this.closed) throw new StoreFormatError(`store ${this.dir} is closed`);
  }
}
