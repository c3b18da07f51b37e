/**
 * A pack whose header is damaged (the pack magic, or the first record's header: the first
 * 60 bytes) is reported by verify, in the store and through `cloner verify --store` (exit
 * 3). Issue 19: such damage used to pass as 0 corrupt, because verify only hashed the data.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { LocalStore } from '../../core/store/local.ts';
import { PACK_MAGIC, RECORD_HEADER_BYTES } from '../../core/store/pack.ts';
import { cloner } from '../helpers/cli.ts';
import { file, makeTree, seededBytes, withTempDir } from '../helpers/fixtures.ts';

async function packFiles(store: string): Promise<string[]> {
  const out: string[] = [];
  for (const fan of await readdir(path.join(store, 'packs'))) {
    for (const f of await readdir(path.join(store, 'packs', fan))) out.push(path.join(store, 'packs', fan, f));
  }
  return out.sort();
}

const HEADER_BYTES = PACK_MAGIC.length + RECORD_HEADER_BYTES; // 60

test('every byte of the first 60 of a pack, flipped, is reported: magic -> all its chunks, record header -> that chunk', async () => {
  await withTempDir(async (dir) => {
    const store = await LocalStore.open(dir, { create: true, packTargetBytes: 60_000 });
    try {
      const ids = await Promise.all(Array.from({ length: 20 }, (_, i) => store.put(seededBytes(300 + i, 10_000))));
      await store.flush();
      const packPath = (await packFiles(dir))[0];
      const pack = path.basename(packPath, '.pack');
      const original = await readFile(packPath);
      const firstId = original.toString('hex', PACK_MAGIC.length + 16, PACK_MAGIC.length + 48);
      assert.ok(ids.includes(firstId));
      const clean = await store.verify();
      assert.equal([clean.corrupt, clean.missing, clean.damagedPacks], [[], [], []]);
      const inPack = ids.filter((id) => original.includes(Buffer.from(id, 'hex')));
      assert.ok(inPack.length > 1, 'the pack holds several chunks');

      for (let at = 0; at < HEADER_BYTES; at++) {
        const damaged = Buffer.from(original);
        damaged[at] ^= 0x01;
        await writeFile(packPath, damaged);
        const report = await store.verify();
        assert.is(report.checked, ids.length);
        assert.equal(report.missing, []);
        assert.equal(report.damagedPacks, [pack], `byte ${at}`);
        if (at < PACK_MAGIC.length) assert.equal(report.corrupt.sort(), [...inPack].sort(), `magic byte ${at}: every chunk of the pack`);
        else assert.equal(report.corrupt, [firstId], `record header byte ${at}: its chunk`);
      }

      // The index rebuilt from such a pack skips the damaged record and keeps the others.
      const damaged = Buffer.from(original);
      damaged[PACK_MAGIC.length + 20] ^= 0x01;
      await writeFile(packPath, damaged);
      const rebuilt = await store.rebuildIndex();
      assert.is(rebuilt.chunks, ids.length - 1);
      assert.equal(rebuilt.damagedPacks, [pack]);
      assert.equal((await store.hasMany(ids)).filter((p) => !p).length, 1);
      assert.is(await store.has(firstId), false);
    } finally {
      await store.close();
    }
  });
});

test('cloner verify --store exits 3 on a pack with a damaged header, and lists the chunks', async () => {
  await withTempDir(async (dir) => {
    const store = path.join(dir, 'store');
    const root = path.join(dir, 'golden');
    await makeTree(root, { 'etc/hostname': file('golden\n'), 'usr/bin/app': file(seededBytes(7, 300_000)) });
    let r = cloner('new-image', '--store', store, '--init', '--image', 'node', '--root', root, '--yes');
    assert.is(r.code, 0, r.err);
    r = cloner('verify', '--store', store);
    assert.is(r.code, 0, r.err + r.out);
    const packPath = (await packFiles(store))[0];
    const original = await readFile(packPath);
    for (const at of [3, 30]) {
      const damaged = Buffer.from(original);
      damaged[at] ^= 0xff;
      await writeFile(packPath, damaged);
      r = cloner('verify', '--store', store);
      assert.is(r.code, 3, `byte ${at}: ${r.err}${r.out}`);
      assert.match(r.out, /[1-9]\d* corrupt/);
      assert.match(r.out, /^corrupt [0-9a-f]{64}$/m);
      r = cloner('verify', '--store', store, '--json');
      assert.is(r.code, 3);
      const report = JSON.parse(r.out);
      assert.is(report.ok, false);
      assert.ok(report.corrupt.length >= 1);
    }
    await writeFile(packPath, original);
    assert.is(cloner('verify', '--store', store).code, 0);
  });
});

test.run();
