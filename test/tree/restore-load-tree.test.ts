/**
 * loadTree's memory-saving forms on a captured tree: files sharing content share one
 * (frozen) chunk list, and `lean` drops only the capture-only fields (ino, ctime),
 * keeping the entry's shape; without it the entries are the manifest's, whole.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import path from 'node:path';
import { captureTree } from '../../core/tree/capture.ts';
import { loadTree } from '../../core/tree/restore.ts';
import type { FileEntry } from '../../core/tree/manifest.ts';
import { file, makeTree, seededBytes, withTempDir } from '../helpers/fixtures.ts';
import { withStore } from '../helpers/store.ts';

test('lean entries lack ino and ctime, and nothing else; shared chunks keep one id', async () => {
  await withTempDir(async (dir) => {
    const src = path.join(dir, 'src');
    const same = seededBytes(5, 300_000);
    await makeTree(src, { 'a/one': file(same), 'b/two': file(same), 'c/three': file('small\n') });
    await withStore(async (store) => {
      const { tree } = await captureTree({ root: src, store, chunker: store.config.chunker });
      const whole = await loadTree(store, tree);
      const lean = await loadTree(store, tree, { lean: true });
      assert.equal(lean.map((i) => i.rel), whole.map((i) => i.rel));
      for (const [i, item] of whole.entries()) {
        const w = item.entry;
        const l = lean[i].entry;
        if (w.type !== 'file') {
          assert.equal(l, w);
          continue;
        }
        assert.type(w.ino, 'string', `${item.rel} has its inode number`);
        assert.ok(Array.isArray(w.ctime), `${item.rel} has its ctime`);
        assert.is((l as FileEntry).ino, undefined);
        assert.is((l as FileEntry).ctime, undefined);
        assert.equal(Object.keys(l), Object.keys(w), 'same shape: fields set to undefined, not deleted');
        assert.equal({ ...l, ino: w.ino, ctime: w.ctime }, w);
      }
      const files = lean.filter((i) => i.entry.type === 'file').map((i) => i.entry as FileEntry);
      const [one, two] = files;
      assert.ok(one.chunks.length > 1);
      assert.equal(one.chunks, two.chunks);
      assert.is(one.chunks, two.chunks, 'files with the same content share one chunk list');
      assert.ok(Object.isFrozen(one.chunks), 'a shared list cannot be changed for one file alone');
    });
  });
});

test.run();
