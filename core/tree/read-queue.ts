/**
 * Capture's file-read queue with a brake on the walk: `run` starts a read when one of
 * `concurrency` readers is free (p-limit); `ahead()` tells the walk to wait while
 * MAX_QUEUED_READS reads are queued and not yet started. And `dirSlots`: how many
 * directories are listed at once, granted newest first.
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

/** Directories listed (and their entries walked) at once; the others wait for a slot. */
export const DIR_SLOTS = 8;

/**
 * Slots for listing directories, granted last-asked first (a stack), so the walk goes depth
 * first. Why: a directory's entries (with their chunk lists) are held until all of its
 * subdirectories are stored; with every subdirectory listed as soon as it was found, the
 * walk went breadth first under the read brake and held most of the tree's entries (heap
 * 239 MB on bench:peers' 8x tree against ~60 MB at 1x). Depth first, what is held is the
 * current path, its waiting siblings (not listed yet) and the directories whose files are
 * queued. A slot is held only while a directory is listed, never while it waits for its
 * subdirectories, so slots cannot deadlock. `acquire()` resolves to the release function.
 */
export function dirSlots(slots = DIR_SLOTS): { acquire: () => Promise<() => void> } {
  const waiting: Array<() => void> = [];
  let free = slots;
  const release = () => {
    const next = waiting.pop();
    if (next) next();
    else free++;
  };
  return {
    acquire: () => {
      if (free > 0) {
        free--;
        return Promise.resolve(once(release));
      }
      return new Promise((resolve) => waiting.push(() => resolve(once(release))));
    },
  };
}

/** `fn` callable once; later calls do nothing. */
function once(fn: () => void): () => void {
  let called = false;
  return () => {
    if (!called) {
      called = true;
      fn();
    }
  };
}
