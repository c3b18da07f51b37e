/**
 * The deploy rules of core/nodes in a real store, as both the server and `--store` run
 * them: tokens (one per arm, bound to an address, expiring on a clock the test
 * sets), a result (success flips netboot to local and ends the token; failure leaves
 * both), host keys stored once, and removing a node removing its token and keys.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { claimHostKeys, DEPLOY_TOKEN_TTL_MS, deployTokenNode, issueDeployToken } from '../../core/nodes/deploy-tokens.ts';
import { deployPlan, LiveDeploys } from '../../core/nodes/deploy.ts';
import { getHostKeys, putHostKeys } from '../../core/nodes/hostkeys.ts';
import { changeNode, getNode, removeNode, updateNode } from '../../core/nodes/registry.ts';
import { ClonerError } from '../../core/errors.ts';
import { withStore } from '../helpers/store.ts';
import { file, makeTree } from '../helpers/fixtures.ts';
import { captureTree } from '../../core/tree/capture.ts';
import { commitRevision } from '../../core/tree/images.ts';
import { saveLayout } from '../../core/layout/store.ts';
import type { Layout } from '../../core/layout/model.ts';
import path from 'node:path';

/** Awaits `work`, which must fail with an error `matches` accepts. */
async function rejects(work: () => Promise<unknown>, matches: (e: unknown) => boolean): Promise<void> {
  let error: unknown = null;
  try {
    await work();
  } catch (err) {
    error = err;
  }
  assert.ok(error && matches(error), `expected a matching error, got ${error}`);
}

const code = (c: string) => (e: unknown) => e instanceof ClonerError && e.code === c;

test('deploy tokens: one per arm, bound to the asking address; a second ask is refused without revoking the first; re-arming starts over; the TTL', async () => {
  await withStore(async (store) => {
    await changeNode(store, 'n0', ['eth0.mac=52:54:00:00:00:00'], true);
    await rejects(() => issueDeployToken(store, 'n0', '198.18.0.5'), code('DEPLOY_NOT_ARMED'));
    await changeNode(store, 'n1', ['eth0.mac=52:54:00:00:00:01', 'netboot=cloner'], true);
    const first = await issueDeployToken(store, 'n1', '198.18.0.5');
    assert.is(await deployTokenNode(store, first, { ip: '198.18.0.5' }), 'n1');
    assert.is(await deployTokenNode(store, first, { ip: '::ffff:198.18.0.5' }), 'n1');
    assert.is(await deployTokenNode(store, first, { ip: '198.18.0.6' }), null, 'bound to the address it was issued to');
    await rejects(() => issueDeployToken(store, 'n1', '198.18.0.66'), code('DEPLOY_TOKEN_HELD'));
    await rejects(() => issueDeployToken(store, 'n1', '198.18.0.5'), code('DEPLOY_TOKEN_HELD'));
    assert.is(await deployTokenNode(store, first, { ip: '198.18.0.5' }), 'n1', 'a second ask does not revoke the first boot\'s token');
    await changeNode(store, 'n1', ['netboot=cloner'], false);
    assert.is(await deployTokenNode(store, first, { ip: '198.18.0.5' }), null, 're-arming ends the earlier token');
    const second = await issueDeployToken(store, 'n1', '198.18.0.5');
    assert.is(await deployTokenNode(store, second, { ip: '198.18.0.5', now: Date.now() + DEPLOY_TOKEN_TTL_MS - 60_000 }), 'n1');
    assert.is(await deployTokenNode(store, second, { ip: '198.18.0.5', now: Date.now() + DEPLOY_TOKEN_TTL_MS + 1000 }), null, 'expired');
    assert.is(await deployTokenNode(store, 'not-a-token'), null);
    await claimHostKeys(store, 'n1', second);
    await claimHostKeys(store, 'n1', second); // the same boot's deploy, retried
    // A token issued in the same arm after the first expired does not get the keys.
    const third = await issueDeployToken(store, 'n1', '198.18.0.5', Date.now() + DEPLOY_TOKEN_TTL_MS + 1000);
    await rejects(() => claimHostKeys(store, 'n1', third), code('DEPLOY_NOT_ARMED'));
    await rejects(() => claimHostKeys(store, 'n1', 'not-a-token'), code('DEPLOY_NOT_ARMED'));
    await changeNode(store, 'n1', ['netboot=local'], false);
    assert.is(await deployTokenNode(store, second, { ip: '198.18.0.5' }), null, 'netboot local disarms');
    await rejects(() => issueDeployToken(store, 'n1', '198.18.0.5'), code('DEPLOY_NOT_ARMED'));
  });
});

test('a result: failure keeps netboot and the token; success sets netboot local and ends the token', async () => {
  await withStore(async (store) => {
    await changeNode(store, 'n1', ['eth0.mac=52:54:00:00:00:01', 'netboot=cloner'], true);
    const token = await issueDeployToken(store, 'n1', '198.18.0.5');
    const live = new LiveDeploys();
    await live.report(store, 'n1', { phase: 'restore', bytes: 10, totalBytes: 100 });
    assert.is((await live.rows(store))[0].status?.phase, 'restore');
    await live.finish(store, 'n1', { ok: false, phase: 'restore', message: 'corrupt chunk' });
    assert.is((await getNode(store, 'n1'))?.netboot, 'cloner');
    assert.is(await deployTokenNode(store, token), 'n1');
    const view = await live.finish(store, 'n1', { ok: true, phase: 'done' });
    assert.is(view.netboot, 'local');
    assert.is((await getNode(store, 'n1'))?.lastDeploy?.ok, true);
    assert.is(await deployTokenNode(store, token), null);
    assert.is((await live.rows(store))[0].status?.phase, 'done');
    await rejects(() => live.report(store, 'ghost', { phase: 'identify' }), code('NODE_NOT_FOUND'));
  });
});

