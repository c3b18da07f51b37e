import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { chmod, chown, lstat, mkdir, open, readFile, stat, truncate, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fsx } from '../../core/native/fsx.ts';
import { captureTree } from '../../core/tree/capture.ts';
import { restoreTree } from '../../core/tree/restore.ts';
import { dir, file, hardlink, isRoot, makeTree, rsyncDifferences, seededBytes, symlink } from '../helpers/fixtures.ts';
import { withStore } from '../helpers/store.ts';

/** cap_net_raw+ep as a VFS_CAP_REVISION_2 security.capability value. */
const CAP_NET_RAW = Buffer.from([0x01, 0, 0, 0x02, 0x00, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);

async function buildGolden(src: string): Promise<void> {
  await makeTree(src, {
    'etc/hostname': file('golden\n'),
    'etc/shadow': file('root:*:19000:0:99999:7:::\n', 0o640),
    'etc/empty.conf': file(''),
    'usr/bin/tool': file(seededBytes(1, 300_000), 0o755),
    'usr/bin/tool-hardlink': hardlink('usr/bin/tool'),
    'usr/lib/big.bin': file(seededBytes(2, 3 * 1024 * 1024 + 123)),
    'usr/lib/zeros.bin': file(Buffer.alloc(600_000)),
    'usr/lib/libx.so': symlink('libx.so.1'),
    'usr/lib/libx.so.1': file(seededBytes(3, 5000)),
    'bin': symlink('usr/bin'),
    'dangling': symlink('/nonexistent/target'),
    'srv/deep/er/and/deeper': dir(0o750),
    'home/user/.hidden': file('dot file'),
    'tmp': dir(0o1777),
    'name with spaces/ünïcödé file': file('utf-8 names'),
  });
  await chmod(path.join(src, 'tmp'), 0o1777);
  await chmod(path.join(src, 'usr/bin/tool'), 0o4755);
  // A sparse file: 64 MiB with data at 1 MiB and at 40 MiB only.
  const sparse = path.join(src, 'var/lib/sparse.img');
  await mkdir(path.dirname(sparse), { recursive: true });
  const h = await open(sparse, 'w');
  await h.write(seededBytes(4, 100_000), 0, 100_000, 1 << 20);
  await h.write(seededBytes(5, 70_000), 0, 70_000, 40 << 20);
  await h.close();
  await truncate(sparse, 64 << 20);
  fsx.mknod(path.join(src, 'run-fifo'), 0o010644, 0, 0);
  fsx.lsetxattr(path.join(src, 'etc/hostname'), 'user.origin', Buffer.from('golden node'));
  fsx.lsetxattr(path.join(src, 'srv'), 'user.dir-attr', Buffer.from([0, 1, 2, 255]));
  fsx.lutimesNs(path.join(src, 'etc/hostname'), 1_700_000_000, 1, 1_700_000_000, 123_456_789);
  if (isRoot) {
    fsx.mknod(path.join(src, 'dev-null'), 0o020666, 1, 3);
    fsx.mknod(path.join(src, 'dev-loop'), 0o060660, 7, 200);
    await chown(path.join(src, 'etc/shadow'), 0, 42);
    await chown(path.join(src, 'home/user'), 1000, 1000);
    await chown(path.join(src, 'home/user/.hidden'), 1000, 1000);
    fsx.lsetxattr(path.join(src, 'usr/bin/tool'), 'security.capability', CAP_NET_RAW);
    // A failed setfacl would leave no ACL to compare: the ACL checks below would pass vacuously.
    const acl = spawnSync('setfacl', ['-m', 'u:1234:rwx,g:5678:r', path.join(src, 'srv/deep')], { encoding: 'utf8' });
    if (acl.error || acl.status !== 0) throw new Error(`setfacl failed, so ACLs would go untested: ${acl.error?.message ?? acl.stderr.trim()}`);
  }
  await utimes(path.join(src, 'usr/lib'), 1_600_000_000.5, 1_600_000_000.5);
}

test('round trip keeps everything rsync -aHAX compares: content, modes, owners, links, devices, xattrs, ACLs, times', async () => {
  await withStore(async (store, work) => {
    const src = path.join(work, 'src');
    const dst = path.join(work, 'dst');
    await mkdir(src);
    await mkdir(dst);
    await buildGolden(src);
    const warnings: string[] = [];
    const { tree, progress } = await captureTree({ root: src, store, chunker: store.config.chunker, onWarning: (m) => warnings.push(m) });
    assert.equal(warnings, []);
    assert.ok(progress.files >= 10);
    await restoreTree({ reader: store, tree, target: dst, strict: isRoot });
    assert.equal(rsyncDifferences(src, dst), []);
    // Details rsync does not show.
    assert.is((await lstat(path.join(dst, 'etc/hostname'), { bigint: true })).mtimeNs, 1_700_000_000_123_456_789n, 'mtime to the nanosecond');
    assert.is((await stat(path.join(dst, 'usr/bin/tool'))).ino, (await stat(path.join(dst, 'usr/bin/tool-hardlink'))).ino, 'hardlink kept');
    assert.is((await stat(path.join(dst, 'usr/bin/tool'))).mode & 0o7777, 0o4755, 'setuid kept');
    const sparse = await stat(path.join(dst, 'var/lib/sparse.img'));
    assert.is(sparse.size, 64 << 20);
    assert.ok(sparse.blocks * 512 < 1 << 20, `holes stay holes (${sparse.blocks * 512} bytes allocated)`);
    assert.ok((await readFile(path.join(dst, 'usr/lib/big.bin'))).equals(seededBytes(2, 3 * 1024 * 1024 + 123)));
    if (isRoot) {
      assert.ok(fsx.lgetxattr(path.join(dst, 'usr/bin/tool'), 'security.capability').equals(CAP_NET_RAW), 'file capability survives chown');
      assert.is((await lstat(path.join(dst, 'dev-loop'))).rdev, (await lstat(path.join(src, 'dev-loop'))).rdev);
      // The ACL set on the golden tree, read back from the restored one (rsync -A compares it too).
      const aclOf = (root: string) => spawnSync('getfacl', ['--omit-header', '--numeric', path.join(root, 'srv/deep')], { encoding: 'utf8' });
      const want = aclOf(src);
      assert.is(want.status, 0, want.stderr);
      assert.match(want.stdout, /^user:1234:rwx$/m);
      assert.match(want.stdout, /^group:5678:r--$/m);
      assert.is(aclOf(dst).stdout, want.stdout);
    }
  });
});

test('incremental capture of an unchanged tree reads nothing and gives the same tree id', async () => {
  await withStore(async (store, work) => {
    const src = path.join(work, 'src');
    await mkdir(src);
    await buildGolden(src);
    const first = await captureTree({ root: src, store, chunker: store.config.chunker });
    const second = await captureTree({ root: src, store, chunker: store.config.chunker, parentTree: first.tree });
    assert.is(second.tree, first.tree);
    assert.is(second.progress.readBytes, 0);
    assert.is(second.progress.reusedFiles, second.progress.files);
    // Change one file: only it is read again.
    await writeFile(path.join(src, 'etc/hostname'), 'changed\n');
    const third = await captureTree({ root: src, store, chunker: store.config.chunker, parentTree: second.tree });
    assert.is.not(third.tree, first.tree);
    assert.is(third.progress.readBytes, 'changed\n'.length);
  });
});

test('exclusions: globs from the root, a directory pattern drops the subtree', async () => {
  await withStore(async (store, work) => {
    const src = path.join(work, 'src');
    const dst = path.join(work, 'dst');
    await makeTree(src, {
      'scratch/big': file('x'),
      'var/cache/apt/pkg': file('y'),
      'var/cache/keep': dir(),
      'etc/keep.conf': file('z'),
      'a.tmp': file('t'),
    });
    const { tree } = await captureTree({ root: src, store, chunker: store.config.chunker, exclude: ['/scratch', '/var/cache/*', '*.tmp'] });
    await mkdir(dst);
    await restoreTree({ reader: store, tree, target: dst });
    const r = spawnSync('find', ['.', '-mindepth', '1'], { cwd: dst, encoding: 'utf8' });
    assert.equal(r.stdout.split('\n').filter(Boolean).sort(), ['./etc', './etc/keep.conf', './var', './var/cache']);
  });
});

test.run();
