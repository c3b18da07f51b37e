import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync } from 'node:fs';
import { chmod, chown, mkdir, readdir, readFile, rename, rm, stat, symlink as fsSymlink, utimes, writeFile } from 'node:fs/promises';
import { fsx } from '../../core/native/fsx.ts';
import path from 'node:path';
import type { ChunkId } from '../../core/store/chunk-id.ts';
import type { LocalStore } from '../../core/store/local.ts';
import { captureTree } from '../../core/tree/capture.ts';
import { treeChunkIds } from '../../core/tree/images.ts';
import { syncTree } from '../../core/tree/sync.ts';
import { dir, file, hardlink, isRoot, makeTree, rsyncDifferences, seededBytes, symlink } from '../helpers/fixtures.ts';
import { withStore } from '../helpers/store.ts';

/** A directory object (inline: 0x01, then the JSON of {v, ..., entries}), read in batches by loadTree: not file data. */
const isDirectoryObject = (data: Buffer) => data[0] === 1 && data.subarray(1, 6).toString() === '{"v":';

/** The store as a reader that counts the file data it hands out and can fail after a number of chunks. */
function countingReader(store: LocalStore, failAfterChunks = Infinity) {
  const reader = {
    chunks: 0,
    bytes: 0,
    get: (id: ChunkId) => store.get(id),
    async *getMany(ids: Iterable<ChunkId>) {
      for await (const entry of store.getMany(ids)) {
        if (isDirectoryObject(entry[1])) {
          yield entry;
          continue;
        }
        if (reader.chunks >= failAfterChunks) throw new Error('link cut (test)');
        reader.chunks++;
        reader.bytes += entry[1].length;
        yield entry;
      }
    },
  };
  return reader;
}

const GOLDEN = {
  'etc/hostname': file('golden\n'),
  'etc/app.conf': file('setting=1\n'),
  'usr/lib/big.bin': file(seededBytes(2, 3 * 1024 * 1024 + 123)),
  'usr/lib/other.bin': file(seededBytes(3, 1024 * 1024)),
  'usr/bin/tool': file(seededBytes(4, 200_000), 0o755),
  'usr/bin/tool-link': hardlink('usr/bin/tool'),
  'usr/lib/libx.so': symlink('libx.so.1'),
  'var/becomes-file': dir(),
  'var/becomes-file/inner': file('inner'),
  'var/becomes-dir': file('was a file'),
  'var/becomes-link': dir(),
  'var/becomes-link/x': file('x'),
  'old/gone.txt': file('removed in the next revision'),
};

async function revisionTwo(src: string): Promise<void> {
  // A few bytes change inside a big file; a file moves; types change; a file goes.
  const big = seededBytes(2, 3 * 1024 * 1024 + 123);
  big.write('CHANGED', 2 * 1024 * 1024);
  await writeFile(path.join(src, 'usr/lib/big.bin'), big);
  await rename(path.join(src, 'usr/lib/other.bin'), path.join(src, 'srv-moved.bin'));
  await writeFile(path.join(src, 'etc/app.conf'), 'setting=2\n');
  await rm(path.join(src, 'var/becomes-file'), { recursive: true });
  await writeFile(path.join(src, 'var/becomes-file'), 'now a file');
  await rm(path.join(src, 'var/becomes-dir'));
  await makeTree(src, { 'var/becomes-dir/child': file('child') });
  await rm(path.join(src, 'var/becomes-link'), { recursive: true });
  await fsSymlink('/etc', path.join(src, 'var/becomes-link'));
  await rm(path.join(src, 'old'), { recursive: true });
  await makeTree(src, { 'usr/share/new.txt': file('brand new') });
}

/** The golden tree captured into the store, and an empty target beside it. */
async function goldenAndTarget(store: LocalStore, work: string) {
  const src = path.join(work, 'src');
  const dst = path.join(work, 'dst');
  await makeTree(src, GOLDEN);
  await mkdir(dst);
  const { tree } = await captureTree({ root: src, store, chunker: store.config.chunker });
  return { src, dst, tree };
}

