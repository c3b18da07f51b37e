/**
 * Chunk identity: the BLAKE3-256 digest of a chunk's uncompressed bytes, written as
 * 64 lower-case hex characters in every API, manifest and URL.
 */
import { blake3 } from '@napi-rs/blake-hash';
import { InvalidChunkError } from './errors.ts';

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
