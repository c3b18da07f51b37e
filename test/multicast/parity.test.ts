/**
 * Reed-Solomon repair (core/multicast/rs.ts, sender.ts planRepair, reassembly.ts): any L
 * held rows rebuild any L lost pieces of a group; one round of parity sized by the worst
 * receiver repairs different losses at every receiver (fewer datagrams than resending the
 * union); rows held from an earlier round count in the next; a forged parity row (valid
 * CRC, wrong bytes) never yields a chunk: the rebuilt chunk fails its BLAKE3 check; small
 * chunks packed in one object (wire.ts) share a group, so one row repairs any one of them.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { randomBytes } from 'node:crypto';
import { encodeChunk, type EncodedChunk } from '../../core/store/codec.ts';
import { Reassembler } from '../../core/multicast/reassembly.ts';
import { MAX_GROUP, parityRow, recover } from '../../core/multicast/rs.ts';
import { interleave, planRepair } from '../../core/multicast/sender.ts';
import { decodeFrame, encodeFrame, groupsOf, parityFrame, payloadBytes, piecesOf } from '../../core/multicast/wire.ts';
import { seededBytes } from '../helpers/fixtures.ts';
import { listOf, objectOf } from './objects.ts';

const SESSION = '0123456789abcdef';
const P = payloadBytes(1500);

test('any L parity rows rebuild any L lost pieces (Cauchy rows, zero-padded last piece)', () => {
  let seed = 7;
  const rand = (n: number) => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
  for (const k of [1, 2, 5, 33, MAX_GROUP]) {
    const size = 100;
    const pieces = Array.from({ length: k }, (_, i) => randomBytes(i === k - 1 ? 37 : size));
    for (let trial = 0; trial < 20; trial++) {
      const L = 1 + rand(Math.min(k, 6));
      const lost = new Set<number>();
      while (lost.size < L) lost.add(rand(k));
      const rows = new Map<number, Buffer>();
      while (rows.size < L) {
        const row = rand(40);
        rows.set(row, parityRow(pieces, row, size));
      }
      const got = recover(pieces.map((p, i) => (lost.has(i) ? null : p)), rows, size);
      assert.equal([...got.keys()].sort((a, b) => a - b), [...lost].sort((a, b) => a - b));
      for (const [i, piece] of got) assert.ok(piece.subarray(0, pieces[i].length).equals(pieces[i]) && piece.subarray(pieces[i].length).every((b) => b === 0), `k=${k} piece ${i}`);
    }
  }
});

function chunk(seed: number, bytes: number): EncodedChunk {
  const enc = encodeChunk(seededBytes(seed, bytes));
  assert.is(enc.codec, 0, 'random data is stored raw');
  return enc;
}

/** A one-chunk object and what it takes to repair it. */
function single(c: EncodedChunk) {
  const list = listOf([c.id]);
  const o = objectOf(SESSION, [c], list, P);
  const parity = (first: number, k: number, row: number) => parityFrame(SESSION, o.name, o.bytes, P, first, k, row);
  const receiver = () => new Reassembler(SESSION, [c.id], P, list);
  return { list, o, parity, receiver };
}

test('one repair round of parity fixes different losses at five receivers with fewer datagrams than resending', () => {
  const c = chunk(1, 250_000);
  const { o, parity, receiver } = single(c);
  const n = piecesOf(o.bytes.length, P);
  assert.equal(groupsOf(n).map(([, k]) => k), [86, 87], `${n} pieces in two groups`);
  // Receiver r loses pieces 2r and 2r+1 (group 0) and, for r < 2, piece 100 + r (group 1).
  const lostBy = (r: number) => new Set([2 * r, 2 * r + 1, ...(r < 2 ? [100 + r] : [])]);
  const receivers = [0, 1, 2, 3, 4].map(receiver);
  for (const [r, rx] of receivers.entries()) for (const [i, f] of o.frames.entries()) if (!lostBy(r).has(i)) assert.equal(rx.accept(f), []);
  const reports = receivers.map((rx) => rx.nack());
  for (const [r, rep] of reports.entries()) assert.equal(rep.gaps[0][1], [...lostBy(r)].map((i) => i * P));
  const lost = reports.map((rep) => rep.gaps[0][1]);
  const used = new Map<string, number>();
  const plan = planRepair(c.id, o.bytes.length, P, lost, used, 'parity');
  assert.equal(plan.rows, [[0, 86, 0], [0, 86, 1], [86, 87, 0]], 'rows: the worst receiver per group');
  assert.is(plan.resend.size, 0);
  assert.is(planRepair(c.id, o.bytes.length, P, lost, new Map(), 'resend').resend.size, 12, 'resending takes the union: 12 datagrams against 3');
  const rows = plan.rows.map(([first, k, row]) => parity(first, k, row));
  for (const rx of receivers) {
    const got = rows.flatMap((f) => rx.accept(f));
    assert.ok(got.length === 1 && got[0][0] === c.id && got[0][1].equals(seededBytes(1, 250_000)), 'rebuilt and verified');
    assert.is(rx.missing.size, 0);
  }
  assert.is(receivers[0].counters.rebuilt, 3);
});

