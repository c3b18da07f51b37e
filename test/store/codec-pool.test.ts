/**
 * The codec pool (core/store/codec-pool.ts): what its workers encode and decode is what the
 * in-thread codec gives, in the order asked whatever order the jobs finish in; a chunk
 * that does not decode or hash to its id is a ChunkCorruptError as in-thread; a pool closed
 * with jobs out rejects them with a clear error; a process that used the pool exits without
 * closing it. The store conformance suite runs over the pool and over the in-thread codec,
 * so both paths are covered whatever this machine's core count picks by default.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chunkIdOf } from '../../core/store/chunk-id.ts';
import { CODEC_LZ4, CODEC_RAW, decodeChunk, encodeChunk, inThreadCodec, type ChunkCodec } from '../../core/store/codec.ts';
import { CodecPool, CodecPoolError } from '../../core/store/codec-pool.ts';
import { ChunkCorruptError } from '../../core/store/errors.ts';
import { LocalStore } from '../../core/store/local.ts';
import { conformanceSuite } from './conformance.ts';
import { seededBytes } from '../helpers/fixtures.ts';

const pool = new CodecPool({ threads: 2 });

/** Chunks of mixed sizes and kinds: big incompressible ones (slow jobs) between small compressible ones (fast jobs). */
function mixedChunks(n: number): Buffer[] {
  return Array.from({ length: n }, (_, i) => (i % 5 === 0 ? seededBytes(i, 900_000 + i) : Buffer.alloc(1000 + i * 37, `line ${i} of a text file\n`)));
}

for (const [name, codec] of [
  ['CodecPool', pool],
  ['in-thread codec', inThreadCodec],
] as Array<[string, ChunkCodec]>) {
  conformanceSuite(`LocalStore (${name})`, async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'spd-codec-store-'));
    const store = await LocalStore.open(dir, { create: true, packTargetBytes: 256 * 1024, codec });
    return { store, close: async () => (await store.close(), await rm(dir, { recursive: true, force: true })) };
  }).run();
}

test('encodeMany gives the in-thread encoding of every chunk, in the order asked, across concurrent callers', async () => {
  const a = mixedChunks(40);
  const b = mixedChunks(25).map((c) => Buffer.concat([c, Buffer.from('b')]));
  const expect = (chunks: Buffer[]) => chunks.map((c) => encodeChunk(c, chunkIdOf(c)));
  const [wantA, wantB] = [expect(a), expect(b)];
  // Copies: the pool takes over (detaches) raw buffers that own their memory.
  const [gotA, gotB] = await Promise.all([
    pool.encodeMany(a.map((c) => ({ id: chunkIdOf(c), raw: Buffer.from(c) }))),
    pool.encodeMany(b.map((c) => ({ id: chunkIdOf(c), raw: new Uint8Array(c) }))),
  ]);
  for (const [got, want] of [
    [gotA, wantA],
    [gotB, wantB],
  ]) {
    assert.is(got.length, want.length);
    got.forEach((g, i) => {
      assert.is(g.id, want[i].id, `chunk ${i} in its place`);
      assert.is(g.codec, want[i].codec, `chunk ${i} codec`);
      assert.is(g.rawLength, want[i].rawLength);
      assert.ok(g.data.equals(want[i].data), `chunk ${i} bytes`);
    });
  }
  assert.ok(gotA.some((c) => c.codec === CODEC_RAW) && gotA.some((c) => c.codec === CODEC_LZ4), 'both codecs occur');
});

test('decodeMany returns the raw bytes in order, checked like decodeChunk', async () => {
  const raw = mixedChunks(30);
  const encoded = raw.map((c) => encodeChunk(c, chunkIdOf(c)));
  // Inputs that own their memory too: decoding must leave them as they were (putEncoded stores them after).
  const inputs = encoded.map((e) => ({ ...e, data: Buffer.from(new Uint8Array(e.data).buffer) }));
  const decoded = await pool.decodeMany(inputs);
  decoded.forEach((d, i) => assert.ok(d.equals(raw[i]), `chunk ${i}`));
  inputs.forEach((e, i) => assert.ok(e.data.equals(encoded[i].data), `input ${i} kept`));
  assert.is(decoded.length, raw.length);
});

test('a chunk that does not decode or hash to its id is the same ChunkCorruptError as in-thread', async () => {
  const raw = Buffer.alloc(70_000, 'abc');
  const good = encodeChunk(raw, chunkIdOf(raw));
  const garbled = { ...good, data: Buffer.from(good.data) };
  garbled.data[good.data.length - 20] ^= 0xff;
  garbled.data[8] ^= 0x55;
  const wrongId = { ...good, id: chunkIdOf(Buffer.from('another chunk')), data: Buffer.from(good.data) };
  const badHeader = { ...good, data: Buffer.from(good.data), rawLength: 12 };
  for (const bad of [garbled, wrongId, badHeader]) {
    let inThread: Error | undefined;
    try {
      decodeChunk({ ...bad, data: Buffer.from(bad.data) });
    } catch (err) {
      inThread = err as Error;
    }
    const pooled = await pool.decodeMany([{ ...good, data: Buffer.from(good.data) }, bad]).catch((err: Error) => err);
    assert.instance(pooled, ChunkCorruptError);
    assert.ok(inThread, 'in-thread decode refuses it too');
    assert.is((pooled as Error).message, inThread!.message);
    assert.ok((pooled as Error).message.includes(bad.id), 'the message names the chunk');
  }
});

test('closing the pool with jobs out rejects them with CodecPoolError; a closed pool refuses work', async () => {
  const own = new CodecPool({ threads: 1 });
  const chunks = mixedChunks(10).map((c) => ({ id: chunkIdOf(c), raw: c }));
  const out = own.encodeMany(chunks).catch((e: Error) => e);
  await new Promise((r) => setImmediate(r)); // the job is sent at the end of the turn
  await own.close();
  const err = await out;
  assert.instance(err, CodecPoolError);
  assert.match((err as CodecPoolError).message, /closed/);
  assert.ok((err as CodecPoolError).hint.length > 0);
  assert.instance(await own.decodeMany([]).catch((e: Error) => e), CodecPoolError);
});

test('a process that used the pool and never closed it exits on its own', () => {
  const script = `
    import { defaultCodec } from ${JSON.stringify(new URL('../../core/store/codec-pool.ts', import.meta.url).href)};
    const codec = defaultCodec();
    const out = await codec.encodeMany([{ id: 'x'.repeat(64), raw: Buffer.alloc(100000, 7) }]);
    console.log(codec.constructor.name, out[0].codec, out[0].rawLength);`;
  // The timeout guards against a hang only (a pool that keeps the process alive fails here).
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { env: { ...process.env, CLONER_CODEC_THREADS: '2' }, encoding: 'utf8', timeout: 60_000 });
  assert.is(r.signal, null, 'not killed by the hang guard');
  assert.is(r.status, 0, r.stderr);
  assert.is(r.stdout.trim(), 'CodecPool 1 100000');
});

test.after(async () => {
  await pool.close();
});

test.run();
