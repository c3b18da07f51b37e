/**
 * What the registry and the layout store refuse, through the CLI and the routes of a real
 * server: an IP address or a host name another node has (the error names that node; HTTP
 * 409 with a JSON body), a cloner_image that is not stored (the error lists the images), a
 * cloner_revision the image lacks, a layout that does not fit the disk it was captured
 * from (refused at upload, with a hint, so it never becomes the latest version). And layout
 * versions: disklayout-rollback makes an earlier one the latest again, disklayout-delete
 * drops one (asking first; the only version of a layout in use is refused), both also as
 * routes.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { cloner } from '../helpers/cli.ts';
import { file, makeTree, withTempDir } from '../helpers/fixtures.ts';
import { withServer } from '../helpers/server.ts';

const layout = (rootSize: string, captured?: number) => ({
  format: 'cloner-layout/1',
  disks: [{ id: 'sys', table: 'gpt', ...(captured ? { captured: { size: captured } } : {}), partitions: [{ id: 'boot', size: '256M', type: 'linux' }, { id: 'root', size: rootSize, type: 'linux' }] }],
  raids: [],
  volumeGroups: [],
  filesystems: [{ device: 'root', type: 'ext4', label: 'root', mount: '/' }],
});

const oneError = (r: { code: number | null; err: string }, pattern: RegExp) => {
  assert.is(r.code, 2, r.err);
  assert.match(r.err, /^cloner: error: [^\n]+\nhint: [^\n]+\n$/, r.err);
  assert.match(r.err, pattern, r.err);
};

test('duplicate addresses and host names, unknown images and revisions, oversized layouts; layout rollback and delete', async () => {
  await withServer(async (server) => {
    await withTempDir(async (dir) => {
      const remote = ['--server', server.url, '--token-file', path.join(server.dataDir, 'admin.token')];
      const c = (...args: string[]) => cloner(...args, ...remote);
      const http = (method: string, route: string, body?: unknown) =>
        fetch(`${server.url}${route}`, { method, headers: { authorization: `Bearer ${server.adminToken}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) }, body: body === undefined ? undefined : JSON.stringify(body) });

      assert.is(c('nodes', 'add', 'n1', 'eth0.mac=52:54:00:00:01:01', 'eth0.ip=198.18.1.1/24', 'hostname=n1.cluster').code, 0);
      assert.is(c('nodes', 'add', 'n2', 'eth0.mac=52:54:00:00:01:02').code, 0);
      oneError(c('nodes', 'add', 'n3', 'eth0.mac=52:54:00:00:01:03', 'eth0.ip=198.18.1.1/16'), /IP address 198\.18\.1\.1 of n3 \(eth0\) is already n1's \(eth0\)/);
      oneError(c('nodes', 'set', '--nodes', 'n2', 'eth1.mac=52:54:00:00:02:02', 'eth1.ip=198.18.1.1/24'), /IP address 198\.18\.1\.1 of n2 \(eth1\) is already n1's \(eth0\)/);
      oneError(c('nodes', 'set', '--nodes', 'n2', 'hostname=N1.Cluster'), /host name n1\.cluster of n2 is already n1's/);
      oneError(c('nodes', 'add', 'n4', 'hostname=n2'), /host name n2 of n4 is already n2's \(its node name\)/);
      // The route answers 409 with the error body.
      const clash = await http('POST', '/v1/nodes/n2', { settings: ['eth0.ip=198.18.1.1/24'] });
      assert.is(clash.status, 409);
      const body = await clash.json();
      assert.is(body.error, 'NODE_CLASH');
      assert.match(body.message, /already n1's/);
      // Another change of a node keeps its own address and name.
      assert.is(c('nodes', 'set', '--nodes', 'n1', 'groups=rack1').code, 0);
      assert.equal(JSON.parse(c('nodes', 'list', '--json').out).map((n: { name: string }) => n.name), ['n1', 'n2'], 'refused commands stored nothing');

      // Images: an unknown one is refused with the list; a revision the image lacks too.
      oneError(c('nodes', 'set', '--nodes', 'n1', 'cloner_image=nosuch'), /cloner_image: no image named nosuch \(the store has no images yet\)/);
      const root = path.join(dir, 'golden');
      await makeTree(root, { 'etc/hostname': file('golden\n') });
      assert.is(c('new-image', '--image', 'img', '--root', root, '--yes').code, 0);
      oneError(c('nodes', 'set', '--nodes', 'n1', 'cloner_image=nosuch'), /cloner_image: no image named nosuch \(images: img\)\nhint: capture it first with cloner new-image/);
      oneError(c('nodes', 'set', '--nodes', 'n1', 'cloner_image=img', 'cloner_revision=4'), /cloner_revision: image img has no revision 4 \(revisions: 1\)/);
      assert.is(c('nodes', 'set', '--nodes', 'n1', 'cloner_image=img', 'cloner_revision=1').code, 0);

      // A layout that does not fit the disk it was captured from is refused at upload.
      const big = path.join(dir, 'big.json');
      await writeFile(big, JSON.stringify(layout('2G', 1024 ** 3)));
      oneError(c('disklayout-upload', '--disklayout', 'L', '--file', big), /disk sys: the layout does not fit the 1\.00 GiB disk it was captured from .*\nhint: shrink its partitions; or, if it is meant for larger disks, set the disk's captured\.size/);
      assert.equal(JSON.parse(c('disklayout', '--json').out), [], 'nothing stored');
      const v = async (rootSize: string) => {
        const f = path.join(dir, `${rootSize}.json`);
        await writeFile(f, JSON.stringify(layout(rootSize, 4 * 1024 ** 3)));
        const r = c('disklayout-upload', '--disklayout', 'L', '--file', f);
        assert.is(r.code, 0, r.err);
      };
      await v('1G');
      await v('2G');
      const rootOf = (version?: string) => JSON.parse(c('disklayout', '--disklayout', 'L', ...(version ? ['--layout-version', version] : [])).out).disks[0].partitions[1].size;
      assert.is(rootOf(), '2G');
      // A node's layout override must name a stored layout.
      oneError(c('nodes', 'set', '--nodes', 'n1', 'cloner_layout=nosuch'), /cloner_layout: no layout named nosuch\nhint: upload it first with cloner disklayout-upload/);
      assert.is(c('nodes', 'set', '--nodes', 'n1', 'cloner_layout=L').code, 0);
      assert.is(c('nodes', 'set', '--nodes', 'n1', 'cloner_layout=').code, 0);

      // Rollback: version 3 = version 1.
      let r = c('disklayout-rollback', '--disklayout', 'L', '--layout-version', '1');
      assert.is(r.code, 0, r.err);
      assert.match(r.out, /disk layout L version 3 = version 1 \(now the latest\)/);
      assert.is(rootOf(), '1G');
      oneError(c('disklayout-rollback', '--disklayout', 'L', '--layout-version', '9'), /disk layout L has no version 9\nhint: its versions are 1, 2, 3/);
      oneError(c('disklayout-rollback', '--disklayout', 'L', '--layout-version', 'x'), /bad --layout-version x/);

      // Delete asks (no answer: nothing deleted, the hint names --yes), then deletes with --yes.
      r = c('disklayout-delete', '--disklayout', 'L', '--layout-version', '3');
      assert.is.not(r.code, 0);
      assert.match(r.err, /--yes/);
      assert.is(rootOf(), '1G');
      r = c('disklayout-delete', '--disklayout', 'L', '--layout-version', '3', '--yes');
      assert.is(r.code, 0, r.err);
      assert.match(r.out, /disk layout L version 3 .*the version before it becomes the latest/);
      assert.match(r.out, /deleted disk layout L version 3; latest is version 2/);
      assert.is(rootOf(), '2G');

      // Routes: rollback and delete; an unknown version is a 404 with the error body.
      const rolled = await http('POST', '/v1/layouts/L/rollback', { version: 1 });
      assert.is(rolled.status, 200);
      assert.equal(await rolled.json(), { name: 'L', version: 4, from: 1 });
      const gone = await http('DELETE', '/v1/layouts/L/versions/4');
      assert.equal([gone.status, await gone.json()], [200, { name: 'L', deleted: 4, latest: 2 }]);
      const missing = await http('DELETE', '/v1/layouts/L/versions/4');
      assert.is(missing.status, 404);
      assert.is((await missing.json()).error, 'LAYOUT_NOT_FOUND');
      assert.is((await http('POST', '/v1/layouts/L/rollback', { version: 0 })).status, 400);

      // The only version of a layout a node uses is not deleted; unused, the layout goes.
      assert.is(c('disklayout-delete', '--disklayout', 'L', '--layout-version', '1', '--yes').code, 0);
      assert.is(c('nodes', 'set', '--nodes', 'n1', 'cloner_layout=L').code, 0);
      oneError(c('disklayout-delete', '--disklayout', 'L', '--layout-version', '2', '--yes'), /version 2 is the only one of disk layout L, which node n1 uses/);
      assert.is(c('nodes', 'set', '--nodes', 'n1', 'cloner_layout=').code, 0);
      r = c('disklayout-delete', '--disklayout', 'L', '--layout-version', '2', '--yes');
      assert.is(r.code, 0, r.err);
      assert.match(r.out, /no version is left/);
      assert.equal(JSON.parse(c('disklayout', '--json').out), []);
    });
  });
});

test.run();
