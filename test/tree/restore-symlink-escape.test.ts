import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { symlink } from 'node:fs/promises';
import path from 'node:path';
import { withStore } from '../helpers/store.ts';
import { expectRefused, fileEntry, meta, putRawDir } from './attacks.ts';

test('symlink poisoning: a symlink "etc" -> outside, then a directory "etc" with files, is refused', async () => {
  await withStore(async (store, work) => {
    const sub = await putRawDir(store, [await fileEntry(store, 'passwd', 'owned')]);
    const tree = await putRawDir(store, [
      { ...meta, name: 'etc', type: 'symlink', target: path.join(work, 'outside') },
      { ...meta, mode: 0o755, name: 'etc', type: 'dir', tree: sub },
    ]);
    await expectRefused(store, work, tree);
  });
});

test('a symlink already in the target is never written through', async () => {
  await withStore(async (store, work) => {
    const sub = await putRawDir(store, [await fileEntry(store, 'passwd', 'owned')]);
    const tree = await putRawDir(store, [{ ...meta, mode: 0o755, name: 'etc', type: 'dir', tree: sub }]);
    const err = await expectRefused(store, work, tree, (target, outside) => symlink(outside, path.join(target, 'etc')));
    assert.match(err.message, /non-directory/);
  });
});

test('a symlink pointing outside is created as a link, and nothing is written through it', async () => {
  await withStore(async (store, work) => {
    const { restoreTree } = await import('../../core/tree/restore.ts');
    const { mkdir, readdir, readlink } = await import('node:fs/promises');
    const tree = await putRawDir(store, [
      { ...meta, name: 'escape', type: 'symlink', target: path.join(work, 'outside') },
      await fileEntry(store, 'regular', 'data'),
    ]);
    await mkdir(path.join(work, 'target'));
    await mkdir(path.join(work, 'outside'));
    await restoreTree({ reader: store, tree, target: path.join(work, 'target') });
    assert.is(await readlink(path.join(work, 'target/escape')), path.join(work, 'outside'));
    assert.equal(await readdir(path.join(work, 'outside')), []);
  });
});

test.run();
