/**
 * An update that trusts its parent revision (core/tree/capture-parent.ts) asks the store
 * about none of the chunks and objects it keeps, and gives the tree a checked capture gives;
 * when one of those chunks is gone (pruned), the commit refuses the trusted tree with the
 * refusal `isMissingChunksRefusal` knows, and a checked capture reads the file again and
 * commits (a kept entry read again is a copy, so its directory is written anew with what was
 * read, never left as the parent's object). Through the CLI, update-filesystem does that second capture by itself.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { lstatSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { ChunkId } from '../../core/store/chunk-id.ts';
import { LocalStore } from '../../core/store/local.ts';
import { captureTree } from '../../core/tree/capture.ts';
import { commitRevision, getImage, isMissingChunksRefusal } from '../../core/tree/images.ts';
import { parseDirectory, serializeDirectory, type Entry, type FileEntry } from '../../core/tree/manifest.ts';
import { getJsonObject, putObject } from '../../core/store/objects.ts';
import { timestampOf } from '../../core/tree/stat-fields.ts';
import { file, makeTree, seededBytes, withTempDir } from '../helpers/fixtures.ts';
import { cloner } from '../helpers/cli.ts';
import { withStore } from '../helpers/store.ts';

/** The store with its presence questions counted. */
function asking(store: LocalStore) {
  const n = { asked: 0 };
  return {
    n,
    store: {
      put: (data: Uint8Array, id?: ChunkId) => store.put(data, id),
      flush: () => store.flush(),
      get: (id: ChunkId) => store.get(id),
      getMany: (ids: Iterable<ChunkId>) => store.getMany(ids),
      hasMany: (ids: readonly ChunkId[]) => ((n.asked += ids.length), store.hasMany(ids)),
    },
  };
}

/** The chunk ids of file `name` in the top directory of `tree`. */
async function chunksOf(store: LocalStore, tree: ChunkId, name: string): Promise<ChunkId[]> {
  const dir = parseDirectory(await getJsonObject(store, tree), '/');
  return (dir.entries.find((e) => e.name === name) as FileEntry).chunks.map((c) => c[2]);
}

const tree = { 'etc/hostname': file('golden\n'), 'usr/bin/app': file(seededBytes(1, 300_000), 0o755), 'usr/lib/x': file(seededBytes(2, 50_000)), 'keep': file(seededBytes(3, 70_000)) };

test('trusted: nothing asked, the same tree as checked; a pruned chunk is refused at commit, then read again checked', async () => {
  await withStore(async (store, work) => {
    const src = path.join(work, 'src');
    await makeTree(src, { ...tree, 'gone': file(seededBytes(4, 90_000)) });
    const one = await captureTree({ root: src, store, chunker: store.config.chunker });
    await commitRevision(store, 'img', { tree: one.tree }, { create: true });

    const c = asking(store);
    const trusted = await captureTree({ root: src, store: c.store, chunker: store.config.chunker, parentTree: one.tree, trustParent: true });
    assert.is(c.n.asked, 0, 'a trusted no-op asks about nothing');
    assert.is(trusted.tree, one.tree, 'every directory kept as the parent had it');
    assert.is(trusted.progress.reusedFiles, 5);
    const checked = await captureTree({ root: src, store: c.store, chunker: store.config.chunker, parentTree: one.tree });
    assert.ok(c.n.asked > 5, `a checked one asks about every reused chunk (${c.n.asked})`);
    assert.is(checked.tree, one.tree);

    // A chunk of "gone" pruned, as a gc after the parent revision was deleted would.
    const victims = new Set(await chunksOf(store, one.tree, 'gone'));
    await store.prune((id) => !victims.has(id));
    const stale = await captureTree({ root: src, store, chunker: store.config.chunker, parentTree: one.tree, trustParent: true });
    assert.is(stale.progress.readBytes, 0);
    try {
      await commitRevision(store, 'img', { tree: stale.tree }, { create: false });
      assert.unreachable('committed a tree with a pruned chunk');
    } catch (err) {
      assert.ok(isMissingChunksRefusal(err), String(err));
    }
    const again = await captureTree({ root: src, store, chunker: store.config.chunker, parentTree: one.tree });
    assert.is(again.progress.readBytes, 90_000, 'the checked capture reads the file whose chunk went');
    assert.is(again.progress.reusedFiles, 4);
    await commitRevision(store, 'img', { tree: again.tree }, { create: false });
    assert.is((await getImage(store, 'img'))!.revisions.length, 2);
  });
});

