import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { RevisionRefusedError } from '../../core/store/errors.ts';
import { captureTree } from '../../core/tree/capture.ts';
import { collectGarbage, commitRevision, deleteImage, getImage, InvalidNameError } from '../../core/tree/images.ts';
import { restoreTree } from '../../core/tree/restore.ts';
import { file, makeTree, seededBytes } from '../helpers/fixtures.ts';
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
    const ta = await captureTree({ root: a, store, chunker: store.config.chunker });
    const tb = await captureTree({ root: b, store, chunker: store.config.chunker });
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
    assert.ok(after.packBytes < before.packBytes - 1_500_000, `space freed (${before.packBytes} -> ${after.packBytes})`);
    assert.is(await store.has(pendingId), true, 'guarded chunk kept');
    assert.is(await store.has(orphanId), false, 'unguarded orphan dropped');
    assert.equal(await store.verify().then((r) => [r.missing, r.corrupt]), [[], []]);
    const dst = path.join(work, 'dst');
    await mkdir(dst);
    await restoreTree({ reader: store, tree: ta.tree, target: dst });
    await writeFile(path.join(work, 'ok'), 'restored after gc');
  });
});

test.run();
