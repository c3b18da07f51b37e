/**
 * Manifest fields from an lstat (nanosecond timestamps, device numbers), and the test an
 * incremental capture trusts: a file whose size, inode, mtime and ctime are all as its
 * parent revision recorded them is unchanged. Writing data sets mtime and ctime; changing
 * an extended attribute or an inode flag (setxattr, FS_IOC_SETFLAGS), a mode or an owner
 * sets ctime; so such a file keeps its chunks, and (where the parent read them) its xattrs
 * and inode flags, without another read.
 */
import type { Entry, FileEntry, Timestamp } from './manifest.ts';

export function timestampOf(ns: bigint): Timestamp {
  const sec = ns / 1_000_000_000n;
  let nsec = ns % 1_000_000_000n;
  let s = sec;
  if (nsec < 0n) {
    nsec += 1_000_000_000n;
    s -= 1n;
  }
  return [Number(s), Number(nsec)];
}

function sameTime(a: Timestamp | undefined, b: Timestamp): boolean {
  return !!a && a[0] === b[0] && a[1] === b[1];
}

/** True when `st` (a regular file's lstat, BigIntStats or fsx's PlainStats) is the file `prev` recorded: same size, inode, mtime and ctime. */
export function unchangedFile(prev: FileEntry, st: { size: number | bigint; ino: string | bigint }, mtime: Timestamp, ctime: Timestamp): boolean {
  return prev.size === Number(st.size) && prev.ino === st.ino.toString() && sameTime(prev.ctime, ctime) && sameTime(prev.mtime, mtime);
}

/** glibc's major/minor split of a 64-bit dev_t. */
export function splitDev(rdev: bigint): [number, number] {
  return [Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn)), Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn & 0xffffffffn))];
}

/**
 * True when setting `entry`'s metadata on a file or symlink the sync leaves as it is, seen
 * by its scan as `st`, would change nothing: same owner, mode (a file's), mtime, an atime
 * equal to it, and no xattrs or inode flags to set (restore.ts applyMetadata's own tests).
 * A re-deploy then leaves out the O_PATH open and fstat of most of the node's entries.
 */
export function metadataRight(entry: Entry | undefined, st: { mode: number; uid: number; gid: number; mtime: Timestamp; atime: Timestamp; isFile(): boolean; isSymbolicLink(): boolean }): boolean {
  if (!entry || !(entry.type === 'file' ? st.isFile() : entry.type === 'symlink' && st.isSymbolicLink())) return false;
  if ((entry.xattrs && Object.keys(entry.xattrs).length) || (entry as { iflags?: string }).iflags) return false;
  const { mtime, atime } = st;
  return st.uid === entry.uid && st.gid === entry.gid && (entry.type === 'symlink' || (st.mode & 0o7777) === entry.mode) && sameTime(entry.mtime, mtime) && sameTime(mtime, atime);
}
