/**
 * `cloner repair-index --store DIR` (a CLI child process) on a real store whose index was
 * damaged: chunk locations deleted or pointing at the wrong bytes, or the LevelDB files
 * themselves unreadable. After the repair every revision of every image restores again
 * and verify is clean. Against a server the command is refused with a hint.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ClassicLevel } from 'classic-level';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { cloner } from '../helpers/cli.ts';
import { file, makeTree, seededBytes, withTempDir } from '../helpers/fixtures.ts';

/** Two images, one with two revisions; returns each revision's expected file contents. */
async function storeWithImages(dir: string): Promise<{ store: string; revisions: Array<{ image: string; n: number; files: Record<string, Buffer> }> }> {
  const store = path.join(dir, 'store');
  const a = path.join(dir, 'a');
  const b = path.join(dir, 'b');
  const a1 = { 'etc/hostname': Buffer.from('a\n'), 'usr/lib/big': seededBytes(11, 700_000), 'usr/lib/small': seededBytes(12, 3_000) };
  const a2 = { ...a1, 'usr/lib/small': seededBytes(13, 5_000), 'var/new': seededBytes(14, 200_000) };
  const b1 = { 'etc/hostname': Buffer.from('b\n'), 'usr/lib/big': seededBytes(11, 700_000), 'opt/tool': seededBytes(15, 400_000) };
  const spec = (files: Record<string, Buffer>) => Object.fromEntries(Object.entries(files).map(([p, c]) => [p, file(c)]));
  await makeTree(a, spec(a1));
  let r = cloner('new-image', '--store', store, '--init', '--image', 'a', '--root', a, '--yes');
  assert.is(r.code, 0, r.err);
  await makeTree(a, spec(a2));
  r = cloner('update-filesystem', '--store', store, '--image', 'a', '--root', a);
  assert.is(r.code, 0, r.err);
  await makeTree(b, spec(b1));
  r = cloner('new-image', '--store', store, '--image', 'b', '--root', b, '--yes');
  assert.is(r.code, 0, r.err);
  return { store, revisions: [{ image: 'a', n: 1, files: a1 }, { image: 'a', n: 2, files: a2 }, { image: 'b', n: 1, files: b1 }] };
}

/** Exports every revision into a fresh directory and compares its files; returns the failures. */
async function restoreFailures(dir: string, store: string, revisions: Array<{ image: string; n: number; files: Record<string, Buffer> }>, round: string): Promise<string[]> {
  const failures: string[] = [];
  for (const { image, n, files } of revisions) {
    const target = path.join(dir, `out-${round}-${image}-${n}`);
    await mkdir(target);
    const r = cloner('image-export', '--store', store, '--image', image, '--revision', String(n), '--target', target);
    if (r.code !== 0) {
      failures.push(`${image}@${n}: exit ${r.code}`);
      continue;
    }
    for (const [p, content] of Object.entries(files)) {
      if (!(await readFile(path.join(target, p))).equals(content)) failures.push(`${image}@${n}: ${p} differs`);
    }
  }
  return failures;
}

test('chunk locations deleted or pointing at the wrong bytes: repair-index, then every revision restores', async () => {
  await withTempDir(async (dir) => {
    const { store, revisions } = await storeWithImages(dir);
    assert.equal(await restoreFailures(dir, store, revisions, 'before'), []);
    const db = new ClassicLevel<string, string>(path.join(store, 'index'));
    const chunks = db.sublevel<Buffer, Buffer>('c', { keyEncoding: 'buffer', valueEncoding: 'buffer' });
    let count = 0;
    for await (const [key, value] of chunks.iterator()) {
      if (count % 3 === 0) await chunks.del(key);
      else if (count % 3 === 1) await chunks.put(key, seededBytes(count, 21));
      else await chunks.put(key, Buffer.concat([value.subarray(0, 8), Buffer.from([value[8] + 1]), value.subarray(9)]));
      count++;
    }
    await db.close();
    assert.ok(count > 10, `${count} chunks`);
    assert.is((await restoreFailures(dir, store, revisions, 'damaged')).length, revisions.length, 'no revision restores from the damaged index');
    assert.is(cloner('verify', '--store', store).code, 3);

    const r = cloner('repair-index', '--store', store, '--json');
    assert.is(r.code, 0, r.err + r.out);
    const report = JSON.parse(r.out);
    assert.is(report.chunks, count);
    assert.equal(report.damagedPacks, []);
    assert.is(report.levelDbRepaired, false);
    assert.is(report.images, 2);
    assert.equal(await restoreFailures(dir, store, revisions, 'repaired'), []);
    const v = cloner('verify', '--store', store, '--json');
    assert.is(v.code, 0, v.out);
    assert.is(JSON.parse(v.out).checked, count);
  });
});

test('LevelDB files unreadable: commands say to run repair-index, which repairs LevelDB and rebuilds; every revision restores', async () => {
  await withTempDir(async (dir) => {
    const { store, revisions } = await storeWithImages(dir);
    const index = path.join(store, 'index');
    for (const f of await readdir(index)) if (f.startsWith('MANIFEST-')) await writeFile(path.join(index, f), seededBytes(99, 100));
    let r = cloner('image-list', '--store', store);
    assert.is(r.code, 2, r.err);
    assert.match(r.err, /index of store .* is damaged.*\nhint: .*cloner repair-index --store /);

    r = cloner('repair-index', '--store', store);
    assert.is(r.code, 0, r.err + r.out);
    assert.match(r.out, /LevelDB repair ran first/);
    assert.match(r.out, /read \d+ packs, indexed \d+ chunks; 0 damaged packs; 2 image records kept/);
    assert.equal(await restoreFailures(dir, store, revisions, 'repaired'), []);
    assert.is(cloner('verify', '--store', store).code, 0);
  });
});

test('repair-index against a server, or without --store, is refused with one line and a hint', () => {
  for (const args of [['--server', 'head'], []]) {
    const r = cloner('repair-index', ...args);
    assert.is(r.code, 2, r.err);
    assert.match(r.err, /^cloner: error: repair-index .+\nhint: .*--store .+\n$/);
  }
});

test.run();
