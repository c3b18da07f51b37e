/**
 * image-diff (core/tree/diff.ts) through the real CLI on a real local store: two
 * captures of a tree with a file added, one removed, one rewritten, one chmod-ed, one
 * symlink retargeted and a whole directory added; the diff lists each with its sizes and
 * what changed, the totals add up, an unchanged subtree is not read, the reverse diff
 * swaps added and removed, and bad revisions are refused with a hint; against a server
 * with the read token, the client reads the directory objects through the API.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chmod, readFile, rm, symlink as makeSymlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { cloner } from '../helpers/cli.ts';
import { dir, file, makeTree, seededBytes, symlink, withTempDir } from '../helpers/fixtures.ts';
import { withServer } from '../helpers/server.ts';

const json = (r: { code: number | null; out: string; err: string }) => {
  assert.is(r.code, 0, r.err);
  return JSON.parse(r.out);
};

test('image-diff lists added, removed and changed paths with sizes; unchanged directories are skipped', async () => {
  await withTempDir(async (tmp) => {
    const store = path.join(tmp, 'store');
    const root = path.join(tmp, 'root');
    const big = Array.from({ length: 30 }, (_, i) => [`usr/share/big/f${i}`, file(seededBytes(i, 2000))] as const);
    await makeTree(root, { 'etc/hostname': file('golden\n'), 'etc/old.conf': file('x'.repeat(1234)), 'usr/bin/app': file(seededBytes(1, 50_000), 0o755), 'usr/bin/tool': file('tool', 0o755), 'usr/lib/libc': symlink('libc.so.6'), 'var/empty': dir(), ...Object.fromEntries(big) });
    assert.is(cloner('new-image', '--store', store, '--init', '--image', 'g', '--root', root, '--yes').code, 0);
    await rm(path.join(root, 'etc/old.conf'));
    await writeFile(path.join(root, 'etc/new.conf'), 'y'.repeat(777));
    await writeFile(path.join(root, 'usr/bin/app'), seededBytes(2, 60_000));
    await chmod(path.join(root, 'usr/bin/tool'), 0o700);
    await rm(path.join(root, 'usr/lib/libc'));
    await makeSymlink('libc.so.7', path.join(root, 'usr/lib/libc'));
    await makeTree(root, { 'opt/pkg/a': file('a'.repeat(100)), 'opt/pkg/b': file('b'.repeat(200)) });
    assert.is(cloner('update-filesystem', '--store', store, '--image', 'g', '--root', root).code, 0);

    const d = json(cloner('image-diff', '--store', store, '--image', 'g', '--from', '1', '--to', '2', '--json'));
    const by = Object.fromEntries(d.entries.map((e: { path: string }) => [e.path, e]));
    assert.equal([by['/etc/new.conf'].kind, by['/etc/new.conf'].toBytes], ['added', 777]);
    assert.equal([by['/etc/old.conf'].kind, by['/etc/old.conf'].fromBytes], ['removed', 1234]);
    assert.equal([by['/usr/bin/app'].kind, by['/usr/bin/app'].fromBytes, by['/usr/bin/app'].toBytes], ['changed', 50_000, 60_000]);
    assert.ok(by['/usr/bin/app'].what.includes('data'));
    assert.equal(by['/usr/bin/tool'].what.filter((w: string) => w !== 'mtime'), ['mode']);
    assert.ok(by['/usr/lib/libc'].what.includes('target'));
    for (const p of ['/opt', '/opt/pkg', '/opt/pkg/a', '/opt/pkg/b']) assert.is(by[p]?.kind, 'added', p);
    assert.not.ok(Object.keys(by).some((p) => p.startsWith('/usr/share') || p === '/etc/hostname' || p.startsWith('/var')), 'unchanged paths are not listed');
    assert.equal(d.added, { entries: 5, files: 3, bytes: 777 + 300 });
    assert.equal(d.removed, { entries: 1, files: 1, bytes: 1234 });
    assert.is(d.changed.files, 2);
    assert.is(d.changed.fromBytes, 50_000 + 4);
    assert.is(d.changed.bytes, 60_000 + 4);
    // Root, etc, usr, usr/bin, usr/lib on both sides, and the new opt and opt/pkg: never usr/share/big or var.
    assert.ok(d.directoriesRead <= 12, `read ${d.directoriesRead} directory objects`);

    const back = json(cloner('image-diff', '--store', store, '--image', 'g', '--from', '2', '--to', '1', '--json'));
    assert.equal([back.added.bytes, back.removed.bytes], [1234, 1077]);
    // Default: the latest revision against the one before; text with sizes.
    const text = cloner('image-diff', '--store', store, '--image', 'g');
    assert.is(text.code, 0, text.err);
    assert.match(text.out, /\+ file\s+\/etc\/new\.conf\s+777 B/);
    assert.match(text.out, /~ file\s+\/usr\/bin\/app\s+48\.8 KiB -> 58\.6 KiB\s+\(data/, text.out);
    assert.match(text.out, /revision 1 -> 2: 5 added \(3 files/);
    const limited = json(cloner('image-diff', '--store', store, '--image', 'g', '--limit', '2', '--json'));
    assert.equal([limited.entries.length, limited.truncated, limited.added.entries], [2, true, 5]);
    const same = json(cloner('image-diff', '--store', store, '--image', 'g', '--from', '2', '--to', '2', '--json'));
    assert.equal([same.entries.length, same.directoriesRead], [0, 0]);

    const bad = cloner('image-diff', '--store', store, '--image', 'g', '--from', '1', '--to', '9');
    assert.is.not(bad.code, 0);
    assert.match(bad.err, /no revision 9/);
    assert.match(bad.err, /revisions: 1, 2/);
    assert.not.match(bad.err, /at .*\.ts:\d+/, 'no stack trace');
    assert.match(cloner('image-diff', '--store', store, '--image', 'g', '--from', 'x').err, /--from must be a revision number/);
    assert.match(cloner('image-diff', '--store', store, '--image', 'nope').err, /no image named nope/);
  });
});

test('image-diff against a server reads the trees through the API', async () => {
  await withServer(async (server) => {
    await withTempDir(async (tmp) => {
      const remote = ['--server', server.url, '--token-file', path.join(server.dataDir, 'read.token')];
      const admin = ['--server', server.url, '--token-file', path.join(server.dataDir, 'admin.token')];
      const root = path.join(tmp, 'root');
      await makeTree(root, { 'etc/hostname': file('a\n'), 'srv/data': file(seededBytes(3, 10_000)) });
      assert.is(cloner('new-image', '--image', 'g', '--root', root, '--yes', ...admin).code, 0);
      await writeFile(path.join(root, 'etc/hostname'), 'bb\n');
      assert.is(cloner('update-filesystem', '--image', 'g', '--root', root, ...admin).code, 0);
      const d = json(cloner('image-diff', '--image', 'g', '--json', ...remote));
      assert.equal(d.entries.map((e: { path: string; kind: string; fromBytes: number; toBytes: number }) => [e.path, e.kind, e.fromBytes, e.toBytes]), [['/etc/hostname', 'changed', 2, 3]]);
      // The JSON twin of the web page's diff: the same core function on the server.
      const read = (await readFile(path.join(server.dataDir, 'read.token'), 'utf8')).trim();
      const get = (q: string) => fetch(`${server.url}/v1/images/g/diff${q}`, { headers: { authorization: `Bearer ${read}` } });
      let r = await get('?from=1&to=2');
      assert.is(r.status, 200);
      const api = await r.json();
      assert.equal([api.entries, api.changed], [d.entries, d.changed]);
      r = await get('?from=1&to=7');
      assert.is(r.status, 404);
      assert.equal(await r.json(), { error: 'REVISION_NOT_FOUND', message: 'image g has no revision 7', hint: 'its revisions: 1, 2' });
      assert.is((await get('?from=1')).status, 400);
    });
  });
});

test.run();
