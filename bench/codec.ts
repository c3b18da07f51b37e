/**
 * bench:codec — the codec and chunk size, chosen by measurement on the real node tree
 * (bench:peers' tree and its update, debian-tree.ts; `--quick` takes the small minbase
 * pair). Every regular file of both trees is read once into memory-sized slices and cut
 * with FastCDC at 64 KiB and at 128 KiB average (min avg/4, max avg*4). For each size:
 * chunks, unique bytes of the tree, the update's new unique bytes (dedup across the
 * update), and the index size (entries). Then, on the tree's unique 64 KiB chunks, one
 * core: MB/s of raw input for BLAKE3, LZ4 compress/decompress by lz4-napi (lz4_flex) and by
 * the fsx addon (liblz4, what the store uses), Node's built-in zstd (levels 1 and 3)
 * compress/decompress, with the stored/raw ratio (MB/s per CPU second); and the FastCDC scan of the tree's bytes
 * in JavaScript (the reference) and in C (the addon, what capture uses).
 */
import { readFileSync, readdirSync, lstatSync } from 'node:fs';
import path from 'node:path';
import { constants, zstdCompressSync, zstdDecompressSync } from 'node:zlib';
import { compressSync, uncompressSync } from 'lz4-napi';
import { FastCdcChunker, NativeFastCdcChunker, DEFAULT_CHUNKER_PARAMS, type Chunker } from '../core/chunker/fastcdc.ts';
import { fsxCodec } from '../core/native/codec.ts';
import { chunkIdOf } from '../core/store/chunk-id.ts';
import { ensureDebianTree, ensureNodeTree } from './debian-tree.ts';

const quick = process.argv.includes('--quick');
const update = quick ? ['htop', 'strace', 'tmux'] : ['htop', 'strace', 'gdb', 'tmux'];
const one = quick ? await ensureDebianTree() : await ensureNodeTree();
const two = quick ? await ensureDebianTree(update) : await ensureNodeTree(update);
if ('skip' in one || 'skip' in two) {
  console.log(`bench:codec skipped: ${'skip' in one ? one.skip : (two as { skip: string }).skip}`);
  process.exit(0);
}

function* files(dir: string): Generator<string> {
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name);
    const st = lstatSync(p);
    if (st.isDirectory() && name !== 'proc' && name !== 'sys') yield* files(p);
    else if (st.isFile() && st.size > 0) yield p;
  }
}

/** Unique chunks of a tree at one average size: id -> length (and the bytes when `keep`). */
function chunkTree(tree: string, avg: number, keep?: Map<string, Buffer>): Map<string, number> {
  const params = { ...DEFAULT_CHUNKER_PARAMS, minSize: avg / 4, avgSize: avg, maxSize: avg * 4 };
  const chunker = new FastCdcChunker(params);
  const out = new Map<string, number>();
  for (const file of files(tree)) {
    let data: Buffer;
    try {
      data = readFileSync(file);
    } catch {
      continue;
    }
    chunker.reset();
    let pos = 0;
    while (pos < data.length) {
      const cut = chunker.nextSplitPoint(data.subarray(pos));
      const len = cut < 0 ? data.length - pos : cut;
      const chunk = data.subarray(pos, pos + len);
      const id = chunkIdOf(chunk);
      if (!out.has(id)) {
        out.set(id, len);
        keep?.set(id, chunk);
      }
      pos += len;
    }
  }
  return out;
}

const sum = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);
let sample = new Map<string, Buffer>();
console.log(`trees ${one.tree} and ${two.tree}`);
for (const avg of [64 * 1024, 128 * 1024]) {
  const t = performance.now();
  const a = chunkTree(one.tree, avg, avg === 64 * 1024 ? sample : undefined);
  const b = chunkTree(two.tree, avg);
  let growth = 0;
  let newChunks = 0;
  for (const [id, len] of b) if (!a.has(id)) (growth += len), newChunks++;
  console.log(`avg ${avg / 1024} KiB: tree ${a.size} unique chunks, ${(sum(a) / 1e6).toFixed(1)} MB unique; update adds ${newChunks} chunks, ${(growth / 1e6).toFixed(1)} MB; index entries ${a.size + newChunks}  (${((performance.now() - t) / 1000).toFixed(1)} s)`);
}

const chunks = [...sample.values()];
sample = new Map();
const raw = chunks.reduce((s, c) => s + c.length, 0);
// CPU seconds of this (single-threaded) process, not wall time: on a machine shared with
// other work the wall clock measures the neighbours as much as the codec.
const rate = (label: string, fn: () => number) => {
  const t = process.cpuUsage();
  const stored = fn();
  const used = process.cpuUsage(t);
  const s = (used.user + used.system) / 1e6;
  console.log(`${label.padEnd(26)} ${(raw / 1e6 / s).toFixed(0).padStart(6)} MB/s${stored ? `   stored/raw ${(stored / raw).toFixed(3)}` : ''}`);
};
console.log(`codec on ${chunks.length} unique 64 KiB-average chunks, ${(raw / 1e6).toFixed(1)} MB (one core):`);
rate('BLAKE3', () => (chunks.forEach((c) => chunkIdOf(c)), 0));
const lz4 = chunks.map((c) => compressSync(c));
rate('lz4-napi compress', () => chunks.reduce((s, c) => s + Math.min(c.length, compressSync(c).length), 0));
rate('lz4-napi decompress', () => (lz4.forEach((c) => uncompressSync(c)), 0));
const fsx = fsxCodec();
const scratch = Buffer.allocUnsafe(1 << 20);
// As the store does: into a buffer capped at what is worth keeping (95% of the raw size), then a copy of exactly the result.
const fsxPacked = chunks.map((c) => Buffer.from(scratch.subarray(0, fsx.lz4Compress(c, scratch.subarray(0, Math.floor(c.length * 0.95))))));
rate('fsx (liblz4) compress', () =>
  chunks.reduce((s, c) => {
    const n = fsx.lz4Compress(c, scratch.subarray(0, Math.floor(c.length * 0.95)));
    return s + (n ? Buffer.from(scratch.subarray(0, n)).length : c.length);
  }, 0),
);
rate('fsx (liblz4) decompress', () => (fsxPacked.forEach((p, i) => p.length && fsx.lz4Decompress(p, Buffer.allocUnsafe(chunks[i].length))), 0));
const whole = Buffer.concat(chunks);
const scan = (chunker: Chunker) => {
  for (let pos = 0; pos < whole.length; ) {
    const cut = chunker.nextSplitPoint(whole.subarray(pos));
    pos += cut < 0 ? whole.length - pos : cut;
  }
  return 0;
};
rate('FastCDC scan, JavaScript', () => scan(new FastCdcChunker()));
rate('FastCDC scan, C (fsx)', () => scan(new NativeFastCdcChunker()));
for (const level of [1, 3]) {
  const params = { [constants.ZSTD_c_compressionLevel]: level };
  const packed = chunks.map((c) => zstdCompressSync(c, { params }));
  rate(`zstd ${level} compress`, () => chunks.reduce((s, c) => s + Math.min(c.length, zstdCompressSync(c, { params }).length), 0));
  rate(`zstd ${level} decompress`, () => (packed.forEach((c) => zstdDecompressSync(c)), 0));
}
