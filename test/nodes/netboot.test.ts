/**
 * /boot.ipxe against a real server: a chain script without ?mac=, `exit` for an unknown MAC
 * (recorded as discovered) and for a node set to local, the installer's kernel line with a
 * fresh deploy token for a node set to cloner; that token reads (not writes) until the next
 * boot replaces it. Plus the dnsmasq snippet, which dnsmasq --test must accept (a skip
 * without dnsmasq, which fails CI). With --public-url the scripts name that URL; the
 * installer files in DATA/boot/ are served without a token; a deploy token acts for its
 * own node only (403 for another's plan, reports, result and host keys).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { seededBytes, withTempDir } from '../helpers/fixtures.ts';
import { haveTool } from '../../core/tools.ts';
import { cloner } from '../helpers/cli.ts';
import { withServer } from '../helpers/server.ts';
import { kernelArgs } from '../../agent/kernel-args.ts';
import { skipUnless } from '../helpers/skip.ts';

/** An installer as make-installer uploads it: both files, then the commit. */
async function uploadInstaller(server: { url: string; adminToken: string }, version: string): Promise<void> {
  const headers = { authorization: `Bearer ${server.adminToken}` };
  for (const file of ['vmlinuz', 'initrd.img']) {
    const r = await fetch(`${server.url}/v1/installers/${version}/${file}`, { method: 'PUT', headers: { ...headers, 'content-type': 'application/octet-stream' }, body: `${file === 'vmlinuz' ? 'kernel' : 'initrd'} of ${version}` });
    assert.is(r.status, 200, await r.text());
  }
  const c = await fetch(`${server.url}/v1/installers/${version}`, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify({ overwrite: false }) });
  assert.is(c.status, 200, await c.text());
}

