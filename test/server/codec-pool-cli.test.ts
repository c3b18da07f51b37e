/**
 * The codec pool end to end. It is the default only from 4 cores up (codec-pool.ts), so on
 * a smaller machine no other CLI test runs it: here every process (the CLI, the server)
 * gets CLONER_CODEC_THREADS=2. new-image and update-filesystem to a real server on loopback
 * (uploads compressed in the workers), image-export back (LZ4 decode and BLAKE3 check in the
 * workers), the same against a local store; the exports equal the trees under rsync, and
 * the store verifies.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { appendFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { file, makeTree, rsyncDifferences, seededBytes, withTempDir } from '../helpers/fixtures.ts';
import { cloner } from '../helpers/cli.ts';
import { withServer } from '../helpers/server.ts';

/** A tree of many jobs' worth of chunks: compressible text, random bytes, small and big files. */
async function golden(root: string): Promise<void> {
  const spec: Parameters<typeof makeTree>[1] = { 'etc/hostname': file('golden\n') };
  for (let i = 0; i < 120; i++) spec[`usr/lib/small/f${i}`] = file(i % 2 ? seededBytes(100 + i, 3_000 + i * 97) : `line ${i}\n`.repeat(400 + i));
  spec['usr/bin/big'] = file(seededBytes(7, 9_000_000), 0o755);
  spec['usr/share/text'] = file('compressible text '.repeat(300_000));
  await makeTree(root, spec);
}

test('with CLONER_CODEC_THREADS=2: new-image, update-filesystem and image-export through a server and a local store give back the trees', async () => {
  const before = process.env.CLONER_CODEC_THREADS;
  process.env.CLONER_CODEC_THREADS = '2';
  try {
    await withServer(async (server) => {
      await withTempDir(async (dir) => {
        const root = path.join(dir, 'golden');
        await golden(root);
        const remote = ['--server', server.url, '--token-file', path.join(server.dataDir, 'admin.token')];
        let r = cloner('new-image', ...remote, '--image', 'pool', '--root', root, '--yes');
        assert.is(r.code, 0, r.err);
        // The update: one changed big file, one new file; only their new chunks are sent.
        await appendFile(path.join(root, 'usr/bin/big'), seededBytes(8, 500_000));
        await makeTree(root, { 'usr/lib/new': file(seededBytes(9, 2_000_000)) });
        r = cloner('update-filesystem', ...remote, '--image', 'pool', '--root', root);
        assert.is(r.code, 0, r.err);
        assert.match(r.out, /revision 2: /);
        const out = path.join(dir, 'out');
        await mkdir(out);
        r = cloner('image-export', ...remote, '--image', 'pool', '--target', out);
        assert.is(r.code, 0, r.err);
        assert.equal(rsyncDifferences(root, out), []);
        r = cloner('verify', ...remote, '--json');
        assert.is(r.code, 0, r.err + r.out);

        const store = path.join(dir, 'store');
        r = cloner('new-image', '--store', store, '--init', '--image', 'pool', '--root', root, '--yes');
        assert.is(r.code, 0, r.err);
        const local = path.join(dir, 'local-out');
        await mkdir(local);
        r = cloner('image-export', '--store', store, '--image', 'pool', '--target', local);
        assert.is(r.code, 0, r.err);
        assert.equal(rsyncDifferences(root, local), []);
      });
    });
  } finally {
    if (before === undefined) delete process.env.CLONER_CODEC_THREADS;
    else process.env.CLONER_CODEC_THREADS = before;
  }
});

test.run();
