/**
 * Directory objects read in batches (core/tree/parent-objects.ts) on a real local store:
 * the asks of one turn go out as one getMany, inline and cut objects come back whole, a
 * missing object fails alone while the rest of its batch loads, a prefetched object is read
 * once and taken by its load (a missing one fails that load, never the process), and
 * walkTree and loadTree read a tree with one getMany per level instead of one get per
 * directory.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { ChunkId } from '../../core/store/chunk-id.ts';
import { ChunkMissingError } from '../../core/store/errors.ts';
import type { LocalStore } from '../../core/store/local.ts';
import { putObject } from '../../core/store/objects.ts';
import { serializeDirectory, type Entry } from '../../core/tree/manifest.ts';
import { MAX_AHEAD, ObjectBatcher, parseObject } from '../../core/tree/parent-objects.ts';
import { loadTree } from '../../core/tree/restore.ts';
import { walkTree } from '../../core/tree/tree-walk.ts';
import { seededBytes } from '../helpers/fixtures.ts';
import { withStore } from '../helpers/store.ts';

/** The store's reads, counted. */
function counted(store: LocalStore) {
  const calls = { get: 0, getMany: 0 };
  return {
    calls,
    get: (id: ChunkId) => (calls.get++, store.get(id)),
    getMany: (ids: Iterable<ChunkId>) => (calls.getMany++, store.getMany(ids)),
  };
}

test('the asks of one turn go out as one getMany; inline and cut objects come back whole', async () => {
  await withStore(async (store) => {
    const bodies = Array.from({ length: 40 }, (_, i) => Buffer.from(JSON.stringify({ n: i, pad: 'x'.repeat(i * 10) })));
    const big = Buffer.from(JSON.stringify({ blob: seededBytes(7, 3 * store.config.chunker.maxSize).toString('base64') }));
    const ids = await Promise.all([...bodies, big].map((b) => putObject(store, b, store.config.chunker)));
    await store.flush();
    const reader = counted(store);
    const objects = new ObjectBatcher(reader);
    const loaded = await Promise.all(ids.map((id) => objects.load(id)));
    assert.is(reader.calls.getMany, 2, 'one batch, then the big object\'s parts');
    assert.is(reader.calls.get, 1, 'the big object\'s root, read again by getObject');
    loaded.slice(0, 40).forEach((o, i) => {
      assert.ok(o.body.equals(bodies[i]));
      assert.equal(o.parts, []);
    });
    assert.ok(loaded[40].body.equals(big));
    assert.ok(loaded[40].parts.length >= 2, 'a cut object lists its parts');
    assert.equal(parseObject(loaded[3], ids[3]), { n: 3, pad: 'x'.repeat(30) });
  });
});

test('a missing object fails alone, with ChunkMissingError; the rest of its batch loads', async () => {
  await withStore(async (store) => {
    const ids = await Promise.all([0, 1, 2].map((i) => putObject(store, Buffer.from(`{"n":${i}}`), store.config.chunker)));
    await store.flush();
    const absent = 'ab'.repeat(32);
    const objects = new ObjectBatcher(store);
    const results = await Promise.allSettled([...ids, absent].map((id) => objects.load(id)));
    assert.equal(results.slice(0, 3).map((r) => r.status === 'fulfilled' && r.value.body.toString()), ['{"n":0}', '{"n":1}', '{"n":2}']);
    assert.is(results[3].status, 'rejected');
    assert.instance((results[3] as PromiseRejectedResult).reason, ChunkMissingError);
    assert.throws(() => parseObject({ body: Buffer.from('{nope'), parts: [] }, ids[0]), /not valid JSON/);
  });
});

