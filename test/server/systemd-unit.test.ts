/**
 * The systemd unit in contrib/ as scripts/install.sh installs it (into a temporary prefix)
 * passes `systemd-analyze verify`, and starts the installed launcher, not a path in a checkout.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { withTempDir } from '../helpers/fixtures.ts';
import { haveTool } from '../../core/tools.ts';

const root = path.resolve(new URL('../..', import.meta.url).pathname);

if (!haveTool('systemd-analyze')) {
  console.log('skipped: systemd unit check: systemd-analyze is not installed');
  test.skip('systemd unit', () => {});
} else {
  test('contrib/cloner-server.service, installed by scripts/install.sh, verifies', async () => {
    const source = await readFile(path.join(root, 'contrib/cloner-server.service'), 'utf8');
    assert.match(source, /^ExecStart=\/usr\/local\/bin\/cloner-server --data \/var\/lib\/cloner /m);
    assert.not.match(source, /\/opt\/cloner|main\.ts/);
    await withTempDir(async (prefix) => {
      const install = spawnSync('bash', [path.join(root, 'scripts/install.sh')], { encoding: 'utf8', env: { ...process.env, CLONER_PREFIX: prefix } });
      assert.is(install.status, 0, install.stderr + install.stdout);
      const file = path.join(prefix, 'lib/systemd/system/cloner-server.service');
      const unit = await readFile(file, 'utf8');
      assert.match(unit, new RegExp(`^ExecStart=${prefix}/bin/cloner-server --data /var/lib/cloner`, 'm'));
      const r = spawnSync('systemd-analyze', ['verify', file], { encoding: 'utf8' });
      assert.is(r.status, 0, r.stderr);
      assert.is(r.stderr.trim(), '');
    });
  });
}

test.run();
