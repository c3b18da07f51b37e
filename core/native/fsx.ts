/**
 * Typed access to the fsx native addon (core/native/fsx.c), built by `npm ci` through
 * node-gyp. It adds what node:fs lacks: nanosecond lutimes, l*xattr, SEEK_DATA/SEEK_HOLE
 * and mknod.
 */
import { createRequire } from 'node:module';

export interface Fsx {
  lutimesNs(path: string, atimeSec: number, atimeNsec: number, mtimeSec: number, mtimeNsec: number): void;
  llistxattr(path: string): string[];
  lgetxattr(path: string, name: string): Buffer;
  lsetxattr(path: string, name: string, value: Buffer): void;
  seekData(fd: number, offset: number): number;
  seekHole(fd: number, offset: number): number;
  mknod(path: string, mode: number, major: number, minor: number): void;
}

const require = createRequire(import.meta.url);
export const fsx: Fsx = require('../../build/Release/fsx.node') as Fsx;