test('sync onto an empty target equals the tree; a re-sync reads and changes nothing', async () => {
  await withStore(async (store, work) => {
    const { src, dst, tree } = await goldenAndTarget(store, work);
    const first = countingReader(store);
    const p1 = await syncTree({ reader: first, tree, target: dst, chunker: store.config.chunker, strict: isRoot });
    assert.equal(rsyncDifferences(src, dst), []);
    assert.is(p1.seededBytes, 0);
    assert.is(p1.fetchedBytes, first.bytes);
    const again = countingReader(store);
    const p2 = await syncTree({ reader: again, tree, target: dst, chunker: store.config.chunker, strict: isRoot });
    assert.is(again.chunks, 0, 'nothing fetched');
    assert.is(p2.fetchedBytes, 0);
    assert.is(p2.deleted, 0);
    assert.is(p2.files, 0, 'nothing rewritten');
    assert.ok(p2.keptFiles >= 6);
    assert.equal(rsyncDifferences(src, dst), []);
    assert.equal((await readdir(dst)).filter((n) => n.startsWith('.cloner-sync-')), [], 'no staging left');
  });
});

test('sync to a new revision fetches only chunks the target lacks and handles moves, type changes and deletions', async () => {
  await withStore(async (store, work) => {
    const src = path.join(work, 'src');
    const dst = path.join(work, 'dst');
    await makeTree(src, GOLDEN);
    await mkdir(dst);
    const one = await captureTree({ root: src, store, chunker: store.config.chunker });
    await syncTree({ reader: store, tree: one.tree, target: dst, chunker: store.config.chunker });
    await revisionTwo(src);
    const two = await captureTree({ root: src, store, chunker: store.config.chunker, parentTree: one.tree });
    // What revision two has that revision one had not (manifest chunks aside).
    const oldIds = await treeChunkIds(store, one.tree);
    let newBytes = 0;
    for (const id of await treeChunkIds(store, two.tree)) if (!oldIds.has(id)) newBytes += (await store.get(id)).length;
    const reader = countingReader(store);
    const p = await syncTree({ reader, tree: two.tree, target: dst, chunker: store.config.chunker, strict: isRoot });
    assert.equal(rsyncDifferences(src, dst, ['--delete']), []);
    assert.ok(reader.bytes <= newBytes, `fetched ${reader.bytes} bytes, new chunks are ${newBytes}`);
    assert.ok(reader.bytes < 300_000, `fetched ${reader.bytes} bytes for a few changed KiB`);
    assert.ok(p.seededBytes >= 3.5 * 1024 * 1024, `reused ${p.seededBytes} bytes already on the target (moved file, big file)`);
    assert.ok(!existsSync(path.join(dst, 'old')), 'a directory the tree dropped is gone');
    assert.is((await stat(path.join(dst, 'usr/bin/tool'))).ino, (await stat(path.join(dst, 'usr/bin/tool-link'))).ino);
  });
});

test('a cut-off sync resumes from what it wrote; the symlink it creates is never written through', async () => {
  await withStore(async (store, work) => {
    const src = path.join(work, 'src');
    const dst = path.join(work, 'dst');
    const outside = path.join(work, 'outside');
    await makeTree(src, GOLDEN);
    await mkdir(dst);
    await mkdir(outside);
    await writeFile(path.join(outside, 'precious'), 'must survive');
    // The target starts with a symlink where the tree has a directory with files.
    await mkdir(path.join(dst, 'usr'));
    await fsSymlink(outside, path.join(dst, 'usr/lib'));
    const { tree } = await captureTree({ root: src, store, chunker: store.config.chunker });
    const cut = countingReader(store, 30);
    const failed = await syncTree({ reader: cut, tree, target: dst, chunker: store.config.chunker }).catch((e: Error) => e);
    assert.match(String(failed), /link cut/);
    const resumed = countingReader(store);
    await syncTree({ reader: resumed, tree, target: dst, chunker: store.config.chunker, strict: isRoot });
    assert.equal(rsyncDifferences(src, dst, ['--delete']), []);
    const all = countingReader(store);
    for await (const _ of all.getMany(await treeChunkIds(store, tree))) void _;
    assert.ok(resumed.bytes <= all.bytes - cut.bytes + 256 * 1024, `resumed run fetched ${resumed.bytes} of ${all.bytes} (${cut.bytes} before the cut)`);
    assert.equal(await readdir(outside), ['precious']);
    assert.is(await readFile(path.join(outside, 'precious'), 'utf8'), 'must survive');
  });
});

