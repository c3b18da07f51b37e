/**
 * Per-node deploy history, groups and store maintenance through the real CLI against a
 * real cloner-server (and a --store directory): deploy results posted to the deploy
 * routes land in `cloner nodes history NODE` (newest first, bounded), `nodes group` adds
 * and removes one group keeping the others, `verify` and `gc` are recorded and shown by
 * `cloner status` (text and --json) with the time they ran; a removed node's history goes
 * with it; bad input is refused with a hint.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import path from 'node:path';
import { cloner } from '../helpers/cli.ts';
import { file, makeTree, withTempDir } from '../helpers/fixtures.ts';
import { withServer } from '../helpers/server.ts';
import { HISTORY_LIMIT } from '../../core/nodes/history.ts';

const ok = (r: { code: number | null; out: string; err: string }) => {
  assert.is(r.code, 0, r.err + r.out);
  return r.out;
};

test('deploy history, groups, verify/gc records and status on a server', async () => {
  await withServer(async (server) => {
    await withTempDir(async (dir) => {
      const remote = ['--server', server.url, '--token-file', path.join(server.dataDir, 'admin.token')];
      const root = path.join(dir, 'root');
      await makeTree(root, { 'etc/hostname': file('golden\n') });
      ok(cloner('new-image', '--image', 'g', '--root', root, '--yes', ...remote));
      ok(cloner('nodes', 'add', 'n1', 'cloner_image=g', 'groups=rack1', ...remote));
      ok(cloner('nodes', 'add', 'n2', ...remote));
      const result = (node: string, body: object) => fetch(`${server.url}/v1/nodes/${node}/deploy/result`, { method: 'POST', headers: { authorization: `Bearer ${server.adminToken}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
      assert.is((await result('n1', { ok: false, phase: 'restore', message: 'disk sda vanished', image: 'g', revision: 1 })).status, 200);
      assert.is((await result('n1', { ok: true, phase: 'report', image: 'g', revision: 1, seconds: 42.5, fetchedBytes: 3 * 1024 * 1024, warnings: ['w1'] })).status, 200);

      const history = JSON.parse(ok(cloner('nodes', 'history', 'n1', '--json', ...remote)));
      assert.is(history.length, 2);
      assert.equal([history[0].ok, history[0].image, history[0].revision, history[0].seconds, history[0].fetchedBytes, history[0].warnings], [true, 'g', 1, 42.5, 3 * 1024 * 1024, 1]);
      assert.is(Date.parse(history[0].at) - Date.parse(history[0].started), 42_500);
      assert.equal([history[1].ok, history[1].phase, history[1].message, history[1].started], [false, 'restore', 'disk sda vanished', null]);
      const text = ok(cloner('nodes', 'history', 'n1', ...remote));
      assert.match(text, /g@1\s+ok \(1 warn\)\s+43 s\s+3\.0 MiB/);
      assert.match(text, /g@1\s+failed in restore\s+-\s+-\s+disk sda vanished/);
      assert.match(ok(cloner('nodes', 'history', 'n2', ...remote)), /n2 has no deploy recorded/);
      const missing = cloner('nodes', 'history', 'nobody', ...remote);
      assert.is.not(missing.code, 0);
      assert.match(missing.err, /no node named nobody/);

      // Bounded: the oldest fall off.
      for (let i = 0; i < HISTORY_LIMIT + 3; i++) await result('n2', { ok: true, phase: 'report', image: 'g', revision: 1, seconds: i });
      const long = JSON.parse(ok(cloner('nodes', 'history', 'n2', '--json', ...remote)));
      assert.is(long.length, HISTORY_LIMIT);
      assert.equal([long[0].seconds, long.at(-1).seconds], [HISTORY_LIMIT + 2, 3]);

      // Groups: one added, the others kept; taken out again; a bad name refused.
      ok(cloner('nodes', 'group', '--nodes', 'n1,n2', 'gpu', ...remote));
      ok(cloner('nodes', 'group', '--nodes', 'n1', 'gpu', ...remote));
      const nodes = () => JSON.parse(ok(cloner('nodes', 'list', '--json', ...remote))) as Array<{ name: string; groups: string[] }>;
      assert.equal(nodes().map((n) => n.groups), [['rack1', 'gpu'], ['gpu']]);
      ok(cloner('nodes', 'group', '--nodes', '@gpu', 'rack1', '--remove', ...remote));
      assert.equal(nodes().map((n) => n.groups), [['gpu'], ['gpu']]);
      const bad = cloner('nodes', 'group', '--nodes', 'n1', 'a,b', ...remote);
      assert.is.not(bad.code, 0);
      assert.match(bad.err, /invalid group "a,b"/);

      // Maintenance: never run, then verify and gc recorded and shown by status.
      let status = JSON.parse(ok(cloner('status', '--json', ...remote)));
      assert.equal(status.maintenance, { gc: null, verify: null });
      assert.equal(status.multicast, { sessions: [] });
      assert.equal(status.nodes.map((r: { node: string }) => r.node), ['n1', 'n2']);
      assert.match(ok(cloner('status', ...remote)), /verify: never run on this store\ngc: never run on this store/);
      const before = Date.now();
      ok(cloner('verify', ...remote));
      ok(cloner('gc', ...remote));
      status = JSON.parse(ok(cloner('status', '--json', '--nodes', 'n1', ...remote)));
      assert.equal(status.nodes.map((r: { node: string }) => r.node), ['n1']);
      assert.is(status.maintenance.verify.ok, true);
      assert.ok(Date.parse(status.maintenance.verify.at) >= before - 1000);
      assert.match(status.maintenance.verify.summary, /chunks checked, all sound/);
      assert.ok(status.maintenance.verify.figures.checked > 0);
      assert.match(status.maintenance.gc.summary, /chunks deleted/);
      assert.match(ok(cloner('status', ...remote)), /verify: \d+s ago \(\d{4}-\d\d-\d\d \d\d:\d\d UTC, [\d.]+ s\): ok, \d+ chunks checked, all sound\ngc: \d+s ago/);

      // A removed node's history goes with it.
      ok(cloner('nodes', 'remove', '--nodes', 'n2', '--yes', ...remote));
      ok(cloner('nodes', 'add', 'n2', ...remote));
      assert.equal(JSON.parse(ok(cloner('nodes', 'history', 'n2', '--json', ...remote))), []);
    });
  });
});

test('a local store records verify and gc too; status has no multicast there', async () => {
  await withTempDir(async (dir) => {
    const store = path.join(dir, 'store');
    const root = path.join(dir, 'root');
    await makeTree(root, { 'etc/hostname': file('golden\n') });
    ok(cloner('new-image', '--store', store, '--init', '--image', 'g', '--root', root, '--yes'));
    ok(cloner('verify', '--store', store));
    const status = JSON.parse(ok(cloner('status', '--store', store, '--json')));
    assert.is(status.multicast, null);
    assert.is(status.maintenance.gc, null);
    assert.is(status.maintenance.verify.ok, true);
  });
});

test.run();
