/**
 * The compression layer between raw chunks and stored chunks. `encodeChunk` LZ4-compresses
 * (block format with its size prepended, as lz4-napi writes it) and keeps the raw bytes
 * instead when compression saves less than ~5%; `decodeChunk` reverses it and checks the
 * BLAKE3 id, so every reader detects corruption.
 *
 * LZ4 is liblz4 in the fsx addon (core/native/codec.c), writing into buffers sized here:
 * compression into a scratch buffer capped at the largest size worth keeping (so a chunk
 * that does not compress stops early), then one copy of exactly the result; decompression
 * into a buffer of the raw length the index records, which bounds what corrupt input can
 * make it write. It replaced lz4-napi (lz4_flex, same stored format, so stores and
 * versions mix): on the bench tree's unique chunks, per CPU second, liblz4 compresses 622
 * MB/s against 299 and decompresses 1777 against 1306 (bench:codec), and lz4-napi's outputs lived in its own allocator
 * with about the raw size reserved each, memory Node neither sees nor bounds. Stores keep the codec byte beside the data.
 * `ChunkCodec` is the batch form stores take: `inThreadCodec` here, or the worker pool of
 * codec-pool.ts, which checks what its workers decode with the same `checkEncodedHeader`
 * and `checkDecoded` rules.
 */
import { fsxCodec } from '../native/codec.ts';
import { chunkIdOf, type ChunkId } from './chunk-id.ts';
import { ChunkCorruptError } from './errors.ts';

export const CODEC_RAW = 0;
export const CODEC_LZ4 = 1;
export type Codec = typeof CODEC_RAW | typeof CODEC_LZ4;

/** Largest raw chunk any store accepts; bounds allocations made from untrusted lengths. */
export const MAX_RAW_CHUNK = 64 * 1024 * 1024;

export interface EncodedChunk {
  id: ChunkId;
  codec: Codec;
  rawLength: number;
  data: Buffer;
}

export const MIN_SAVING = 0.05;

/** The most bytes an LZ4 form of `rawLength` bytes may take to be kept (it must save MIN_SAVING). */
export const lz4Budget = (rawLength: number): number => Math.floor(rawLength * (1 - MIN_SAVING));

// Compression's output area, reused by every call of this thread (grown to the largest chunk).
let scratch = Buffer.alloc(0);

/** The LZ4 form of `raw` in a buffer of exactly its size, or undefined when it would not save MIN_SAVING. */
export function lz4Encode(raw: Uint8Array): Buffer | undefined {
  const budget = lz4Budget(raw.byteLength);
  if (scratch.length < budget) scratch = Buffer.allocUnsafeSlow(Math.max(budget, 256 * 1024));
  const n = fsxCodec().lz4Compress(raw, scratch.subarray(0, budget));
  if (n === 0) return undefined;
  const packed = Buffer.allocUnsafe(n);
  scratch.copy(packed, 0, 0, n);
  return packed;
}

export function encodeChunk(raw: Uint8Array, id: ChunkId = chunkIdOf(raw)): EncodedChunk {
  const rawBuf = Buffer.isBuffer(raw) ? raw : Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
  const packed = lz4Encode(rawBuf);
  if (packed) return { id, codec: CODEC_LZ4, rawLength: rawBuf.length, data: packed };
  // A copy: the caller may reuse its buffer (capture's read window) before this is stored.
  return { id, codec: CODEC_RAW, rawLength: rawBuf.length, data: Buffer.from(rawBuf) };
}

/** Decodes and checks that the bytes hash to `chunk.id`; throws ChunkCorruptError otherwise. */
export function decodeChunk(chunk: EncodedChunk, alloc: (n: number) => Buffer = Buffer.allocUnsafe): Buffer {
  const raw = decodeUnchecked(chunk, alloc);
  const actual = chunkIdOf(raw);
  if (actual !== chunk.id) {
    throw new ChunkCorruptError(chunk.id, `content hashes to ${actual}`);
  }
  return raw;
}

/** decodeTransient's reused output (this thread's), grown to the largest chunk met up to SCRATCH_MAX. */
let transientScratch: Buffer | undefined;
const SCRATCH_MAX = 8 * 1024 * 1024;

/**
 * decodeChunk (the same checks and ChunkCorruptError messages) into one reused buffer of
 * this thread: the bytes returned are valid only until the next decodeTransient or
 * verifyChunk call on this thread (a raw chunk's are its own data). For callers that use
 * each chunk at once: an upload that stores the encoded form, a restore that writes the
 * chunk before taking the next. A fresh buffer per chunk was ~1 GB of short-lived
 * external memory per deploy or capture of bench:peers' node tree, and V8 starts a full GC
 * each time some tens of MB more of it are held.
 */
