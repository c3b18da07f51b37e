/** countTree, the progress total of a capture, counts what the capture reads and follows its exclusions. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import path from 'node:path';
import { countTree } from '../../core/tree/count.ts';
import { imageSelection } from '../../core/tree/select.ts';
import { file, makeTree, symlink, withTempDir } from '../helpers/fixtures.ts';

test('counts regular files and bytes, not symlinks or excluded paths', async () => {
  await withTempDir(async (dir) => {
    const root = path.join(dir, 'root');
    await makeTree(root, { 'a/x': file('12345'), 'a/y': file('1'), 'scratch/big': file('x'.repeat(1000)), 'tmp.log': file('zz'), 'link': symlink('a/x') });
    assert.equal(await countTree(await imageSelection({ root })), { files: 4, bytes: 1008 });
    assert.equal(await countTree(await imageSelection({ root, exclude: ['/scratch', '*.log'] })), { files: 2, bytes: 6 });
  });
});

test.run();
