/**
 * Restore: a captured tree into an empty directory or a freshly made file system.
 *
 * The driver first loads and checks every directory object (manifest.ts rejects unsafe
 * names, duplicates and bad chunk lists), then works in phases so that no write can pass
 * through a symlink and nothing lands outside the target:
 *   1. directories, empty regular files (O_CREAT|O_EXCL|O_NOFOLLOW, sized with ftruncate so
 *      holes stay holes), devices and fifos, in path order; an existing directory is
 *      accepted only if lstat shows a real directory;
 *   2. file data: every chunk id is asked for once through `getMany`, which reads in pack
 *      order and in batches, and file-writer tasks put each chunk at every offset of every
 *      file that holds it (pwrite, bounded number of open files and writes in flight);
 *   3. hardlinks, to the first restored path of their group (never to a path from the
 *      manifest), then symlinks, last, so none exists while data is written;
 *   4. metadata, best effort with warnings (strict: errors): lchown, chmod, xattrs (after
 *      chown, which clears security.capability), nanosecond times without following
 *      symlinks; directories deepest first so their times are not disturbed.
 */
import * as fsSync from 'node:fs';
import { constants as fsc } from 'node:fs';
import * as fs from 'node:fs/promises';
import { fsx } from '../native/fsx.ts';
import type { ChunkId } from '../store/chunk-id.ts';
import type { ChunkReader } from '../store/interfaces.ts';
import { getJsonObject } from '../store/objects.ts';
import { ManifestError, parseDirectory, type DeviceEntry, type DirectoryObject, type Entry, type FifoEntry, type FileEntry } from './manifest.ts';
import { ClonerError } from '../errors.ts';

export interface RestoreProgress {
  entries: number;
  files: number;
  bytes: number;
  totalBytes: number;
}

export interface RestoreOptions {
  reader: Pick<ChunkReader, 'get' | 'getMany'>;
  tree: ChunkId;
  target: string;
  /** Turn metadata warnings into errors. */
  strict?: boolean;
  onWarning?: (message: string) => void;
  progress?: RestoreProgress;
}

export class RestoreError extends ClonerError {
  override readonly code = 'RESTORE_FAILED';
}

/** One manifest entry with its target-relative path ("" for the root, else "/etc/hostname") and depth. */
export interface TreeItem {
  rel: string;
  entry: Entry;
  depth: number;
}

const MAX_DEPTH = 2048;
const MAX_OPEN_FILES = 128;

export function newRestoreProgress(): RestoreProgress {
  return { entries: 0, files: 0, bytes: 0, totalBytes: 0 };
}

/** Loads and checks the whole manifest: every item with its path, in path (pre-)order. */
export async function loadTree(reader: Pick<ChunkReader, 'get' | 'getMany'>, tree: ChunkId): Promise<TreeItem[]> {
  const items: TreeItem[] = [];
  let rootMeta: DirectoryObject['root'];
  async function walk(id: ChunkId, rel: string, depth: number): Promise<void> {
    if (depth > MAX_DEPTH) throw new ManifestError(`manifest ${rel}: deeper than ${MAX_DEPTH} levels`);
    const dir = parseDirectory(await getJsonObject(reader, id), rel || '/');
    if (depth === 0) rootMeta = dir.root;
    for (const entry of dir.entries) {
      const childRel = `${rel}/${entry.name}`;
      items.push({ rel: childRel, entry, depth });
      if (entry.type === 'dir') await walk(entry.tree, childRel, depth + 1);
    }
  }
  await walk(tree, '', 0);
  // The root directory itself, as an item with the empty path, restored onto the target.
  if (rootMeta) items.unshift({ rel: '', entry: { ...rootMeta, name: '.', type: 'dir', tree }, depth: -1 });
  return items;
}

