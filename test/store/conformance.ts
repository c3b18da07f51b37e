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
