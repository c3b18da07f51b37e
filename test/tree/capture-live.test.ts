/**
 * Capturing a live node: nothing is left out silently (an excluded path, a socket, another
 * file system mounted inside, a directory that cannot be listed are each counted and
 * listed with the reason), and a file that changes while it is read is read again, or
 * stored as last read with a warning naming it when it keeps changing.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import path from 'node:path';
import { captureTree } from '../../core/tree/capture.ts';
import { READ_ATTEMPTS, readChunks, type FileReader } from '../../core/tree/capture-read.ts';
import { chunkIdOf } from '../../core/store/chunk-id.ts';
import { DEFAULT_CHUNKER_PARAMS } from '../../core/chunker/fastcdc.ts';
import { file, isRoot, makeTree } from '../helpers/fixtures.ts';
import { withStore } from '../helpers/store.ts';

test('every path a capture does not store is counted and listed with why', async () => {
  await withStore(async (store, dir) => {
    const src = path.join(dir, 'src');
    await makeTree(src, { 'etc/hostname': file('n1\n'), 'tmp/junk': file('x'), 'run/keep': file('y') });
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(path.join(src, 'run/agent.sock'), resolve));
    let mounted = false;
    try {
      if (isRoot) {
        await mkdir(path.join(src, 'scratch'));
        mounted = spawnSync('mount', ['-t', 'tmpfs', 'none', path.join(src, 'scratch')]).status === 0;
        if (mounted) await writeFile(path.join(src, 'scratch/big'), 'not ours');
      }
      const warnings: string[] = [];
      const result = await captureTree({ root: src, store, chunker: store.config.chunker, exclude: ['/tmp/*'], onWarning: (m) => warnings.push(m) });
      const expected = [
        { path: '/run/agent.sock', why: 'a socket (made by the program that listens on it)' },
        ...(mounted ? [{ path: '/scratch', why: 'another file system (not in the image\'s layout), stored as an empty directory' }] : []),
        { path: '/tmp/junk', why: 'excluded by the image selection' },
      ];
      assert.equal(result.leftOut, expected);
      assert.is(result.progress.skipped, expected.length);
      assert.ok(warnings.some((w) => /agent\.sock is a socket; skipped/.test(w)), warnings.join('\n'));
    } finally {
      server.close();
      if (mounted) spawnSync('umount', [path.join(src, 'scratch')]);
    }
  });
});

/** A reader storing nothing, whose onRead lets a test change the file under the read. */
function reader(onRead: () => void, warnings: string[]): FileReader & { reads: number } {
  const r = {
    reads: 0,
    chunker: DEFAULT_CHUNKER_PARAMS,
    noatime: 0,
    put: (data: Buffer) => chunkIdOf(data),
    drain: async () => {},
    onChunk: () => {},
    onRead: () => {
      r.reads++;
      onRead();
    },
    warn: (m: string) => warnings.push(m),
  };
  return r;
}

test('a file written to while it is read is read again and stored as it settled', async () => {
  await withStore(async (_store, dir) => {
    const p = path.join(dir, 'app.log');
    await writeFile(p, 'line 1\n');
    const warnings: string[] = [];
    let writes = 1; // one write lands during the first read only
    const r = reader(() => {
      if (writes-- > 0) appendFileSync(p, 'line 2\n');
    }, warnings);
    const { refs, stat } = await readChunks(r, Buffer.from(p), p);
    assert.is(Number(stat.size), 14, 'the stored read has both lines');
    assert.is(refs.reduce((n, c) => n + c[1], 0), 14);
    assert.is(r.reads, 2, 'read twice');
    assert.equal(warnings, []);
  });
});

test(`a file that keeps changing is stored as last read after ${READ_ATTEMPTS} reads, with a warning naming it`, async () => {
  await withStore(async (_store, dir) => {
    const p = path.join(dir, 'busy.db');
    await writeFile(p, 'x'.repeat(1000));
    const warnings: string[] = [];
    const r = reader(() => appendFileSync(p, 'y'), warnings);
    const { refs, stat } = await readChunks(r, Buffer.from(p), '/var/lib/busy.db');
    assert.is(r.reads, READ_ATTEMPTS);
    assert.is(refs.reduce((n, c) => n + c[1], 0), Number(stat.size), 'the chunks are the read the stat describes');
    assert.equal(warnings, [`/var/lib/busy.db changed while it was read, ${READ_ATTEMPTS} times; stored as last read (it may match no single version of the file)`]);
  });
});

test.run();
