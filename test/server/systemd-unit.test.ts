/** The systemd unit in contrib/ passes `systemd-analyze verify` with its paths pointed at this checkout. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { withTempDir } from '../helpers/fixtures.ts';
import { haveTool } from '../../core/tools.ts';

const root = path.resolve(new URL('../..', import.meta.url).pathname);

if (!haveTool('systemd-analyze')) {
  console.log('skipped: systemd unit check: systemd-analyze is not installed');
  test.skip('systemd unit', () => {});
} else {
  test('contrib/cloner-server.service verifies', async () => {
    await withTempDir(async (dir) => {
      const unit = (await readFile(path.join(root, 'contrib/cloner-server.service'), 'utf8')).replaceAll('/opt/cloner', root);
      const file = path.join(dir, 'cloner-server.service');
      await writeFile(file, unit);
      const r = spawnSync('systemd-analyze', ['verify', file], { encoding: 'utf8' });
      assert.is(r.status, 0, r.stderr);
      assert.is(r.stderr.trim(), '');
      assert.match(unit, /ExecStart=\S+\/node \S+\/server\/main\.ts --data \/var\/lib\/cloner/);
    });
  });
}

test.run();
