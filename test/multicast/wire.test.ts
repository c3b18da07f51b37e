/**
 * The multicast wire (version 3: objects of whole chunks, an 18-byte header naming the
 * session, the object and the piece) and its reassembly: an object sent as MTU-sized
 * datagrams in any order comes back with each chunk verified; several small chunks share
 * datagrams; an object holding nothing a node lacks is dropped once its directory is in;
 * forged, truncated, damaged, foreign-session, old-version, off-cut and out-of-bounds
 * datagrams are ignored and counted; objects held in the making are bounded; a chunk whose pieces are forged (right CRC, wrong
 * bytes) is never handed out, and is taken again when the true pieces come. Parity
 * (rs.ts, wire.ts parityFrame) is tested in parity.test.ts.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chunkIdOf } from '../../core/store/chunk-id.ts';
import { Reassembler } from '../../core/multicast/reassembly.ts';
import { DATA_HEADER_BYTES, decodeFrame, encodeFrame, maxEntries, payloadBytes, readDirectory } from '../../core/multicast/wire.ts';
import { parseRate, TokenBucket } from '../../core/multicast/pacer.ts';
import { seededBytes } from '../helpers/fixtures.ts';
import { encoded, listOf, objectOf } from './objects.ts';

const SESSION = '0123456789abcdef';
const OTHER = 'fedcba9876543210';
const P = payloadBytes(1500);

test('datagrams fit the MTU and carry session, object and piece', () => {
  assert.is(DATA_HEADER_BYTES, 18);
  assert.is(P, 1453);
  assert.is(maxEntries(P), 145);
  const c = encoded(seededBytes(1, 200_000));
  const list = listOf([c.id]);
  const o = objectOf(SESSION, [c], list, P);
  assert.ok(o.frames.length > 100);
  o.frames.forEach((f, i) => {
    assert.ok(f.length <= 1500 - 28);
    const d = decodeFrame(f, SESSION);
    if (typeof d === 'string') throw new Error(d);
    assert.equal([d.type, d.object, d.length, d.piece], ['data', list.indexOf(c.id), o.bytes.length, i]);
  });
  assert.equal(readDirectory(o.bytes, o.name, list.length), [{ index: o.name, codec: c.codec, rawLength: c.rawLength, encodedLength: c.data.length }]);
  assert.is(readDirectory(o.bytes, o.name + 1, list.length), null, 'named by another chunk');
  assert.is(readDirectory(o.bytes.subarray(0, o.bytes.length - 1), o.name, list.length), null, 'lengths that do not add up');
});

test('an object reassembled from shuffled datagrams hands out each lacked chunk once, verified', () => {
  const raws = [seededBytes(2, 150_000), Buffer.from('small file\n'), seededBytes(3, 700)];
  const cs = raws.map(encoded);
  const list = listOf(cs.map((c) => c.id));
  const o = objectOf(SESSION, cs, list, P);
  // This node lacks the first and the last: the middle one is skipped.
  const r = new Reassembler(SESSION, [cs[0].id, cs[2].id], P, list);
  const got = new Map<string, Buffer>();
  const shuffled = [...o.frames].reverse();
  for (const f of [...shuffled, ...shuffled.slice(0, 3)]) for (const [id, raw] of r.accept(f)) got.set(id, raw);
  assert.equal([...got.keys()].sort(), [cs[0].id, cs[2].id].sort());
  assert.ok(got.get(cs[0].id)!.equals(raws[0]) && got.get(cs[2].id)!.equals(raws[2]));
  assert.is(r.missing.size, 0);
  assert.is(r.counters.chunks, 2);
  assert.is(r.counters.ignored.unwanted, 3, 'datagrams of an object already complete are not taken again');
});

test('small chunks share datagrams; an object holding nothing lacked is dropped at its directory', () => {
  const cs = Array.from({ length: 40 }, (_, i) => encoded(Buffer.from(`file ${i}\n`.repeat(5))));
  const list = listOf(cs.map((c) => c.id));
  const o = objectOf(SESSION, cs, list, P);
  assert.is(o.frames.length, 1, '40 small chunks in one datagram');
  const r = new Reassembler(SESSION, [list.find((id) => !cs.some((c) => c.id === id))!], P, list);
  assert.equal(r.accept(o.frames[0]), []);
  assert.equal(r.accept(o.frames[0]), []);
  assert.is(r.counters.ignored.unwanted, 1);
  assert.equal(r.nack().gaps, [], 'nothing held');
});

test('forged, truncated, damaged and foreign datagrams are ignored and counted', () => {
  const c = encoded(Buffer.from('x'.repeat(3000) + 'tail'));
  const list = listOf([c.id]);
  const o = objectOf(SESSION, [c], list, P);
  const r = new Reassembler(SESSION, [c.id], P, list);
  const f0 = o.frames[0];
  assert.equal(r.accept(f0.subarray(0, 10)), []);
  assert.equal(r.accept(f0.subarray(0, f0.length - 1)), [], 'truncated: its CRC fails');
  const damaged = Buffer.from(f0);
  damaged[DATA_HEADER_BYTES + 5] ^= 1;
  assert.equal(r.accept(damaged), []);
  const badMagic = Buffer.from(f0);
  badMagic[0] = 0;
  assert.equal(r.accept(badMagic), []);
  const v2 = Buffer.from(f0);
  v2[0] = 0x43;
  v2[1] = 0x4d; // version 2 began "CM"
  assert.equal(r.accept(v2), [], 'a version 2 datagram');
  assert.equal(r.accept(objectOf(OTHER, [c], list, P).frames[0]), [], 'another session');
  const tagTwin = OTHER.slice(0, 8) === SESSION.slice(0, 8) ? OTHER : SESSION.slice(0, 8) + '00000000';
  assert.equal(r.accept(objectOf(tagTwin, [c], list, P).frames[0]), [], 'another session with the same tag fails the CRC');
  const d = decodeFrame(f0, SESSION);
  if (typeof d === 'string') throw new Error(d);
  // Forged fields with a valid CRC: an object past MAX_OBJECT, a chunk past the list, a piece past the end.
  assert.equal(r.accept(encodeFrame(SESSION, { ...d, length: 0xffffff })), []);
  assert.equal(r.accept(encodeFrame(SESSION, { ...d, object: list.length + 5 })), []);
  assert.equal(r.accept(encodeFrame(SESSION, { ...d, piece: 500 })), [], 'a piece past the end');
  const ig = r.counters.ignored;
  assert.equal({ short: ig.short, crc: ig.crc, magic: ig.magic, version: ig.version, session: ig.session, bounds: ig.bounds, cut: ig.cut }, { short: 1, crc: 3, magic: 1, version: 1, session: 1, bounds: 2, cut: 1 });
  assert.is(r.missing.size, 1, 'nothing was taken');
  const got = o.frames.flatMap((f) => r.accept(f));
  assert.ok(got.length === 1 && got[0][0] === c.id, 'the true datagrams still complete the chunk');
});

test('a chunk with forged bytes (valid CRC) is dropped as corrupt, never handed out, and taken from a later round', () => {
  const raw = seededBytes(3, 9000);
  const c = encoded(raw);
  const list = listOf([c.id]);
  const o = objectOf(SESSION, [c], list, P);
  const r = new Reassembler(SESSION, [c.id], P, list);
  const d = decodeFrame(o.frames[1], SESSION);
  if (typeof d === 'string') throw new Error(d);
  assert.equal(r.accept(encodeFrame(SESSION, { ...d, payload: Buffer.alloc(d.payload.length, 0x41) })), []);
  const first = o.frames.flatMap((f, i) => (i === 1 ? [] : r.accept(f)));
  assert.equal(first, [], 'the forged piece makes the chunk fail its BLAKE3 check');
  assert.is(r.counters.corrupt, 1);
  assert.ok(r.missing.has(c.id));
  assert.equal(r.nack().missing, [c.id], 'asked for again');
  const again = o.frames.flatMap((f) => r.accept(f));
  assert.ok(again.length === 1 && again[0][1].equals(raw) && chunkIdOf(again[0][1]) === c.id);
});

test('a forged directory, mismatched lengths and pieces off the session cut are ignored', () => {
  const raw = seededBytes(4, 5000);
  const c = encoded(raw);
  const list = listOf([c.id]);
  const o = objectOf(SESSION, [c], list, P);
  const r = new Reassembler(SESSION, [c.id], P, list);
  const d0 = decodeFrame(o.frames[0], SESSION);
  if (typeof d0 === 'string') throw new Error(d0);
  const badDir = Buffer.from(d0.payload);
  badDir.writeUInt16BE(7, 0);
  assert.equal(r.accept(encodeFrame(SESSION, { ...d0, payload: badDir })), []);
  assert.is(r.counters.ignored.directory, 1, 'a directory that does not add up drops the object');
  r.accept(o.frames[0]);
  const d = decodeFrame(o.frames[1], SESSION);
  if (typeof d === 'string') throw new Error(d);
  assert.equal(r.accept(encodeFrame(SESSION, { ...d, length: d.length + 10 })), []);
  assert.is(r.counters.ignored.mismatch, 1);
  assert.equal(r.accept(encodeFrame(SESSION, { ...d, payload: d.payload.subarray(1) })), [], 'a piece shorter than the cut');
  assert.is(r.counters.ignored.cut, 1);
  const got = o.frames.flatMap((f) => r.accept(f));
  assert.ok(got.length === 1 && got[0][1].equals(raw));
});

test('objects in the making are held up to a bound: past it a new one is refused, its chunks asked for whole', () => {
  const [a, b] = [seededBytes(10, 20_000), seededBytes(11, 20_000)].map(encoded);
  const list = listOf([a.id, b.id]);
  const [oa, ob] = [a, b].map((c) => objectOf(SESSION, [c], list, P));
  const r = new Reassembler(SESSION, [a.id, b.id], P, list, oa.bytes.length + 100);
  r.accept(oa.frames[0]);
  assert.equal(r.accept(ob.frames[0]), []);
  assert.is(r.counters.ignored.full, 1);
  assert.equal(r.nack().missing, [b.id], 'the chunk of the refused object is lacked whole');
  const got = [...oa.frames.slice(1), ...ob.frames].flatMap((f) => r.accept(f));
  assert.equal(got.map(([id]) => id), [a.id, b.id], 'once the first is whole, the second is taken');
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
