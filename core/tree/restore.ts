/**
 * Restore: a captured tree into an empty directory or a freshly made file system.
 *
 * The driver first loads and checks every directory object (manifest.ts rejects unsafe
 * names, names that are not the escaped form of their bytes, two entries on the same
 * bytes, bad chunk lists), then works in phases so that no write can pass through a
 * symlink and nothing lands outside the target. Every path is reached through TargetRoot
 * (beneath.ts): parents are directory fds opened with openat2 RESOLVE_BENEATH |
 * RESOLVE_NO_SYMLINKS, only the last component is looked up, and names are bytes, so any
 * depth of tree and any name Linux allows restore as captured.
 *   1. directories, empty regular files (O_CREAT|O_EXCL|O_NOFOLLOW, sized with ftruncate so
 *      holes stay holes), devices and fifos, in path order; an existing directory is
 *      accepted only if lstat shows a real directory; an entry that cannot be created
 *      (mknod refused) is reported and left out of every later phase;
 *   2. file data: every chunk id is asked for once through `getMany`, which reads in pack
 *      order and in batches, and file-writer tasks put each chunk at every offset of every
 *      file that holds it (pwrite, bounded number of open files and writes in flight);
 *   3. hardlinks, to the first restored path of their group (never to a path from the
 *      manifest), then symlinks, last, so none exists while data is written;
 *   4. metadata, best effort with warnings (strict: errors), only on entries this run made
 *      (and, for sync, found): each is opened O_PATH|O_NOFOLLOW and checked to be the
 *      type the manifest says, then owner, mode, xattrs (after chown, which clears
 *      security.capability) and nanosecond times are set on that fd; a symlink gets
 *      lchown/lsetxattr/utimensat(AT_SYMLINK_NOFOLLOW) on its own name. No metadata call
 *      ever follows a symlink. Directories deepest first so their times are not disturbed.
 */
import * as fsSync from 'node:fs';
import { constants as fsc } from 'node:fs';
import * as fs from 'node:fs/promises';
import { fsx } from '../native/fsx.ts';
import type { ChunkId } from '../store/chunk-id.ts';
import type { ChunkReader } from '../store/interfaces.ts';
import { ObjectBatcher, parseObject } from './parent-objects.ts';
import { ManifestError, parseDirectory, type DeviceEntry, type DirectoryObject, type Entry, type FifoEntry, type FileEntry } from './manifest.ts';
import { ClonerError } from '../errors.ts';
import { applyTreeFlags } from './inode-flags.ts';
import { makeDirectory } from './subvolumes.ts';
import { chunkTargets, type ChunkTargets } from './chunk-targets.ts';
import { SharedValues } from './shared-values.ts';

export { makeDirectory, chunkTargets, type ChunkTargets };
import { TargetRoot, kindOf } from './beneath.ts';
import { displayName, encodeName } from './file-names.ts';

