import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { withStore } from '../helpers/store.ts';
import { expectRefused, fileEntry, meta, putRawDir } from './attacks.ts';

test('an entry named ".." is refused', async () => {
  await withStore(async (store, work) => {
    const tree = await putRawDir(store, [{ ...(await fileEntry(store, '..', 'owned')) }]);
    await expectRefused(store, work, tree);
  });
});

test('an entry name with a slash (../outside/x) is refused', async () => {
  await withStore(async (store, work) => {
    const tree = await putRawDir(store, [await fileEntry(store, '../outside/pwned', 'owned')]);
    const err = await expectRefused(store, work, tree);
    assert.match(err.message, /unsafe entry name/);
  });
});

test('a traversal hidden in a subdirectory object is refused before anything is written', async () => {
  await withStore(async (store, work) => {
    const sub = await putRawDir(store, [await fileEntry(store, '..', 'x')]);
    const tree = await putRawDir(store, [{ ...meta, mode: 0o755, name: 'etc', type: 'dir', tree: sub }]);
    await expectRefused(store, work, tree);
  });
});

test.run();
