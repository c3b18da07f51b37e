/**
 * The location index: where each chunk lives, in LevelDB (DIR/index, sublevel "c").
 *
 *   key   the chunk id, 32 bytes
 *   value pack id (8 bytes) | offset of the data u32le | storedLength u32le |
 *         rawLength u32le | codec u8                                      = 21 bytes
 *
 * Every write is one synced LevelDB batch, so a set of entries (a sealed pack's, a
 * repack's) lands whole or not at all. Single lookups are gathered into multi-gets: `get`
 * those asked together or while one is in flight, `getSoon` those asked within GATHER_MS, as
 * an upload's chunks ask one each. Each LevelDB call costs the main thread a
 * snapshot (LevelDB's DB mutex) and a thread-pool hand-off, ~60 µs on a quiet machine and
 * often milliseconds on a busy one (the mutex or the pool's queue held by a preempted
 * thread); a multi-get costs that once for the lot. The index is derived data: repair.ts rebuilds it
 * from the packs alone. The same LevelDB also holds the refs (refs.ts), which are not.
 */
import { ClassicLevel } from 'classic-level';
import type { ChunkId } from './chunk-id.ts';
import type { Codec } from './codec.ts';
import { StoreFullError, StoreIndexDamagedError, StoreLockedError } from './errors.ts';
import { isNoSpace } from './space.ts';
import { indexPath, type PackId } from './store-dir.ts';

/** Where one chunk's stored bytes are: `storedLength` bytes at `offset` of `pack`. */
export interface Location {
  pack: PackId;
  /** Byte offset of the data (just after its record header) in the pack file. */
  offset: number;
  storedLength: number;
  rawLength: number;
  codec: Codec;
}

export interface Located {
  id: ChunkId;
  loc: Location;
}

const LOCATION_BYTES = 21;

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

const key = (id: ChunkId) => Buffer.from(id, 'hex');

/** How long `getSoon` gathers lookups, and the most it gathers into one multi-get. */
const GATHER_MS = 5;
const GATHER_MAX = 2048;

type Waiter = { resolve: (loc: Location | undefined) => void; reject: (err: unknown) => void };

/**
 * Gathers single lookups into multi-gets, at most GATHER_MAX ids each. With `ms` 0: the ids
 * asked in one go (before the microtask queue runs) go out at once, and those asked while
 * a multi-get is in flight go out together when it returns, so a lone caller waits no
 * longer than for a plain get. With `ms`: the ids asked within `ms` milliseconds.
 */
class Gatherer {
  private asked = new Map<ChunkId, Waiter[]>();
  private timer: NodeJS.Timeout | null = null;
  private scheduled = false;
  private inFlight = false;
  private readonly lookUp: (ids: ChunkId[]) => Promise<Array<Location | undefined>>;
  private readonly ms: number;

  constructor(lookUp: (ids: ChunkId[]) => Promise<Array<Location | undefined>>, ms: number) {
    this.lookUp = lookUp;
    this.ms = ms;
  }

  ask(id: ChunkId): Promise<Location | undefined> {
    return new Promise((resolve, reject) => {
      const waiting = this.asked.get(id);
      if (waiting) return void waiting.push({ resolve, reject });
      this.asked.set(id, [{ resolve, reject }]);
      if (this.asked.size >= GATHER_MAX) void this.flush();
      else if (this.ms > 0) this.timer ??= setTimeout(() => void this.flush(), this.ms);
      else if (!this.scheduled && !this.inFlight) {
        this.scheduled = true;
        queueMicrotask(() => void this.flush());
      }
    });
  }

  private async flush(): Promise<void> {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.scheduled = false;
    if (this.asked.size === 0) return;
    const asked = this.asked;
    this.asked = new Map();
    const ids = [...asked.keys()];
    this.inFlight = true;
    try {
      const locations = await this.lookUp(ids);
      ids.forEach((id, i) => asked.get(id)!.forEach((w) => w.resolve(locations[i])));
    } catch (err) {
      for (const waiting of asked.values()) waiting.forEach((w) => w.reject(err));
    } finally {
      this.inFlight = false;
      // What was asked meanwhile goes out now (with `ms`, its own timer is running).
      if (this.ms === 0 && this.asked.size && !this.scheduled) void this.flush();
    }
  }
}

