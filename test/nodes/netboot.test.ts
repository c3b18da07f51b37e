/**
 * /boot.ipxe against a real server: a chain script without ?mac=, `exit` for an unknown MAC
 * (recorded as discovered) and for a node set to local, the installer's kernel line with a
 * fresh deploy token for a node set to cloner; that token reads (not writes) until the next
 * boot replaces it. Plus the dnsmasq snippet, which dnsmasq --test must accept (a skip
 * without dnsmasq, which fails CI).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { withTempDir } from '../helpers/fixtures.ts';
import { haveTool } from '../../core/tools.ts';
import { cloner } from '../helpers/cli.ts';
import { withServer } from '../helpers/server.ts';
import { kernelArgs } from '../../agent/kernel-args.ts';
import { skipUnless } from '../helpers/skip.ts';

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

    assert.is(cloner('netboot', ...remote, '--nodes', 'node01', '--set', 'cloner').code, 0);
    r = await boot('?mac=52:54:00:00:00:01');
    const kernel = new RegExp(`^kernel ${server.url}/v1/boot/vmlinuz cloner\\.server=${server.url} cloner\\.node=node01 cloner\\.token=(\\S+) cloner\\.mode=unicast initrd=initrd\\.img`, 'm');
    const token = kernel.exec(r.text)?.[1];
    assert.ok(token, r.text);
    assert.match(r.text, new RegExp(`^initrd ${server.url}/v1/boot/initrd\\.img\\nboot\\n$`, 'm'));
    // What the installer's agent reads back from /proc/cmdline.
    assert.equal(kernelArgs(/^kernel \S+ (.*)$/m.exec(r.text)![1]), { server: server.url, node: 'node01', token: token!, mode: 'unicast' });
    const asNode = (t: string, route: string, init: RequestInit = {}) => fetch(`${server.url}${route}`, { ...init, headers: { authorization: `Bearer ${t}`, 'content-type': 'application/json' } });
    assert.is((await asNode(token!, '/v1/images')).status, 200, 'a deploy token reads');
    assert.is((await asNode(token!, '/v1/nodes/node01', { method: 'POST', body: JSON.stringify({ settings: ['netboot=local'] }) })).status, 403, 'but does not write');
    // The next boot issues a new token; the old one stops working.
    const again = kernel.exec((await boot('?mac=52:54:00:00:00:01')).text)?.[1];
    assert.ok(again && again !== token);
    assert.is((await asNode(token!, '/v1/images')).status, 401);
    assert.is((await asNode(again!, '/v1/images')).status, 200);
    const missing = await fetch(`${server.url}/v1/boot/vmlinuz`);
    assert.is(missing.status, 404);
    assert.match((await missing.json()).hint, /vmlinuz and initrd.img in/);

    const c = cloner('netboot', 'dnsmasq-config', '--server', server.url, '--subnet', '198.18.0.0');
    assert.is(c.code, 0, c.err);
    assert.match(c.out, /^dhcp-range=198\.18\.0\.0,proxy$/m);
    assert.match(c.out, new RegExp(`^dhcp-boot=tag:ipxe,${server.url}/boot\\.ipxe$`, 'm'));
    assert.is(cloner('netboot', 'dnsmasq-config', '--server', server.url).code, 2);
  });
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
