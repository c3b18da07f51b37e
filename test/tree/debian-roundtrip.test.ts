import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { ensureDebianTree } from '../../bench/debian-tree.ts';
import { captureTree } from '../../core/tree/capture.ts';
import { restoreTree } from '../../core/tree/restore.ts';
import { withStore } from '../helpers/store.ts';

const found = await ensureDebianTree();
if ('skip' in found) {
  console.log(`skipped: the Debian round trip: ${found.skip}`);
  test.skip('debootstrapped Debian tree round trip', () => {});
} else {
  test('a debootstrapped Debian tree round-trips with no difference under rsync -naHAX --itemize-changes', async () => {
    await withStore(async (store, work) => {
      const { tree } = await captureTree({ root: found.tree, store, chunker: store.config.chunker });
      const dst = path.join(work, 'restored');
      await mkdir(dst);
      await restoreTree({ reader: store, tree, target: dst, strict: true });
      const r = spawnSync('rsync', ['-naHAX', '--itemize-changes', `${found.tree}/`, `${dst}/`], { encoding: 'utf8', maxBuffer: 64 << 20 });
      assert.is(r.status, 0, r.stderr);
      assert.equal(r.stdout.split('\n').filter(Boolean), []);
      const verify = await store.verify();
      assert.equal([verify.missing, verify.corrupt], [[], []]);
    });
  });
}

test.run();
