/**
 * The multicast datagram (version 2: 36-byte header, 8-byte chunk key) and its
 * reassembly: a chunk sent as MTU-sized datagrams in any order comes back verified;
 * forged, truncated, damaged, foreign-session, old-version, off-cut and unasked-for
 * datagrams are ignored and counted; a key two lacked chunks share is ignored; a chunk
 * whose pieces are forged (right CRC, wrong bytes) is never handed out, and is taken again
 * when the true pieces come. Parity (rs.ts, wire.ts parityFrame) is tested in parity.test.ts.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { crc32 } from 'node:zlib';
import { encodeChunk } from '../../core/store/codec.ts';
import { chunkIdOf } from '../../core/store/chunk-id.ts';
import { Reassembler } from '../../core/multicast/reassembly.ts';
import { chunkFrames, decodeFrame, encodeFrame, HEADER_BYTES, keyOf, payloadBytes } from '../../core/multicast/wire.ts';
import { parseRate, TokenBucket } from '../../core/multicast/pacer.ts';
import { seededBytes } from '../helpers/fixtures.ts';

const SESSION = '0123456789abcdef';
const OTHER = 'fedcba9876543210';
const P = payloadBytes(1500);
const CRC_AT = HEADER_BYTES - 4;

function framesOf(raw: Buffer, session = SESSION, mtu = 1500) {
  const enc = encodeChunk(raw);
  return { id: enc.id, frames: [...chunkFrames(session, enc.id, enc.codec, enc.rawLength, enc.data, payloadBytes(mtu))].map(([, f]) => f) };
}

test('datagrams fit the MTU and carry session, chunk key and offset', () => {
  assert.is(HEADER_BYTES, 36);
  assert.is(payloadBytes(1500), 1436);
  const raw = seededBytes(1, 200_000);
  const { id, frames } = framesOf(raw);
  assert.ok(frames.length > 100);
  let next = 0;
  for (const f of frames) {
    assert.ok(f.length <= 1500 - 28);
    const d = decodeFrame(f, SESSION);
    assert.type(d, 'object');
    if (typeof d === 'string') return;
    assert.is(d.key, id.slice(0, 16));
    assert.is(d.type, 'data');
    assert.is(d.offset, next);
    next += d.payload.length;
  }
});

test('a chunk reassembled from shuffled datagrams is verified and handed out once', () => {
  const raw = seededBytes(2, 150_000);
  const { id, frames } = framesOf(raw);
  const r = new Reassembler(SESSION, [id], P);
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
  const r = new Reassembler(SESSION, [id], P);
  const f0 = frames[0];
  assert.is(r.accept(f0.subarray(0, 30)), null);
  assert.is(r.accept(f0.subarray(0, f0.length - 1)), null, 'truncated: its CRC fails');
  const damaged = Buffer.from(f0);
  damaged[HEADER_BYTES + 5] ^= 1;
  assert.is(r.accept(damaged), null);
  const badMagic = Buffer.from(f0);
  badMagic[0] = 0;
  assert.is(r.accept(badMagic), null);
  const v1 = Buffer.from(f0);
  v1[2] = 1;
  assert.is(r.accept(v1), null, 'a version 1 datagram');
  assert.is(r.accept(framesOf(raw, OTHER).frames[0]), null);
  assert.is(r.accept(framesOf(seededBytes(9, 5000)).frames[0]), null, 'a chunk not asked for');
  // Forged length fields: a huge chunk, a piece beyond the end (CRC recomputed).
  const forge = (edit: (b: Buffer) => void) => {
    const b = Buffer.from(f0);
    edit(b);
    b.writeUInt32BE(crc32(b.subarray(HEADER_BYTES), crc32(b.subarray(0, CRC_AT))), CRC_AT);
    return b;
  };
  assert.is(r.accept(forge((b) => b.writeUIntBE(0xffffff, 23, 3))), null, 'a chunk past MAX_MULTICAST_CHUNK');
  assert.is(r.accept(forge((b) => b.writeUIntBE(0xfffff0, 29, 3))), null, 'a piece past the end');
  assert.equal(
    { short: r.counters.ignored.short, crc: r.counters.ignored.crc, magic: r.counters.ignored.magic, version: r.counters.ignored.version, session: r.counters.ignored.session, unwanted: r.counters.ignored.unwanted, bounds: r.counters.ignored.bounds },
    { short: 1, crc: 2, magic: 1, version: 1, session: 1, unwanted: 1, bounds: 2 },
  );
  assert.is(r.missing.size, 1, 'nothing was taken');
  let got = null;
  for (const f of frames) got = r.accept(f) ?? got;
  assert.ok(got && got[1].equals(raw), 'the true datagrams still complete the chunk');
});

test('a chunk with forged bytes (valid CRC) is dropped as corrupt, never handed out, and taken from a later round', () => {
  const raw = seededBytes(3, 9000);
  const { id, frames } = framesOf(raw);
  const r = new Reassembler(SESSION, [id], P);
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

test('mismatched lengths and pieces off the session cut are ignored', () => {
  const raw = seededBytes(4, 5000);
  const { id, frames } = framesOf(raw);
  const r = new Reassembler(SESSION, [id], P);
  r.accept(frames[0]);
  const d = decodeFrame(frames[1], SESSION);
  if (typeof d === 'string') throw new Error(d);
  assert.is(r.accept(encodeFrame({ ...d, encodedLength: d.encodedLength + 10 })), null);
  assert.is(r.counters.ignored.mismatch, 1);
  assert.is(r.accept(encodeFrame({ ...d, offset: P - 1 })), null, 'an offset off the cut');
  assert.is(r.accept(encodeFrame({ ...d, payload: d.payload.subarray(1) })), null, 'a piece shorter than the cut');
  assert.is(r.counters.ignored.cut, 2);
  let got = null;
  for (const f of frames) got = r.accept(f) ?? got;
  assert.ok(got && got[1].equals(raw));
});

test('a key two lacked chunks share names neither: their datagrams are ignored as ambiguous', () => {
  const raw = seededBytes(5, 4000);
  const { id, frames } = framesOf(raw);
  const twin = keyOf(id) + 'f'.repeat(48);
  assert.is.not(twin, id);
  const r = new Reassembler(SESSION, [id, twin], P);
  let got = null;
  for (const f of frames) got = r.accept(f) ?? got;
  assert.is(got, null);
  assert.is(r.counters.ignored.ambiguous, frames.length);
  assert.equal(r.nack().missing.sort(), [id, twin].sort(), 'both are still lacked (the session leaves them to unicast)');
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
