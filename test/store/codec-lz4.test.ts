/**
 * LZ4 through liblz4 (core/native/codec.c, used by core/store/codec.ts and the codec pool)
 * keeps lz4-napi's stored format, so stores and versions mix: on real data (this machine's
 * binaries, libraries and text, cut into chunks) lz4-napi decodes what the new encoder
 * writes and the new decoder decodes what lz4-napi wrote. Corrupt, truncated and oversized
 * input is a ChunkCorruptError in-thread and in the pool, never a crash or an overrun.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { compressSync, uncompressSync } from 'lz4-napi';
import { newChunker } from '../../core/chunker/fastcdc.ts';
import { fsxCodec } from '../../core/native/codec.ts';
import { chunkIdOf } from '../../core/store/chunk-id.ts';
import { CODEC_LZ4, CODEC_RAW, decodeChunk, encodeChunk, verifyChunk, type EncodedChunk } from '../../core/store/codec.ts';
import { CodecPool } from '../../core/store/codec-pool.ts';
import { ChunkCorruptError } from '../../core/store/errors.ts';
import { seededBytes } from '../helpers/fixtures.ts';

/** Real files: the Node binary's first 24 MB, shared libraries, text; cut with FastCDC. */
function realChunks(): Buffer[] {
  const files = [process.execPath];
  for (const dir of ['/usr/lib/x86_64-linux-gnu', '/usr/share/common-licenses', '/etc']) {
    try {
      for (const name of readdirSync(dir).sort().slice(0, 60)) {
        const p = path.join(dir, name);
        try {
          if (statSync(p).isFile()) files.push(p);
        } catch {}
      }
    } catch {}
  }
  const out: Buffer[] = [];
  for (const f of files) {
    let data: Buffer;
    try {
      data = readFileSync(f).subarray(0, 24 << 20);
    } catch {
      continue;
    }
    const chunker = newChunker();
    for (let pos = 0; pos < data.length; ) {
      let cut = chunker.nextSplitPoint(data.subarray(pos));
      if (cut < 0) cut = data.length - pos;
      out.push(data.subarray(pos, pos + cut));
      pos += cut;
    }
  }
  return out;
}

// And a few incompressible ones (like the .gz and .jpg files of a real tree).
const chunks = [...realChunks(), ...[1, 2, 3, 4, 5].map((i) => seededBytes(i, 20000 * i))];

test('on real data lz4-napi decodes what liblz4 writes, and liblz4 decodes what lz4-napi writes', () => {
  assert.ok(chunks.length > 300, `${chunks.length} chunks of real data`);
  let lz4 = 0;
  let raw = 0;
  for (const c of chunks) {
    const id = chunkIdOf(c);
    const enc = encodeChunk(c, id);
    if (enc.codec === CODEC_LZ4) {
      lz4++;
      assert.is(enc.data.readUInt32LE(0), c.length, 'the size header lz4-napi writes');
      assert.ok(enc.data.length <= c.length * 0.95);
      assert.ok(uncompressSync(enc.data).equals(c), 'lz4-napi decodes liblz4 output');
    } else {
      raw++;
      assert.ok(enc.data.equals(c));
    }
    const theirs = compressSync(c);
    assert.ok(decodeChunk({ id, codec: CODEC_LZ4, rawLength: c.length, data: theirs }).equals(c), 'liblz4 decodes lz4-napi output');
  }
  assert.ok(lz4 > 100 && raw >= 5, `both kinds kept (${lz4} LZ4, ${raw} raw)`);
});

test('verifyChunk: every real chunk in its stored form passes; under another chunk\'s id none does, whatever its reused buffer held before', () => {
  const encoded = chunks.map((c) => encodeChunk(c, chunkIdOf(c)));
  // Largest first, so the reused buffer holds the bytes of bigger chunks when smaller ones are checked.
  encoded.sort((a, b) => b.rawLength - a.rawLength);
  for (const e of encoded) verifyChunk(e);
  for (let i = 1; i < encoded.length; i++) {
    const lie = { ...encoded[i], id: encoded[i - 1].id };
    if (lie.id === encoded[i].id) continue;
    assert.throws(() => verifyChunk(lie), (err: Error) => err instanceof ChunkCorruptError && err.message.includes(`content hashes to ${encoded[i].id}`));
  }
});

test('an empty chunk and tiny ones round-trip both ways', () => {
  for (const c of [Buffer.alloc(0), Buffer.from('a'), Buffer.alloc(13, 0), seededBytes(7, 100)]) {
    const id = chunkIdOf(c);
    assert.ok(decodeChunk(encodeChunk(c, id)).equals(c));
    const theirs = compressSync(c);
    assert.ok(decodeChunk({ id, codec: CODEC_LZ4, rawLength: c.length, data: theirs }).equals(c), `lz4-napi's form of ${c.length} bytes`);
  }
});