test('rows held from one round count in the next; a repeat row is a duplicate; new rows are new', () => {
  const c = chunk(2, 60_000);
  const { o, parity, receiver } = single(c);
  const rx = receiver();
  for (const [i, f] of o.frames.entries()) if (![3, 5, 9].includes(i)) rx.accept(f);
  const used = new Map<string, number>();
  const round2 = planRepair(c.id, o.bytes.length, P, [rx.nack().gaps[0][1], [0]], used, 'parity');
  assert.equal(round2.rows.map(([, , row]) => row), [0, 1, 2]);
  const k = round2.rows[0][1];
  // Only row 1 arrives: the receiver now asks for two pieces, not three.
  assert.equal(rx.accept(parity(0, k, 1)), []);
  assert.equal(rx.accept(parity(0, k, 1)), []);
  assert.is(rx.counters.ignored.duplicate, 1);
  const nack = rx.nack().gaps[0][1];
  assert.is(nack.length, 2);
  assert.equal(planRepair(c.id, o.bytes.length, P, [nack], new Map(), 'parity').resend, new Set(nack), 'alone, its pieces are resent (parity would be no smaller)');
  const round3 = planRepair(c.id, o.bytes.length, P, [nack, [0]], used, 'parity');
  assert.equal(round3.rows.map(([, , row]) => row), [3, 4], 'rows not sent before');
  const got = round3.rows.flatMap(([first, kk, row]) => rx.accept(parity(first, kk, row)));
  assert.ok(got.length === 1 && got[0][1].equals(seededBytes(2, 60_000)));
});

test('forged parity: off the groups, too many rows, or wrong bytes (valid CRC) never yields a chunk', () => {
  const c = chunk(3, 30_000);
  const { o, parity, receiver } = single(c);
  const rx = receiver();
  for (const [i, f] of o.frames.entries()) if (i !== 2) rx.accept(f);
  const k = groupsOf(piecesOf(o.bytes.length, P))[0][1];
  const good = decodeFrame(parity(0, k, 0), SESSION);
  if (typeof good === 'string') throw new Error(good);
  assert.equal(rx.accept(encodeFrame(SESSION, { ...good, piece: 1 })), [], 'a group that does not start there');
  assert.equal(rx.accept(encodeFrame(SESSION, { ...good, payload: good.payload.subarray(1) })), [], 'a row shorter than the cut');
  assert.is(rx.counters.ignored.cut, 2);
  assert.equal(rx.accept(encodeFrame(SESSION, { ...good, payload: Buffer.alloc(P, 0x41) })), [], 'wrong bytes: rebuilt, fails BLAKE3');
  assert.is(rx.counters.corrupt, 1);
  assert.is(rx.missing.size, 1);
  assert.equal(rx.nack().missing, [c.id], 'asked for again whole');
  const got = o.frames.flatMap((f) => rx.accept(f));
  assert.ok(got.length === 1 && got[0][1].equals(seededBytes(3, 30_000)));
});

test('a window of objects is sent interleaved: a burst loses a few pieces of many objects, which parity repairs', () => {
  assert.equal([...interleave([[1, 2, 3], [4], [5, 6]])], [1, 4, 5, 2, 6, 3]);
  const chunks = [4, 5, 6].map((seed) => chunk(seed, 40_000));
  const list = listOf(chunks.map((c) => c.id));
  const objects = chunks.map((c) => objectOf(SESSION, [c], list, P));
  const order = [...interleave(objects.map((o) => o.frames))];
  // Two receivers each lose a different burst of 6 datagrams in a row: 2 pieces of each object.
  const rx = [0, 1].map(() => new Reassembler(SESSION, chunks.map((c) => c.id), P, list));
  order.forEach((f, i) => rx.forEach((r, j) => (j === 0 ? i >= 3 && i < 9 : i >= 20 && i < 26) || r.accept(f)));
  const used = new Map<string, number>();
  let rows = 0;
  for (const [n, o] of objects.entries()) {
    const lost = rx.map((r) => r.nack().gaps.find(([id]) => id === chunks[n].id)?.[1] ?? []);
    assert.equal(lost.map((l) => l.length), [2, 2]);
    const plan = planRepair(chunks[n].id, o.bytes.length, P, lost, used, 'parity');
    rows += plan.rows.length;
    for (const [first, k, row] of plan.rows) for (const r of rx) r.accept(parityFrame(SESSION, o.name, o.bytes, P, first, k, row));
  }
  assert.is(rows, 6, '6 parity datagrams repair 12 losses');
  for (const r of rx) assert.is(r.missing.size, 0);
});

test('small chunks packed in one object share its parity group: one row repairs a loss in any of them', () => {
  const chunks = Array.from({ length: 60 }, (_, i) => chunk(100 + i, 1_000));
  const list = listOf(chunks.map((c) => c.id));
  const o = objectOf(SESSION, chunks, list, P);
  assert.is(groupsOf(o.frames.length).length, 1, `${o.frames.length} pieces, one group`);
  // Eight receivers each lose a different piece: one chunk each, whole, had each been sent alone.
  const rx = Array.from({ length: 8 }, () => new Reassembler(SESSION, chunks.map((c) => c.id), P, list));
  rx.forEach((r, j) => o.frames.forEach((f, i) => i === 3 * j + 1 || r.accept(f)));
  const lost = rx.map((r) => r.nack().gaps[0][1]);
  const plan = planRepair(chunks[0].id, o.bytes.length, P, lost, new Map(), 'parity');
  assert.is(plan.rows.length, 1, 'one row for eight different losses');
  for (const r of rx) {
    r.accept(parityFrame(SESSION, o.name, o.bytes, P, ...plan.rows[0]));
    assert.is(r.missing.size, 0);
  }
});

test.run();
