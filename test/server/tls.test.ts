/**
 * HTTPS: cloner-server with --tls-cert/--tls-key (a self-signed certificate made here with
 * openssl); the CLI trusts it through NODE_EXTRA_CA_CERTS and refuses it without.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { cloner } from '../helpers/cli.ts';
import { haveTool } from '../../core/tools.ts';
import { file, makeTree, withTempDir } from '../helpers/fixtures.ts';
import { withServer } from '../helpers/server.ts';

if (!haveTool('openssl')) {
  console.log('skipped: TLS test: openssl is not installed');
  test.skip('TLS', () => {});
} else {
  test('the server speaks HTTPS with a given certificate; the CLI checks it', async () => {
    await withTempDir(async (dir) => {
      const cert = path.join(dir, 'cert.pem');
      const key = path.join(dir, 'key.pem');
      const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert], { encoding: 'utf8' });
      assert.is(made.status, 0, made.stderr);
      const root = path.join(dir, 'golden');
      await makeTree(root, { 'etc/hostname': file('tls\n') });
      await withServer(
        async (server) => {
          assert.match(server.url, /^https:\/\/127\.0\.0\.1:\d+$/);
          const remote = ['--server', server.url, '--token-file', path.join(server.dataDir, 'admin.token')];
          let r = cloner('image-list', ...remote);
          assert.is(r.code, 2);
          assert.match(r.err, /cannot reach the cloner server at https:\/\/127\.0\.0\.1:\d+: (DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE)/);
          process.env.NODE_EXTRA_CA_CERTS = cert;
          try {
            r = cloner('new-image', ...remote, '--image', 'node', '--root', root, '--yes');
            assert.is(r.code, 0, r.err);
            assert.match(r.out, /image node revision 1: 1 files/);
          } finally {
            delete process.env.NODE_EXTRA_CA_CERTS;
          }
        },
        ['--tls-cert', cert, '--tls-key', key],
      );
    });
  });
}

test('--tls-cert without --tls-key is refused with a hint', () => {
  const r = spawnSync(process.execPath, ['bin/cloner-server.js', '--data', '/tmp/never-made', '--tls-cert', '/x.pem'], { encoding: 'utf8' });
  assert.is(r.status, 2);
  assert.match(r.stderr, /^cloner-server: error: --tls-cert and --tls-key go together\nhint: /);
});

test.run();
