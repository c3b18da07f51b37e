/**
 * Capture's write-behind: chunks are handed to the store without waiting for each one to
 * be durable; the capture waits only when MAX_UNFLUSHED bytes are pending and once at the
 * end (settle: flush, then every put). A put that fails is kept as the first store error
 * (its promise is handled at once, so it is never an unhandled rejection) and thrown by
 * the next settle.
 */
import { chunkIdOf, type ChunkId } from '../store/chunk-id.ts';
import type { ChunkWriter } from '../store/interfaces.ts';

/** Bytes handed to the store but not yet durable before the walk waits for the store. */
const MAX_UNFLUSHED = 256 * 1024 * 1024;

export interface UnflushedWrites {
  /** Hands a chunk to the store without waiting for it; returns its id. */
  put(data: Buffer): ChunkId;
  /** Waits for the store once MAX_UNFLUSHED bytes are pending. */
  drainIfFull(): Promise<void>;
  /** Flushes the store and waits for every chunk handed to it; throws the first store error. */
  settle(): Promise<void>;
}

export function unflushedWrites(store: Pick<ChunkWriter, 'put' | 'flush'>): UnflushedWrites {
  let pending: Promise<unknown>[] = [];
  let pendingBytes = 0;
  let storeError: unknown = null;
  const settle = async () => {
    const waiting = pending;
    pending = [];
    pendingBytes = 0;
    await store.flush();
    await Promise.all(waiting);
    if (storeError) throw storeError;
  };
  return {
    put(data) {
      const id = chunkIdOf(data);
      pending.push(store.put(data, id).catch((err) => {
        storeError ??= err;
      }));
      pendingBytes += data.length;
      return id;
    },
    drainIfFull: async () => {
      if (pendingBytes >= MAX_UNFLUSHED) await settle();
    },
    settle,
  };
}
