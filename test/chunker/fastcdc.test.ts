import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { DEFAULT_CHUNKER_PARAMS, FastCdcChunker, ChunkerParamsError, gearTable, type ChunkerParams } from '../../core/chunker/fastcdc.ts';
import { chunkIdOf } from '../../core/store/chunk-id.ts';
import { seededBytes } from '../helpers/fixtures.ts';

function cutAll(data: Buffer, chunker = new FastCdcChunker()) {
  const out: Array<{ offset: number; length: number; id: string }> = [];
  let pos = 0;
  while (pos < data.length) {
    let cut = chunker.nextSplitPoint(data.subarray(pos));
    if (cut < 0) cut = data.length - pos;
    out.push({ offset: pos, length: cut, id: chunkIdOf(data.subarray(pos, pos + cut)) });
    pos += cut;
  }
  return out;
}

/**
 * Reference FastCDC, written for this test from Algorithm 1 of Xia et al., "FastCDC: a Fast
 * and Efficient Content-Defined Chunking Approach for Data Deduplication" (USENIX ATC 2016),
 * not from core/chunker/fastcdc.ts: a gear fingerprint fp = (fp << 1) + Gear[byte], no
 * hashing of the first MinSize bytes (cut-point skipping), the harder mask MaskS before
 * NormalSize and the easier MaskL after it (normalized chunking), a cut forced at
 * MaxSize, and the whole rest when it is no longer than MinSize. Deliberately plain: one
 * chunk per call over the whole remaining input, unsigned arithmetic on doubles, nothing
 * carried between calls. What it takes from Cloner's store format (the paper leaves these
 * to the implementation): a 32-bit fingerprint (the paper's is 64-bit), the store's seeded
 * gear table (gearTable, the table is data like the paper's own random table), masks of the
 * top log2(avg) + 2 and log2(avg) - 2 bits (normalization level 2; the paper spreads its
 * mask bits over the word), and a chunk that ends after the byte whose fingerprint matched
 * (length i + 1; implementations differ on whether that byte ends this chunk or starts
 * the next).
 */
function referenceCut(src: Uint8Array, p: ChunkerParams, gear: Int32Array): number {
  const TWO32 = 2 ** 32;
  const topBits = (bits: number) => TWO32 - 2 ** (32 - bits); // as an unsigned 32-bit value
  const bits = Math.round(Math.log2(p.avgSize));
  const maskS = topBits(bits + 2);
  const maskL = topBits(bits - 2);
  let n = src.length;
  if (n <= p.minSize) return n;
  let normalSize = p.avgSize;
  if (n >= p.maxSize) n = p.maxSize;
  else if (n <= normalSize) normalSize = n;
  let fp = 0;
  let i = p.minSize;
  for (; i < normalSize; i++) {
    fp = (fp * 2 + (gear[src[i]] >>> 0)) % TWO32;
    if ((fp & maskS) === 0) return i + 1;
  }
  for (; i < n; i++) {
    fp = (fp * 2 + (gear[src[i]] >>> 0)) % TWO32;
    if ((fp & maskL) === 0) return i + 1;
  }
  return i;
}

function referenceChunks(data: Uint8Array, p: ChunkerParams = DEFAULT_CHUNKER_PARAMS): Array<{ offset: number; length: number }> {
  const gear = gearTable(p.seed);
  const out: Array<{ offset: number; length: number }> = [];
  for (let pos = 0; pos < data.length; ) {
    const length = referenceCut(data.subarray(pos), p, gear);
    out.push({ offset: pos, length });
    pos += length;
  }
  return out;
}

test('golden vector: the seeded 1 MiB input is cut where the reference FastCDC cuts it, with the recorded ids', () => {
  const data = seededBytes(20261124, 1 << 20);
  const expected = referenceChunks(data);
  assert.ok(expected.length >= 8, `${expected.length} reference chunks`);
  // The recorded file agrees with the reference; its ids are BLAKE3 of those ranges.
  const golden = JSON.parse(readFileSync(new URL('./golden-1mib.json', import.meta.url), 'utf8')) as Array<{ offset: number; length: number; id: string }>;
  assert.equal(golden.map(({ offset, length }) => ({ offset, length })), expected);
  assert.equal(cutAll(data), golden);
});