test('a re-sync reads only files whose size or mtime differ; checksum reads them all', async () => {
  await withStore(async (store, work) => {
    const { dst, tree } = await goldenAndTarget(store, work);
    await syncTree({ reader: store, tree, target: dst, chunker: store.config.chunker });
    // Same size, same mtime, other bytes: only a checksum run notices.
    const conf = path.join(dst, 'etc/app.conf');
    const before = await stat(conf, { bigint: true });
    await writeFile(conf, 'setting=9\n');
    fsx.lutimesNs(conf, Math.floor(Number(before.mtimeNs / 1_000_000_000n)), Number(before.mtimeNs % 1_000_000_000n), Math.floor(Number(before.mtimeNs / 1_000_000_000n)), Number(before.mtimeNs % 1_000_000_000n));
    const quick = await syncTree({ reader: store, tree, target: dst, chunker: store.config.chunker });
    assert.is(quick.scannedBytes, 0, 'nothing read');
    assert.is(await readFile(conf, 'utf8'), 'setting=9\n');
    const full = await syncTree({ reader: store, tree, target: dst, chunker: store.config.chunker, checksum: true });
    assert.ok(full.scannedBytes > 4 * 1024 * 1024);
    assert.is(full.files, 1);
    assert.is(await readFile(conf, 'utf8'), 'setting=1\n');
  });
});

test('a re-sync sets again the owner, mode and times that differ on kept entries (and only the content it must)', async () => {
  await withStore(async (store, work) => {
    const { src, dst, tree } = await goldenAndTarget(store, work);
    await syncTree({ reader: store, tree, target: dst, chunker: store.config.chunker, strict: isRoot });
    await chmod(path.join(dst, 'etc/app.conf'), 0o600); // mode only: size and mtime still match
    await utimes(path.join(dst, 'usr/lib/other.bin'), new Date(2001, 1, 1), new Date(2001, 1, 1)); // times only
    await chmod(path.join(dst, 'usr/lib'), 0o700);
    if (isRoot) await chown(path.join(dst, 'usr/bin/tool'), 1234, 1234); // clears nothing the tree has: mode 0755 comes back too
    // Read since (atime only): set back to the mtime, as a deploy leaves it.
    const read = await stat(path.join(dst, 'etc/hostname'), { bigint: true });
    fsx.lutimesNs(path.join(dst, 'etc/hostname'), 1_900_000_000, 5, Number(read.mtimeNs / 1_000_000_000n), Number(read.mtimeNs % 1_000_000_000n));
    const p = await syncTree({ reader: store, tree, target: dst, chunker: store.config.chunker, strict: isRoot });
    assert.is(p.files, 0, 'nothing rewritten');
    assert.equal(rsyncDifferences(src, dst), []);
    const after = await stat(path.join(dst, 'etc/hostname'), { bigint: true });
    assert.is(after.atimeNs, after.mtimeNs, 'atime set back to the mtime');
  });
});

test('kept paths and lost+found are neither deleted nor entered', async () => {
  await withStore(async (store, work) => {
    const src = path.join(work, 'src');
    const dst = path.join(work, 'dst');
    await makeTree(src, { 'etc/hostname': file('n\n'), scratch: dir() });
    await makeTree(dst, { 'scratch/user-data': file('keep me'), 'lost+found/#123': file('fsck found this'), 'etc/stale': file('goes') });
    const { tree } = await captureTree({ root: src, store, chunker: store.config.chunker, exclude: ['/scratch/*'] });
    const p = await syncTree({ reader: store, tree, target: dst, chunker: store.config.chunker, keep: ['/scratch/*'] });
    assert.is(await readFile(path.join(dst, 'scratch/user-data'), 'utf8'), 'keep me');
    assert.is(await readFile(path.join(dst, 'lost+found/#123'), 'utf8'), 'fsck found this');
    assert.ok(!existsSync(path.join(dst, 'etc/stale')));
    assert.is(p.deleted, 1);
  });
});

test.run();
