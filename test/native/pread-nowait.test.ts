/**
 * fsx's preadNowait (core/native/stat.c) and readCachedFirst (core/native/fsx.ts), the
 * reads of capture and of the server's packs: a cached range is read at once; a range the
 * page cache no longer holds (dropped with posix_fadvise DONTNEED through GNU dd's
 * iflag=nocache) is -1 for preadNowait and still read whole, through the thread pool, by
 * readCachedFirst; 0 at end of file; misuse is a TypeError or RangeError, a bad fd an
 * errno error.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { closeSync, fsyncSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fsx, readCachedFirst } from '../../core/native/fsx.ts';
import { seededBytes } from '../helpers/fixtures.ts';

// On a disk file system (tmpfs pages are never dropped).
const dir = mkdtempSync('/var/tmp/nt-pread-');
const file = path.join(dir, 'data');
const data = seededBytes(42, 6 * 1024 * 1024 + 123);

test('a dropped range is -1 without waiting, read whole by readCachedFirst; cached ranges at once; 0 at end of file', async () => {
  writeFileSync(file, data);
  const w = openSync(file, 'r+');
  fsyncSync(w); // dirty pages cannot be dropped
  closeSync(w);
  execFileSync('dd', [`if=${file}`, 'iflag=nocache', 'count=0', 'status=none']);
  const fd = openSync(file, 'r');
  try {
    const buf = Buffer.alloc(2 * 1024 * 1024);
    assert.is(fsx.preadNowait(fd, buf, 0, buf.length, 0), -1, 'nothing cached: would wait');
    let got = 0;
    const out = Buffer.alloc(data.length + 10);
    for (let n = 1; n > 0; got += n) n = await readCachedFirst(fd, out, got, Math.min(1 << 20, out.length - got), got);
    assert.is(got, data.length);
    assert.ok(out.subarray(0, got).equals(data), 'bytes as written');
    // Now cached: the whole read at once, into an offset of the buffer.
    assert.is(fsx.preadNowait(fd, buf, 100, 1000, 5000), 1000);
    assert.ok(buf.subarray(100, 1100).equals(data.subarray(5000, 6000)));
    assert.is(fsx.preadNowait(fd, buf, 0, 1000, data.length - 10), 10, 'short at the end');
    assert.is(fsx.preadNowait(fd, buf, 0, 1000, data.length), 0, 'end of file');
    assert.is(await readCachedFirst(fd, buf, 0, 1000, data.length + 5), 0);
  } finally {
    closeSync(fd);
  }
});

test('misuse: wrong types and ranges throw; a closed fd is EBADF', () => {
  const fd = openSync(file, 'r');
  const buf = Buffer.alloc(16);
  try {
    assert.throws(() => fsx.preadNowait(fd, 'text' as unknown as Uint8Array, 0, 1, 0), (e: Error) => e instanceof TypeError);
    assert.throws(() => fsx.preadNowait(fd, new Float64Array(2) as unknown as Uint8Array, 0, 1, 0), (e: Error) => e instanceof TypeError);
    assert.throws(() => fsx.preadNowait(fd, buf, 8, 9, 0), (e: Error) => e instanceof RangeError, 'past the buffer');
    assert.throws(() => fsx.preadNowait(fd, buf, -1, 1, 0), (e: Error) => e instanceof RangeError);
    assert.throws(() => fsx.preadNowait(fd, buf, 0, 1, -5), (e: Error) => e instanceof RangeError);
  } finally {
    closeSync(fd);
  }
  assert.throws(() => fsx.preadNowait(fd, buf, 0, 1, 0), (e: NodeJS.ErrnoException) => e.code === 'EBADF');
});

test.after(() => rmSync(dir, { recursive: true, force: true }));
test.run();
