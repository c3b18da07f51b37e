/**
 * The compression layer between raw chunks and stored chunks. `encodeChunk` LZ4-compresses
 * (block format with its size prepended, as lz4-napi writes it) and keeps the raw bytes
 * instead when compression saves less than ~5%; `decodeChunk` reverses it and checks the
 * BLAKE3 id, so every reader detects corruption. Stores keep the codec byte beside the data.
 * `ChunkCodec` is the batch form stores take: `inThreadCodec` here, or the worker pool of
 * codec-pool.ts, which checks what its workers decode with the same `checkEncodedHeader`
 * and `checkDecoded` rules.
 */
import { createRequire } from 'node:module';
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

// The LZ4 addon is loaded when a chunk is first encoded or decoded, not with this module
// (see chunk-id.ts: commands that touch no chunk start without its dlopen).
let lz4: typeof import('lz4-napi') | undefined;
const addon = () => (lz4 ??= createRequire(import.meta.url)('lz4-napi') as typeof import('lz4-napi'));
const compressSync = (data: Buffer) => addon().compressSync(data);
const uncompressSync = (data: Buffer) => addon().uncompressSync(data);

export function encodeChunk(raw: Uint8Array, id: ChunkId = chunkIdOf(raw)): EncodedChunk {
  const rawBuf = Buffer.isBuffer(raw) ? raw : Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
  const packed = compressSync(rawBuf);
  if (packed.length <= rawBuf.length * (1 - MIN_SAVING)) {
    return { id, codec: CODEC_LZ4, rawLength: rawBuf.length, data: packed };
  }
  // A copy: the caller may reuse its buffer (capture's read window) before this is stored.
  return { id, codec: CODEC_RAW, rawLength: rawBuf.length, data: Buffer.from(rawBuf) };
}

/** Decodes and checks that the bytes hash to `chunk.id`; throws ChunkCorruptError otherwise. */
export function decodeChunk(chunk: EncodedChunk): Buffer {
  const raw = decodeUnchecked(chunk);
  const actual = chunkIdOf(raw);
  if (actual !== chunk.id) {
    throw new ChunkCorruptError(chunk.id, `content hashes to ${actual}`);
  }
  return raw;
}

function decodeUnchecked(chunk: EncodedChunk): Buffer {
  checkEncodedHeader(chunk);
  if (chunk.codec === CODEC_RAW) return chunk.data;
  let raw: Buffer;
  try {
    raw = uncompressSync(chunk.data);
  } catch (err) {
    return checkDecoded(chunk, undefined, undefined, (err as Error).message);
  }
  if (raw.length !== chunk.rawLength) {
    throw new ChunkCorruptError(chunk.id, `decoded ${raw.length} bytes, expected ${chunk.rawLength}`);
  }
  return raw;
}

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