/**
 * Opens (creating if absent) the LevelDB of the store at `dir`. Throws StoreLockedError
 * when another process holds it, StoreIndexDamagedError when LevelDB reports corruption,
 * StoreFullError when its filesystem has no room for LevelDB to open; other errors pass through.
 */
export async function openIndexDb(dir: string): Promise<ClassicLevel<string, string>> {
  const db = new ClassicLevel<string, string>(indexPath(dir));
  try {
    await db.open();
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    if (cause?.message?.includes('lock') || (err as { code?: string }).code === 'LEVEL_LOCKED') {
      throw new StoreLockedError(`store ${dir} is in use by another process`, 'stop the other cloner-server or command using it, then retry');
    }
    if (cause?.code === 'LEVEL_CORRUPTION') {
      throw new StoreIndexDamagedError(`the index of store ${dir} is damaged: ${cause.message}`, `stop any cloner-server using it, then run: cloner repair-index --store ${dir}`);
    }
    if (isNoSpace(err)) {
      throw new StoreFullError(`cannot open the index of store ${dir}: its filesystem is full`, 'free some space on that filesystem (files outside the store), then start again; cloner gc can then free more', { cause: err });
    }
    throw err;
  }
  return db;
}

export class LocationIndex {
  private readonly db: ClassicLevel<string, string>;
  private readonly chunks;

  constructor(db: ClassicLevel<string, string>) {
    this.db = db;
    this.chunks = db.sublevel<Buffer, Buffer>('c', { keyEncoding: 'buffer', valueEncoding: 'buffer' });
  }

  /** LevelDB reads issued so far (a multi-get counts one): how well lookups are batched. */
  reads = 0;
  private readonly thisTurn = new Gatherer((ids) => this.getMany(ids), 0);
  private readonly withinMs = new Gatherer((ids) => this.getMany(ids), GATHER_MS);

  /**
   * The location of `id`, or undefined when it is not indexed. Gathered with the gets asked
   * at the same time, or while a multi-get is in flight, into one multi-get (see Gatherer);
   * rejects with that multi-get's LevelDB error.
   */
  get(id: ChunkId): Promise<Location | undefined> {
    return this.thisTurn.ask(id);
  }

  /**
   * Like `get`, gathered over up to GATHER_MS (or GATHER_MAX ids): for callers that wait
   * longer than that anyway, as PackWriter.add, which resolves only after a commit.
   */
  getSoon(id: ChunkId): Promise<Location | undefined> {
    return this.withinMs.ask(id);
  }

  /** One answer per id, in the order asked (one LevelDB multi-get; callers batch). */
  async getMany(ids: readonly ChunkId[]): Promise<Array<Location | undefined>> {
    this.reads++;
    const values = await this.chunks.getMany(ids.map(key));
    return values.map((v) => (v === undefined ? undefined : decodeLocation(v)));
  }

  /** Indexes every entry in one synced batch: all of them land, or none. */
  async put(entries: readonly Located[]): Promise<void> {
    await this.batch(entries.map((e) => ({ type: 'put' as const, key: key(e.id), value: encodeLocation(e.loc) })));
  }

  /** Drops the entries of `ids` in one synced batch. */
  async delete(ids: readonly ChunkId[]): Promise<void> {
    await this.batch(ids.map((id) => ({ type: 'del' as const, key: key(id) })));
  }

  /** Drops every entry (the refs stay). */
  async clear(): Promise<void> {
    await this.chunks.clear();
  }

  /** Every entry, in id order. */
  async *entries(): AsyncIterable<Located> {
    for await (const [k, v] of this.chunks.iterator()) yield { id: k.toString('hex'), loc: decodeLocation(v) };
  }

  /** Every entry grouped by pack (entries of a pack in id order). Holds the whole index in memory. */
  async byPack(): Promise<Map<PackId, Located[]>> {
    const byPack = new Map<PackId, Located[]>();
    for await (const entry of this.entries()) {
      let list = byPack.get(entry.loc.pack);
      if (!list) byPack.set(entry.loc.pack, (list = []));
      list.push(entry);
    }
    return byPack;
  }

  private async batch(ops: Array<{ type: 'put'; key: Buffer; value: Buffer } | { type: 'del'; key: Buffer }>): Promise<void> {
    if (ops.length === 0) return;
    await this.db.batch(ops.map((op) => ({ ...op, sublevel: this.chunks }) as never), { sync: true });
  }
}
