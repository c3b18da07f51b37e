/**
 * The store's batched index lookups, on a real LevelDB and real pack files: a fetch in the
 * order asked (LocalStore.getEncodedInOrder) across several packs, with duplicates, in
 * bounded batches, its missing ids, and chunks a repack moves or a prune drops between
 * the lookup and the read; LocationIndex.get gathering one turn's lookups into one
 * multi-get; and a racing duplicate put still stored once.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chunkIdOf } from '../../core/store/chunk-id.ts';
import { encodeChunk, type EncodedChunk } from '../../core/store/codec.ts';
import { ChunkMissingError } from '../../core/store/errors.ts';
import { LocalStore } from '../../core/store/local.ts';
import { LocationIndex, openIndexDb } from '../../core/store/location-index.ts';
import { PACK_MAGIC, RECORD_HEADER_BYTES } from '../../core/store/pack.ts';
import { seededBytes, withTempDir } from '../helpers/fixtures.ts';

/** `n` chunks of 30-50 KB, incompressible (odd) or compressible (even). */
const chunks = (seed: number, n: number) =>
  Array.from({ length: n }, (_, i) => (i % 2 ? seededBytes(seed * 1000 + i, 30_000 + i * 97) : Buffer.from(`chunk ${seed}/${i} `.repeat(3000 + i))));

