/**
 * Capture's readers of one entry: its data (cut into chunks and stored) and its xattrs.
 *
 * A live node changes while it is captured. A file is read between two fstat calls on the
 * open file; when its size, mtime or ctime moved in between, the copy may match no version
 * of the file, so it is read again, up to READ_ATTEMPTS times; one still changing after
 * that is stored as last read, with a warning that names it. The entry takes the size and
 * times of the read it stores.
 *
 * The open, the two fstat calls and the close are synchronous: on an inode the walk has
 * just lstat'ed they never wait for the disk, and each async one cost the main thread
 * ~70 µs of promise and thread-pool hop against ~7 µs (2 fstat a file: 2.3 s of a 21 s
 * capture profile, bench/peers.ts). The data reads stay asynchronous, so reads of several
 * files overlap on the disk. O_NONBLOCK: a file swapped for a FIFO since the lstat must not
 * block the open (it reads as empty); it changes nothing for a regular file.
 */
import { closeSync, fstatSync, openSync, constants as fsc, type BigIntStats } from 'node:fs';
import type { ChunkerParams } from '../chunker/fastcdc.ts';
import { fsx, readCachedFirst } from '../native/fsx.ts';
import type { ChunkId } from '../store/chunk-id.ts';
import { chunkFile, READ_WINDOW, type ReadableFile } from './file-chunks.ts';
import type { ChunkRef } from './manifest.ts';

/** Reads of a file that keeps changing before it is stored as last read (a log written to every few ms still settles within 3). */
export const READ_ATTEMPTS = 3;

export interface FileReader {
  chunker: ChunkerParams;
  /** O_NOATIME when we may use it (root), else 0. */
  noatime: number;
  put: (data: Buffer) => ChunkId;
  drain: () => Promise<void>;
  onChunk: () => void;
  onRead: (bytes: number) => void;
  warn: (message: string) => void;
  /** Free read buffers (READ_WINDOW + maxSize bytes): a read takes one or makes one, and gives it back. */
  buffers?: Buffer[];
}

export interface FileRead {
  refs: ChunkRef[];
  /** The open file's stat before the read that was stored. */
  stat: BigIntStats;
}

const same = (a: BigIntStats, b: BigIntStats) => a.size === b.size && a.mtimeNs === b.mtimeNs && a.ctimeNs === b.ctimeNs;

/** Reads, cuts and stores one file's data (without atime updates where allowed), again while it changes under the read. */
export async function readChunks(r: FileReader, file: Buffer, shown: string): Promise<FileRead> {
  let fd: number;
  try {
    fd = openSync(file, fsc.O_RDONLY | fsc.O_NOFOLLOW | fsc.O_NONBLOCK | r.noatime);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM' || !r.noatime) throw err;
    fd = openSync(file, fsc.O_RDONLY | fsc.O_NOFOLLOW | fsc.O_NONBLOCK);
  }
  const handle = readableFd(fd);
  const buffer = r.buffers?.pop() ?? Buffer.allocUnsafeSlow(READ_WINDOW + r.chunker.maxSize);
  try {
    for (let attempt = 1; ; attempt++) {
      const before = fstatSync(fd, { bigint: true });
      const refs = await chunkFile(handle, Number(before.size), {
        params: r.chunker,
        sparse: before.blocks * 512n < before.size,
        onChunk: (data) => {
          r.onChunk();
          return r.put(data);
        },
        onRead: r.onRead,
        afterWindow: r.drain,
        buffer,
      });
      const after = fstatSync(fd, { bigint: true });
      if (same(before, after)) return { refs, stat: before };
      if (attempt >= READ_ATTEMPTS) {
        r.warn(`${shown} changed while it was read, ${READ_ATTEMPTS} times; stored as last read (it may match no single version of the file)`);
        return { refs, stat: before };
      }
    }
  } finally {
    r.buffers?.push(buffer);
    closeSync(fd);
  }
}

/** An open fd as chunkFile reads it (positioned reads: what the page cache holds at once, the rest through the thread pool). */
function readableFd(fd: number): ReadableFile {
  return {
    fd,
    read: async (buffer, offset, length, position) => ({ bytesRead: await readCachedFirst(fd, buffer, offset, length, position) }),
  };
}

export function readXattrs(file: Buffer): Record<string, string> | undefined {
  let names: string[];
  try {
    names = fsx.llistxattr(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOTSUP' || code === 'ENOENT') return undefined;
    throw err;
  }
  if (names.length === 0) return undefined;
  const out: Record<string, string> = {};
  for (const name of names.sort()) {
    try {
      out[name] = fsx.lgetxattr(file, name).toString('base64');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENODATA') throw err;
    }
  }
  return Object.keys(out).length ? out : undefined;
}