export interface RestoreProgress {
  entries: number;
  files: number;
  bytes: number;
  totalBytes: number;
  /** Files with data to write (what `files` counts up to), known once the data phase starts. */
  totalFiles?: number;
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

/**
 * Loads and checks the whole manifest: every item with its path, in path (pre-)order.
 * Subdirectories are loaded at once, their objects read in batches (parent-objects.ts: one
 * getMany per level of the tree): one GET per directory (2,769 on the bench's node tree)
 * cost a re-deploy ~1 s of CPU in socket writes alone.
 *
 * Memory (the whole tree is held for a deploy's length): each chunk id, each chunk list
 * (files with the same content) and each mtime is kept once, frozen (shared-values.ts; the
 * 8x bench tree: 247k chunk refs, 49k distinct ids, 37k distinct lists of 163k files,
 * 2,719 distinct mtimes of 196k: the loaded tree's heap 100 -> 66 MB). With `lean`, files
 * lose `ino` and `ctime`, which only the next capture's unchanged-file test reads (sync and
 * restore never do): ~90 B a file. The fields are set to undefined, not deleted, so the objects keep their shape.
 */
export async function loadTree(reader: Pick<ChunkReader, 'get' | 'getMany'>, tree: ChunkId, opts: { lean?: boolean } = {}): Promise<TreeItem[]> {
  type Nested = Array<TreeItem | Nested>;
  const objects = new ObjectBatcher(reader);
  const shared = new SharedValues();
  let rootMeta: DirectoryObject['root'];
  async function walk(id: ChunkId, rel: string, depth: number): Promise<Nested> {
    if (depth > MAX_DEPTH) throw new ManifestError(`manifest ${rel}: deeper than ${MAX_DEPTH} levels`);
    const dir = parseDirectory(parseObject(await objects.load(id), id), rel || '/');
    if (depth === 0) rootMeta = dir.root;
    for (const entry of dir.entries) {
      shared.entry(entry);
      if (opts.lean && entry.type === 'file') entry.ino = entry.ctime = undefined;
    }
    // Every subdirectory starts now; each failure is handled here and thrown below, in path order.
    const subs = dir.entries.map((entry) => {
      if (entry.type !== 'dir') return undefined;
      const sub = walk(entry.tree, `${rel}/${entry.name}`, depth + 1);
      sub.catch(() => undefined);
      return sub;
    });
    const out: Nested = [];
    for (const [i, entry] of dir.entries.entries()) {
      out.push({ rel: `${rel}/${entry.name}`, entry, depth });
      if (subs[i]) out.push(await subs[i]);
    }
    return out;
  }
  const items: TreeItem[] = [];
  const flatten = (list: Nested): void => list.forEach((x) => (Array.isArray(x) ? flatten(x) : items.push(x)));
  flatten(await walk(tree, '', 0));
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
  const items = await loadTree(opts.reader, opts.tree, { lean: true });
  const root = TargetRoot.open(opts.target);
  try {
    return await restoreInto(opts, root, items, progress, warn);
  } finally {
    root.close();
  }
}

async function restoreInto(opts: RestoreOptions, root: TargetRoot, items: TreeItem[], progress: RestoreProgress, warn: (message: string) => void): Promise<RestoreProgress> {
  // Phase 1: directories, files, devices, fifos.
  const groupPrimary = new Map<string, string>();
  const dataFiles: Array<{ rel: string; entry: FileEntry }> = [];
  const deferredLinks: Array<{ rel: string; primary: string }> = [];
  const symlinks: TreeItem[] = [];
  /** Entries this run could not create: no later phase touches their paths. */
  const notCreated = new Set<string>();
  for (const item of items) {
    root.trim();
    const e = item.entry;
    switch (e.type) {
      case 'dir':
        if (item.rel === '') break;
        try {
          makeDirectory(root, item.rel, e, warn);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
          if (!fsSync.lstatSync(root.at(item.rel)).isDirectory()) {
            throw new RestoreError(`restore target already has a non-directory at ${displayName(item.rel)}`, 'restore into an empty directory or a new file system');
          }
        }
        break;
      case 'file': {
        if (e.h !== undefined && groupPrimary.has(e.h)) {
          deferredLinks.push({ rel: item.rel, primary: groupPrimary.get(e.h)! });
          break;
        }
        if (e.h !== undefined) groupPrimary.set(e.h, item.rel);
        // Synchronous calls: tens of thousands of small files cost a syscall each, not a
        // thread-pool round trip each.
        const fd = openExclusive(root, item.rel);
        try {
          fsSync.ftruncateSync(fd, e.size);
        } finally {
          fsSync.closeSync(fd);
        }
        dataFiles.push(item as TreeItem & { entry: FileEntry });
        progress.totalBytes += e.chunks.reduce((sum, c) => sum + c[1], 0);
        break;
      }
      case 'char':
      case 'block':
      case 'fifo': {
        try {
          mknodEntry(root.at(item.rel), e);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
            throw new RestoreError(`restore target already has ${displayName(item.rel)}`, 'restore into an empty directory or a new file system');
          }
          notCreated.add(item.rel);
          warn(`cannot create ${e.type} ${displayName(item.rel)}: ${(err as NodeJS.ErrnoException).code}; not restored`);
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
  root.trim();
  await writeChunks(opts.reader, dataFiles.map((f) => f.rel), (i) => root.open(dataFiles[i].rel, fsc.O_WRONLY), chunkTargets(dataFiles.map((f) => f.entry)), progress);

  // Phase 3: hardlinks, then symlinks.
  for (const link of deferredLinks) {
    root.trim();
    fsSync.linkSync(root.at(link.primary), root.at(link.rel));
  }
  for (const item of symlinks) {
    root.trim();
    try {
      fsSync.symlinkSync(encodeName((item.entry as { target: string }).target), root.at(item.rel));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
        throw new RestoreError(`restore target already has ${displayName(item.rel)}`, 'restore into an empty directory or a new file system');
      }
      throw err;
    }
  }

  // Phase 4: metadata.
  applyTreeMetadata(items.filter((i) => !notCreated.has(i.rel)), root, warn);
  progress.files = dataFiles.length;
  return progress;
}

/** Creates a device node or fifo (mode 0600 until the metadata phase) at `p` (a TargetRoot path). */
export function mknodEntry(p: Buffer, e: DeviceEntry | FifoEntry): void {
  const typeBits = e.type === 'char' ? fsc.S_IFCHR : e.type === 'block' ? fsc.S_IFBLK : fsc.S_IFIFO;
  fsx.mknod(p, typeBits | 0o600, e.type === 'fifo' ? 0 : e.rdev[0], e.type === 'fifo' ? 0 : e.rdev[1]);
}

function openExclusive(root: TargetRoot, rel: string): number {
  try {
    return root.open(rel, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, 0o600);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST' || code === 'ELOOP') {
      throw new RestoreError(`restore target already has ${displayName(rel)}`, 'restore into an empty directory or a new file system');
    }
    throw err;
  }
}

/**
 * Writes every chunk to every place that holds it (`targets`, indexes into `paths`, which
 * name the files in messages; `openFile(index)` opens one for writing, never through a symlink).
 * Chunks arrive in the reader's cheapest order; writes are synchronous pwrites
 * (page-cache writes are far cheaper than a thread-pool hop) and a file is kept open
 * until its last chunk is written, at most MAX_OPEN_FILES at once.
 */
export async function writeChunks(reader: Pick<ChunkReader, 'getMany'>, paths: string[], openFile: (index: number) => number, targets: ChunkTargets, progress: RestoreProgress, onChunk?: (bytes: number) => void): Promise<void> {
  const remaining = targets.placesPerFile(paths.length);
  // The files counted below as their last chunk is written: the total for the ETA.
  progress.totalFiles = (progress.totalFiles ?? 0) + remaining.filter((n) => n > 0).length;
  const open = new Map<number, number>();
  try {
    // Transient: every place of a chunk is written before the next is asked for.
    for await (const [id, data] of reader.getMany(targets.ids(), { transient: true })) {
      onChunk?.(data.length);
      targets.places(id, (index, offset, length) => {
        if (data.length !== length) {
          throw new ManifestError(`manifest: chunk ${id} of ${displayName(paths[index])} is ${data.length} bytes, listed as ${length}`);
        }
        let fd = open.get(index);
        if (fd === undefined) {
          if (open.size >= MAX_OPEN_FILES) {
            const [oldIndex, oldFd] = open.entries().next().value as [number, number];
            open.delete(oldIndex);
            fsSync.closeSync(oldFd);
          }
          fd = openFile(index);
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
      });
    }
  } finally {
    for (const fd of open.values()) fsSync.closeSync(fd);
  }
}

/**
 * The metadata phase of restore and sync: owner, mode, xattrs and times of every item,
 * then inode flags (inode-flags.ts),
 * best effort through `warn`; directories last and deepest first, so writing into them
 * does not disturb their times. Owners are set only when running as root. Each entry is
 * reached beneath `root` without following a symlink and must be the type its manifest
 * entry says (else nothing is set on it); hardlinked paths share one inode, set once.
 */
export function applyTreeMetadata(items: TreeItem[], root: TargetRoot, warn: (message: string) => void, keepFlags?: Map<string, number>): void {
  const isRoot = process.getuid?.() === 0;
  const applied = new Set<string>();
  for (const item of items) if (item.entry.type !== 'dir') applyMetadata(root, item, isRoot, warn, applied);
  for (const item of items.filter((i) => i.entry.type === 'dir').sort((a, b) => b.depth - a.depth)) applyMetadata(root, item, isRoot, warn, applied);
  // Inode flags last: an immutable file takes no owner, mode, xattr or time after them.
  applyTreeFlags(items, root, warn, keepFlags);

}

/** Owner, mode, xattrs and times of one restored entry. */
function applyMetadata(root: TargetRoot, item: TreeItem, isRoot: boolean, warn: (m: string) => void, applied: Set<string>): void {
  root.trim();
  const e = item.entry;
  const shown = displayName(item.rel || '/');
  const attempt = (what: string, action: () => void) => {
    try {
      action();
    } catch (err) {
      warn(`${what} on ${shown}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  };
  if (e.type === 'symlink') {
    // A symlink's own metadata, by its name in its (fd-held) parent; nothing follows it.
    let p: Buffer;
    try {
      p = root.at(item.rel);
      if (!fsSync.lstatSync(p).isSymbolicLink()) {
        warn(`${shown} is not the symlink this restore made; its metadata is not set`);
        return;
      }
    } catch (err) {
      warn(`cannot reach ${shown}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      return;
    }
    if (isRoot) attempt('lchown', () => fsSync.lchownSync(p, e.uid, e.gid));
    for (const [name, value] of Object.entries(e.xattrs ?? {})) attempt(`setxattr ${name}`, () => fsx.lsetxattr(p, name, Buffer.from(value, 'base64')));
    attempt('utimes', () => fsx.lutimesNs(p, e.mtime[0], e.mtime[1], e.mtime[0], e.mtime[1]));
    return;
  }
  let fd: number;
  try {
    fd = root.open(item.rel, fsx.O_PATH);
  } catch (err) {
    warn(`cannot reach ${shown} to set its metadata: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    return;
  }
  try {
    const st = fsSync.fstatSync(fd, { bigint: true });
    if (kindOf(st) !== e.type) {
      warn(`${shown} is a ${kindOf(st)}, not the ${e.type} this restore made; its metadata is not set`);
      return;
    }
    // Only an inode with more than one name can be met again (not a string per entry).
    if (st.nlink > 1n && e.type === 'file') {
      const inode = `${st.dev}:${st.ino}`;
      if (applied.has(inode)) return;
      applied.add(inode);
    }
    // What is already right is left (a re-deploy keeps most entries as they are): chown only
    // when the owner differs, so the mode it may clear is then set again.
    const owned = st.uid === BigInt(e.uid) && st.gid === BigInt(e.gid);
    if (isRoot && !owned) attempt('chown', () => fsx.fdChown(fd, e.uid, e.gid));
    if (!owned || Number(st.mode & 0o7777n) !== e.mode) attempt('chmod', () => fsx.fdChmod(fd, e.mode));
    for (const [name, value] of Object.entries(e.xattrs ?? {})) attempt(`setxattr ${name}`, () => fsx.fdSetxattr(fd, name, Buffer.from(value, 'base64')));
    if (st.mtimeNs !== BigInt(e.mtime[0]) * 1_000_000_000n + BigInt(e.mtime[1]) || st.atimeNs !== st.mtimeNs) attempt('utimes', () => fsx.fdUtimesNs(fd, e.mtime[0], e.mtime[1], e.mtime[0], e.mtime[1]));
  } finally {
    fsSync.closeSync(fd);
  }
}