test('the chunker cuts where the reference does: small parameters (thousands of cuts), runs of zeros, short inputs', () => {
  const small: ChunkerParams = { minSize: 64, avgSize: 256, maxSize: 1024, seed: 12345 };
  const inputs: Array<[string, Buffer, ChunkerParams]> = [
    ['seeded 2 MiB, small parameters', seededBytes(3, 2 << 20), small],
    ['text and zeros, small parameters', Buffer.concat([Buffer.from('cluster node '.repeat(4000)), Buffer.alloc(10_000), seededBytes(4, 50_000)]), small],
    ['seeded 4 MiB then 1 MiB of zeros, default parameters', Buffer.concat([seededBytes(8, 4 << 20), Buffer.alloc(1 << 20)]), DEFAULT_CHUNKER_PARAMS],
    ['shorter than the minimum', seededBytes(9, 1000), DEFAULT_CHUNKER_PARAMS],
    ['just over the minimum', seededBytes(10, DEFAULT_CHUNKER_PARAMS.minSize + 1), DEFAULT_CHUNKER_PARAMS],
  ];
  for (const [what, data, p] of inputs) {
    const expected = referenceChunks(data, p);
    assert.equal(cutAll(data, new FastCdcChunker(p)).map(({ offset, length }) => ({ offset, length })), expected, what);
  }
});

test('chunks respect min and max sizes', () => {
  const data = Buffer.concat([seededBytes(7, 3 << 20), Buffer.alloc(2 << 20)]); // zeros force max-size cuts
  const chunks = cutAll(data);
  const { minSize, maxSize } = DEFAULT_CHUNKER_PARAMS;
  chunks.slice(0, -1).forEach((c) => assert.ok(c.length >= minSize && c.length <= maxSize, `chunk of ${c.length}`));
  assert.ok(chunks.filter((c) => c.length === maxSize).length >= 7, 'runs of zeros are cut at the maximum size');
  assert.is(chunks.reduce((s, c) => s + c.length, 0), data.length);
});

test('feeding the buffer in pieces gives the same cuts as one buffer', () => {
  const data = seededBytes(99, 2 << 20);
  const whole = cutAll(data).map((c) => c.length);
  const chunker = new FastCdcChunker();
  const pieces: number[] = [];
  let start = 0;
  let end = Math.min(data.length, 10_000);
  while (start < data.length) {
    const cut = chunker.nextSplitPoint(data.subarray(start, end));
    if (cut > 0) {
      pieces.push(cut);
      start += cut;
    } else if (end === data.length) {
      pieces.push(end - start);
      start = end;
    } else end = Math.min(data.length, end + 10_000); // more data for the same chunk
  }
  assert.equal(pieces, whole);
});

test('content-defined: an insertion at the front only changes the first chunks', () => {
  const data = seededBytes(5, 4 << 20);
  const a = new Set(cutAll(data).map((c) => c.id));
  const shifted = cutAll(Buffer.concat([Buffer.from('inserted bytes'), data]));
  const shared = shifted.filter((c) => a.has(c.id)).length;
  assert.ok(shared >= shifted.length - 2, `${shared} of ${shifted.length} chunks shared`);
});

test('bad parameters are refused with a hint', () => {
  assert.throws(() => new FastCdcChunker({ ...DEFAULT_CHUNKER_PARAMS, avgSize: 60000 }), (e: unknown) => e instanceof ChunkerParamsError && !!e.hint);
  assert.throws(() => new FastCdcChunker({ ...DEFAULT_CHUNKER_PARAMS, minSize: 1 << 20 }), (e: unknown) => e instanceof ChunkerParamsError);
});

test.run();
