/**
 * The node registry through the CLI and a real server: nodes add/set/list/show/remove/import
 * with hostlist and group selectors, netboot --set, identify by MAC and by node; bad input
 * (unknown nodes, bad values, duplicate MACs, malformed CSV) is one line with a hint and
 * changes nothing; BMC passwords never come back to a client.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { cloner } from '../helpers/cli.ts';
import { file, makeTree, withTempDir } from '../helpers/fixtures.ts';
import { withServer } from '../helpers/server.ts';

test('nodes, netboot and identify against a server', async () => {
  await withServer(async (server) => {
    await withTempDir(async (dir) => {
      const remote = ['--server', server.url, '--token-file', path.join(server.dataDir, 'admin.token')];
      const list = () => JSON.parse(cloner('nodes', 'list', ...remote, '--json').out) as Array<Record<string, any>>;
      const csv = path.join(dir, 'nodes.csv');
      await writeFile(csv, [
        'name,groups,hostname,eth0.mac,eth0.ip,eth0.gateway,bmc.address,bmc.password',
        'node01,"rack1,gpu",node01.cluster,52:54:00:00:00:01,198.18.1.1/24,198.18.1.254,198.18.2.1,topsecret',
        'node02,rack1,node02.cluster,52:54:00:00:00:02,198.18.1.2/24,198.18.1.254,,',
        'node03,rack2,,52:54:00:00:00:03,198.18.1.3/24,,,',
      ].join('\n'));
      let r = cloner('nodes', 'import', ...remote, '--file', csv);
      assert.is(r.code, 0, r.err);
      assert.equal(list().map((n) => n.name), ['node01', 'node02', 'node03']);
      assert.not.ok(JSON.stringify(list()).includes('topsecret'), 'a BMC password came back');
      assert.is(list()[0].bmc.address, '198.18.2.1');

      r = cloner('nodes', 'add', ...remote, 'node04', 'eth0.mac=52:54:00:00:00:04', 'groups=rack2');
      assert.is(r.code, 0, r.err);
      r = cloner('nodes', 'add', ...remote, 'node04');
      assert.is(r.code, 2);
      assert.match(r.err, /node node04 already exists\nhint: change it with/);

      // A tiny image to assign.
      const root = path.join(dir, 'golden');
      await makeTree(root, { 'etc/hostname': file('golden\n') });
      assert.is(cloner('new-image', ...remote, '--image', 'node', '--root', root, '--yes').code, 0);
      r = cloner('nodes', 'set', ...remote, '--nodes', 'node[01-02],@rack2', 'cloner_image=node');
      assert.is(r.code, 0, r.err);
      assert.equal(list().map((n) => n.cloner_image), ['node', 'node', 'node', 'node']);
      r = cloner('nodes', 'set', ...remote, '--nodes', 'node[01-05]', 'cloner_image=other');
      assert.is(r.code, 2);
      assert.match(r.err, /unknown node node05\nhint: add them with/);
      r = cloner('nodes', 'set', ...remote, '--nodes', '@rack1', 'eth0.ip=not-an-ip');
      assert.is(r.code, 2);
      assert.match(r.err, /eth0.ip: "not-an-ip" is not ADDRESS\/PREFIX/);
      r = cloner('nodes', 'set', ...remote, '--nodes', 'node02', 'eth0.mac=52:54:00:00:00:01');
      assert.is(r.code, 2);
      assert.match(r.err, /MAC 52:54:00:00:00:01 of node02 is already node01's/);
      assert.equal(list().map((n) => n.cloner_image), ['node', 'node', 'node', 'node'], 'failed commands changed nothing');

      r = cloner('netboot', ...remote, '--nodes', '@rack1', '--set', 'cloner');
      assert.is(r.code, 0, r.err);
      assert.equal(list().map((n) => n.netboot), ['cloner', 'cloner', 'local', 'local']);
      assert.is(cloner('netboot', ...remote, '--nodes', 'node01', '--set', 'pxe').code, 2);

      r = cloner('identify', ...remote, '--method', 'mac', '--macaddr', '52-54-00-00-00-02', '--json');
      assert.is(r.code, 0, r.err);
      assert.equal(JSON.parse(r.out), [{ node: 'node02', image: 'node', imageFound: true, revision: 1, layout: null, netboot: 'cloner' }]);
      r = cloner('identify', ...remote, '--method', 'node', '--node', 'node03,node04');
      assert.is(r.code, 0, r.err);
      assert.match(r.out, /^node03: image node, revision 1, layout -, netboot local\nnode04: image node, revision 1, layout -, netboot local\n$/);
      r = cloner('identify', ...remote, '--method', 'mac', '--macaddr', '52:54:00:ff:ff:ff');
      assert.is(r.code, 2);
      assert.match(r.err, /no node has MAC 52:54:00:ff:ff:ff/);

      r = cloner('nodes', 'show', ...remote, 'node01');
      assert.equal(JSON.parse(r.out).groups, ['rack1', 'gpu']);
      r = cloner('nodes', 'remove', ...remote, '--nodes', '@rack2', '--yes');
      assert.is(r.code, 0, r.err);
      assert.equal(list().map((n) => n.name), ['node01', 'node02']);

      await writeFile(csv, 'name,eth0.mac\nnode09,"52:54:00:00:00:09\n');
      r = cloner('nodes', 'import', ...remote, '--file', csv);
      assert.is(r.code, 2);
      assert.match(r.err, /unterminated quote/);
      r = cloner('nodes', 'fly', ...remote);
      assert.is(r.code, 2);
      assert.match(r.err, /unknown nodes action fly/);
    });
  });
});

test.run();
