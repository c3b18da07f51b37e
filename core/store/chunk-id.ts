/**
 * Chunk identity: the BLAKE3-256 digest of a chunk's uncompressed bytes, written as
 * 64 lower-case hex characters in every API, manifest and URL.
 */
import { createRequire } from 'node:module';
import { InvalidChunkError } from './errors.ts';

// The BLAKE3 addon is loaded on the first hash, not with this module: commands that only
// name chunks (`cloner image-list`, `--help`) then start without its dlopen (~5 ms of a
// ~100 ms start, bench/startup.ts).
let addon: typeof import('@napi-rs/blake-hash') | undefined;
const blake3 = (data: Uint8Array): Buffer => (addon ??= createRequire(import.meta.url)('@napi-rs/blake-hash') as typeof import('@napi-rs/blake-hash')).blake3(data);

export type ChunkId = string;

export const CHUNK_ID_BYTES = 32;
const CHUNK_ID_PATTERN = /^[0-9a-f]{64}$/;

export function chunkIdOf(data: Uint8Array): ChunkId {
  return blake3(data).toString('hex');
}

export function isChunkId(value: unknown): value is ChunkId {
  return typeof value === 'string' && CHUNK_ID_PATTERN.test(value);
}

export function assertChunkId(value: unknown): ChunkId {
  if (!isChunkId(value)) {
    throw new InvalidChunkError(`not a chunk id: ${JSON.stringify(value)?.slice(0, 80)}`, 'a chunk id is 64 lower-case hex characters (BLAKE3-256)');
  }
  return value;
}
