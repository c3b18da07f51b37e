/**
 * The multicast datagram and its reassembly: a chunk sent as MTU-sized datagrams in any
 * order comes back verified; forged, truncated, damaged, foreign-session and unasked-for
 * datagrams are ignored and counted; a chunk whose pieces are forged (right CRC, wrong
 * bytes) is never handed out, and is taken again when the true pieces come.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { crc32 } from 'node:zlib';
import { encodeChunk } from '../../core/store/codec.ts';
import { chunkIdOf } from '../../core/store/chunk-id.ts';
import { Reassembler } from '../../core/multicast/reassembly.ts';
import { chunkFrames, decodeFrame, encodeFrame, HEADER_BYTES, payloadBytes } from '../../core/multicast/wire.ts';
import { parseRate, TokenBucket } from '../../core/multicast/pacer.ts';
import { seededBytes } from '../helpers/fixtures.ts';

const SESSION = '0123456789abcdef';
const OTHER = 'fedcba9876543210';

function framesOf(raw: Buffer, session = SESSION, mtu = 1500) {
  const enc = encodeChunk(raw);
  return { id: enc.id, frames: [...chunkFrames(session, enc.id, enc.codec, enc.rawLength, enc.data, payloadBytes(mtu))] };
}

test('datagrams fit the MTU and carry session, chunk id and offset', () => {
  assert.is(payloadBytes(1500), 1500 - 28 - HEADER_BYTES);
  const raw = seededBytes(1, 200_000);
  const { id, frames } = framesOf(raw);
  assert.ok(frames.length > 100);
  let next = 0;
  for (const f of frames) {
    assert.ok(f.length <= 1500 - 28);
    const d = decodeFrame(f, SESSION);
    assert.type(d, 'object');
    if (typeof d === 'string') return;
    assert.is(d.id, id);
    assert.is(d.offset, next);
    next += d.payload.length;
  }
});

test('a chunk reassembled from shuffled datagrams is verified and handed out once', () => {
  const raw = seededBytes(2, 150_000);
  const { id, frames } = framesOf(raw);
  const r = new Reassembler(SESSION, [id]);
  const shuffled = [...frames].reverse();
  let got: [string, Buffer] | null = null;
  for (const f of [...shuffled, ...shuffled.slice(0, 3)]) got = r.accept(f) ?? got;
  assert.ok(got);
  assert.is(got![0], id);
  assert.ok(got![1].equals(raw));
  assert.is(r.missing.size, 0);
  assert.is(r.counters.chunks, 1);
  assert.is(r.counters.ignored.unwanted, 3, 'datagrams of a chunk already complete are not taken again');
});

test('forged, truncated, damaged and foreign datagrams are ignored and counted', () => {
  const raw = Buffer.from('x'.repeat(3000) + 'tail');
  const { id, frames } = framesOf(raw);
  const r = new Reassembler(SESSION, [id]);
  const f0 = frames[0];
  assert.is(r.accept(f0.subarray(0, 40)), null);
  assert.is(r.accept(f0.subarray(0, f0.length - 1)), null);
  const damaged = Buffer.from(f0);
  damaged[HEADER_BYTES + 5] ^= 1;
  assert.is(r.accept(damaged), null);
  const badMagic = Buffer.from(f0);
  badMagic[0] = 0;
  assert.is(r.accept(badMagic), null);
  assert.is(r.accept(framesOf(raw, OTHER).frames[0]), null);
  assert.is(r.accept(framesOf(seededBytes(9, 5000)).frames[0]), null, 'a chunk not asked for');
  // Forged length fields: a huge chunk, a piece beyond the end (CRC recomputed).
  const forge = (edit: (b: Buffer) => void) => {
    const b = Buffer.from(f0);
    edit(b);
    b.writeUInt32BE(crc32(b.subarray(HEADER_BYTES), crc32(b.subarray(0, 62))), 62);
    return b;
  };
  assert.is(r.accept(forge((b) => b.writeUInt32BE(1 << 30, 48))), null);
  assert.is(r.accept(forge((b) => b.writeUInt32BE(0xfffffff0, 56))), null);
  assert.equal(
    { short: r.counters.ignored.short, length: r.counters.ignored.length, crc: r.counters.ignored.crc, magic: r.counters.ignored.magic, session: r.counters.ignored.session, unwanted: r.counters.ignored.unwanted, bounds: r.counters.ignored.bounds },
    { short: 1, length: 1, crc: 1, magic: 1, session: 1, unwanted: 1, bounds: 2 },
  );
  assert.is(r.missing.size, 1, 'nothing was taken');
  let got = null;
  for (const f of frames) got = r.accept(f) ?? got;
  assert.ok(got && got[1].equals(raw), 'the true datagrams still complete the chunk');
});

test('a chunk with forged bytes (valid CRC) is dropped as corrupt, never handed out, and taken from a later round', () => {
  const raw = seededBytes(3, 9000);
  const { id, frames } = framesOf(raw);
  const r = new Reassembler(SESSION, [id]);
  const d = decodeFrame(frames[1], SESSION);
  if (typeof d === 'string') throw new Error(d);
  const forged = encodeFrame({ ...d, payload: Buffer.alloc(d.payload.length, 0x41) });
  assert.is(r.accept(forged), null);
  let got = null;
  for (const [i, f] of frames.entries()) if (i !== 1) got = r.accept(f) ?? got;
  assert.is(got, null, 'the forged piece makes the chunk fail its BLAKE3 check');
  assert.is(r.counters.corrupt, 1);
  assert.ok(r.missing.has(id));
  for (const f of frames) got = r.accept(f) ?? got;
  assert.ok(got && got[1].equals(raw) && chunkIdOf(got[1]) === id);
});

test('mismatched lengths for one chunk are ignored', () => {
  const raw = seededBytes(4, 5000);
  const { id, frames } = framesOf(raw);
  const r = new Reassembler(SESSION, [id]);
  r.accept(frames[0]);
  const d = decodeFrame(frames[1], SESSION);
  if (typeof d === 'string') throw new Error(d);
  assert.is(r.accept(encodeFrame({ ...d, encodedLength: d.encodedLength + 10 })), null);
  assert.is(r.counters.ignored.mismatch, 1);
});

test('rates parse as bits per second; the token bucket paces', async () => {
  assert.is(parseRate('800'), 100e6);
  assert.is(parseRate('1G'), 125e6);
  assert.is(parseRate('500k'), 62_500);
  assert.throws(() => parseRate('fast'));
  assert.throws(() => parseRate('0'));
  const bucket = new TokenBucket(1e6, 10_000);
  let taken = 0;
  for (let i = 0; i < 5; i++) {
    await bucket.take(10_000);
    taken += 10_000;
  }
  assert.is(taken, 50_000);
});

test.run();
