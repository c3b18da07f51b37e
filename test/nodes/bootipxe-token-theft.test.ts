/**
 * Security regressions of the unauthenticated boot path (/boot.ipxe), against a real server
 * with an installer: a deploy token goes only to an armed node, once per arm (a second ask
 * for the same MAC, from anyone, gets none and does not revoke the first), is bound to the
 * address that asked (127.0.0.2 cannot use the token 127.0.0.1 got), hands out the node's
 * SSH host keys only to that token (again for a retried deploy); and nothing a client
 * sends (Host header, ?mac=) can add an iPXE command to the script, nor can a directory
 * name in a captured tree become a kernel version on the kernel line.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import http from 'node:http';
import path from 'node:path';
import { cloner } from '../helpers/cli.ts';
import { withServer } from '../helpers/server.ts';
import { withStore } from '../helpers/store.ts';
import { dir, file, makeTree } from '../helpers/fixtures.ts';
import { captureTree } from '../../core/tree/capture.ts';
import { commitRevision } from '../../core/tree/images.ts';
import { ipxeWord } from '../../server/netboot.ts';

/** A GET from a chosen local address, with chosen headers. */
function get(url: string, o: { from?: string; headers?: Record<string, string> } = {}): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { localAddress: o.from, headers: o.headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', reject);
  });
}

async function uploadInstaller(server: { url: string; adminToken: string }, version: string): Promise<void> {
  const headers = { authorization: `Bearer ${server.adminToken}` };
  for (const f of ['vmlinuz', 'initrd.img']) {
    const r = await fetch(`${server.url}/v1/installers/${version}/${f}`, { method: 'PUT', headers: { ...headers, 'content-type': 'application/octet-stream' }, body: f });
    assert.is(r.status, 200);
  }
  assert.is((await fetch(`${server.url}/v1/installers/${version}`, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: '{"overwrite":false}' })).status, 200);
}

test('an anonymous second /boot.ipxe gets no token and does not revoke the installer\'s; tokens are bound to the asking address; host keys go to that token only', async () => {
  await withServer(async (server) => {
    const remote = ['--server', server.url, '--token-file', path.join(server.dataDir, 'admin.token')];
    await uploadInstaller(server, '6.1.0-50-amd64');
    assert.is(cloner('nodes', 'add', ...remote, 'n1', 'eth0.mac=52:54:00:aa:bb:04').code, 0);
    const boot = (from = '127.0.0.1') => get(`${server.url}/boot.ipxe?mac=52:54:00:aa:bb:04`, { from });
    assert.not.match((await boot()).text, /cloner\.token=/, 'not armed: no token');
    assert.is(cloner('netboot', ...remote, '--nodes', 'n1', '--set', 'cloner').code, 0);
    const real = /cloner\.token=(\S+)/.exec((await boot()).text)?.[1];
    assert.ok(real);
    for (const from of ['127.0.0.1', '127.0.0.2']) assert.not.match((await boot(from)).text, /cloner\.token=/, `a second ask from ${from} gets none`);
    const as = (token: string, route: string, from = '127.0.0.1') => get(`${server.url}${route}`, { from, headers: { authorization: `Bearer ${token}` } });
    assert.is((await as(real!, '/v1/images')).status, 200, 'the installer\'s token still works');
    assert.is((await as(real!, '/v1/images', '127.0.0.2')).status, 401, 'but only from the address it was issued to');
    const keys = await fetch(`${server.url}/v1/nodes/n1/hostkeys`, { method: 'PUT', headers: { authorization: `Bearer ${server.adminToken}`, 'content-type': 'application/json' }, body: JSON.stringify({ files: { ssh_host_ed25519_key: Buffer.from('PRIVATE').toString('base64') } }) });
    assert.is(keys.status, 200);
    assert.is((await as(real!, '/v1/nodes/n1/hostkeys')).status, 200);
    assert.is((await as(real!, '/v1/nodes/n1/hostkeys')).status, 200, 'the boot they went to may fetch them again (a retried deploy)');
    assert.is((await as(real!, '/v1/nodes/n1/hostkeys', '127.0.0.2')).status, 401, 'from another address the token is nothing');
  });
});

test('nothing a client sends reaches the iPXE script as a command', async () => {
  await withServer(async (server) => {
    const remote = ['--server', server.url, '--token-file', path.join(server.dataDir, 'admin.token')];
    await uploadInstaller(server, '6.1.0-50-amd64');
    assert.is(cloner('nodes', 'add', ...remote, 'n1', 'eth0.mac=52:54:00:aa:bb:05', 'netboot=cloner').code, 0);
    for (const host of ['evil${shell}', 'a b', 'x;shell', 'h#x']) {
      const r = await get(`${server.url}/boot.ipxe?mac=52:54:00:aa:bb:05`, { headers: { host } });
      assert.is(r.status, 400, `Host ${host}: ${r.text}`);
      assert.not.match(r.text, /^(kernel|chain|shell)/m);
    }
    for (const mac of ['52:54:00:aa:bb:05%0Ashell', '52:54:00:aa:bb:05%24%7Bx%7D', '%0Ashell']) {
      const r = await get(`${server.url}/boot.ipxe?mac=${mac}`);
      assert.is(r.status, 400, r.text);
      assert.not.match(r.text, /^shell/m);
    }
    // Names with iPXE syntax are refused where they are set.
    assert.is.not(cloner('nodes', 'add', ...remote, 'n${x}', 'eth0.mac=52:54:00:aa:bb:06').code, 0);
    assert.is.not(cloner('nodes', 'set', ...remote, '--nodes', 'n1', 'hostname=a;shell').code, 0);
    for (const bad of ['${net0/ip}', 'a b', 'x\nshell', 'a#b', 'a;b', 'a|b', '"q"']) assert.throws(() => ipxeWord(bad));
  });
});

test('a kernel directory with iPXE syntax in a captured tree is not recorded as the golden kernel', async () => {
  await withStore(async (store, root) => {
    const tree = path.join(root, 'golden');
    await makeTree(tree, { 'usr/lib/modules/6.1.0-9-amd64': dir(), 'usr/lib/modules/9.9 ${shell}': dir(), 'boot/vmlinuz-6.1.0-9-amd64': file('k'), 'boot/vmlinuz-9.9 ${shell}': file('k') });
    const captured = await captureTree({ store, chunker: store.config.chunker, root: tree, liveNode: false });
    const revision = await commitRevision(store, 'img', { tree: captured.tree, stats: { files: 2, bytes: 2 } }, { create: true });
    assert.is(revision.kernel, '6.1.0-9-amd64');
  });
});

test.run();
