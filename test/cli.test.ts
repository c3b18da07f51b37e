import { test } from 'uvu';
import * as assert from 'uvu/assert';
import path from 'node:path';
import { file, makeTree } from './helpers/fixtures.ts';
import { withTempDir } from './helpers/fixtures.ts';
import { cloner } from './helpers/cli.ts';

test('bad input: one error line with a hint and exit 2', () => {
  for (const args of [['bogus-command'], ['image-list', '--store', '/nonexistent/store'], ['new-image', '--store', '/tmp/x']]) {
    const r = cloner(...args);
    assert.is(r.code, 2, `${args.join(' ')}: ${r.err}`);
    assert.match(r.err, /^cloner: error: .+\nhint: .+\n$/);
  }
});

test('new-image, update-filesystem, image-list --json, image-export, verify, gc, image-delete', async () => {
  await withTempDir(async (dir) => {
    const store = path.join(dir, 'store');
    const root = path.join(dir, 'golden');
    await makeTree(root, { 'etc/hostname': file('golden\n'), 'usr/bin/app': file('binary'.repeat(10000), 0o755) });
    let r = cloner('new-image', '--store', store, '--init', '--image', 'node', '--root', root, '--yes');
    assert.is(r.code, 0, r.err);
    assert.match(r.out, /image node revision 1: 2 files/);
    r = cloner('new-image', '--store', store, '--image', 'node', '--root', root, '--yes');
    assert.is(r.code, 2);
    assert.match(r.err, /already exists\nhint: use update-filesystem/);
    r = cloner('update-filesystem', '--store', store, '--image', 'node', '--root', root);
    assert.is(r.code, 0, r.err);
    assert.match(r.out, /revision 2: .*new data stored 0 B/);
    r = cloner('image-list', '--store', store, '--json');
    const rows = JSON.parse(r.out);
    assert.is(rows[0].name, 'node');
    assert.is(rows[0].revisions, 2);
    // A missing target is created (issue 15); a non-empty one is refused (test/cli-admin.test.ts).
    const { readFile } = await import('node:fs/promises');
    r = cloner('image-export', '--store', store, '--image', 'node', '--revision', '1', '--target', path.join(dir, 'out'));
    assert.is(r.code, 0, r.err);
    assert.is(await readFile(path.join(dir, 'out/etc/hostname'), 'utf8'), 'golden\n');
    r = cloner('verify', '--store', store, '--json');
    assert.is(JSON.parse(r.out).ok, true);
    r = cloner('image-delete', '--store', store, '--image', 'node', '--yes');
    assert.is(r.code, 0, r.err);
    r = cloner('gc', '--store', store, '--json');
    assert.ok(JSON.parse(r.out).deletedChunks > 0);
  });
});

test.run();
