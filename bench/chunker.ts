/**
 * bench:chunker — MiB/s on one core of the FastCDC cut scan alone, and of cut + BLAKE3,
 * over 256 MiB of seeded random data (best of 3 runs each). Yardstick: a naive gear loop
 * (one byte per step, no cut-point skipping) on the same data.
 */
import { randomFillSync } from 'node:crypto';
import { FastCdcChunker, gearTable, DEFAULT_CHUNKER_PARAMS } from '../core/chunker/fastcdc.ts';
import { chunkIdOf } from '../core/store/chunk-id.ts';

const SIZE = 256 << 20;
const data = Buffer.allocUnsafe(SIZE);
for (let o = 0; o < SIZE; o += 65536) randomFillSync(data, o, 65536);

function best(label: string, run: () => number): number {
  let top = 0;
  let chunks = 0;
  for (let i = 0; i < 3; i++) {
    const t = performance.now();
    chunks = run();
    top = Math.max(top, SIZE / 1048576 / ((performance.now() - t) / 1000));
  }
  console.log(`${label.padEnd(28)} ${top.toFixed(0).padStart(6)} MiB/s  (${chunks} chunks, avg ${(SIZE / chunks / 1024).toFixed(1)} KiB)`);
  return top;
}

function scan(hash: boolean): number {
  const c = new FastCdcChunker();
  let pos = 0;
  let n = 0;
  while (pos < SIZE) {
    let cut = c.nextSplitPoint(data.subarray(pos));
    if (cut < 0) cut = SIZE - pos;
    if (hash) chunkIdOf(data.subarray(pos, pos + cut));
    pos += cut;
    n++;
  }
  return n;
}

function naive(): number {
  const gear = gearTable(DEFAULT_CHUNKER_PARAMS.seed);
  const mask = ~((1 << 16) - 1) | 0;
  let h = 0;
  let n = 0;
  let last = 0;
  for (let i = 0; i < SIZE; i++) {
    h = ((h << 1) + gear[data[i]]) | 0;
    if ((h & mask) === 0 || i - last >= DEFAULT_CHUNKER_PARAMS.maxSize) {
      n++;
      last = i;
    }
  }
  return n + 1;
}

console.log(`node ${process.version}, ${SIZE >> 20} MiB of random data, one core`);
const yard = best('naive gear loop (yardstick)', naive);
const cut = best('FastCDC cut scan', () => scan(false));
const both = best('FastCDC cut + BLAKE3', () => scan(true));
console.log(`ratio scan/naive ${(cut / yard).toFixed(2)}x; cut+BLAKE3 ${both.toFixed(0)} MiB/s`);