test('prefetch: read once, in the batch of its turn, taken by the load; a missing one fails its load only; the oldest dropped past MAX_AHEAD', async () => {
  await withStore(async (store) => {
    const ids = await Promise.all([0, 1, 2].map((i) => putObject(store, Buffer.from(`{"n":${i}}`), store.config.chunker)));
    await store.flush();
    const absent = 'ab'.repeat(32);
    const reader = counted(store);
    const objects = new ObjectBatcher(reader);
    for (const id of [...ids, absent]) objects.prefetch(id);
    await new Promise((r) => setTimeout(r, 50)); // fetched, and the absent one failed with nobody asking: no unhandled rejection
    assert.is(reader.calls.getMany, 1);
    assert.equal((await Promise.all(ids.map((id) => objects.load(id)))).map((o) => o.body.toString()), ['{"n":0}', '{"n":1}', '{"n":2}']);
    assert.is(reader.calls.getMany, 1, 'taken, not read again');
    await objects.load(absent).then(() => assert.unreachable('loaded a missing object'), (err) => assert.instance(err, ChunkMissingError));
    await objects.load(ids[0]);
    assert.is(reader.calls.getMany, 2, 'a load after the prefetched one was taken reads again');

    const many = new ObjectBatcher(reader);
    const fake = (i: number) => i.toString(16).padStart(64, '0') as ChunkId;
    for (let i = 0; i < MAX_AHEAD + 1; i++) many.prefetch(i === MAX_AHEAD ? ids[1] : fake(i));
    await new Promise((r) => setTimeout(r, 50));
    const before = reader.calls.getMany;
    assert.is((await many.load(ids[1])).body.toString(), '{"n":1}');
    assert.is(reader.calls.getMany, before, 'the newest is held');
    await many.load(fake(0)).then(() => assert.unreachable(), () => undefined);
    assert.ok(reader.calls.getMany > before, 'the oldest was dropped and is read again');
  });
});

test('walkTree reads a tree one getMany per level, and counts it as before', async () => {
  await withStore(async (store) => {
    const meta = { mode: 0o755, uid: 0, gid: 0, mtime: [1, 0] as [number, number] };
    // Three levels of 6 directories each, every leaf with two small files.
    const file = (name: string, size: number): Entry => ({ name, ...meta, type: 'file', size, chunks: [] });
    const leaf = await putObject(store, serializeDirectory([file('a', 0), file('b', 0)]), store.config.chunker);
    const levels: ChunkId[] = [leaf];
    for (let level = 0; level < 3; level++) {
      const entries: Entry[] = Array.from({ length: 6 }, (_, i) => ({ name: `d${level}-${i}`, ...meta, type: 'dir', tree: levels.at(-1)! }));
      // Each level's directories differ (a file of a different size), so none is shared with another level.
      entries.push(file(`f${level}`, 0));
      levels.push(await putObject(store, serializeDirectory(entries, level === 2 ? meta : undefined), store.config.chunker));
    }
    await store.flush();
    const reader = counted(store);
    const into = new Set<ChunkId>();
    const size = await walkTree(reader, levels.at(-1)!, into);
    // 6*6*6 leaves of 2 files, 6*6 of the middle level's 1 file, 6 of the next, 1 at the top.
    assert.equal(size, { entries: 6 + 1 + 6 * (6 + 1 + 6 * (6 + 1 + 6 * 2)), files: 1 + 6 + 36 + 216 * 2, bytes: 0, depth: 4 });
    assert.equal([...into].sort(), [...levels].sort());
    assert.is(reader.calls.get, 0);
    assert.is(reader.calls.getMany, 4, 'one batch per level (each distinct object read once)');

    // loadTree (restore, deploy, export) reads it the same way and lists every path in pre-order.
    const loading = counted(store);
    const items = await loadTree(loading, levels.at(-1)!);
    assert.is(loading.calls.get, 0);
    assert.is(loading.calls.getMany, 4);
    assert.is(items.length, 1 + size.entries, 'every entry, and the root itself');
    const expected = [''];
    const preOrder = (level: number, prefix: string): void => {
      if (level < 0) return void expected.push(`${prefix}/a`, `${prefix}/b`);
      for (let i = 0; i < 6; i++) {
        expected.push(`${prefix}/d${level}-${i}`);
        preOrder(level - 1, `${prefix}/d${level}-${i}`);
      }
      expected.push(`${prefix}/f${level}`);
    };
    preOrder(2, '');
    assert.equal(items.map((i) => i.rel), expected, 'pre-order, as restore needs');
  });
});

test.run();
