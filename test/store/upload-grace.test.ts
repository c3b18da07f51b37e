/**
 * The upload grace in a real store: chunks of an upload not yet committed survive a gc
 * (and the gc says how many and how big); once a revision is committed its chunks leave
 * the grace, so deleting the image lets the next gc free them at once, not an hour later.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import path from 'node:path';
import { startUploadGrace } from '../../core/store/upload-grace.ts';
import { captureTree } from '../../core/tree/capture.ts';
import { collectGarbage, commitRevision, deleteImage } from '../../core/tree/images.ts';
import { file, makeTree, seededBytes } from '../helpers/fixtures.ts';
import { withStore } from '../helpers/store.ts';

test('uncommitted uploads are kept and counted; a committed then deleted image is freed by the next gc', async () => {
  await withStore(async (store, dir) => {
    const grace = startUploadGrace(store, 60 * 60_000);
    try {
      // An upload in flight: chunks stored, no revision yet.
      const pending = [seededBytes(1, 300_000), seededBytes(2, 200_000)];
      for (const data of pending) await store.put(data);
      let gc = await collectGarbage(store);
      assert.is(gc.deletedChunks, 0);
      assert.is(gc.keptForUploads?.chunks, 2);
      assert.ok(gc.keptForUploads!.bytes > 400_000, `kept ${gc.keptForUploads!.bytes} bytes`);

      // A committed image, then deleted: its chunks go at the next gc.
      const root = path.join(dir, 'golden');
      await makeTree(root, { 'big.bin': file(seededBytes(3, 3 << 20)) });
      const { tree } = await captureTree({ store, chunker: store.config.chunker, root, liveNode: false });
      await commitRevision(store, 'img', { tree }, { create: true, onCommitted: (ids) => grace.settle(ids) });
      await deleteImage(store, 'img');
      gc = await collectGarbage(store);
      assert.ok(gc.deletedChunks >= 10 && gc.freedBytes > 2_000_000, JSON.stringify(gc));
      assert.is(gc.keptForUploads?.chunks, 2, 'the pending upload is still kept');
    } finally {
      grace.stop();
    }
    // The grace over (abandoned upload): its chunks go too.
    const gc = await collectGarbage(store);
    assert.is(gc.deletedChunks, 2);
    assert.is(gc.keptForUploads?.chunks, 0);
  });
});

test.run();
