/**
 * scripts/install.sh (what scripts/setup.sh ends with) puts cloner, cloner-server and
 * cloner-agent on PATH: from another directory, with only the install prefix and the system
 * directories on PATH (so the `node` found is not the project's), each answers --version and
 * --help, and the README's first commands work verbatim; the man pages and the bash
 * completion are where man and bash-completion find them.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { readlink, realpath } from 'node:fs/promises';
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
    // Man pages and the bash completion, linked where man and bash-completion look.
    for (const [page, section] of [['cloner', 1], ['cloner-server', 8], ['cloner-agent', 8]] as const) {
      assert.is(await readlink(path.join(prefix, `share/man/man${section}/${page}.${section}`)), path.join(root, `docs/man/${page}.${section}`));
      const found = spawnSync('man', ['-M', path.join(prefix, 'share/man'), '-w', String(section), page], { encoding: 'utf8' });
      if (found.error) console.log(`man is not installed: ${page}(${section}) not looked up`);
      else assert.is(await realpath(found.stdout.trim()), path.join(root, `docs/man/${page}.${section}`), found.stderr);
    }
    assert.is(await readlink(path.join(prefix, 'share/bash-completion/completions/cloner')), path.join(root, 'contrib/bash-completion/cloner'));
    // A README command on PATH: the usage error of a missing server is one line and a hint.
    const list = spawnSync('cloner', ['image-list'], { encoding: 'utf8', cwd: '/', env: { ...env, CLONER_SERVER: '' } });
    assert.is(list.status, 2);
    assert.match(list.stderr, /^cloner: error: no server given\nhint: /);
  });
});

test.run();
