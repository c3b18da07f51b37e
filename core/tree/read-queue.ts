/**
 * Capture's file-read queue with a brake on the walk: `run` starts a read when one of
 * `concurrency` readers is free (p-limit); `ahead()` tells the walk to wait while
 * MAX_QUEUED_READS reads are queued and not yet started.
 *
 * Why: without the brake the walk queued every file of the tree at once (a closure, its
 * entry and promises, ~2.5 KB a file: 58 MB of heap for the 24,513-entry node tree of
 * bench:peers, and 8 times that for a tree 8 times larger). With it, memory stays flat
 * whatever the tree's size, and 512 queued reads still keep 8 readers fed. Queued reads
 * always start (readers wait on the store, never on the walk), so a braked walk always
 * goes on.
 */
import pLimit from 'p-limit';

/** File reads queued (not yet started) before the walk waits. */
export const MAX_QUEUED_READS = 512;

export interface ReadQueue {
  /** Runs `read` when a reader is free; its result or error as it gives them. */
  run: <T>(read: () => Promise<T>) => Promise<T>;
  /** Undefined while fewer than `maxQueued` reads wait (go on at once), else a promise resolved once fewer do. */
  ahead: () => Promise<void> | undefined;
}

export function readQueue(concurrency: number, maxQueued = MAX_QUEUED_READS): ReadQueue {
  const limit = pLimit(concurrency);
  const waiting: Array<() => void> = [];
  // Called as each read leaves the queue: wakes the walks waiting for room, oldest first.
  const started = () => {
    while (waiting.length && limit.pendingCount < maxQueued) waiting.shift()!();
  };
  return {
    run: (read) => limit(() => (started(), read())),
    ahead: () => (limit.pendingCount < maxQueued ? undefined : new Promise<void>((resolve) => waiting.push(resolve))),
  };
}
