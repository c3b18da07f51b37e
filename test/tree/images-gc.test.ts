import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { RevisionRefusedError } from '../../core/store/errors.ts';
import { captureTree } from '../../core/tree/capture.ts';
import { collectGarbage, commitRevision, deleteImage, getImage, InvalidNameError } from '../../core/tree/images.ts';
import { restoreTree } from '../../core/tree/restore.ts';
import { file, makeTree, rsyncDifferences, seededBytes } from '../helpers/fixtures.ts';
import { withStore } from '../helpers/store.ts';
import { putRawDir, meta } from './attacks.ts';

const stats = { files: 1, bytes: 1 };

test('a revision that references a missing chunk is refused and nothing is recorded', async () => {
  await withStore(async (store) => {
    const tree = await putRawDir(store, [{ ...meta, name: 'f', type: 'file', size: 10, chunks: [[0, 10, 'cd'.repeat(32)]] }]);
    try {
      await commitRevision(store, 'node', { tree, stats }, { create: true });
      assert.unreachable('committed');
    } catch (err) {
      assert.instance(err, RevisionRefusedError);
    }
    assert.is(await getImage(store, 'node'), undefined);
  });
});

test('new image refuses an existing name; bad names are refused; revisions chain to their parent', async () => {
  await withStore(async (store) => {
    const tree = await putRawDir(store, []);
    const r1 = await commitRevision(store, 'node', { tree, stats }, { create: true });
    try {
      await commitRevision(store, 'node', { tree, stats }, { create: true });
      assert.unreachable();
    } catch (err) {
      assert.instance(err, RevisionRefusedError);
    }
    const r2 = await commitRevision(store, 'node', { tree, stats }, { create: false });
    assert.is(r2.parent, r1.n);
    try {
      await commitRevision(store, '../etc', { tree, stats }, { create: true });
      assert.unreachable();
    } catch (err) {
      assert.instance(err, InvalidNameError);
    }
  });
});

test('8 concurrent commits to one image all land', async () => {
  await withStore(async (store) => {
    const tree = await putRawDir(store, []);
    await commitRevision(store, 'node', { tree, stats }, { create: true });
    await Promise.all(Array.from({ length: 8 }, () => commitRevision(store, 'node', { tree, stats }, { create: false })));
    assert.equal((await getImage(store, 'node'))!.revisions.map((r) => r.n), [1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });
});

test('gc frees deleted images, keeps live and guarded chunks, repacks, and the rest still restores', async () => {
  await withStore(async (store, work) => {
    const a = path.join(work, 'a');
    const b = path.join(work, 'b');
    await makeTree(a, { 'big': file(seededBytes(11, 2_000_000)), 'shared': file(seededBytes(12, 500_000)) });
    await makeTree(b, { 'other': file(seededBytes(13, 2_000_000)), 'shared': file(seededBytes(12, 500_000)) });
    // Captured together, so their chunks share packs: dropping b leaves packs partly dead.
    const [ta, tb] = await Promise.all([a, b].map((root) => captureTree({ root, store, chunker: store.config.chunker })));
    await commitRevision(store, 'a', { tree: ta.tree, stats }, { create: true });
    await commitRevision(store, 'b', { tree: tb.tree, stats }, { create: true });
    // An upload in flight: a chunk it wrote but has not committed yet, under a guard.
    const guard = store.guard();
    const pendingId = await store.put(seededBytes(14, 100_000));
    const orphanId = await store.put(seededBytes(15, 100_000));
    guard.ids.delete(orphanId);
    const before = await store.stats();
    await deleteImage(store, 'b');
    const report = await collectGarbage(store);
    guard.release();
    const after = await store.stats();
    assert.ok(report.deletedChunks > 0, 'chunks of the deleted image were dropped');
    // Packs held chunks of a and of b: with b gone they are far over 5% dead and were repacked.
    assert.ok(report.repackedPacks >= 1, `repacked ${report.repackedPacks} packs`);
    assert.ok(after.packBytes < before.packBytes - 1_500_000, `space freed (${before.packBytes} -> ${after.packBytes})`);
    assert.is(await store.has(pendingId), true, 'guarded chunk kept');
    assert.is(await store.has(orphanId), false, 'unguarded orphan dropped');
    assert.equal(await store.verify().then((r) => [r.missing, r.corrupt]), [[], []]);
    const dst = path.join(work, 'dst');
    await mkdir(dst);
    await restoreTree({ reader: store, tree: ta.tree, target: dst });
    // The restored tree is a's, byte for byte (--checksum compares content, not only size and time).
    assert.equal(rsyncDifferences(a, dst, ['--checksum']), []);
  });
});

test('a pack is repacked when over 5% of it is dead, and kept as it is below that', async () => {
  await withStore(async (store) => {
    // Incompressible chunks, so each record is 52 header bytes + its raw length; one pack each flush.
    const RECORD = 52;
    const live1 = seededBytes(21, 100_000);
    const dead1 = seededBytes(22, 4_800); // (4800 + 52) / 104912: 4.6% dead, kept
    const live2 = seededBytes(23, 100_000);
    const dead2 = seededBytes(24, 5_600); // (5600 + 52) / 105712: 5.3% dead, repacked
    // Puts issued together land in one pack (each put resolves once its pack is durable);
    // the flush ends that pack (later batches would be appended to it otherwise).
    const ids1 = await Promise.all([store.put(live1), store.put(dead1)]);
    await store.flush();
    const ids2 = await Promise.all([store.put(live2), store.put(dead2)]);
    const before = await store.stats();
    assert.is(before.packs, 2);
    assert.is(before.packBytes, 2 * 8 + 4 * RECORD + 100_000 + 4_800 + 100_000 + 5_600, 'two packs of incompressible records');
    const live = new Set([ids1[0], ids2[0]]);
    const report = await store.prune((id) => live.has(id));
    assert.equal([report.deletedChunks, report.repackedPacks, report.deletedPacks], [2, 1, 0]);
    const after = await store.stats();
    // Only the second pack lost its dead record; the first still holds its 4,852 dead bytes.
    assert.is(after.packBytes, before.packBytes - (5_600 + RECORD));
    assert.is(after.packs, 2);
    assert.ok((await store.get(ids1[0])).equals(live1));
    assert.ok((await store.get(ids2[0])).equals(live2));
    assert.equal(await store.hasMany([ids1[1], ids2[1]]), [false, false]);
    assert.equal(await store.verify().then((r) => [r.missing, r.corrupt]), [[], []]);
  });
});

test.run();
