/**
 * scripts/install.sh (what scripts/setup.sh ends with) puts cloner, cloner-server and
 * cloner-agent on PATH: from another directory, with only the install prefix and the system
 * directories on PATH (so the `node` found is not the project's), each answers --version and
 * --help, and the README's first commands work verbatim.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { readlink } from 'node:fs/promises';
import path from 'node:path';
import { withTempDir } from './helpers/fixtures.ts';

const root = path.resolve(new URL('..', import.meta.url).pathname);

test('install.sh links the three programs into PREFIX/bin; they run from anywhere', async () => {
  await withTempDir(async (prefix) => {
    const install = spawnSync('bash', [path.join(root, 'scripts/install.sh')], { encoding: 'utf8', env: { ...process.env, CLONER_PREFIX: prefix } });
    assert.is(install.status, 0, install.stderr + install.stdout);
    const env = { ...process.env, PATH: `${prefix}/bin:/usr/bin:/bin`, CLONER_CLIENT_CONFIG: path.join(prefix, 'none.json') };
    for (const prog of ['cloner', 'cloner-server', 'cloner-agent']) {
      assert.is(await readlink(path.join(prefix, 'bin', prog)), path.join(root, 'bin', prog));
      const version = spawnSync(prog, ['--version'], { encoding: 'utf8', cwd: '/', env });
      assert.is(version.status, 0, `${prog} --version: ${version.stderr}`);
      assert.match(version.stdout, /0\.1\.0/);
      const help = spawnSync(prog, ['--help'], { encoding: 'utf8', cwd: '/', env });
      assert.is(help.status, 0, `${prog} --help: ${help.stderr}`);
      assert.match(help.stdout, new RegExp(`${prog}`));
    }
    // A README command on PATH: the usage error of a missing server is one line and a hint.
    const list = spawnSync('cloner', ['image-list'], { encoding: 'utf8', cwd: '/', env: { ...env, CLONER_SERVER: '' } });
    assert.is(list.status, 2);
    assert.match(list.stderr, /^cloner: error: no server given\nhint: /);
  });
});

test.run();
