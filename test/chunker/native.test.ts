/**
 * The C FastCDC scanner (NativeFastCdcChunker, core/native/codec.c's cdcNext) cuts exactly
 * where the JavaScript reference (FastCdcChunker) cuts: on seeded random data and on real
 * files, with the default and other parameters and seeds, whole or fed in pieces of
 * random sizes (the resumable -1 calls capture makes at each read window's end).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { DEFAULT_CHUNKER_PARAMS, FastCdcChunker, NativeFastCdcChunker, newChunker, type Chunker, type ChunkerParams } from '../../core/chunker/fastcdc.ts';
import { seededBytes } from '../helpers/fixtures.ts';

/** Cut points of `data`, the scanner seeing it through windows that grow by `step()` bytes at a time. */
function cuts(data: Uint8Array, chunker: Chunker, step: () => number = () => data.length): number[] {
  const out: number[] = [];
  let start = 0;
  let end = 0;
  chunker.reset();
  while (start < data.length) {
    end = Math.min(data.length, Math.max(end, start) + step());
    const cut = chunker.nextSplitPoint(data.subarray(start, end));
    if (cut < 0) {
      if (end < data.length) continue;
      out.push(data.length);
      break;
    }
    assert.ok(cut > 0 && start + cut <= end, `cut ${cut} inside the window`);
    start += cut;
    out.push(start);
  }
  return out;
}

/** A deterministic step generator: pieces from 1 byte to 300 KiB. */
function steps(seed: number): () => number {
  let x = seed;
  return () => {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    const k = x % 4;
    return k === 0 ? 1 + (x % 97) : k === 1 ? 1 + (x % 5000) : 1 + (x % 300_000);
  };
}

const real = (() => {
  const parts = [readFileSync(process.execPath).subarray(0, 12 << 20)];
  for (const f of ['/usr/share/common-licenses/GPL-3', '/etc/services', '/usr/bin/bash']) {
    try {
      parts.push(readFileSync(f));
    } catch {}
  }
  // Long runs of one byte (no cut before maxSize) and text repeated (the same cuts recurring).
  parts.push(Buffer.alloc(1 << 20, 0), Buffer.alloc(700_000, 'the same line of text\n'));
  return Buffer.concat(parts);
})();

const paramSets: ChunkerParams[] = [
  DEFAULT_CHUNKER_PARAMS,
  { minSize: 32 * 1024, avgSize: 128 * 1024, maxSize: 512 * 1024, seed: 1 },
  { minSize: 64, avgSize: 256, maxSize: 1024, seed: 0xffffffff },
  { minSize: 4096, avgSize: 4096, maxSize: 4096, seed: 42 },
];

test('the native scanner is the one newChunker picks here', () => {
  assert.instance(newChunker(), NativeFastCdcChunker);
});

for (const p of paramSets) {
  test(`identical cut points on random and real data, whole and in pieces (${p.minSize}/${p.avgSize}/${p.maxSize}, seed ${p.seed})`, () => {
    const random = seededBytes(p.seed + 5, 6 << 20);
    for (const [name, data] of [['random', random], ['real', real]] as const) {
      const want = cuts(data, new FastCdcChunker(p));
      assert.ok(want.length > 5, `${name}: ${want.length} chunks`);
      assert.equal(cuts(data, new NativeFastCdcChunker(p)), want, `${name}, whole`);
      for (const seed of [1, 2]) {
        assert.equal(cuts(data, new NativeFastCdcChunker(p), steps(seed)), want, `${name}, in pieces (${seed})`);
      }
    }
  });
}

test('JavaScript and C give the same answer call by call, -1 included, on the same windows', () => {
  const data = seededBytes(9, 3 << 20);
  const step = steps(3);
  const js = new FastCdcChunker();
  const c = new NativeFastCdcChunker();
  let start = 0;
  let end = 0;
  let calls = 0;
  while (start < data.length) {
    end = Math.min(data.length, Math.max(end, start) + step());
    const a = js.nextSplitPoint(data.subarray(start, end));
    const b = c.nextSplitPoint(data.subarray(start, end));
    assert.is(b, a, `call ${++calls} at ${start}..${end}`);
    if (a < 0) {
      if (end === data.length) break;
    } else start += a;
  }
  assert.ok(calls > 40, `${calls} calls`);
});

test('misuse is a TypeError or RangeError, not a crash', () => {
  const c = new NativeFastCdcChunker() as unknown as { next: (...a: unknown[]) => number; gear: Int32Array; state: Int32Array };
  assert.throws(() => c.next('text', c.gear, c.state), /Uint8Array/);
  assert.throws(() => c.next(Buffer.alloc(10), new Int32Array(3), c.state), /256/);
  assert.throws(() => c.next(Buffer.alloc(10), c.gear, new Int32Array(7).fill(-1)), /min <= avg/);
});

test.run();
