/**
 * Sync's data phase: every file to write is built in a staging directory on the file
 * system it goes to (so the final rename never crosses file systems), before anything on
 * the node is replaced.
 *
 * Algorithm: a staged file is named by its path and content (sha256 of both), so a run cut
 * off midway leaves files the next run finds: their chunks are checked in place (BLAKE3)
 * and count as done. Then every chunk the node already holds (a seed found by the scan)
 * is copied from where it was found, checked again since a file may change after the
 * scan; the rest are fetched through `reader.getMany` (batched, checked by the reader)
 * and written to every place that holds them. Staging directories and seed files are
 * reached through TargetRoot (beneath.ts), never through a symlink: a staging directory
 * is opened once (O_NOFOLLOW, beneath the target) and its files are named by that fd.
 */
import * as fsSync from 'node:fs';
import { constants as fsc } from 'node:fs';
import { createHash } from 'node:crypto';
import { chunkIdOf, type ChunkId } from '../store/chunk-id.ts';
import type { ChunkReader } from '../store/interfaces.ts';
import type { TargetRoot } from './beneath.ts';
import { displayName } from './file-names.ts';
import type { FileEntry } from './manifest.ts';
import { chunkTargets, RestoreError, writeChunks, type RestoreProgress } from './restore.ts';

/** Where the scan found each chunk on the node: a tree path and a byte offset. */
export type Seeds = Map<ChunkId, { rel: string; offset: number }>;

/** Where staged files go: the staging directory (a tree path) of each file's tree path, beneath `root`. */
export interface StagingArea {
  root: TargetRoot;
  stagingDirOf: (rel: string) => string;
}

/** The counters the data phase moves (all in bytes but `files`). */
export type StageProgress = RestoreProgress & { seededBytes: number; fetchedBytes: number };

export interface Staged {
  /** The staged file of `toWrite[index]` ("/proc/self/fd/N/key": N the staging directory's fd). */
  pathOf(index: number): string;
  /** Removes every staging directory made, with whatever files are still in it. */
  removeAll(): void;
}

/**
 * Builds each `toWrite` file, complete, in the staging directory of its path (made mode
 * 0700 when missing). Adds to progress.totalBytes, bytes, seededBytes and fetchedBytes,
 * and sets progress.files. Throws RestoreError when a staging path is not a real
 * directory, and the reader's errors (a missing or corrupt chunk).
 */
