/**
 * Typed access to the fsx native addon (core/native/fsx.c), built by `npm ci` through
 * node-gyp. It adds what node:fs lacks: nanosecond lutimes, l*xattr, SEEK_DATA/SEEK_HOLE,
 * FS_IOC_GETFLAGS/SETFLAGS (inode flags), mknod, openBeneath (openat2 RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS, or a component walk
 * with O_NOFOLLOW where openat2 is missing) and metadata calls on an fd (also an O_PATH
 * one). Paths may be Buffers: file names are bytes, not necessarily UTF-8.
 */
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
}

const require = createRequire(import.meta.url);
export const fsx: Fsx = require('../../build/Release/fsx.node') as Fsx;
