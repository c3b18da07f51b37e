/**
 * A commit reads only the directories no earlier commit has checked since the store last
 * pruned (core/tree/images.ts): a second commit of the same tree reads nothing and asks
 * about no chunk; a tree that shares subtrees reads only its new directories; a prune (the
 * only way a chunk goes) makes the next commit check everything again; a new directory
 * that refers to a missing chunk is still refused; the stats are the same every time.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { ChunkId } from '../../core/store/chunk-id.ts';
import { RevisionRefusedError } from '../../core/store/errors.ts';
import type { LocalStore } from '../../core/store/local.ts';
import { putObject } from '../../core/store/objects.ts';
import { captureTree } from '../../core/tree/capture.ts';
import { commitRevision } from '../../core/tree/images.ts';
import { serializeDirectory } from '../../core/tree/manifest.ts';
import { withStore } from '../helpers/store.ts';

/** The store with its reads and presence questions counted (the commit's view of it). */
function counted(store: LocalStore) {
  const n = { reads: 0, asked: 0 };
  return {
    n,
    store: {
      getRef: (k: string) => store.getRef(k),
      casRef: (k: string, a: string | undefined, b: string | undefined) => store.casRef(k, a, b),
      listRefs: (p: string) => store.listRefs(p),
      get: (id: ChunkId) => (n.reads++, store.get(id)),
      getMany: (ids: Iterable<ChunkId>) => (n.reads++, store.getMany(ids)),
      hasMany: (ids: readonly ChunkId[]) => ((n.asked += ids.length), store.hasMany(ids)),
      withoutPrune: <T>(work: () => Promise<T>) => store.withoutPrune(work),
      get pruneEpoch() {
        return store.pruneEpoch;
      },
    },
  };
}

async function makeTree(root: string, dirs: number, extra = ''): Promise<void> {
  for (let d = 0; d < dirs; d++) {
    await mkdir(path.join(root, `d${d}/sub`), { recursive: true });
    await writeFile(path.join(root, `d${d}/sub/file`), `dir ${d}\n`);
    await writeFile(path.join(root, `d${d}/top`), `top ${d}${d === 0 ? extra : ''}\n`);
  }
}

test('a commit reads only directories not checked since the last prune', async () => {
  await withStore(async (store, work) => {
    const src = path.join(work, 'src');
    await makeTree(src, 5);
    const one = await captureTree({ root: src, store, chunker: store.config.chunker });
    const c = counted(store);
    const first = await commitRevision(c.store, 'img', { tree: one.tree }, { create: true });
    assert.equal(first.stats, { files: 10, bytes: 60 });
    assert.ok(c.n.reads > 0 && c.n.asked >= 1 + 5 * 2 + 10, `the first commit reads and checks it all (${c.n.reads} reads, ${c.n.asked} ids)`);

    c.n.reads = c.n.asked = 0;
    const again = await commitRevision(c.store, 'img', { tree: one.tree }, { create: false });
    assert.equal(again.stats, first.stats);
    // treeKernelVersion still looks for /boot and /lib/modules in the top directory.
    assert.ok(c.n.reads <= 2, `the same tree again: ${c.n.reads} reads`);
    assert.is(c.n.asked, 0);

    // One file changes: its directory, its parent and the top are new; d1..d4 are not read.
    await writeFile(path.join(src, 'd0/sub/file'), 'changed\n');
    const two = await captureTree({ root: src, store, chunker: store.config.chunker, parentTree: one.tree });
    c.n.reads = c.n.asked = 0;
    const second = await commitRevision(c.store, 'img', { tree: two.tree }, { create: false });
    assert.equal(second.stats, { files: 10, bytes: 62 });
    assert.is(c.n.asked, 3 + 2, 'three directory objects and the chunks of d0/sub/file and d0/top');

    // A prune: everything is checked again.
    await store.prune(() => true);
    c.n.reads = c.n.asked = 0;
    const third = await commitRevision(c.store, 'img', { tree: two.tree }, { create: false });
    assert.equal(third.stats, second.stats);
    assert.ok(c.n.asked >= 1 + 5 * 2 + 10, `after a prune, all again (${c.n.asked} ids)`);
  });
});

test('a new directory that refers to a missing chunk is refused though the rest was checked', async () => {
  await withStore(async (store, work) => {
    const src = path.join(work, 'src');
    await makeTree(src, 2);
    const one = await captureTree({ root: src, store, chunker: store.config.chunker });
    const c = counted(store);
    await commitRevision(c.store, 'img', { tree: one.tree }, { create: true });
    const meta = { mode: 0o755, uid: 0, gid: 0, mtime: [1, 0] as [number, number] };
    const absent = 'cd'.repeat(32);
    const broken = await putObject(store, serializeDirectory([
      { name: 'kept', ...meta, type: 'dir', tree: one.tree },
      { name: 'lost', ...meta, type: 'file', size: 10, chunks: [[0, 10, absent]] },
    ], meta), store.config.chunker);
    await store.flush();
    try {
      await commitRevision(c.store, 'img', { tree: broken }, { create: false });
      assert.unreachable('a missing chunk must be refused');
    } catch (err) {
      assert.instance(err, RevisionRefusedError);
      assert.match((err as Error).message, /1 missing chunk/);
    }
  });
});

test.run();
