import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, rm, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { LocalStore } from '../../core/store/local.ts';
import { StoreFormatError, StoreLockedError } from '../../core/store/errors.ts';
import { conformanceSuite } from './conformance.ts';
import { seededBytes, withTempDir } from '../helpers/fixtures.ts';

conformanceSuite('LocalStore', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'cloner-store-'));
  const store = await LocalStore.open(dir, { create: true, packTargetBytes: 256 * 1024 });
  return { store, close: async () => (await store.close(), await rm(dir, { recursive: true, force: true })) };
}).run();

test('chunker parameters are recorded in the store config', async () => {
  await withTempDir(async (dir) => {
    const store = await LocalStore.open(dir, { create: true });
    await store.close();
    const config = JSON.parse(await readFile(path.join(dir, 'config.json'), 'utf8'));
    assert.equal(config.chunker, { minSize: 16384, avgSize: 65536, maxSize: 262144, seed: 0x636c6e72 });
  });
});

test('a second process-local open is refused while the store is open', async () => {
  await withTempDir(async (dir) => {
    const store = await LocalStore.open(dir, { create: true });
    try {
      await LocalStore.open(dir);
      assert.unreachable('opened twice');
    } catch (err) {
      assert.instance(err, StoreLockedError);
    } finally {
      await store.close();
    }
  });
});

test('opening a directory without a store fails clearly; a bad config is refused', async () => {
  await withTempDir(async (dir) => {
    try {
      await LocalStore.open(path.join(dir, 'none'));
      assert.unreachable();
    } catch (err) {
      assert.instance(err, StoreFormatError);
    }
    await writeFile(path.join(dir, 'config.json'), '{"format": 99}');
    try {
      await LocalStore.open(dir);
      assert.unreachable();
    } catch (err) {
      assert.instance(err, StoreFormatError);
    }
  });
});

test('index rebuilt from packs alone finds every chunk', async () => {
  await withTempDir(async (dir) => {
    const store = await LocalStore.open(dir, { create: true, packTargetBytes: 100_000 });
    const datas = Array.from({ length: 40 }, (_, i) => seededBytes(i + 1, 30_000));
    const ids = await Promise.all(datas.map((d) => store.put(d)));
    const result = await store.rebuildIndex();
    assert.is(result.chunks, 40);
    assert.equal(result.damagedPacks, []);
    assert.ok(result.packs > 3, 'several packs were written');
    for (let i = 0; i < ids.length; i++) assert.ok((await store.get(ids[i])).equals(datas[i]));
    await store.close();
  });
});

test('verify lists corrupt and missing chunks', async () => {
  await withTempDir(async (dir) => {
    const store = await LocalStore.open(dir, { create: true, packTargetBytes: 50_000 });
    const ids = await Promise.all(Array.from({ length: 6 }, (_, i) => store.put(seededBytes(50 + i, 40_000))));
    assert.equal(await store.verify(), { checked: 6, missing: [], corrupt: [], damagedPacks: [] });
    const fans = await readdir(path.join(dir, 'packs'));
    const packs = (await Promise.all(fans.map(async (f) => (await readdir(path.join(dir, 'packs', f))).map((p) => path.join(dir, 'packs', f, p))))).flat().sort();
    // Flip one byte inside the data of the first pack, delete the second pack.
    const bytes = await readFile(packs[0]);
    bytes[bytes.length - 100] ^= 0xff;
    await writeFile(packs[0], bytes);
    await rm(packs[1]);
    const report = await store.verify();
    assert.is(report.checked, 6);
    assert.ok(report.corrupt.length >= 1, 'corruption found');
    assert.ok(report.missing.length >= 1, 'missing pack found');
    assert.ok([...report.corrupt, ...report.missing].every((id) => ids.includes(id)));
    await store.close();
  });
});

test.run();
