/**
 * A target root that restore, sync and the agent's identity step write into without ever
 * following a symlink or leaving it, at any depth of tree.
 *
 * Algorithm: the target directory is opened once; every directory below it is reached
 * with fsx.openBeneath (openat2 RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS, or an O_NOFOLLOW
 * component walk) from the nearest directory already open, one component at a time, and
 * its fd is cached by its tree path. An entry is then named for node:fs as
 * "/proc/self/fd/<parent fd>/<name bytes>": the kernel jumps straight to the directory the
 * fd holds and looks up only the last component, so no path is ever longer than a name
 * plus a few bytes (trees deeper than PATH_MAX work), a symlink placed in a parent's
 * place is never passed through, and the l*-calls and O_NOFOLLOW opens used on the last
 * component do not follow it either. Metadata is applied through an O_PATH fd of the
 * entry itself (fsx.fd*), after checking it is the type the manifest says.
 *
 * Paths are tree paths as manifests give them: "" for the root, else "/etc/hostname",
 * each name in the escaped form of file-names.ts (bytes, not necessarily UTF-8).
 * Needs /proc (the boot environment and any Linux host have it).
 */
import * as fs from 'node:fs';
import { constants as fsc } from 'node:fs';
import { fsx } from '../native/fsx.ts';
import { ClonerError } from '../errors.ts';
import { encodeName } from './file-names.ts';

export class TargetPathError extends ClonerError {
  override readonly code = 'TARGET_PATH_UNSAFE';
}

/** Directory fds kept open at once; past this the cache is emptied at the next `trim()`. */
const MAX_CACHED_DIRS = 512;

const parentOf = (rel: string) => rel.slice(0, rel.lastIndexOf('/'));
const nameOf = (rel: string) => rel.slice(rel.lastIndexOf('/') + 1);

export class TargetRoot {
  /** The target as the caller named it (for messages). */
  readonly path: string;
  private readonly rootFd: number;
  private readonly dirs = new Map<string, number>();
  private readonly pinned = new Set<string>();

  private constructor(path: string, fd: number) {
    this.path = path;
    this.rootFd = fd;
  }

  /** Opens the target directory (which may itself be reached through symlinks: the caller named it). */
  static open(target: string): TargetRoot {
    let fd: number;
    try {
      fd = fs.openSync(target, fsc.O_RDONLY | fsc.O_DIRECTORY);
    } catch (err) {
      throw new TargetPathError(`target ${target} is not a directory (${(err as NodeJS.ErrnoException).code})`, 'create the directory (or mount the file system) first');
    }
    if (!fs.existsSync(`/proc/self/fd/${fd}`)) {
      fs.closeSync(fd);
      throw new TargetPathError('/proc is not mounted', 'mount it (mount -t proc proc /proc): writes below the target go through /proc/self/fd');
    }
    return new TargetRoot(target, fd);
  }

  /** The fd of the directory at `rel`, opened beneath the root without following symlinks. Throws ENOTDIR/ELOOP errors for a symlink or non-directory on the way, ENOENT for a missing one. */
  dirFd(rel: string): number {
    if (rel === '') return this.rootFd;
    const cached = this.dirs.get(rel);
    if (cached !== undefined) return cached;
    // Nearest open ancestor, then down one component at a time (never a long path).
    const missing: string[] = [];
    let at = rel;
    while (at !== '' && !this.dirs.has(at)) {
      missing.push(at);
      at = parentOf(at);
    }
    let fd = at === '' ? this.rootFd : this.dirs.get(at)!;
    for (const dir of missing.reverse()) {
      fd = fsx.openBeneath(fd, encodeName(nameOf(dir)), fsx.O_PATH | fsc.O_DIRECTORY, 0);
      this.dirs.set(dir, fd);
    }
    return fd;
  }

  /** "/proc/self/fd/N" naming the directory at `rel` (valid until the next trim or forget). */
  dirPath(rel: string): Buffer {
    return Buffer.from(`/proc/self/fd/${this.dirFd(rel)}`);
  }

  /** A node:fs path for the entry `rel` whose last component only is looked up (valid until the next trim or forget). */
  at(rel: string): Buffer {
    if (rel === '') return this.dirPath('');
    return Buffer.concat([Buffer.from(`/proc/self/fd/${this.dirFd(parentOf(rel))}/`), encodeName(nameOf(rel))]);
  }

  /** An fd for the entry `rel` (never a symlink: ELOOP), opened with `flags` | O_NOFOLLOW. */
  open(rel: string, flags: number, mode = 0o600): number {
    if (rel === '') return fsx.openBeneath(this.rootFd, '.', flags, mode);
    return fsx.openBeneath(this.dirFd(parentOf(rel)), encodeName(nameOf(rel)), flags, mode);
  }

  /** Keeps the directory `rel` open until close (its dirPath stays valid across trims). */
  pin(rel: string): number {
    const fd = this.dirFd(rel);
    this.pinned.add(rel);
    return fd;
  }

  /** Drops the cached fds of `rel` and everything under it (after it was removed or replaced). */
  forget(rel: string): void {
    for (const [dir, fd] of this.dirs) {
      if (dir === rel || dir.startsWith(`${rel}/`)) {
        fs.closeSync(fd);
        this.dirs.delete(dir);
        this.pinned.delete(dir);
      }
    }
  }

  /** Closes cached directory fds once there are many; call only where no `at()` path is in use. */
  trim(): void {
    if (this.dirs.size <= MAX_CACHED_DIRS) return;
    for (const [dir, fd] of this.dirs) {
      if (this.pinned.has(dir)) continue;
      fs.closeSync(fd);
      this.dirs.delete(dir);
    }
  }

  close(): void {
    for (const fd of this.dirs.values()) fs.closeSync(fd);
    this.dirs.clear();
    this.pinned.clear();
    fs.closeSync(this.rootFd);
  }
}

export type EntryKind = 'file' | 'dir' | 'symlink' | 'char' | 'block' | 'fifo';

/** The kind of inode a stat describes. */
export function kindOf(st: Pick<fs.Stats, 'isDirectory' | 'isFile' | 'isSymbolicLink' | 'isCharacterDevice' | 'isBlockDevice' | 'isFIFO'>): EntryKind | 'other' {
  if (st.isDirectory()) return 'dir';
  if (st.isFile()) return 'file';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isCharacterDevice()) return 'char';
  if (st.isBlockDevice()) return 'block';
  if (st.isFIFO()) return 'fifo';
  return 'other';
}

/** Mount points at or under `target` (target-relative, '' for the target), deepest first. */
export function mountRoots(target: string): string[] {
  const roots = new Set<string>(['']);
  let text = '';
  try {
    text = fs.readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return [''];
  }
  for (const line of text.split('\n')) {
    const field = line.split(' ')[4];
    if (!field) continue;
    const mountPoint = field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
    if (mountPoint === target) roots.add('');
    else if (mountPoint.startsWith(`${target}/`)) roots.add(mountPoint.slice(target.length));
  }
  return [...roots].sort((a, b) => b.length - a.length);
}