export function decodeTransient(chunk: EncodedChunk): Buffer {
  return decodeChunk(chunk, (n) => {
    if (n > SCRATCH_MAX) return Buffer.allocUnsafe(n);
    if (!transientScratch || transientScratch.length < n) transientScratch = Buffer.allocUnsafeSlow(Math.max(n, 256 * 1024));
    return transientScratch.subarray(0, n);
  });
}

/** Checks `chunk` as decodeChunk does, keeping nothing (decodeTransient's buffer): for callers that store the encoded form. */
export function verifyChunk(chunk: EncodedChunk): void {
  decodeTransient(chunk);
}

function decodeUnchecked(chunk: EncodedChunk, alloc: (n: number) => Buffer): Buffer {
  checkEncodedHeader(chunk);
  if (chunk.codec === CODEC_RAW) return chunk.data;
  const raw = alloc(chunk.rawLength);
  if (fsxCodec().lz4Decompress(chunk.data, raw) !== chunk.rawLength) return checkDecoded(chunk, undefined, undefined, LZ4_CORRUPT);
  return raw;
}

/** decodeChunk's reason when liblz4 refuses a block (it does not say why). */
export const LZ4_CORRUPT = 'corrupt or truncated block, or not of the recorded length';

/** What can be checked before decoding: the raw length's range, the codec, the stored length (raw) or LZ4 size header. Throws ChunkCorruptError. */
export function checkEncodedHeader(chunk: EncodedChunk): void {
  if (chunk.rawLength < 0 || chunk.rawLength > MAX_RAW_CHUNK) {
    throw new ChunkCorruptError(chunk.id, `raw length ${chunk.rawLength} out of range`);
  }
  if (chunk.codec === CODEC_RAW) {
    if (chunk.data.length !== chunk.rawLength) {
      throw new ChunkCorruptError(chunk.id, `stored ${chunk.data.length} bytes, expected ${chunk.rawLength}`);
    }
    return;
  }
  if (chunk.codec === CODEC_LZ4) {
    // The 4-byte little-endian size lz4-napi prepends must agree with the recorded raw
    // length before the decoder allocates anything from it.
    if (chunk.data.length < 4 || chunk.data.readUInt32LE(0) !== chunk.rawLength) {
      throw new ChunkCorruptError(chunk.id, 'LZ4 size header does not match the raw length');
    }
    return;
  }
  throw new ChunkCorruptError(chunk.id, `unknown codec ${chunk.codec}`);
}

/**
 * The check after decoding elsewhere (a worker): `raw` decoded from `chunk` must have the
 * raw length and hash to `actualId`; `decodeError` is the decoder's message when it failed.
 * Returns `raw`, else throws ChunkCorruptError (the messages of decodeChunk).
 */
export function checkDecoded(chunk: EncodedChunk, raw: Buffer | undefined, actualId: ChunkId | undefined, decodeError?: string): Buffer {
  if (decodeError !== undefined || !raw) throw new ChunkCorruptError(chunk.id, `LZ4 data does not decode (${decodeError})`);
  if (raw.length !== chunk.rawLength) throw new ChunkCorruptError(chunk.id, `decoded ${raw.length} bytes, expected ${chunk.rawLength}`);
  if (actualId !== chunk.id) throw new ChunkCorruptError(chunk.id, `content hashes to ${actualId}`);
  return raw;
}

/** A raw chunk to encode, with its id (its BLAKE3, already computed by the caller). */
export interface RawChunk {
  id: ChunkId;
  raw: Uint8Array;
}

/**
 * Encoding and decoding in batches, in order. `encodeMany` may take over (detach) the raw
 * buffers it is given; `decodeMany` checks every chunk as decodeChunk does.
 */
export interface ChunkCodec {
  encodeMany(chunks: readonly RawChunk[]): Promise<EncodedChunk[]>;
  decodeMany(chunks: readonly EncodedChunk[]): Promise<Buffer[]>;
}

/** The codec on the calling thread (one core, or CLONER_CODEC_THREADS=0). */
export const inThreadCodec: ChunkCodec = {
  encodeMany: async (chunks) => chunks.map((c) => encodeChunk(c.raw, c.id)),
  decodeMany: async (chunks) => chunks.map((c) => decodeChunk(c)),
};
