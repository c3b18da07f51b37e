/**
 * README promises of the CLI that no other test held it to, each against a real local
 * store through the real program: `cloner demo` checks its own copy and says so;
 * `--note` is kept with the revision; `update-filesystem --dry-run` stores nothing and
 * commits no revision, yet reports exactly what the real run then sends.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { cloner } from './helpers/cli.ts';
import { file, hardlink, makeTree, seededBytes, symlink, withTempDir } from './helpers/fixtures.ts';

/** Bytes of every pack file of a local store. */
async function packBytes(store: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(path.join(store, 'packs'), { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) total += (await stat(path.join(entry.parentPath, entry.name))).size;
  }
  return total;
}

test('cloner demo captures, recaptures, restores and compares a tree, and says there are no differences', async () => {
  await withTempDir(async (dir) => {
    const root = path.join(dir, 'tree');
    await makeTree(root, { 'a/data.bin': file(seededBytes(1, 3 << 20)), 'a/link': symlink('data.bin'), 'b/same.bin': hardlink('a/data.bin'), 'c/small': file('x\n', 0o600) });
    const r = cloner('demo', '--root', root, '--work', dir);
    assert.is(r.code, 0, r.err + r.out);
    assert.match(r.out, /^tree .*: 3 files, 6.0 MiB$/m);
    assert.match(r.out, /^recapture: .*stored growth 0 B$/m);
    assert.match(r.out, /^rsync -naHAX differences: 0$/m);
    assert.match(r.out, /^verify: \d+ chunks, 0 missing, 0 corrupt$/m);
    assert.equal((await readdir(dir)).sort(), ['tree'], 'the demo removed its store and copy');
  });
});

test('--note is kept with the revision; update-filesystem --dry-run stores and commits nothing, then the real run sends what it said', async () => {
  await withTempDir(async (dir) => {
    const store = path.join(dir, 'store');
    const root = path.join(dir, 'golden');
    await makeTree(root, { 'etc/hostname': file('golden\n') });
    let r = cloner('new-image', '--store', store, '--init', '--image', 'node', '--root', root, '--yes', '--note', 'base system, kernel 6.1');
    assert.is(r.code, 0, r.err);
    await makeTree(root, { 'opt/app.bin': file(seededBytes(2, 2 << 20)) });
    const before = await packBytes(store);
    r = cloner('update-filesystem', '--store', store, '--image', 'node', '--root', root, '--dry-run', '--note', 'never');
    assert.is(r.code, 0, r.err);
    const said = /dry run: image node would have 2 files, .*; (\d+) new chunks, .* to send .*nothing was sent/.exec(r.out);
    assert.ok(said, r.out);
    assert.is(await packBytes(store), before, 'a dry run stores no chunk');
    let details = JSON.parse(cloner('image-details', '--store', store, '--image', 'node', '--json').out) as { revisions: Array<{ n: number; note: string }> };
    assert.equal(details.revisions.map((x) => [x.n, x.note]), [[1, 'base system, kernel 6.1']]);
    r = cloner('update-filesystem', '--store', store, '--image', 'node', '--root', root, '--note', 'app added');
    assert.is(r.code, 0, r.err);
    assert.ok((await packBytes(store)) > before + (2 << 20) * 0.9, 'the real run stores the new file');
    details = JSON.parse(cloner('image-details', '--store', store, '--image', 'node', '--json').out);
    assert.equal(details.revisions.map((x) => [x.n, x.note]), [[1, 'base system, kernel 6.1'], [2, 'app added']]);
  });
});

test.run();
