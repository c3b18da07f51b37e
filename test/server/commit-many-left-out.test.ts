/**
 * A capture that leaves many paths out (here 1,500 excluded files with long names) still
 * commits through a real server: the revision keeps the first of them within its size
 * bound (LEFT_OUT_BYTES), and counts them all, instead of a commit refused as too large.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import path from 'node:path';
import { LEFT_OUT_BYTES } from '../../core/tree/images.ts';
import { cloner } from '../helpers/cli.ts';
import { file, makeTree, withTempDir } from '../helpers/fixtures.ts';
import { withServer } from '../helpers/server.ts';

test('1,500 excluded paths: the commit goes through; the list kept is bounded, the count is whole', async () => {
  await withServer(async (server) => {
    await withTempDir(async (dir) => {
      const root = path.join(dir, 'golden');
      const spec: Record<string, ReturnType<typeof file>> = { 'etc/hostname': file('golden\n') };
      for (let i = 0; i < 1500; i++) spec[`scratch/${'d'.repeat(150)}/${String(i).padStart(4, '0')}-${'x'.repeat(100)}.tmp`] = file('x');
      await makeTree(root, spec);
      const remote = ['--server', server.url, '--token-file', path.join(server.dataDir, 'admin.token')];
      const r = cloner('new-image', ...remote, '--image', 'node', '--root', root, '--exclude-paths', '*.tmp', '--yes');
      assert.is(r.code, 0, r.err);
      assert.match(r.out, /left out 1500 path\(s\)/);
      const details = JSON.parse(cloner('image-details', ...remote, '--image', 'node', '--json').out) as { revisions: Array<{ stats: { leftOut?: number }; leftOut?: Array<{ path: string }> }> };
      const rev = details.revisions[0];
      assert.is(rev.stats.leftOut, 1500);
      assert.ok(rev.leftOut && rev.leftOut.length > 100 && rev.leftOut.length < 1500, `kept ${rev.leftOut?.length}`);
      assert.ok(JSON.stringify(rev.leftOut).length <= LEFT_OUT_BYTES);
    });
  });
});

test.run();