test('boot.ipxe per netboot state, deploy tokens, discovered MACs, dnsmasq-config', async () => {
  await withServer(async (server) => {
    const remote = ['--server', server.url, '--token-file', path.join(server.dataDir, 'admin.token')];
    const boot = async (query: string) => {
      const r = await fetch(`${server.url}/boot.ipxe${query}`);
      return { status: r.status, text: await r.text() };
    };
    let r = await boot('');
    assert.is(r.text, `#!ipxe\nchain ${server.url}/boot.ipxe?mac=\${net0/mac}\n`);
    assert.is((await boot('?mac=zz')).status, 400);

    r = await boot('?mac=52:54:00:AB:CD:EF');
    assert.match(r.text, /^#!ipxe\n.*not a registered node.*\nexit\n$/);
    const discovered = JSON.parse(cloner('nodes', 'list', ...remote, '--json').out);
    assert.equal(discovered, []);
    const seen = await (await fetch(`${server.url}/v1/discovered`, { headers: { authorization: `Bearer ${server.readToken}` } })).json();
    assert.equal(seen.map((d: { mac: string }) => d.mac), ['52:54:00:ab:cd:ef']);

    assert.is(cloner('nodes', 'add', ...remote, 'node01', 'eth0.mac=52:54:00:00:00:01').code, 0);
    r = await boot('?mac=52-54-00-00-00-01');
    assert.match(r.text, /^#!ipxe\necho cloner: node01 boots from disk\nexit\n$/);

    const armed = cloner('netboot', ...remote, '--nodes', 'node01', '--set', 'cloner');
    assert.is(armed.code, 0);
    assert.match(armed.err, /warning: node01: set to cloner, but server \S+ has no installer; the node will boot from its disk\nhint: run cloner make-installer on the golden node/);
    assert.match(cloner('status', ...remote, '--nodes', 'node01').err, /hint: run cloner make-installer/);
    // No installer on the server: the node is not sent a kernel URL that 404s.
    r = await boot('?mac=52:54:00:00:00:01');
    assert.match(r.text, /^#!ipxe\necho cloner: node01 is set to cloner, but the server has no installer \(run cloner make-installer\); booting from disk\nexit\n$/);
    await uploadInstaller(server, '6.1.0-9-amd64');
    await uploadInstaller(server, '6.1.0-50-amd64');
    r = await boot('?mac=52:54:00:00:00:01');
    const kernel = new RegExp(`^kernel ${server.url}/v1/boot/6\\.1\\.0-50-amd64/vmlinuz cloner\\.server=${server.url} cloner\\.node=node01 cloner\\.token=(\\S+) cloner\\.mode=unicast boot=cloner initrd=initrd\\.img`, 'm');
    const token = kernel.exec(r.text)?.[1];
    assert.ok(token, r.text);
    assert.match(r.text, new RegExp(`^initrd ${server.url}/v1/boot/6\\.1\\.0-50-amd64/initrd\\.img \\|\\| goto cloner_retry\\nboot \\|\\| goto cloner_retry\\n`, 'm'), 'the newest installer when the image records no kernel');
    // A failed fetch is tried again by the script, with the same token (a second ask would get none).
    assert.match(r.text, /^:cloner_fetch\nkernel [^\n]* \|\| goto cloner_retry\n[\s\S]*^:cloner_retry\nimgfree\necho cloner: node01 could not fetch or boot the installer; trying again in 10 s\nsleep 10\ngoto cloner_fetch\n$/m);
    // What the installer's agent reads back from /proc/cmdline.
    assert.equal(kernelArgs(/^kernel \S+ (.*)$/m.exec(r.text)![1]), { server: server.url, node: 'node01', token: token!, mode: 'unicast' });
    const asNode = (t: string, route: string, init: RequestInit = {}) => fetch(`${server.url}${route}`, { ...init, headers: { authorization: `Bearer ${t}`, 'content-type': 'application/json' } });
    assert.is((await asNode(token!, '/v1/images')).status, 200, 'a deploy token reads');
    assert.is((await asNode(token!, '/v1/nodes/node01', { method: 'POST', body: JSON.stringify({ settings: ['netboot=local'] }) })).status, 403, 'but does not write');
    // A second ask in the same arm gets no token and does not revoke the first.
    r = await boot('?mac=52:54:00:00:00:01');
    assert.match(r.text, /^#!ipxe\necho cloner: node01 gets no deploy token from this request \(see the server log\); booting from disk\nexit\n$/);
    assert.is((await asNode(token!, '/v1/images')).status, 200);
    // Re-arming starts over: a new token, the old one ends.
    assert.is(cloner('netboot', ...remote, '--nodes', 'node01', '--set', 'cloner').code, 0);
    const again = kernel.exec((await boot('?mac=52:54:00:00:00:01')).text)?.[1];
    assert.ok(again && again !== token);
    assert.is((await asNode(token!, '/v1/images')).status, 401);
    assert.is((await asNode(again!, '/v1/images')).status, 200);
    const served = await fetch(`${server.url}/v1/boot/6.1.0-50-amd64/initrd.img`);
    assert.is(served.status, 200);
    assert.is(Buffer.from(await served.arrayBuffer()).toString(), 'initrd of 6.1.0-50-amd64');
    const missing = await fetch(`${server.url}/v1/boot/vmlinuz`);
    assert.is(missing.status, 404);
    assert.match((await missing.json()).hint, /cloner make-installer/);

    const c = cloner('netboot', 'dnsmasq-config', '--server', server.url, '--subnet', '198.18.0.0');
    assert.is(c.code, 0, c.err);
    assert.match(c.out, /^dhcp-range=198\.18\.0\.0,proxy$/m);
    assert.match(c.out, new RegExp(`^dhcp-boot=tag:ipxe,${server.url}/boot\\.ipxe$`, 'm'));
    // iPXE in a NIC's ROM takes the URL from the proxy offer (PXE options present); the PXE lab boots that way.
    for (const csa of ['X86PC', 'BC_EFI', 'X86-64_EFI']) assert.match(c.out, new RegExp(`^pxe-service=tag:ipxe,${csa},"cloner",${server.url}/boot\\.ipxe$`, 'm'));
    assert.is(cloner('netboot', 'dnsmasq-config', '--server', server.url).code, 2);
  });
});

test('--public-url names the server on the kernel line; the installer files are served; a deploy token acts only for its own node', async () => {
  await withServer(
    async (server) => {
      const remote = ['--server', server.url, '--token-file', path.join(server.dataDir, 'admin.token')];
      for (const [name, mac] of [['node01', '52:54:00:00:00:01'], ['node02', '52:54:00:00:00:02']]) {
        assert.is(cloner('nodes', 'add', ...remote, name, `eth0.mac=${mac}`, 'netboot=cloner').code, 0);
      }
      await uploadInstaller(server, '6.1.0-50-amd64');
      const script = await (await fetch(`${server.url}/boot.ipxe?mac=52:54:00:00:00:01`)).text();
      assert.match(script, /^kernel http:\/\/198\.18\.0\.1:8740\/v1\/boot\/6\.1\.0-50-amd64\/vmlinuz cloner\.server=http:\/\/198\.18\.0\.1:8740 /m);
      assert.match(script, /^initrd http:\/\/198\.18\.0\.1:8740\/v1\/boot\/6\.1\.0-50-amd64\/initrd\.img \|\| goto cloner_retry$/m);
      assert.match(await (await fetch(`${server.url}/boot.ipxe`)).text(), /^chain http:\/\/198\.18\.0\.1:8740\/boot\.ipxe\?mac=/m);
      const token = /cloner\.token=(\S+)/.exec(script)![1];

      // The unversioned installer files of earlier servers, in DATA/boot/, are still served.
      await mkdir(path.join(server.dataDir, 'boot'), { recursive: true });
      const kernelBytes = seededBytes(3, 300_000);
      await writeFile(path.join(server.dataDir, 'boot/vmlinuz'), kernelBytes);
      const served = await fetch(`${server.url}/v1/boot/vmlinuz`);
      assert.is(served.status, 200);
      assert.ok(Buffer.from(await served.arrayBuffer()).equals(kernelBytes), 'vmlinuz is served byte for byte, without a token');
      assert.is((await fetch(`${server.url}/v1/boot/initrd.img`)).status, 404);
      assert.is((await fetch(`${server.url}/v1/boot/..%2fadmin.token`)).status, 400);

      const as = (route: string, init: RequestInit = {}) => fetch(`${server.url}${route}`, { ...init, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' } });
      // Its own node: allowed (the plan fails only because no image is assigned).
      const own = await as('/v1/nodes/node01/deploy');
      assert.is(own.status, 400);
      assert.is((await own.json()).error, 'NODE_INVALID');
      assert.is((await as('/v1/nodes/node01/deploy/status', { method: 'POST', body: JSON.stringify({ phase: 'identify' }) })).status, 200);
      // Another node: refused, for every node route.
      assert.is((await as('/v1/nodes/node02/deploy')).status, 403);
      assert.is((await as('/v1/nodes/node02/deploy/status', { method: 'POST', body: JSON.stringify({ phase: 'identify' }) })).status, 403);
      assert.is((await as('/v1/nodes/node02/deploy/result', { method: 'POST', body: JSON.stringify({ ok: true, phase: 'done' }) })).status, 403);
      assert.is((await as('/v1/nodes/node02/hostkeys')).status, 403);
      const nodes = JSON.parse(cloner('nodes', 'list', ...remote, '--json').out) as Array<{ name: string; netboot: string }>;
      assert.is(nodes.find((n) => n.name === 'node02')?.netboot, 'cloner', 'node02 untouched');
    },
    ['--public-url', 'http://198.18.0.1:8740'],
  );
});

// dnsmasq itself must accept the snippet; without dnsmasq this is a skip (a failure in CI).
skipUnless(test, haveTool('dnsmasq') ? null : 'dnsmasq is not installed (scripts/setup.sh installs dnsmasq-base)', 'dnsmasq --test accepts the dnsmasq-config snippet', async () => {
  const c = cloner('netboot', 'dnsmasq-config', '--server', 'http://198.18.0.1:8080', '--subnet', '198.18.0.0');
  assert.is(c.code, 0, c.err);
  await withTempDir(async (dir) => {
    await writeFile(path.join(dir, 'cloner.conf'), c.out);
    const check = spawnSync('dnsmasq', ['--test', '-C', path.join(dir, 'cloner.conf')], { encoding: 'utf8' });
    assert.is(check.status, 0, check.stderr);
    assert.match(check.stderr, /syntax check OK/);
  });
});

test.run();
