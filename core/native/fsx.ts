/**
 * Typed access to the fsx native addon (core/native/fsx.c), built by `npm ci` through
 * node-gyp. It adds what node:fs lacks: nanosecond lutimes, l*xattr, SEEK_DATA/SEEK_HOLE,
 * FS_IOC_GETFLAGS/SETFLAGS (inode flags), mknod, openBeneath (openat2 RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS, or a component walk
 * with O_NOFOLLOW where openat2 is missing) and metadata calls on an fd (also an O_PATH
 * one), and `lstatPlain`: lstat with nanosecond times and 64-bit fields as plain numbers
 * (no BigInt). Paths may be Buffers: file names are bytes, not necessarily UTF-8.
 * Loading the addon also pins glibc malloc's mmap and trim thresholds for the process
 * (memory.c: large chunk buffers stay mmap'd, so the resident size does not ratchet up).
 */
import { read } from 'node:fs';
import { createRequire } from 'node:module';

type PathLike = string | Buffer;

export interface Fsx {
  /** open(2)'s O_PATH (node:fs does not export it): an fd that names an inode without opening it for I/O. */
  readonly O_PATH: number;
  lutimesNs(path: PathLike, atimeSec: number, atimeNsec: number, mtimeSec: number, mtimeNsec: number): void;
  llistxattr(path: PathLike): string[];
  lgetxattr(path: PathLike, name: string): Buffer;
  lsetxattr(path: PathLike, name: string, value: Buffer): void;
  seekData(fd: number, offset: number): number;
  seekHole(fd: number, offset: number): number;
  mknod(path: PathLike, mode: number, major: number, minor: number): void;
  /** An fd for `path` below `dirfd` (relative, no symlink followed anywhere, ".." cannot leave); O_NOFOLLOW|O_CLOEXEC added. */
  openBeneath(dirfd: number, path: PathLike, flags: number, mode: number): number;
  fdChown(fd: number, uid: number, gid: number): void;
  fdChmod(fd: number, mode: number): void;
  fdSetxattr(fd: number, name: string, value: Buffer): void;
  fdUtimesNs(fd: number, atimeSec: number, atimeNsec: number, mtimeSec: number, mtimeNsec: number): void;
  /** FS_IOC_GETFLAGS of path itself (opened O_NOFOLLOW|O_NONBLOCK): chattr's inode flags. */
  lgetflags(path: PathLike): number;
  /** FS_IOC_GETFLAGS / SETFLAGS of the inode an fd holds (an O_PATH fd is reopened read-only). */
  fdGetFlags(fd: number): number;
  fdSetFlags(fd: number, flags: number): void;
  /** A btrfs subvolume `name` (one component) in the directory `dirPath` (BTRFS_IOC_SUBVOL_CREATE). */
  subvolCreate(dirPath: PathLike, name: PathLike): void;
  /** statx(2) (lstat) into `out` (18 doubles, see stat.c); lstatPlain is the way to call it. */
  lstatInto(path: PathLike, out: Float64Array): void;
  /** preadv2(RWF_NOWAIT): bytes read from the page cache (0 at EOF), or -1 when the read would wait for a disk (or the file system cannot tell). */
  preadNowait(fd: number, buffer: Uint8Array, offset: number, length: number, position: number): number;
  /** Whether loading the addon pinned glibc malloc's thresholds (false without glibc, or when the environment sets them). */
  readonly mallocPinned: boolean;
}

const require = createRequire(import.meta.url);
export const fsx: Fsx = require('../../build/Release/fsx.node') as Fsx;

const S_IFMT = 0o170000;

/**
 * What capture reads of an lstat, without a BigInt: every number exact (times as
 * [seconds, nanoseconds] with 0 <= nanoseconds < 1e9, as the manifest's Timestamp; the
 * inode number as a decimal string, since it may pass 2^53).
 */
export class PlainStats {
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly nlink: number;
  readonly size: number;
  readonly blocks: number;
  readonly dev: number;
  readonly rdev: number;
  readonly ino: string;
  readonly atime: [number, number];
  readonly mtime: [number, number];
  readonly ctime: [number, number];
  /** The immutable (0x10) and append-only (0x20) attributes the inode has (statx; the bits of inode flags i and a). */
  readonly attributes: number;
  /** Which of those two its file system reports (0: unknown, ask FS_IOC_GETFLAGS). */
  readonly attributesKnown: number;
  /** `o`: lstatInto's 18 values. */
  constructor(o: Float64Array, ino: string) {
    this.mode = o[0];
    this.uid = o[1];
    this.gid = o[2];
    this.nlink = o[3];
    this.size = o[4];
    this.blocks = o[5];
    this.dev = o[6];
    this.rdev = o[7];
    this.ino = ino;
    this.atime = [o[10], o[11]];
    this.mtime = [o[12], o[13]];
    this.ctime = [o[14], o[15]];
    this.attributes = o[16];
    this.attributesKnown = o[17];
  }
  isFile(): boolean { return (this.mode & S_IFMT) === 0o100000; }
  isDirectory(): boolean { return (this.mode & S_IFMT) === 0o040000; }
  isSymbolicLink(): boolean { return (this.mode & S_IFMT) === 0o120000; }
  isCharacterDevice(): boolean { return (this.mode & S_IFMT) === 0o020000; }
  isBlockDevice(): boolean { return (this.mode & S_IFMT) === 0o060000; }
  isFIFO(): boolean { return (this.mode & S_IFMT) === 0o010000; }
  isSocket(): boolean { return (this.mode & S_IFMT) === 0o140000; }
}

const statOut = new Float64Array(18);

/** lstat(2) of `path` as PlainStats; throws Node-style errors (err.code 'ENOENT', ...). */
export function lstatPlain(path: PathLike): PlainStats {
  const o = statOut;
  fsx.lstatInto(path, o);
  const hi = o[8];
  const lo = o[9];
  // Exact as a double below 2^53 (hi < 2^21); past it, through a BigInt (overlayfs xino, rare).
  const ino = hi < 0x200000 ? String(hi * 0x100000000 + lo) : ((BigInt(hi) << 32n) | BigInt(lo)).toString();
  return new PlainStats(o, ino);
}

/**
 * A positioned read (as fs.read's: bytes read, 0 at end of file) that copies what the page
 * cache holds at once, on this thread (preadNowait), and goes through the thread pool only
 * for a read that would wait for a disk, or for an empty answer (so end of file is always
 * fs.read's). On this 2-core VM a cached 1 MiB window read through the thread pool cost
 * ~3x the CPU of a synchronous read, and capture spends ~1.4 s of its main thread there.
 */
export function readCachedFirst(fd: number, buffer: Uint8Array, offset: number, length: number, position: number): Promise<number> {
  const n = length > 0 ? fsx.preadNowait(fd, buffer, offset, length, position) : -1;
  if (n > 0) return Promise.resolve(n);
  return new Promise((resolve, reject) => read(fd, buffer, offset, length, position, (err, bytesRead) => (err ? reject(err) : resolve(bytesRead))));
}
