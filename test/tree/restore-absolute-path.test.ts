import { test } from 'uvu';
import { withStore } from '../helpers/store.ts';
import { expectRefused, fileEntry, putRawDir } from './attacks.ts';

test('an absolute entry name (/tmp/...) is refused', async () => {
  await withStore(async (store, work) => {
    const tree = await putRawDir(store, [await fileEntry(store, `${work}/outside/pwned`, 'owned')]);
    await expectRefused(store, work, tree);
  });
});

test.run();
