/**
 * The small, layered store interfaces. Every backend (the local pack store, the HTTP
 * client of the server, any cache in front) implements the ones it can; consumers
 * declare the narrowest one they use (restore takes a `ChunkReader`, capture a
 * `ChunkWriter`). One conformance suite (test/store/conformance.ts) runs against each.
 */
import type { ChunkId } from './chunk-id.ts';
import type { EncodedChunk } from './codec.ts';

export interface ChunkReader {
  has(id: ChunkId): Promise<boolean>;
  /** One answer per id, in the order asked. */
  hasMany(ids: readonly ChunkId[]): Promise<boolean[]>;
  /** The raw bytes, checked against the id; ChunkMissingError / ChunkCorruptError otherwise. */
  get(id: ChunkId): Promise<Buffer>;
  /**
   * Each distinct requested chunk once, in the order cheapest for the store (pack order
   * for the local store), read in batches rather than one lookup per chunk. With
   * `transient`, the caller promises to be done with each chunk's bytes before it asks for
   * the next, so a store may hand out views of memory it reuses (HttpStore does).
   */
  getMany(ids: Iterable<ChunkId>, opts?: GetManyOptions): AsyncIterable<[ChunkId, Buffer]>;
}

export interface GetManyOptions {
  /** The bytes yielded may be reused once the next chunk is asked for; default false. */
  transient?: boolean;
}

export interface ChunkWriter {
  /**
   * Stores a chunk; resolves with its id once it is durable (its pack fsynced and indexed).
   * Storing a chunk that is already present is a cheap no-op.
   */
  put(data: Uint8Array, knownId?: ChunkId): Promise<ChunkId>;
  /** Stores an already encoded chunk (a transfer from another store); its id is checked. */
  putEncoded(chunk: EncodedChunk): Promise<ChunkId>;
  /** Makes every put issued so far durable. */
  flush(): Promise<void>;
}

export interface EncodedChunkReader {
  /** The stored (possibly compressed) form, without decoding; for transfers. */
  getEncoded(id: ChunkId): Promise<EncodedChunk>;
}

export interface PruneReport {
  deletedChunks: number;
  repackedPacks: number;
  deletedPacks: number;
  freedBytes: number;
  /** Packs worth repacking left as they were: the disk had no room for their new packs. */
  skippedRepacks?: number;
  /** Dead chunks kept because uploads not yet committed touched them (stored bytes). */
  keptForUploads?: { chunks: number; bytes: number };
}

export interface PrunableStore {
  /** Drops every chunk for which `isLive` is false, repacking packs mostly dead. */
  prune(isLive: (id: ChunkId) => boolean): Promise<PruneReport>;
}

/** Small named records (image records) with compare-and-set, the commit points of the store. */
export interface RefStore {
  getRef(name: string): Promise<string | undefined>;
  /** Writes `value` if the current value is still `expected` (undefined: absent). False otherwise. */
  casRef(name: string, expected: string | undefined, value: string | undefined): Promise<boolean>;
  listRefs(prefix: string): Promise<Array<[string, string]>>;
}

