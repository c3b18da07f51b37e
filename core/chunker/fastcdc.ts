/**
 * FastCDC content-defined chunking as a pure scanner over bytes.
 *
 * Algorithm (Xia et al., "FastCDC", USENIX ATC 2016, and the 2020 TPDS follow-up):
 * a gear rolling hash `h = (h << 1) + GEAR[byte]` (32-bit here, so each hash bit
 * depends on at most the last 32 bytes) is tested against a mask after every byte.
 * The first `minSize` bytes of a chunk are skipped without hashing (cut-point skipping),
 * a harder mask (more bits) is used before `avgSize` and an easier one after it
 * (normalized chunking, level 2), and a cut is forced at `maxSize`.
 *
 * The scanner never copies, reads or hashes content: the caller hands it a buffer that
 * starts at the beginning of the current chunk and gets back the chunk's length, or -1
 * when the buffer ends before a cut is found and more data may follow. The scanner keeps
 * its position and hash across such calls, so the caller may call again with the same
 * chunk start and a longer buffer without rescanning. `reset()` starts a new stream.
 *
 * Two scanners with one behaviour: `FastCdcChunker` here in JavaScript, the reference
 * (CLONER_NATIVE_CDC=0 selects it), and `NativeFastCdcChunker`, the same loop in C
 * (core/native/codec.c's cdcNext) on the same gear table and masks, with its scan state in
 * an Int32Array both sides see. `newChunker` picks the native one, as LZ4 needs the same addon:
 * 1.48 GB/s in JavaScript against 3.39 GB/s in C per CPU second on the bench tree (bench:codec).
 */
import { fsxCodec } from '../native/codec.ts';

/** What capture needs of a scanner (both classes below). */
export interface Chunker {
  readonly params: Readonly<ChunkerParams>;
  reset(): void;
  nextSplitPoint(buf: Uint8Array): number;
}

export interface ChunkerParams {
  minSize: number;
  avgSize: number;
  maxSize: number;
  /** Seed of the gear table; part of the store's config so every client cuts the same way. */
  seed: number;
}

export const DEFAULT_CHUNKER_PARAMS: Readonly<ChunkerParams> = Object.freeze({
  minSize: 16 * 1024,
  avgSize: 64 * 1024,
  maxSize: 256 * 1024,
  seed: 0x636c6e72, // "clnr"
});

export class ChunkerParamsError extends Error {
  readonly code = 'CHUNKER_PARAMS';
  readonly hint = 'use sizes with 64 <= min <= avg <= max <= 64 MiB and avg a power of two';
}

export function validateChunkerParams(p: ChunkerParams): ChunkerParams {
  const ok =
    Number.isInteger(p.minSize) && Number.isInteger(p.avgSize) && Number.isInteger(p.maxSize) &&
    Number.isInteger(p.seed) && p.seed >= 0 && p.seed <= 0xffffffff &&
    p.minSize >= 64 && p.minSize <= p.avgSize && p.avgSize <= p.maxSize && p.maxSize <= 64 * 1024 * 1024 &&
    (p.avgSize & (p.avgSize - 1)) === 0;
  if (!ok) throw new ChunkerParamsError(`invalid chunker parameters ${JSON.stringify(p)}`);
  return p;
}

/** 256 pseudo-random 32-bit gear values from a seeded splitmix32 generator. */
export function gearTable(seed: number): Int32Array {
  const table = new Int32Array(256);
  let state = seed >>> 0;
  for (let i = 0; i < 256; i++) {
    state = (state + 0x9e3779b9) | 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    table[i] = z ^ (z >>> 16);
  }
  return table;
}

/** A mask of the `bits` highest bits of a 32-bit word: those bits depend on the most bytes. */
function topBitsMask(bits: number): number {
  return bits >= 32 ? -1 : (~((1 << (32 - bits)) - 1)) | 0;
}

/** The hard (before avgSize) and easy (after) masks of normalized chunking, level 2. */
export function chunkerMasks(avgSize: number): { maskHard: number; maskEasy: number } {
  const bits = Math.log2(avgSize);
  return { maskHard: topBitsMask(bits + 2), maskEasy: topBitsMask(Math.max(1, bits - 2)) };
}

