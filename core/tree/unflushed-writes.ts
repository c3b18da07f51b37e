/**
 * Capture's write-behind: chunks are handed to the store without waiting for each one to
 * be durable, in a sliding window: once MAX_UNFLUSHED bytes are pending, the walk waits
 * for the oldest puts (the store seals its open pack within milliseconds, so they come
 * back without a flush) until it is below again, and once at the end (settle: flush, then
 * every put). The window bounds the memory the pending chunks hold (their copies and
 * encoded bytes) without the stall of a flush barrier. A put that fails is kept as the
 * first store error (its promise is handled at once, so it is never an unhandled
 * rejection) and thrown by the next drain or settle.
 */
import { chunkIdOf, type ChunkId } from '../store/chunk-id.ts';
import type { ChunkWriter } from '../store/interfaces.ts';

/**
 * Bytes handed to the store but not yet durable before the walk waits for the oldest. 32 MiB,
 * not 48: once reads came from the page cache at once (readCachedFirst), the walk kept the
 * window full and the CLI peaked at 275-295 MB on bench:peers node tree against 250-254
 * (24 MiB: 230), for no CPU saved (loaded 2-core machine, one run each).
 */
const MAX_UNFLUSHED = 32 * 1024 * 1024;

export interface UnflushedWrites {
  /** Hands a chunk to the store without waiting for it; returns its id. */
  put(data: Buffer): ChunkId;
  /** Waits for the oldest puts while MAX_UNFLUSHED bytes or more are pending; throws the first store error. */
  drainIfFull(): Promise<void>;
  /** Flushes the store and waits for every chunk handed to it; throws the first store error. */
  settle(): Promise<void>;
}

export function unflushedWrites(store: Pick<ChunkWriter, 'put' | 'flush'>): UnflushedWrites {
  let pending: Array<{ done: Promise<unknown>; bytes: number }> = [];
  let head = 0;
  let pendingBytes = 0;
  let storeError: unknown = null;
  const settle = async () => {
    const waiting = pending.slice(head);
    pending = [];
    head = 0;
    pendingBytes = 0;
    await store.flush();
    await Promise.all(waiting.map((p) => p.done));
    if (storeError) throw storeError;
  };
  return {
    put(data) {
      const id = chunkIdOf(data);
      const done = store.put(data, id).catch((err) => {
        storeError ??= err;
      });
      pending.push({ done, bytes: data.length });
      pendingBytes += data.length;
      return id;
    },
    drainIfFull: async () => {
      while (pendingBytes >= MAX_UNFLUSHED && head < pending.length) {
        const oldest = pending[head++];
        await oldest.done;
        pendingBytes -= oldest.bytes;
        if (storeError) throw storeError;
      }
      // Drop what was waited for now and then, not on every put.
      if (head > 4096) {
        pending = pending.slice(head);
        head = 0;
      }
    },
    settle,
  };
}