export async function stageFiles(reader: Pick<ChunkReader, 'getMany'>, toWrite: Array<{ rel: string; entry: FileEntry }>, area: StagingArea, seeds: Seeds, progress: StageProgress): Promise<Staged> {
  const { root } = area;
  const dirs = new Map<string, number>(); // staging dir tree path -> its pinned fd
  // Per file, its staging directory's fd and its 20-byte key: not a string per file.
  const fds = new Int32Array(toWrite.length);
  const keys = Buffer.alloc(toWrite.length * 20);
  const staged: Staged = {
    pathOf: (i) => `/proc/self/fd/${fds[i]}/${keys.toString('hex', i * 20, i * 20 + 20)}`,
    removeAll() {
      for (const [rel, fd] of dirs) {
        for (const name of fsSync.readdirSync(`/proc/self/fd/${fd}`)) fsSync.rmSync(`/proc/self/fd/${fd}/${name}`, { recursive: true, force: true });
        root.forget(rel);
        fsSync.rmdirSync(root.at(rel));
      }
      dirs.clear();
    },
  };
  const dirFd = (dir: string) => {
    let fd = dirs.get(dir);
    if (fd === undefined) {
      try {
        fsSync.mkdirSync(root.at(dir), 0o700);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      try {
        fd = root.pin(dir);
      } catch (err) {
        throw new RestoreError(`${displayName(dir)} on the target is not a directory (${(err as NodeJS.ErrnoException).code})`, 'remove it and deploy again');
      }
      dirs.set(dir, fd);
    }
    return fd;
  };
  toWrite.forEach(({ rel, entry }, i) => {
    fds[i] = dirFd(area.stagingDirOf(rel));
    createHash('sha256').update(rel).update('\0').update(JSON.stringify([entry.size, entry.chunks])).digest().copy(keys, i * 20, 0, 20);
  });
  const { pathOf } = staged;
  const entries = toWrite.map((w) => w.entry);
  const filled = new Set<string>();
  entries.forEach((entry, i) => resumeStaged(pathOf(i), i, entry, filled, progress));
  copySeeds(entries, pathOf, root, seeds, progress, filled);
  const targets = chunkTargets(entries, (fileIndex, offset) => filled.has(`${fileIndex}:${offset}`));
  filled.clear();
  await writeChunks(reader, toWrite.map((w) => w.rel), (i) => fsSync.openSync(pathOf(i), fsc.O_WRONLY | fsc.O_NOFOLLOW), targets, progress, (bytes) => (progress.fetchedBytes += bytes));
  progress.files = toWrite.length;
  return staged;
}

/**
 * Opens (creating) one staged file and sizes it; every chunk a cut-off run already put
 * in place counts, added to `filled` as "index:offset".
 */
function resumeStaged(file: string, index: number, entry: FileEntry, filled: Set<string>, progress: StageProgress): void {
  const fd = fsSync.openSync(file, fsc.O_RDWR | fsc.O_CREAT | fsc.O_NOFOLLOW, 0o600);
  try {
    if (fsSync.fstatSync(fd).size > 0) {
      for (const [offset, length, id] of entry.chunks) {
        const data = Buffer.allocUnsafe(length);
        if (fsSync.readSync(fd, data, 0, length, offset) === length && chunkIdOf(data) === id) {
          filled.add(`${index}:${offset}`);
          progress.seededBytes += length;
          progress.bytes += length;
        }
      }
    }
    fsSync.ftruncateSync(fd, entry.size);
  } finally {
    fsSync.closeSync(fd);
  }
  progress.totalBytes += entry.chunks.reduce((sum, c) => sum + c[1], 0);
}

/**
 * Copies every chunk a staged file needs that the node already holds from where the scan
 * found it, checking its BLAKE3 again.  Adds the places filled ("file:offset") to `filled`.
 */
function copySeeds(entries: FileEntry[], stagedOf: (index: number) => string, root: TargetRoot, seeds: Seeds, progress: StageProgress, filled: Set<string>): void {
  const sources = new Map<string, number>();
  const sourceFd = (rel: string) => {
    let fd = sources.get(rel);
    if (fd === undefined) {
      root.trim();
      fd = root.open(rel, fsc.O_RDONLY);
      sources.set(rel, fd);
    }
    return fd;
  };
  try {
    entries.forEach((entry, index) => {
      let out: number | undefined;
      try {
        for (const [offset, length, id] of entry.chunks) {
          const seed = seeds.get(id);
          if (!seed || filled.has(`${index}:${offset}`)) continue;
          const data = Buffer.allocUnsafe(length);
          let got: number;
          try {
            got = fsSync.readSync(sourceFd(seed.rel), data, 0, length, seed.offset);
          } catch {
            continue; // gone or unreadable since the scan: fetch it instead
          }
          if (got !== length || chunkIdOf(data) !== id) continue;
          out ??= fsSync.openSync(stagedOf(index), fsc.O_WRONLY | fsc.O_NOFOLLOW);
          let written = 0;
          while (written < length) written += fsSync.writeSync(out, data, written, length - written, offset + written);
          filled.add(`${index}:${offset}`);
          progress.seededBytes += length;
          progress.bytes += length;
        }
      } finally {
        if (out !== undefined) fsSync.closeSync(out);
      }
      if (sources.size > 64) {
        for (const fd of sources.values()) fsSync.closeSync(fd);
        sources.clear();
      }
    });
  } finally {
    for (const fd of sources.values()) fsSync.closeSync(fd);
  }
}
