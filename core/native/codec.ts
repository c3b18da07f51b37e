/**
 * Typed, lazily loaded access to the byte functions of the fsx addon (core/native/codec.c):
 * LZ4 through liblz4 in lz4-napi's stored format (4-byte little-endian raw length, then one
 * LZ4 block) and one step of the FastCDC scanner. Loaded on first use, not on import: a
 * command that touches no chunk starts without the dlopen. `FSX_ADDON_PATH` is for worker
 * threads (codec-pool.ts), which load the same file.
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

export interface FsxCodec {
  /**
   * Compresses `src` into `dst` as [u32 LE src.length][LZ4 block]. Returns the bytes
   * written, or 0 when they do not fit in `dst` (size dst to the most worth keeping: a
   * chunk that does not compress enough stops early). Throws RangeError over ~2 GB.
   */
  lz4Compress(src: Uint8Array, dst: Uint8Array): number;
  /**
   * Decodes `src` (the form above) into `dst`, whose length must be the raw length: returns
   * it, or -1 when `src` is corrupt, truncated or holds another length. Never reads or
   * writes out of bounds, whatever `src` holds.
   */
  lz4Decompress(src: Uint8Array, dst: Uint8Array): number;
  /**
   * FastCDC (fastcdc.ts's rules, bit for bit): the length of the chunk that starts at
   * buf[0], or -1 when `buf` ends first. `state` is [minSize, avgSize, maxSize, maskHard,
   * maskEasy, scanned, hash]; the last two carry a scan across calls and are zeroed at a cut.
   */
  cdcNext(buf: Uint8Array, gear: Int32Array, state: Int32Array): number;
}

const require = createRequire(import.meta.url);
export const FSX_ADDON_PATH: string = fileURLToPath(new URL('../../build/Release/fsx.node', import.meta.url));

let loaded: Partial<FsxCodec> | undefined;
const addon = (): Partial<FsxCodec> => (loaded ??= require(FSX_ADDON_PATH) as Partial<FsxCodec>);

/** The addon's codec functions; throws when the addon was built before they existed (rebuild: npm ci). */
export function fsxCodec(): FsxCodec {
  const a = addon();
  if (!a.lz4Compress || !a.lz4Decompress || !a.cdcNext) {
    throw new Error(`the fsx addon (${FSX_ADDON_PATH}) lacks the LZ4/FastCDC functions: rebuild it with npm ci (or npm run install)`);
  }
  return a as FsxCodec;
}
