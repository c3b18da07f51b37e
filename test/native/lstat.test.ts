/**
 * fsx's lstatPlain (core/native/stat.c, the capture walk's lstat) gives what
 * fs.lstatSync(path, { bigint: true }) gives, as plain numbers: on real entries of every
 * type (file, directory, symlink, fifo, socket, character and block devices), hard links,
 * sparse files, nanosecond and pre-1970 times, a name that is not UTF-8; and Node-style
 * errors (code ENOENT, ENOTDIR) for paths that do not resolve.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, linkSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync, openSync, ftruncateSync, writeSync, closeSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fsx, lstatPlain } from '../../core/native/fsx.ts';
import { timestampOf } from '../../core/tree/stat-fields.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'nt-lstat-'));
const at = (name: string) => path.join(dir, name);

function same(p: string | Buffer, what: string) {
  const want = lstatSync(p, { bigint: true });
  const got = lstatPlain(p);
  for (const k of ['mode', 'uid', 'gid', 'nlink', 'size', 'blocks', 'dev', 'rdev'] as const) {
    assert.is(got[k], Number(want[k]), `${what}: ${k}`);
    assert.ok(BigInt(got[k]) === want[k], `${what}: ${k} exact`);
  }
  assert.is(got.ino, want.ino.toString(), `${what}: ino`);
  assert.equal(got.atime, timestampOf(want.atimeNs), `${what}: atime`);
  assert.equal(got.mtime, timestampOf(want.mtimeNs), `${what}: mtime`);
  assert.equal(got.ctime, timestampOf(want.ctimeNs), `${what}: ctime`);
  for (const is of ['isFile', 'isDirectory', 'isSymbolicLink', 'isCharacterDevice', 'isBlockDevice', 'isFIFO', 'isSocket'] as const) {
    assert.is(got[is](), want[is](), `${what}: ${is}`);
  }
  return got;
}

test('every entry type, as lstatSync(bigint) sees it', async () => {
  writeFileSync(at('file'), 'some bytes\n');
  mkdirSync(at('dir'));
  symlinkSync('file', at('link'));
  symlinkSync('/nowhere/at/all', at('dangling'));
  fsx.mknod(at('fifo'), 0o010644, 0, 0);
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(at('sock'), resolve));
  try {
    assert.ok(same(at('file'), 'file').isFile());
    assert.ok(same(at('dir'), 'dir').isDirectory());
    assert.ok(same(at('link'), 'symlink').isSymbolicLink(), 'a symlink is not followed');
    same(at('dangling'), 'dangling symlink');
    assert.ok(same(at('fifo'), 'fifo').isFIFO());
    assert.ok(same(at('sock'), 'socket').isSocket());
  } finally {
    server.close();
  }
  assert.ok(same('/dev/null', '/dev/null').isCharacterDevice());
  const block = readdirSync('/dev').map((n) => `/dev/${n}`).find((p) => lstatSync(p).isBlockDevice());
  if (block) assert.ok(same(block, block).isBlockDevice(), 'a block device');
  else console.log('  (no block device in /dev to compare: that case not checked)');
  same('/', 'the root directory');
});

test('hard links, sparse files, nanosecond and pre-1970 times, a name that is not UTF-8', () => {
  writeFileSync(at('a'), 'x');
  linkSync(at('a'), at('b'));
  assert.is(same(at('b'), 'hard link').nlink, 2);
  const fd = openSync(at('sparse'), 'w');
  writeSync(fd, 'end', 0);
  ftruncateSync(fd, 5 * 1024 ** 3);
  closeSync(fd);
  const sparse = same(at('sparse'), 'sparse');
  assert.is(sparse.size, 5 * 1024 ** 3);
  fsx.lutimesNs(at('a'), 1_700_000_000, 123_456_789, -86_401, 999_999_999);
  const old = same(at('a'), 'times');
  assert.equal(old.mtime, [-86_401, 999_999_999]);
  assert.equal(old.atime, [1_700_000_000, 123_456_789]);
  const raw = Buffer.concat([Buffer.from(dir + '/'), Buffer.from([0x66, 0xff, 0xfe, 0x80])]);
  writeFileSync(raw, 'latin-1 name');
  assert.ok(same(raw, 'non-UTF-8 name').isFile());
});

test('Node-style errors: ENOENT, ENOTDIR; misuse is a TypeError', () => {
  const code = (p: string) => {
    try {
      lstatPlain(p);
      return 'none';
    } catch (err) {
      assert.is((err as NodeJS.ErrnoException).syscall, 'lstat');
      return (err as NodeJS.ErrnoException).code;
    }
  };
  assert.is(code(at('missing')), 'ENOENT');
  writeFileSync(at('plain'), '');
  assert.is(code(at('plain/below')), 'ENOTDIR');
  assert.throws(() => fsx.lstatInto(at('plain'), new Float64Array(3)), /Float64Array/);
  assert.throws(() => fsx.lstatInto(at('plain'), new Float32Array(16) as unknown as Float64Array), /Float64Array/);
});

test('immutable and append-only attributes (statx), as chattr sets them, on a disk file system', () => {
  if (process.getuid?.() !== 0) return console.log('  skipped: chattr +i needs root');
  const d = mkdtempSync('/var/tmp/nt-attrs-');
  const f = path.join(d, 'pinned');
  writeFileSync(f, 'x');
  try {
    const plain = lstatPlain(f);
    assert.is(plain.attributes, 0);
    assert.is(plain.attributesKnown, 0x30, 'ext4 reports both');
    execFileSync('chattr', ['+i', f]);
    assert.is(lstatPlain(f).attributes, 0x10, 'immutable');
    execFileSync('chattr', ['-i', '+a', f]);
    assert.is(lstatPlain(f).attributes, 0x20, 'append-only');
    execFileSync('chattr', ['+i', d]);
    assert.is(lstatPlain(d).attributes, 0x10, 'a directory too');
  } finally {
    execFileSync('chattr', ['-i', '-a', f]);
    execFileSync('chattr', ['-i', d]);
    rmSync(d, { recursive: true, force: true });
  }
});

test.after(() => {
  if (existsSync(dir)) rmSync(dir, { recursive: true, force: true });
});

test.run();
