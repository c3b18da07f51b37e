import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { DEFAULT_CHUNKER_PARAMS, FastCdcChunker, ChunkerParamsError } from '../../core/chunker/fastcdc.ts';
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

test('golden vector: seeded 1 MiB input gives the recorded chunks', () => {
  const golden = JSON.parse(readFileSync(new URL('./golden-1mib.json', import.meta.url), 'utf8'));
  assert.equal(cutAll(seededBytes(20261124, 1 << 20)), golden);
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