export async function restoreTree(opts: RestoreOptions): Promise<RestoreProgress> {
  const progress = opts.progress ?? newRestoreProgress();
  const warn = (message: string) => {
    if (opts.strict) throw new RestoreError(message, 'run without --strict to restore with warnings');
    opts.onWarning?.(message);
  };
  const targetStat = await fs.lstat(opts.target).catch(() => null);
  if (!targetStat?.isDirectory()) {
    throw new RestoreError(`restore target ${opts.target} is not a directory`, 'create the directory (or mount the file system) first');
  }
  const target = await fs.realpath(opts.target);
  const items = await loadTree(opts.reader, opts.tree);
  const abs = (rel: string) => target + rel; // rel always starts with "/" and holds only checked names

  // Phase 1: directories, files, devices, fifos.
  const groupPrimary = new Map<string, string>();
  const dataFiles: Array<{ path: string; entry: FileEntry }> = [];
  const deferredLinks: Array<{ path: string; primary: string }> = [];
  const symlinks: TreeItem[] = [];
  for (const item of items) {
    const p = abs(item.rel);
    const e = item.entry;
    switch (e.type) {
      case 'dir':
        try {
          await fs.mkdir(p, 0o700);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
          const st = await fs.lstat(p);
          if (!st.isDirectory()) {
            throw new RestoreError(`restore target already has a non-directory at ${item.rel}`, 'restore into an empty directory or a new file system');
          }
        }
        break;
      case 'file': {
        if (e.h !== undefined && groupPrimary.has(e.h)) {
          deferredLinks.push({ path: p, primary: groupPrimary.get(e.h)! });
          break;
        }
        if (e.h !== undefined) groupPrimary.set(e.h, p);
        // Synchronous calls: tens of thousands of small files cost a syscall each, not a
        // thread-pool round trip each.
        const fd = openExclusive(p, item.rel);
        try {
          fsSync.ftruncateSync(fd, e.size);
        } finally {
          fsSync.closeSync(fd);
        }
        dataFiles.push({ path: p, entry: e });
        progress.totalBytes += e.chunks.reduce((sum, c) => sum + c[1], 0);
        break;
      }
      case 'char':
      case 'block':
      case 'fifo': {
        try {
          mknodEntry(p, e);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
            throw new RestoreError(`restore target already has ${item.rel}`, 'restore into an empty directory or a new file system');
          }
          warn(`cannot create ${e.type} ${item.rel}: ${(err as NodeJS.ErrnoException).code}`);
        }
        break;
      }
      case 'symlink':
        symlinks.push(item);
        break;
    }
    progress.entries++;
  }

  // Phase 2: file data, in the order the store finds cheapest.
  await writeChunks(opts.reader, dataFiles.map((f) => f.path), chunkTargets(dataFiles.map((f) => f.entry)), progress);

  // Phase 3: hardlinks, then symlinks.
  for (const link of deferredLinks) await fs.link(link.primary, link.path);
  for (const item of symlinks) {
    try {
      await fs.symlink((item.entry as { target: string }).target, abs(item.rel));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
        throw new RestoreError(`restore target already has ${item.rel}`, 'restore into an empty directory or a new file system');
      }
      throw err;
    }
  }

  // Phase 4: metadata.
  applyTreeMetadata(items, abs, warn);
  progress.files = dataFiles.length;
  return progress;
}

/** Creates a device node or fifo (mode 0600 until the metadata phase). */
export function mknodEntry(p: string, e: DeviceEntry | FifoEntry): void {
  const typeBits = e.type === 'char' ? fsc.S_IFCHR : e.type === 'block' ? fsc.S_IFBLK : fsc.S_IFIFO;
  fsx.mknod(p, typeBits | 0o600, e.type === 'fifo' ? 0 : e.rdev[0], e.type === 'fifo' ? 0 : e.rdev[1]);
}

function openExclusive(p: string, rel: string): number {
  try {
    return fsSync.openSync(p, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new RestoreError(`restore target already has ${rel}`, 'restore into an empty directory or a new file system');
    }
    throw err;
  }
}

/** Chunk id -> every (file index, offset, length) that holds it. */
export type ChunkTargets = Map<ChunkId, Array<[number, number, number]>>;

