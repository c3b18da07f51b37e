/**
 * The store conformance suite: every ChunkReader + ChunkWriter implementation (the local
 * pack store now, the HTTP client of the server next) must pass it.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { chunkIdOf } from '../../core/store/chunk-id.ts';
import { encodeChunk } from '../../core/store/codec.ts';
import { ChunkCorruptError, ChunkMissingError, InvalidChunkError } from '../../core/store/errors.ts';
import type { ChunkReader, ChunkWriter } from '../../core/store/interfaces.ts';
import { seededBytes } from '../helpers/fixtures.ts';

export type ConformanceStore = ChunkReader & ChunkWriter;

/**
 * BLAKE3 known answers, independent of the code under test: the first 32 bytes of the
 * "hash" output of the official vectors (BLAKE3-team/BLAKE3, test_vectors/test_vectors.json,
 * commit 2f6f56f3477321c9e4742f1c863e45f2cfcbfb5e), whose input of each length is the
 * repeating bytes 0, 1, ..., 250 (byte i is i % 251). Lengths cover one block, a chunk
 * boundary (1024) and a many-chunk tree (102400).
 */
export const BLAKE3_VECTORS: ReadonlyArray<[inputLength: number, hash: string]> = [
  [0, 'af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262'],
  [1, '2d3adedff11b61f14c886e35afa036736dcd87a74d27b5c1510225d0f592e213'],
  [1023, '10108970eeda3eb932baac1428c7a2163b0e924c9a9e25b35bba72b28f70bd11'],
  [1024, '42214739f095a406f3fc83deb889744ac00df831c10daa55189b5d121c855af7'],
  [1025, 'd00278ae47eb27b34faecf67b4fe263f82d5412916c1ffd97c8cb7fb814b8444'],
  [8193, 'bab6c09cb8ce8cf459261398d2e7aef35700bf488116ceb94a36d0f5f1b7bc3b'],
  [31744, '62b6960e1a44bcc1eb1a611a8d6235b6b4b78f32e7abc4fb4c6cdcce94895c47'],
  [102400, 'bc3e3d41a1146b069abffad3c0d44860cf664390afce4d9661f7902e7943e085'],
];

export function blake3VectorInput(length: number): Buffer {
  return Buffer.from(Array.from({ length }, (_, i) => i % 251));
}

export function conformanceSuite(name: string, open: () => Promise<{ store: ConformanceStore; close: () => Promise<void> }>) {
  const s = suite(`conformance: ${name}`);
  let ctx: { store: ConformanceStore; close: () => Promise<void> };
  s.before.each(async () => {
    ctx = await open();
  });
  s.after.each(async () => {
    await ctx.close();
  });

  s('put then get returns the same bytes; id is BLAKE3 of the bytes', async () => {
    const data = seededBytes(1, 100_000);
    const id = await ctx.store.put(data);
    assert.is(id, chunkIdOf(data));
    assert.ok((await ctx.store.get(id)).equals(data));
  });

  s('chunk ids are BLAKE3-256: the official BLAKE3 test vectors give the ids put returns and get accepts', async () => {
    assert.is(chunkIdOf(new Uint8Array(0)), BLAKE3_VECTORS[0][1], 'the empty input');
    for (const [length, hash] of BLAKE3_VECTORS) {
      const data = blake3VectorInput(length);
      assert.is(chunkIdOf(data), hash, `chunkIdOf of the ${length}-byte vector`);
      if (length === 0) continue;
      assert.is(await ctx.store.put(data), hash, `id of the ${length}-byte vector`);
    }
    await ctx.store.flush();
    for (const [length, hash] of BLAKE3_VECTORS.slice(1)) assert.ok((await ctx.store.get(hash)).equals(blake3VectorInput(length)), `get of the ${length}-byte vector`);
  });

  s('put keeps its own copy: the caller may reuse its buffer at once (incompressible data too)', async () => {
    const buffer = seededBytes(11, 64 * 1024);
    const expected = Buffer.from(buffer);
    const pending = ctx.store.put(buffer.subarray(0, 32 * 1024));
    buffer.fill(0); // a capture reuses its read buffer before the put has gone anywhere
    const id = await pending;
    await ctx.store.flush();
    assert.is(id, chunkIdOf(expected.subarray(0, 32 * 1024)));
    assert.ok((await ctx.store.get(id)).equals(expected.subarray(0, 32 * 1024)));
  });

  s('has and hasMany tell present from absent, in order', async () => {
    const a = await ctx.store.put(seededBytes(2, 5000));
    const absent = chunkIdOf(Buffer.from('never stored'));
    assert.is(await ctx.store.has(a), true);
    assert.is(await ctx.store.has(absent), false);
    assert.equal(await ctx.store.hasMany([absent, a, absent]), [false, true, false]);
  });

  s('put is idempotent', async () => {
    const data = Buffer.alloc(70_000, 7);
    const [x, y] = await Promise.all([ctx.store.put(data), ctx.store.put(data)]);
    assert.is(x, y);
    assert.is(await ctx.store.put(data), x);
    assert.ok((await ctx.store.get(x)).equals(data));
  });

  s('getMany yields every distinct chunk once', async () => {
    const datas = Array.from({ length: 50 }, (_, i) => seededBytes(100 + i, 1000 + i * 997));
    const ids = await Promise.all(datas.map((d) => ctx.store.put(d)));
    const seen = new Map<string, Buffer>();
    for await (const [id, d] of ctx.store.getMany([...ids, ...ids.slice(0, 5)])) {
      assert.not.ok(seen.has(id), 'yielded twice');
      seen.set(id, d);
    }
    assert.is(seen.size, 50);
    ids.forEach((id, i) => assert.ok(seen.get(id)!.equals(datas[i])));
  });

  s('missing chunks raise ChunkMissingError; malformed ids InvalidChunkError', async () => {
    const absent = chunkIdOf(Buffer.from('absent'));
    try {
      await ctx.store.get(absent);
      assert.unreachable('get of a missing chunk succeeded');
    } catch (err) {
      assert.instance(err, ChunkMissingError);
    }
    try {
      await ctx.store.has('../../etc/passwd');
      assert.unreachable('bad id accepted');
    } catch (err) {
      assert.instance(err, InvalidChunkError);
    }
  });

  s('putEncoded checks the bytes against the id', async () => {
    const good = encodeChunk(seededBytes(3, 20_000));
    assert.is(await ctx.store.putEncoded(good), good.id);
    const lie = { ...encodeChunk(seededBytes(4, 20_000)), id: chunkIdOf(Buffer.from('other')) };
    try {
      await ctx.store.putEncoded(lie);
      assert.unreachable('a chunk with a false id was stored');
    } catch (err) {
      assert.instance(err, ChunkCorruptError);
    }
    assert.is(await ctx.store.has(lie.id), false);
  });

  s('incompressible and compressible chunks both round-trip', async () => {
    const random = seededBytes(9, 200_000);
    const text = Buffer.from('cluster node configuration '.repeat(5000));
    for (const d of [random, text, Buffer.alloc(0)]) {
      const id = await ctx.store.put(d);
      assert.ok((await ctx.store.get(id)).equals(d));
    }
  });

  return s;
}