test('checked: an entry kept from the parent and read again is copied: its directory is written anew with the chunks read', async () => {
  await withStore(async (store, work) => {
    const src = path.join(work, 'src');
    await makeTree(src, { 'sub/x': file(seededBytes(5, 5000)) });
    const chunker = store.config.chunker;
    // A parent revision whose entry of sub/x matches the file's lstat but names a chunk the store never had.
    const st = lstatSync(path.join(src, 'sub/x'), { bigint: true });
    const meta = (s: typeof st) => ({ mode: Number(s.mode & 0o7777n), uid: Number(s.uid), gid: Number(s.gid), mtime: timestampOf(s.mtimeNs) });
    const x: Entry = { name: 'x', ...meta(st), type: 'file', size: 5000, chunks: [[0, 5000, 'cd'.repeat(32)]], ino: st.ino.toString(), ctime: timestampOf(st.ctimeNs) };
    const sub = await putObject(store, serializeDirectory([x]), chunker);
    const top = await putObject(store, serializeDirectory([{ name: 'sub', ...meta(lstatSync(path.join(src, 'sub'), { bigint: true })), type: 'dir', tree: sub }], meta(lstatSync(src, { bigint: true }))), chunker);
    await store.flush();
    const again = await captureTree({ root: src, store, chunker, parentTree: top });
    assert.is(again.progress.readBytes, 5000, 'read again: its chunk is missing');
    const subNow = (parseDirectory(await getJsonObject(store, again.tree), '/').entries[0] as { tree: string }).tree;
    assert.is.not(subNow, sub, 'not the parent\'s object, which names the missing chunk');
    await commitRevision(store, 'img', { tree: again.tree }, { create: true });
  });
});

test('isMissingChunksRefusal: only the missing-chunks refusal, thrown here or answered by a server', () => {
  assert.ok(isMissingChunksRefusal(Object.assign(new Error('revision of image a references 2 missing chunk(s), e.g. ab'), { code: 'REVISION_REFUSED' })));
  assert.not.ok(isMissingChunksRefusal(Object.assign(new Error('image a already exists'), { code: 'REVISION_REFUSED' })));
  assert.not.ok(isMissingChunksRefusal(Object.assign(new Error('references 2 missing chunk(s), e.g. ab'), { code: 'OTHER' })));
  assert.not.ok(isMissingChunksRefusal('references 2 missing chunk(s), e.g. ab'));
});

test('update-filesystem: a parent chunk gone from the store is noted, the file read again, the revision committed and exported whole', async () => {
  await withTempDir(async (dir) => {
    const storeDir = path.join(dir, 'store');
    const root = path.join(dir, 'golden');
    await makeTree(root, tree);
    let r = cloner('new-image', '--store', storeDir, '--init', '--image', 'node', '--root', root, '--yes');
    assert.is(r.code, 0, r.err);
    const store = await LocalStore.open(storeDir);
    try {
      const rev = (await getImage(store, 'node'))!.revisions[0];
      const usr = parseDirectory(await getJsonObject(store, rev.tree), '/').entries.find((e) => e.name === 'usr')!;
      const bin = parseDirectory(await getJsonObject(store, (usr as { tree: ChunkId }).tree), '/usr').entries.find((e) => e.name === 'bin')!;
      const victims = new Set(await chunksOf(store, (bin as { tree: ChunkId }).tree, 'app'));
      await store.prune((id) => !victims.has(id));
    } finally {
      await store.close();
    }
    await writeFile(path.join(root, 'etc/hostname'), 'changed\n');
    r = cloner('update-filesystem', '--store', storeDir, '--image', 'node', '--root', root);
    assert.is(r.code, 0, r.err);
    assert.match(r.err, /missing chunk\(s\).*capturing again/);
    assert.match(r.out, /revision 2: 4 files.* 2 files unchanged/);
    r = cloner('image-export', '--store', storeDir, '--image', 'node', '--target', path.join(dir, 'out'));
    assert.is(r.code, 0, r.err);
    assert.equal(await readFile(path.join(dir, 'out/usr/bin/app')), seededBytes(1, 300_000));
    assert.is(await readFile(path.join(dir, 'out/etc/hostname'), 'utf8'), 'changed\n');
    r = cloner('verify', '--store', storeDir, '--json');
    assert.is(JSON.parse(r.out).ok, true, r.out);
  });
});

test.run();
