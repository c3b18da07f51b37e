import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { withStore } from '../helpers/store.ts';
import { expectRefused, fileEntry, putRawDir } from './attacks.ts';

test('two entries with the same name are refused', async () => {
  await withStore(async (store, work) => {
    const tree = await putRawDir(store, [await fileEntry(store, 'passwd', 'a'), await fileEntry(store, 'passwd', 'b')]);
    const err = await expectRefused(store, work, tree);
    assert.match(err.message, /duplicate/);
  });
});

test.run();
