import { test } from 'uvu';
import { withStore } from '../helpers/store.ts';
import { expectRefused, fileEntry, meta, putRawDir } from './attacks.ts';

test('chunks past the file size, overlapping chunks and bad fields are refused', async () => {
  const cases: Array<(e: Record<string, unknown>) => Record<string, unknown>> = [
    (e) => ({ ...e, size: 1 }),
    (e) => ({ ...e, chunks: [...(e.chunks as unknown[]), [0, 1, (e.chunks as string[][])[0][2]]] }),
    (e) => ({ ...e, mode: 0o100644 }),
    (e) => ({ ...e, uid: -1 }),
    (e) => ({ ...e, type: 'socket' }),
    (e) => ({ ...e, xattrs: { 'evil\0name': '' } }),
    (e) => ({ ...e, chunks: [[0, 5, 'not-an-id']] }),
  ];
  for (const mutate of cases) {
    await withStore(async (store, work) => {
      const tree = await putRawDir(store, [mutate(await fileEntry(store, 'f', 'hello'))]);
      await expectRefused(store, work, tree);
    });
  }
});

test('a directory entry pointing at a missing tree object fails cleanly', async () => {
  await withStore(async (store, work) => {
    const tree = await putRawDir(store, [{ ...meta, name: 'd', type: 'dir', tree: 'ab'.repeat(32) }]);
    const { restoreTree } = await import('../../core/tree/restore.ts');
    const { mkdir } = await import('node:fs/promises');
    await mkdir(`${work}/target`);
    try {
      await restoreTree({ reader: store, tree, target: `${work}/target` });
      throw new Error('restore succeeded');
    } catch (err) {
      if ((err as { code?: string }).code !== 'CHUNK_MISSING') throw err;
    }
  });
});

test.run();
