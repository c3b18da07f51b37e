/**
 * Secrets readable by others: a --data directory that already exists with mode 0755 (and a
 * token file made 0644 by hand), a server started with umask 022. At start the directory
 * becomes 0700 and the token 0600 with a warning; after a node with a BMC password and SSH
 * host keys are stored, every directory under --data is 0700 and every file 0600. A local
 * store opened in a 0755 directory (the CLI's --store) puts its own modes right too.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chmod, mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { LocalStore } from '../../core/store/local.ts';
import { withTempDir } from '../helpers/fixtures.ts';
import { withServer } from '../helpers/server.ts';

/** Every path under `dir` (itself included) whose mode lets group or others in. */
async function openToOthers(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (p: string) => {
    const st = await stat(p);
    if (st.mode & 0o077) out.push(`${p} ${(st.mode & 0o7777).toString(8)}`);
    if (st.isDirectory()) for (const name of await readdir(p)) await walk(path.join(p, name));
  };
  await walk(dir);
  return out;
}

test('data-dir-secrets-modes: an existing 0755 --data, umask 022: every file 0600, every directory 0700', async () => {
  await withTempDir(async (dir) => {
    const dataDir = path.join(dir, 'data');
    await mkdir(dataDir);
    await chmod(dataDir, 0o755);
    await writeFile(path.join(dataDir, 'admin.token'), 'a-token-of-enough-length-0123456789\n', { mode: 0o644 });
    const umask = process.umask(0o022);
    try {
      await withServer(
        async (server) => {
          assert.match(server.stderr(), /warning: .*data was mode 0755 \(open to other users\); set to 0700/);
          assert.match(server.stderr(), /warning: .*admin\.token was mode 0644/);
          const call = (route: string, method: string, body: unknown) =>
            fetch(`${server.url}${route}`, { method, headers: { authorization: `Bearer ${server.adminToken}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
          const settings = ['eth0.mac=52:54:00:00:00:01', 'bmc.address=198.18.0.5', 'bmc.username=admin', 'bmc.password=s3cret-bmc'];
          assert.is((await call('/v1/nodes/node01', 'POST', { settings, create: true })).status, 200);
          const key = Buffer.from('-----BEGIN OPENSSH PRIVATE KEY-----\nxxxx\n-----END OPENSSH PRIVATE KEY-----\n').toString('base64');
          assert.is((await call('/v1/nodes/node01/hostkeys', 'PUT', { files: { ssh_host_ed25519_key: key } })).status, 200);
          // Enough ref writes that LevelDB makes new files after the open (its log, tables).
          for (let i = 0; i < 50; i++) await call(`/v1/nodes/n${i}`, 'POST', { settings: ['bmc.password=x'.repeat(20)], create: true });
          await server.stop();
        },
        [],
        { dataDir },
      );
    } finally {
      process.umask(umask);
    }
    assert.equal(await openToOthers(dataDir), []);
  });
});

test('data-dir-secrets-modes: a local store in a 0755 directory is made 0700', async () => {
  await withTempDir(async (dir) => {
    const storeDir = path.join(dir, 'store');
    await mkdir(path.join(storeDir, 'packs'), { recursive: true });
    await chmod(storeDir, 0o755);
    const store = await LocalStore.open(storeDir, { create: true });
    try {
      await store.put(Buffer.from('golden /etc/shadow'));
    } finally {
      await store.close();
    }
    for (const d of [storeDir, path.join(storeDir, 'index'), path.join(storeDir, 'packs'), path.join(storeDir, 'tmp')]) {
      assert.is((await stat(d)).mode & 0o777, 0o700, d);
    }
    assert.is((await stat(path.join(storeDir, 'config.json'))).mode & 0o777, 0o600);
  });
});

test.run();