/** Damaged forms of a compressible chunk's LZ4 data: flipped bytes, truncations, wrong size headers, garbage after a valid header. */
function damaged(good: EncodedChunk): Array<[string, EncodedChunk]> {
  const out: Array<[string, EncodedChunk]> = [];
  const d = good.data;
  for (const cut of [4, 5, 6, Math.floor(d.length / 2), d.length - 1]) out.push([`truncated to ${cut}`, { ...good, data: Buffer.from(d.subarray(0, cut)) }]);
  for (let i = 0; i < 200; i++) {
    const copy = Buffer.from(d);
    const at = 4 + ((i * 7919) % (d.length - 4));
    copy[at] ^= 1 << i % 8 || 0xff;
    out.push([`byte ${at} flipped`, { ...good, data: copy }]);
  }
  // A header (and recorded raw length) larger or smaller than what the block holds.
  for (const delta of [1, -1, 1 << 20]) {
    const copy = Buffer.from(d);
    copy.writeUInt32LE(good.rawLength + delta, 0);
    out.push([`header ${delta > 0 ? '+' : ''}${delta}`, { ...good, rawLength: good.rawLength + delta, data: copy }]);
  }
  const garbage = seededBytes(3, 5000);
  garbage.writeUInt32LE(good.rawLength, 0);
  out.push(['random bytes after a matching header', { ...good, data: garbage }]);
  out.push(['a header beyond the largest chunk', { ...good, rawLength: 0xffffffff, data: Buffer.from([0xff, 0xff, 0xff, 0xff, 0]) }]);
  return out;
}

test('corrupt, truncated and oversized LZ4 data is a ChunkCorruptError, in-thread and in the pool', async () => {
  const text = Buffer.from(readFileSync('/usr/share/common-licenses/GPL-3', 'utf8').repeat(2).slice(0, 60000));
  const good = encodeChunk(text);
  assert.is(good.codec, CODEC_LZ4);
  const cases = damaged(good);
  for (const [what, c] of cases) {
    let message = '';
    try {
      const out = decodeChunk(c);
      assert.unreachable(`${what}: decoded ${out.length} bytes`);
    } catch (err) {
      assert.instance(err, ChunkCorruptError, `${what}: ${(err as Error).message}`);
      message = (err as Error).message;
    }
    // verifyChunk (uploads, store checks) refuses it too, with decodeChunk's message.
    const err = (() => {
      try {
        verifyChunk(c);
      } catch (e) {
        return e as Error;
      }
    })();
    assert.instance(err, ChunkCorruptError, `verifyChunk: ${what}`);
    assert.is(err?.message, message, `verifyChunk: ${what}`);
  }
  verifyChunk(good);
  const pool = new CodecPool({ threads: 2 });
  try {
    for (const [what, c] of cases) {
      const err = await pool.decodeMany([c]).then(() => undefined, (e: Error) => e);
      assert.instance(err, ChunkCorruptError, `pool: ${what}`);
    }
    // And a good chunk still decodes after all that.
    assert.ok((await pool.decodeMany([good]))[0].equals(text));
  } finally {
    await pool.close();
  }
});

test('lz4Decompress never writes past dst, and lz4Compress says 0 when dst is too small', () => {
  const { lz4Compress, lz4Decompress } = fsxCodec();
  const src = Buffer.alloc(10000, 'abc');
  const small = Buffer.alloc(10);
  assert.is(lz4Compress(src, small), 0);
  const packed = Buffer.alloc(200);
  const n = lz4Compress(src, packed);
  assert.ok(n > 4 && n < 200);
  const arena = Buffer.alloc(20000, 0xee);
  assert.is(lz4Decompress(packed.subarray(0, n), arena.subarray(0, 9999)), -1, 'wrong length refused');
  assert.is(lz4Decompress(packed.subarray(0, n), arena.subarray(0, 10000)), 10000);
  assert.ok(arena.subarray(0, 10000).equals(src));
  assert.ok(arena.subarray(10000).every((b) => b === 0xee), 'nothing written past dst');
  assert.throws(() => lz4Compress('text' as unknown as Uint8Array, packed), /Uint8Array/);
  assert.throws(() => lz4Decompress(packed, new Int32Array(4) as unknown as Uint8Array), /Uint8Array/);
});

test('a raw chunk stays raw when LZ4 saves under 5%', () => {
  const noise = seededBytes(11, 70000);
  const enc = encodeChunk(noise);
  assert.is(enc.codec, CODEC_RAW);
  assert.ok(enc.data.equals(noise));
});

test.run();