/** Where every chunk of `entries` goes; `skip(fileIndex, offset)` leaves a place out (already filled). */
export function chunkTargets(entries: FileEntry[], skip?: (fileIndex: number, offset: number) => boolean): ChunkTargets {
  const targets: ChunkTargets = new Map();
  entries.forEach((entry, index) => {
    for (const [offset, length, id] of entry.chunks) {
      if (skip?.(index, offset)) continue;
      let list = targets.get(id);
      if (!list) targets.set(id, (list = []));
      list.push([index, offset, length]);
    }
  });
  return targets;
}

/**
 * Writes every chunk to every place that holds it (`targets`, indexes into `paths`).
 * Chunks arrive in the reader's cheapest order; writes are synchronous pwrites
 * (page-cache writes are far cheaper than a thread-pool hop) and a file is kept open
 * until its last chunk is written, at most MAX_OPEN_FILES at once.
 */
export async function writeChunks(reader: Pick<ChunkReader, 'getMany'>, paths: string[], targets: ChunkTargets, progress: RestoreProgress, onChunk?: (bytes: number) => void): Promise<void> {
  const remaining = new Array<number>(paths.length).fill(0);
  for (const list of targets.values()) for (const [index] of list) remaining[index]++;
  const open = new Map<number, number>();
  try {
    for await (const [id, data] of reader.getMany(targets.keys())) {
      onChunk?.(data.length);
      for (const [index, offset, length] of targets.get(id) ?? []) {
        if (data.length !== length) {
          throw new ManifestError(`manifest: chunk ${id} of ${paths[index]} is ${data.length} bytes, listed as ${length}`);
        }
        let fd = open.get(index);
        if (fd === undefined) {
          if (open.size >= MAX_OPEN_FILES) {
            const [oldIndex, oldFd] = open.entries().next().value as [number, number];
            open.delete(oldIndex);
            fsSync.closeSync(oldFd);
          }
          fd = fsSync.openSync(paths[index], fsc.O_WRONLY | fsc.O_NOFOLLOW);
          open.set(index, fd);
        }
        let written = 0;
        while (written < length) written += fsSync.writeSync(fd, data, written, length - written, offset + written);
        progress.bytes += length;
        if (--remaining[index] === 0) {
          open.delete(index);
          fsSync.closeSync(fd);
          progress.files++;
        }
      }
    }
  } finally {
    for (const fd of open.values()) fsSync.closeSync(fd);
  }
}

/**
 * The metadata phase of restore and sync: owner, mode, xattrs and times of every item
 * (paths from `abs(rel)`), best effort through `warn`; directories last and deepest first,
 * so writing into them does not disturb their times. Owners are set only when running as root.
 */
export function applyTreeMetadata(items: TreeItem[], abs: (rel: string) => string, warn: (message: string) => void): void {
  const isRoot = process.getuid?.() === 0;
  const applied = new Set<string>();
  for (const item of items) if (item.entry.type !== 'dir') applyMetadata(abs(item.rel), item.entry, isRoot, warn, applied);
  for (const item of items.filter((i) => i.entry.type === 'dir').sort((a, b) => b.depth - a.depth)) applyMetadata(abs(item.rel), item.entry, isRoot, warn, applied);
}

/** Owner, mode, xattrs and times of one restored path (once per path: hardlinks share them). */
function applyMetadata(p: string, e: Entry, isRoot: boolean, warn: (m: string) => void, applied: Set<string>): void {
  if (applied.has(p)) return;
  applied.add(p);
  const attempt = (what: string, action: () => void) => {
    try {
      action();
    } catch (err) {
      warn(`${what} on ${p}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  };
  if (isRoot) attempt('lchown', () => fsSync.lchownSync(p, e.uid, e.gid));
  if (e.type !== 'symlink') attempt('chmod', () => fsSync.chmodSync(p, e.mode));
  for (const [name, value] of Object.entries(e.xattrs ?? {})) {
    attempt(`setxattr ${name}`, () => fsx.lsetxattr(p, name, Buffer.from(value, 'base64')));
  }
  attempt('utimes', () => fsx.lutimesNs(p, e.mtime[0], e.mtime[1], e.mtime[0], e.mtime[1]));
}