export class FastCdcChunker implements Chunker {
  readonly params: Readonly<ChunkerParams>;
  private readonly gear: Int32Array;
  private readonly maskHard: number;
  private readonly maskEasy: number;
  /** Offset in the current chunk up to which the hash has been computed. */
  private scanned = 0;
  private hash = 0;

  constructor(params: ChunkerParams = DEFAULT_CHUNKER_PARAMS) {
    this.params = Object.freeze({ ...validateChunkerParams(params) });
    this.gear = gearTable(params.seed);
    ({ maskHard: this.maskHard, maskEasy: this.maskEasy } = chunkerMasks(params.avgSize));
  }

  reset(): void {
    this.scanned = 0;
    this.hash = 0;
  }

  /**
   * `buf` starts at the current chunk's first byte. Returns the chunk length when a cut
   * point lies within `buf`, or -1 when `buf` ends first (then call again with more data,
   * or, at the end of the stream, the rest of `buf` is the last chunk).
   */
  nextSplitPoint(buf: Uint8Array): number {
    const { minSize, avgSize, maxSize } = this.params;
    const len = buf.length;
    if (len <= minSize) {
      return -1;
    }
    const gear = this.gear;
    let h = this.hash;
    // Cut-point skipping: the hash starts at minSize; the first bytes cannot hold a cut.
    let i = this.scanned > minSize ? this.scanned : minSize;
    // Hot loops: locals only, `| 0` keeps V8 on 32-bit integer arithmetic.
    const hardEnd = len < avgSize ? len : avgSize;
    const maskHard = this.maskHard;
    for (; i < hardEnd; i++) {
      h = ((h << 1) + gear[buf[i]]) | 0;
      if ((h & maskHard) === 0) {
        this.reset();
        return i + 1;
      }
    }
    const easyEnd = len < maxSize ? len : maxSize;
    const maskEasy = this.maskEasy;
    for (; i < easyEnd; i++) {
      h = ((h << 1) + gear[buf[i]]) | 0;
      if ((h & maskEasy) === 0) {
        this.reset();
        return i + 1;
      }
    }
    if (easyEnd === maxSize) {
      this.reset();
      return maxSize;
    }
    this.scanned = i;
    this.hash = h;
    return -1;
  }
}

/** FastCdcChunker's scan in C: same cut points, same resumable calls (see the module comment). */
export class NativeFastCdcChunker implements Chunker {
  readonly params: Readonly<ChunkerParams>;
  private readonly gear: Int32Array;
  /** [minSize, avgSize, maxSize, maskHard, maskEasy, scanned, hash]: the C side reads and updates it. */
  private readonly state: Int32Array;
  private readonly next: (buf: Uint8Array, gear: Int32Array, state: Int32Array) => number;

  /** Throws when the addon was built without cdcNext (fsxCodec's error: rebuild it). */
  constructor(params: ChunkerParams = DEFAULT_CHUNKER_PARAMS) {
    this.params = Object.freeze({ ...validateChunkerParams(params) });
    this.next = fsxCodec().cdcNext;
    this.gear = gearTable(params.seed);
    const { maskHard, maskEasy } = chunkerMasks(params.avgSize);
    this.state = Int32Array.of(params.minSize, params.avgSize, params.maxSize, maskHard, maskEasy, 0, 0);
  }

  reset(): void {
    this.state[5] = 0;
    this.state[6] = 0;
  }

  nextSplitPoint(buf: Uint8Array): number {
    return this.next(buf, this.gear, this.state);
  }
}

/** The native scanner; CLONER_NATIVE_CDC=0 takes the JavaScript one. */
export function newChunker(params: ChunkerParams = DEFAULT_CHUNKER_PARAMS): Chunker {
  return process.env.CLONER_NATIVE_CDC === '0' ? new FastCdcChunker(params) : new NativeFastCdcChunker(params);
}
