/**
 * Cutting one open file into content-defined chunks, shared by capture (which stores each
 * chunk) and the deploy sync (which only names the chunks a node already holds).
 *
 * Algorithm: the file's data extents (SEEK_DATA/SEEK_HOLE for a sparse file, so holes are
 * never read; the whole file otherwise) are read in 1 MiB windows (into the caller's
 * buffer when it gives one); FastCDC finds each cut,
 * the window's tail is carried over to the next read, and every chunk goes to `onChunk`,
 * which returns its id. Chunks never span a hole: each extent starts a fresh chunker.
 */
import { newChunker, type ChunkerParams } from '../chunker/fastcdc.ts';
import { fsx } from '../native/fsx.ts';
import type { ChunkId } from '../store/chunk-id.ts';
import type { ChunkRef } from './manifest.ts';

/**
 * Bytes read at once (plus the chunker's maxSize of carried-over tail). 1 MiB, not 4: a
 * capture keeps one window per reader (8) and one window of chunks beyond its write-behind
 * limit per reader, so 4 MiB windows held ~34 MB of buffers plus as much of chunk copies;
 * 1 MiB reads stream as fast from the page cache or a disk's read-ahead.
 */
export const READ_WINDOW = 1024 * 1024;

/** What chunkFile needs of an open file (a FileHandle is one). */
export interface ReadableFile {
  fd: number;
  read(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
}

export interface ChunkFileOptions {
  params: ChunkerParams;
  /** Reads only the data extents (the file has holes). */
  sparse: boolean;
  /** Names (and, for capture, stores) one chunk; `data` is only valid during the call. */
  onChunk: (data: Buffer, offset: number) => ChunkId;
  /** Called after each read with its byte count. */
  onRead?: (bytes: number) => void;
  /** Called when the file ends before `size` (it shrank while being read). */
  onShrunk?: (readBytes: number) => void;
  /**
   * Called after the chunks of each read window (up to READ_WINDOW bytes) were handed out, before the
   * next read: capture waits here for its write-behind window, so a big file never has
   * more than one read window of chunks beyond it.
   */
  afterWindow?: () => Promise<void>;
  /**
   * A read buffer to use when it holds a window (READ_WINDOW + maxSize bytes): capture's
   * readers each keep one, so no file allocates its own (a fresh buffer per file was
   * ~1 GB of short-lived ArrayBuffers per capture of the node tree, freed only at GC).
   */
  buffer?: Buffer;
}

/** The chunk list [offset, length, id] of the first `size` bytes of an open file. */
export async function chunkFile(handle: ReadableFile, size: number, o: ChunkFileOptions): Promise<ChunkRef[]> {
  const extents = o.sparse ? dataExtents(handle.fd, size) : [[0, size] as [number, number]];
  const refs: ChunkRef[] = [];
  const chunker = newChunker(o.params);
  for (const [start, length] of extents) {
    chunker.reset();
    const want = Math.min(length, READ_WINDOW + o.params.maxSize);
    const buf = o.buffer && o.buffer.length >= want ? o.buffer.subarray(0, want) : Buffer.allocUnsafe(want);
    let bufOffset = start; // file offset of buf[0]
    let filled = 0;
    let chunkStart = 0;
    let remaining = length;
    for (;;) {
      while (filled < buf.length && remaining > 0) {
        const { bytesRead } = await handle.read(buf, filled, Math.min(buf.length - filled, remaining), bufOffset + filled);
        if (bytesRead === 0) {
          o.onShrunk?.(bufOffset + filled - start);
          remaining = 0;
          break;
        }
        filled += bytesRead;
        remaining -= bytesRead;
        o.onRead?.(bytesRead);
      }
      const eof = remaining === 0;
      while (chunkStart < filled) {
        let cut = chunker.nextSplitPoint(buf.subarray(chunkStart, filled));
        if (cut < 0) {
          if (!eof) break;
          cut = filled - chunkStart;
        }
        refs.push([bufOffset + chunkStart, cut, o.onChunk(buf.subarray(chunkStart, chunkStart + cut), bufOffset + chunkStart)]);
        chunkStart += cut;
      }
      await o.afterWindow?.();
      if (eof) break;
      buf.copyWithin(0, chunkStart, filled);
      bufOffset += chunkStart;
      filled -= chunkStart;
      chunkStart = 0;
    }
  }
  return refs;
}

/** Data extents [offset, length] of a sparse file, by SEEK_DATA/SEEK_HOLE. */
export function dataExtents(fd: number, size: number): Array<[number, number]> {
  const extents: Array<[number, number]> = [];
  let pos = 0;
  while (pos < size) {
    const data = fsx.seekData(fd, pos);
    if (data < 0 || data >= size) break;
    let hole = fsx.seekHole(fd, data);
    if (hole < 0 || hole > size) hole = size;
    extents.push([data, hole - data]);
    pos = hole;
  }
  return extents;
}