/** A deterministic shuffle (so a failure can be replayed). */
function shuffled<T>(items: T[], seed: number): T[] {
  const out = [...items];
  let s = seed;
  for (let i = out.length - 1; i > 0; i--) {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    const j = s % (i + 1);
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

/** Every batch, each chunk's data copied as it comes (a batch's data are reused by the next). */
async function collect(batches: AsyncIterable<EncodedChunk[]>): Promise<EncodedChunk[][]> {
  const out: EncodedChunk[][] = [];
  for await (const batch of batches) out.push(batch.map((c) => ({ ...c, data: Buffer.from(c.data) })));
  return out;
}

test('a fetch of many ids across several packs answers in the order asked, duplicates repeated, identical to single reads, in bounded batches', async () => {
  await withTempDir(async (dir) => {
    const store = await LocalStore.open(dir, { create: true, packTargetBytes: 512 * 1024 });
    try {
      const data = chunks(1, 240);
      const ids = data.map((d) => chunkIdOf(d));
      // Several uploads, each its own run of packs.
      for (let i = 0; i < data.length; i += 60) {
        await Promise.all(data.slice(i, i + 60).map((d) => store.put(d)));
        await store.flush();
      }
      assert.ok((await store.stats()).packs >= 6, 'the chunks lie in several packs');
      const asked = [...shuffled(ids, 7), ids[5], ids[5], ids[200], ids[0]];
      const { missing, batches } = await store.getEncodedInOrder(asked);
      assert.equal(missing, []);
      const got = await collect(batches());
      assert.ok(got.length >= 2, `a fetch of ${data.length} chunks (~9 MB) comes in several batches, got ${got.length}`);
      for (const batch of got) {
        const bytes = batch.reduce((sum, c) => sum + c.data.length, 0);
        assert.ok(batch.length === 1 || bytes <= 4 * 1024 * 1024, `a batch holds ${bytes} bytes`);
      }
      const flat = got.flat();
      assert.equal(
        flat.map((c) => c.id),
        asked,
      );
      for (const [i, c] of flat.entries()) {
        const single = await store.getEncoded(asked[i]);
        assert.equal([c.codec, c.rawLength], [single.codec, single.rawLength]);
        assert.ok(c.data.equals(single.data), `chunk ${i} (${asked[i]}) differs from its single read`);
      }
    } finally {
      await store.close();
    }
  });
});

test('a fetch with ids not stored names them in the order asked and reads nothing', async () => {
  await withTempDir(async (dir) => {
    const store = await LocalStore.open(dir, { create: true });
    try {
      const [a, b] = chunks(2, 2);
      await store.put(a);
      await store.flush();
      const absent = [chunkIdOf(b), chunkIdOf(Buffer.from('never stored'))];
      const { missing, batches } = await store.getEncodedInOrder([absent[1], chunkIdOf(a), absent[0]]);
      assert.equal(missing, [absent[1], absent[0]]);
      assert.equal(await collect(batches()), []);
      await store.getEncodedInOrder(['not-an-id']).then(
        () => assert.unreachable('a malformed id was accepted'),
        (err: Error) => assert.match(err.message, /not a chunk id/),
      );
    } finally {
      await store.close();
    }
  });
});

test('chunks moved by a repack between the lookup and the read are read from their new pack; one pruned away fails the read clearly', async () => {
  await withTempDir(async (dir) => {
    const store = await LocalStore.open(dir, { create: true });
    try {
      const data = chunks(3, 40);
      const ids = data.map((d) => chunkIdOf(d));
      await Promise.all(data.map((d) => store.put(d)));
      await store.flush();
      const live = new Set(ids.slice(0, 30));
      const { missing, batches } = await store.getEncodedInOrder(ids.slice(0, 30));
      assert.equal(missing, []);
      // A quarter dead: the pack is repacked (its live chunks move) and the old one deleted.
      const report = await store.prune((id) => live.has(id));
      assert.is(report.repackedPacks, 1);
      const got = (await collect(batches())).flat();
      assert.equal(
        got.map((c) => c.id),
        ids.slice(0, 30),
      );
      for (const c of got) assert.ok(c.data.equals((await store.getEncoded(c.id)).data));

      const stale = await store.getEncodedInOrder(ids.slice(0, 2));
      await store.prune((id) => id !== ids[1] && live.has(id));
      await collect(stale.batches()).then(
        () => assert.unreachable('a chunk pruned away was read'),
        (err) => assert.instance(err, ChunkMissingError),
      );
    } finally {
      await store.close();
    }
  });
});

test('LocationIndex.get/getSoon: the lookups of one turn (or a few ms) go to LevelDB as one multi-get, each answered right', async () => {
  await withTempDir(async (dir) => {
    const db = await openIndexDb(dir);
    try {
      const index = new LocationIndex(db);
      const ids = Array.from({ length: 300 }, (_, i) => chunkIdOf(Buffer.from(`id ${i}`)));
      await index.put(ids.slice(0, 200).map((id, i) => ({ id, loc: { pack: '00112233445566' + (i % 100).toString(16).padStart(2, '0'), offset: 8 + i, storedLength: i + 1, rawLength: 2 * i + 1, codec: 1 as const } })));
      const before = index.reads;
      const asked = [...ids, ids[3], ids[250]];
      const answers = await Promise.all(asked.map((id) => index.get(id)));
      assert.is(index.reads - before, 1, 'one multi-get for the turn');
      asked.forEach((id, k) => {
        const i = ids.indexOf(id);
        if (i >= 200) assert.is(answers[k], undefined);
        else assert.equal(answers[k], { pack: '00112233445566' + (i % 100).toString(16).padStart(2, '0'), offset: 8 + i, storedLength: i + 1, rawLength: 2 * i + 1, codec: 1 });
      });
      // Lookups of a later turn are a batch of their own.
      await index.get(ids[0]);
      assert.is(index.reads - before, 2);
      // Asked while a multi-get is in flight: gathered into the next one.
      const first = index.get(ids[1]);
      await null;
      const meanwhile = await Promise.all([first, ...ids.slice(100, 250).map((id) => index.get(id))]);
      assert.is(index.reads - before, 4, 'one multi-get in flight, then one for the 150 asked meanwhile');
      assert.equal(meanwhile.slice(1), answers.slice(100, 250));
      // getSoon (an upload's presence checks) gathers for a few ms, at most 2048 ids a multi-get.
      const many = Array.from({ length: 3000 }, (_, i) => ids[i % 300]);
      const soon = await Promise.all(many.map((id) => index.getSoon(id)));
      assert.is(index.reads - before, 5, '300 distinct ids asked 3000 times: one multi-get');
      assert.equal(soon.slice(0, 300), answers.slice(0, 300));
      const distinct = Array.from({ length: 3000 }, (_, i) => chunkIdOf(Buffer.from(`other ${i}`)));
      assert.ok((await Promise.all(distinct.map((id) => index.getSoon(id)))).every((loc) => loc === undefined));
      assert.is(index.reads - before, 7, '3000 distinct ids: 2048, then the rest');
    } finally {
      await db.close();
    }
  });
});

test('racing puts of one chunk (batched presence checks) store it once', async () => {
  await withTempDir(async (dir) => {
    const store = await LocalStore.open(dir, { create: true });
    try {
      const [raw] = chunks(4, 2).slice(1);
      const encoded = encodeChunk(raw);
      const ids = await Promise.all([store.putEncoded(encoded), store.put(raw), store.putEncoded({ ...encoded, data: Buffer.from(encoded.data) }), store.put(raw)]);
      assert.equal(new Set(ids), new Set([encoded.id]));
      // And again while the first copy is indexed, in the same turn as a new chunk.
      const other = Buffer.from('another chunk '.repeat(100));
      await Promise.all([store.put(raw), store.put(other), store.put(other)]);
      await store.flush();
      const stats = await store.stats();
      assert.is(stats.chunks, 2);
      assert.is(stats.packBytes, PACK_MAGIC.length + 2 * RECORD_HEADER_BYTES + encoded.data.length + encodeChunk(other).data.length);
    } finally {
      await store.close();
    }
  });
});

test.run();
