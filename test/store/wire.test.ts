/**
 * The chunk upload's frames (core/store/wire.ts): encodeFramesFrom, which compresses raw
 * chunks straight into the body, writes exactly the bytes encodeChunk + encodeFrames write
 * (same LZ4 output, same raw-when-it-saves-too-little rule), and readFrames reads them back
 * across any split of the stream.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { chunkIdOf } from '../../core/store/chunk-id.ts';
import { CODEC_LZ4, CODEC_RAW, decodeChunk, encodeChunk } from '../../core/store/codec.ts';
import { encodeFrames, encodeFramesFrom, FrameSlabs, readFrames } from '../../core/store/wire.ts';
import { seededBytes } from '../helpers/fixtures.ts';

const text = readFileSync('/usr/share/common-licenses/GPL-3');
const raws = [
  text.subarray(0, 40000),
  seededBytes(1, 70000), // incompressible: kept raw
  Buffer.alloc(0),
  Buffer.from('x'),
  Buffer.alloc(65536, 7),
  readFileSync(process.execPath).subarray(1 << 20, (1 << 20) + 100000),
];

async function* pieces(buf: Buffer, size: number): AsyncGenerator<Buffer> {
  for (let i = 0; i < buf.length; i += size) yield buf.subarray(i, i + size);
}

test('raw chunks compressed into the body: the same bytes as encodeChunk + encodeFrames', () => {
  const items = raws.map((raw) => ({ id: chunkIdOf(raw), raw }));
  const expected = encodeFrames(items.map((p) => encodeChunk(p.raw, p.id)));
  const { body, rawBytes } = encodeFramesFrom(items);
  assert.ok(body.equals(expected), `${body.length} bytes against ${expected.length}`);
  assert.is(rawBytes, raws.reduce((n, r) => n + r.length, 0));
  const codecs = items.map((p) => encodeChunk(p.raw, p.id).codec);
  assert.ok(codecs.includes(CODEC_LZ4) && codecs.includes(CODEC_RAW), 'both codecs met');
});

test('encoded and raw chunks mixed, read back by readFrames across every piece size', async () => {
  const items = raws.map((raw, i) => (i % 2 ? { id: chunkIdOf(raw), chunk: encodeChunk(raw) } : { id: chunkIdOf(raw), raw }));
  const { body } = encodeFramesFrom(items);
  for (const size of [13, 41, 4096, body.length]) {
    const got: Buffer[] = [];
    for await (const c of readFrames(pieces(body, size))) got.push(decodeChunk(c));
    assert.is(got.length, raws.length);
    raws.forEach((r, i) => assert.ok(got[i].equals(r), `chunk ${i} with pieces of ${size}`));
  }
});

test('FrameSlabs: a lease carves frames out of slabs, released slabs serve the next lease, big frames get their own buffer', () => {
  const slabs = new FrameSlabs(1000, 2);
  const a = slabs.lease();
  const x = a.alloc(250);
  const y = a.alloc(250);
  assert.is(x.buffer, y.buffer, 'one slab');
  assert.is(x.buffer.byteLength, 1000);
  assert.is(y.byteOffset - x.byteOffset, 250);
  a.alloc(250);
  a.alloc(250); // the slab is full now
  const z = a.alloc(10); // a second slab
  assert.is.not(z.buffer, x.buffer);
  assert.is(z.buffer.byteLength, 1000);
  const own = a.alloc(251); // over a quarter of a slab
  assert.is.not(own.buffer, x.buffer);
  assert.is.not(own.buffer, z.buffer);
  const b = slabs.lease();
  assert.is.not(b.alloc(10).buffer, x.buffer, 'nothing given back yet');
  a.release();
  a.release(); // twice is harmless
  const late = a.alloc(10); // after release: memory of its own, never a given-back slab
  assert.is.not(late.buffer, x.buffer);
  assert.is.not(late.buffer, z.buffer);
  const c = slabs.lease();
  const reused = [c.alloc(200).buffer, c.alloc(200).buffer, c.alloc(200).buffer, c.alloc(200).buffer, c.alloc(200).buffer, c.alloc(200).buffer];
  assert.ok(reused.includes(x.buffer) && reused.includes(z.buffer), 'both slabs taken again');
});

test.run();