test('a plan needs an assigned, existing image; host keys are stored once; removing a node removes its token and keys', async () => {
  await withStore(async (store) => {
    await changeNode(store, 'n1', ['eth0.mac=52:54:00:00:00:01'], true);
    await rejects(() => deployPlan(store, store.config.chunker, 'n1'), code('NODE_INVALID'));
    // An image deleted after it was assigned (changeNode refuses an unknown one).
    await updateNode(store, 'n1', (n) => ({ ...n!, cloner_image: 'missing' }));
    await rejects(() => deployPlan(store, store.config.chunker, 'n1'), code('IMAGE_NOT_FOUND'));
    await rejects(() => getHostKeys(store, 'n1'), (e: unknown) => e instanceof ClonerError && e.status === 404);
    assert.is(await putHostKeys(store, 'n1', { ssh_host_ed25519_key: 'AAAA' }), 1);
    await rejects(() => putHostKeys(store, 'n1', { ssh_host_ed25519_key: 'BBBB' }), (e: unknown) => e instanceof ClonerError && e.code === 'HOSTKEYS_EXIST' && e.status === 409);
    assert.equal((await getHostKeys(store, 'n1')).files, { ssh_host_ed25519_key: 'AAAA' });
    await changeNode(store, 'n1', ['netboot=cloner'], false);
    const token = await issueDeployToken(store, 'n1', '198.18.0.5');
    await removeNode(store, 'n1');
    assert.is(await deployTokenNode(store, token), null);
    assert.equal(await store.listRefs('hostkeys/'), []);
    assert.equal(await store.listRefs('deploy'), []);
    await changeNode(store, 'n1', ['eth0.mac=52:54:00:00:00:01'], true);
    await rejects(() => getHostKeys(store, 'n1'), code('HOSTKEYS_NOT_FOUND'));
  });
});

test('a plan: the latest revision, or the one cloner_revision pins; the revision\'s layout, or the one cloner_layout names', async () => {
  await withStore(async (store, dir) => {
    const layout = (disk: string): Layout => ({ format: 'cloner-layout/1', disks: [{ id: disk, table: 'gpt', partitions: [{ id: 'root', size: 'grow', type: 'linux' }] }], filesystems: [{ device: 'root', type: 'ext4', mount: '/' }] });
    await saveLayout(store, 'small', layout('a'));
    await saveLayout(store, 'big', layout('b'));
    const root = path.join(dir, 'golden');
    const revisions = [];
    for (const text of ['one\n', 'two\n']) {
      await makeTree(root, { 'etc/release': file(text) });
      const { tree } = await captureTree({ store, chunker: store.config.chunker, root, liveNode: false });
      revisions.push(await commitRevision(store, 'img', { tree, layout: 'small', stats: { files: 1, bytes: text.length } }, { create: revisions.length === 0 }));
    }
    await changeNode(store, 'n1', ['eth0.mac=52:54:00:00:00:01', 'cloner_image=img'], true);
    let plan = await deployPlan(store, store.config.chunker, 'n1');
    assert.is(plan.revision.n, 2);
    assert.is(plan.revision.tree, revisions[1].tree);
    assert.is(plan.layout?.name, 'small');
    await changeNode(store, 'n1', ['cloner_revision=1', 'cloner_layout=big'], false);
    plan = await deployPlan(store, store.config.chunker, 'n1');
    assert.is(plan.revision.n, 1);
    assert.is(plan.revision.tree, revisions[0].tree);
    assert.is(plan.layout?.name, 'big');
    assert.is(plan.layout?.layout.disks[0].id, 'b');
    // A revision the image lacks is refused when set; one that went later fails the plan.
    await rejects(() => changeNode(store, 'n1', ['cloner_revision=7'], false), (e: unknown) => e instanceof ClonerError && /cloner_revision: image img has no revision 7 \(revisions: 1, 2\)/.test(e.message));
    await updateNode(store, 'n1', (n) => ({ ...n!, cloner_revision: 7 }));
    await rejects(() => deployPlan(store, store.config.chunker, 'n1'), code('IMAGE_NOT_FOUND'));
    await changeNode(store, 'n1', ['cloner_revision='], false);
    // A layout that is not stored is refused when set; one that went later fails the plan.
    await rejects(() => changeNode(store, 'n1', ['cloner_layout=nosuch'], false), (e: unknown) => e instanceof ClonerError && /cloner_layout: no layout named nosuch/.test(e.message));
    await updateNode(store, 'n1', (n) => ({ ...n!, cloner_layout: 'nosuch' }));
    await rejects(() => deployPlan(store, store.config.chunker, 'n1'), code('LAYOUT_NOT_FOUND'));
  });
});

test.run();
