/**
 * Writing packs. `PackWriter.add` appends an encoded chunk to the open pack in memory.
 * The pack is sealed when it reaches the target size, when `flush()` is called, or
 * `commitDelayMs` after its first chunk. Sealing writes the pack to tmp/, fsyncs it,
 * renames it into packs/, fsyncs the directory, and only then commits all its index
 * entries in one synced LevelDB batch; each `add` resolves after that batch. A chunk is
 * therefore never visible (has/get) before its bytes are durable, and a crash at any
 * moment leaves at worst an unindexed pack (garbage for prune) or a tmp file (removed
 * on open). Seals run one at a time, in order.
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
import { fsyncDir, packPath, type PackId } from './store-dir.ts';

/** A pack being filled in memory: its bytes as parts, and the index entries they make. */
export class OpenPack {
  readonly id: PackId = randomBytes(8).toString('hex');
  readonly parts: Buffer[] = [PACK_MAGIC];
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
}

/**
 * Writes a whole pack durably: a new file in tmp/ (exclusive create), fsync, rename to
 * packs/ab/<id>.pack (creating and fsyncing the fan-out directory when new), fsync the
 * fan-out directory. Throws the fs error (ENOSPC, EEXIST on an id clash...) as is.
 */
export async function writePackFile(dir: string, packId: PackId, parts: Buffer[]): Promise<void> {
  const tmp = path.join(dir, 'tmp', `${packId}.pack`);
  const fanout = path.join(dir, 'packs', packId.slice(0, 2));
  const handle = await fs.open(tmp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, 0o644);
  try {
    await handle.writev(parts);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await fs.mkdir(fanout);
    await fsyncDir(path.join(dir, 'packs'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  await fs.rename(tmp, packPath(dir, packId));
  await fsyncDir(fanout);
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
  private readonly commits = new SerialQueue();

  constructor(dir: string, index: LocationIndex, opts: PackWriterOptions = {}) {
    this.dir = dir;
    this.index = index;
    this.packTargetBytes = opts.packTargetBytes ?? 32 * 1024 * 1024;
    this.commitDelayMs = opts.commitDelayMs ?? 50;
  }

  /**
   * Stores chunk `id` unless it is indexed or being written already; resolves once it is
   * durable and indexed. `encode` is called only when the chunk is really appended.
   * Rejects with the fs or LevelDB error of a failed seal (nothing of that pack is indexed).
   */
  async add(id: ChunkId, encode: () => EncodedChunk): Promise<void> {
    const inFlight = this.pending.get(id);
    if (inFlight) return inFlight;
    if ((await this.index.get(id)) !== undefined) return;
    const raced = this.pending.get(id);
    if (raced) return raced;
    const pack = this.currentPack();
    pack.append(encode());
    this.pending.set(id, pack.committed);
    if (pack.size >= this.packTargetBytes) this.seal(pack);
    return pack.committed;
  }

  /** Seals the open pack and waits until every seal issued so far has committed (or failed). */
  async flush(): Promise<void> {
    if (this.openPack) this.seal(this.openPack);
    await this.commits.run(async () => undefined);
  }

  /** Writes a pack filled by the caller (a repack) and indexes its entries, outside the queue. */
  async writeAndIndex(pack: OpenPack): Promise<void> {
    await writePackFile(this.dir, pack.id, pack.parts);
    await this.index.put(pack.entries);
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
        await this.writeAndIndex(pack);
        pack.resolve();
      } catch (err) {
        pack.reject(err as Error);
      } finally {
        for (const e of pack.entries) if (this.pending.get(e.id) === pack.committed) this.pending.delete(e.id);
      }
    });
  }
}
