import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { restoreTree } from '../../core/tree/restore.ts';
import { withStore } from '../helpers/store.ts';
import { fileEntry, putRawDir } from './attacks.ts';

test('hardlink groups only link to files restored in this run, never to a path named by the manifest', async () => {
  await withStore(async (store, work) => {
    const outsideFile = path.join(work, 'outside', 'secret');
    await mkdir(path.dirname(outsideFile), { recursive: true });
    await writeFile(outsideFile, 'secret');
    // Both entries claim a group key that looks like a path outside; the first restored
    // one becomes the group's file and the second links to it.
    const a = { ...(await fileEntry(store, 'a', 'first')), h: outsideFile };
    const b = { ...(await fileEntry(store, 'b', 'second')), h: outsideFile };
    const tree = await putRawDir(store, [a, b]);
    await mkdir(path.join(work, 'target'));
    await restoreTree({ reader: store, tree, target: path.join(work, 'target') });
    const ta = await stat(path.join(work, 'target/a'));
    const tb = await stat(path.join(work, 'target/b'));
    assert.is(ta.ino, tb.ino);
    assert.is.not(ta.ino, (await stat(outsideFile)).ino);
    assert.is(await readFile(outsideFile, 'utf8'), 'secret');
    assert.is(await readFile(path.join(work, 'target/b'), 'utf8'), 'first');
  });
});

test.run();
