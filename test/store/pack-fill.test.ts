/**
 * Packs fill across batches: each batch sealed on its own (timer or flush of the upload)
 * appends to the pack before it while that pack is under the target size, so a store
 * written in many small batches still holds few large packs; flush ends the pack, and a
 * torn tail (a crash during an append) loses nothing indexed and is never appended to.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { appendFile, readdir, readlink, stat } from 'node:fs/promises';
import { LocalStore } from '../../core/store/local.ts';
import { listPacks, packPath } from '../../core/store/store-dir.ts';
import { seededBytes, withTempDir } from '../helpers/fixtures.ts';

/** Puts `n` incompressible chunks as one batch and waits until they are durable (sealed by the timer). */
const round = (store: LocalStore, seed: number, n = 3) => Promise.all(Array.from({ length: n }, (_, i) => store.put(seededBytes(seed * 100 + i, 30_000))));

test('batches sealed one after another fill one pack up to the target size, then a new pack starts', async () => {
  await withTempDir(async (dir) => {
    const store = await LocalStore.open(dir, { create: true, packTargetBytes: 200_000, commitDelayMs: 5 });
    const ids: string[] = [];
    for (let r = 1; r <= 3; r++) ids.push(...(await round(store, r)));
    assert.is((await listPacks(dir)).length, 1, 'three batches of 90 KB share one pack');
    for (let r = 4; r <= 5; r++) ids.push(...(await round(store, r)));
    assert.is((await listPacks(dir)).length, 2, 'the pack past 200 KB is ended; the next batch starts another');
    assert.equal(await store.verify(), { checked: 15, missing: [], corrupt: [], damagedPacks: [] });
    for (const [i, id] of ids.entries()) assert.ok((await store.get(id)).equals(seededBytes(Math.floor(i / 3 + 1) * 100 + (i % 3), 30_000)));
    const rebuilt = await store.rebuildIndex();
    assert.equal({ chunks: rebuilt.chunks, damaged: rebuilt.damagedPacks }, { chunks: 15, damaged: [] });
    await store.close();
  });
});

/** Pack files of `dir` this process holds open for writing (its /proc/self/fd entries). */
async function openPackWriters(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const fd of await readdir('/proc/self/fd')) {
    const target = await readlink(`/proc/self/fd/${fd}`).catch(() => '');
    if (target.startsWith(dir) && target.endsWith('.pack')) out.push(target);
  }
  return out;
}

test('the growing pack is appended through the handle it was written with, kept between seals; flush, a full pack and close let it go', async () => {
  await withTempDir(async (dir) => {
    const store = await LocalStore.open(dir, { create: true, packTargetBytes: 200_000, commitDelayMs: 5 });
    await round(store, 1);
    const [pack] = await listPacks(dir);
    assert.equal(await openPackWriters(dir), [packPath(dir, pack)], 'one handle, to the pack as renamed into packs/');
    await round(store, 2);
    assert.equal(await openPackWriters(dir), [packPath(dir, pack)], 'the same pack, appended to');
    await round(store, 3);
    assert.is((await stat(packPath(dir, pack))).size > 200_000, true);
    assert.equal(await openPackWriters(dir), [], 'a pack past the target size is ended and its handle closed');
    await round(store, 4);
    assert.is((await openPackWriters(dir)).length, 1);
    await store.flush();
    assert.equal(await openPackWriters(dir), [], 'flush ends the pack');
    await round(store, 5);
    await store.close();
    assert.equal(await openPackWriters(dir), [], 'close leaves nothing open');
  });
});

test('flush ends the growing pack: the next batch goes to a new one', async () => {
  await withTempDir(async (dir) => {
    const store = await LocalStore.open(dir, { create: true, packTargetBytes: 1_000_000, commitDelayMs: 5 });
    await round(store, 1);
    await round(store, 2);
    assert.is((await listPacks(dir)).length, 1);
    await store.flush();
    await round(store, 3);
    assert.is((await listPacks(dir)).length, 2);
    await store.close();
  });
});

test('a torn tail after a pack\'s indexed records loses nothing, and the reopened store starts a new pack', async () => {
  await withTempDir(async (dir) => {
    let store = await LocalStore.open(dir, { create: true, packTargetBytes: 1_000_000, commitDelayMs: 5 });
    const ids = [...(await round(store, 1)), ...(await round(store, 2))];
    await store.close();
    const [pack] = await listPacks(dir);
    // What a crash in the middle of an append leaves: bytes past the last indexed record.
    await appendFile(packPath(dir, pack), seededBytes(9, 5000));
    const torn = (await stat(packPath(dir, pack))).size;
    store = await LocalStore.open(dir, { commitDelayMs: 5 });
    for (const id of ids) assert.ok((await store.get(id)).length === 30_000);
    await round(store, 3);
    assert.is((await stat(packPath(dir, pack))).size, torn, 'the torn pack was not appended to');
    assert.is((await listPacks(dir)).length, 2);
    assert.equal((await store.verify()).corrupt, []);
    const rebuilt = await store.rebuildIndex();
    assert.is(rebuilt.chunks, 9);
    assert.equal(rebuilt.damagedPacks, [pack], 'repair names the pack with the torn tail');
    await store.close();
  });
});


test('a prune ends the growing pack: chunks put after it are in a pack on disk, even when the pack grown meanwhile was dropped', async () => {
  await withTempDir(async (dir) => {
    const store = await LocalStore.open(dir, { create: true, commitDelayMs: 5 });
    const keep = await round(store, 1);
    // Round 2 is put while the prune waits for the exclusive gate: it grows a pack the prune then drops whole.
    const pruning = store.prune((id) => keep.includes(id));
    await round(store, 2);
    const report = await pruning;
    assert.ok(report.deletedPacks + report.repackedPacks >= 1, `the prune dropped or repacked a pack: ${JSON.stringify(report)}`);
    const after = await round(store, 3);
    await store.close();
    // Opened anew: this process's reader may still hold a dropped pack's file open.
    const again = await LocalStore.open(dir);
    for (const [i, id] of after.entries()) assert.ok((await again.get(id)).equals(seededBytes(300 + i, 30_000)), `chunk ${i} of round 3 reads back`);
    assert.equal(await again.verify(), { checked: 6, missing: [], corrupt: [], damagedPacks: [] });
    await again.close();
  });
});

test.run();
