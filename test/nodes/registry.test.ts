/** Node selectors (hostlists, groups) and registry records in a real store: settings checked, MACs unique, passwords hidden. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { expandHostlist, selectNodes } from '../../core/nodes/selector.ts';
import { applySettings, getNode, listNodes, newNode, nodeByMac, publicView, updateNode } from '../../core/nodes/registry.ts';
import { withStore } from '../helpers/store.ts';

test('hostlists expand with padding, lists and nested ranges; bad ones are refused', () => {
  assert.equal(expandHostlist('node[01-03],gpu1'), ['node01', 'node02', 'node03', 'gpu1']);
  assert.equal(expandHostlist('n[1,3,5-6]'), ['n1', 'n3', 'n5', 'n6']);
  assert.equal(expandHostlist('r[1-2]n[08-09]'), ['r1n08', 'r1n09', 'r2n08', 'r2n09']);
  assert.equal(expandHostlist('node[098-101]'), ['node098', 'node099', 'node100', 'node101']);
  for (const bad of ['node[01-', 'node]1[', 'node[3-1]', 'node[a-b]', 'n[1-99999999]', 'a[1-1000]b[1-1000]']) {
    assert.throws(() => expandHostlist(bad), (e: Error & { code?: string }) => e.code === 'SELECTOR_INVALID', bad);
  }
});

test('selectNodes: names, ranges and groups, in order without repeats; unknown names and groups are errors', () => {
  const registry = [
    { name: 'node01', groups: ['rack1'] },
    { name: 'node02', groups: ['rack1', 'gpu'] },
    { name: 'node03', groups: [] },
  ];
  assert.equal(selectNodes('node[02-03],@rack1', registry), ['node02', 'node03', 'node01']);
  assert.equal(selectNodes('@gpu', registry), ['node02']);
  assert.throws(() => selectNodes('node[01-04]', registry), (e: Error) => /unknown node node04/.test(e.message));
  assert.throws(() => selectNodes('@nosuch', registry), (e: Error) => /no node is in group nosuch/.test(e.message));
});

test('settings are checked; MACs are unique across nodes; BMC passwords are hidden from views', async () => {
  await withStore(async (store) => {
    const a = applySettings(newNode('node01'), ['groups=rack1,gpu', 'hostname=node01.cluster', 'eth0.mac=52-54-00-AA-00-01', 'eth0.ip=198.18.1.1/24', 'eth0.gateway=198.18.1.254', 'eth0.dns=198.18.0.53', 'cloner_image=node', 'netboot=cloner', 'bmc.type=ipmi', 'bmc.address=198.18.2.1', 'bmc.username=admin', 'bmc.password=s3cret']);
    assert.equal(a.interfaces, [{ name: 'eth0', mac: '52:54:00:aa:00:01', ip: '198.18.1.1/24', gateway: '198.18.1.254', dns: ['198.18.0.53'] }]);
    assert.is(publicView(a).bmc!.password, undefined);
    assert.is(a.bmc!.password, 's3cret');
    await updateNode(store, 'node01', () => a);
    assert.equal((await getNode(store, 'node01'))!.groups, ['rack1', 'gpu']);
    assert.is((await nodeByMac(store, '52:54:00:AA:00:01'))!.name, 'node01');
    for (const [bad, why] of [
      ['eth0.ip=198.18.1.1', /not ADDRESS\/PREFIX/],
      ['eth0.ip=300.1.1.1/24', /not ADDRESS\/PREFIX/],
      ['eth0.mac=zz:00:00:00:00:00', /not a MAC address/],
      ['netboot=pxe', /not one of local, cloner, cloner-multicast/],
      ['cloner_revision=0', /not a revision number/],
      ['hostname=bad_host!', /not a valid host name/],
      ['color=blue', /unknown key "color"/],
      ['nonsense', /bad setting/],
      ['eth1.ip=198.18.1.2/24', /interface eth1 of node01 has no MAC/],
    ] as const) {
      assert.throws(() => applySettings(a, [bad]), (e: Error) => why.test(e.message), bad);
    }
    const b = applySettings(newNode('node02'), ['eth0.mac=52:54:00:aa:00:01']);
    const dup = await updateNode(store, 'node02', () => b).catch((e) => e);
    assert.match(dup.message, /MAC 52:54:00:aa:00:01 of node02 is already node01's/);
    assert.equal((await listNodes(store)).map((n) => n.name), ['node01']);
    await updateNode(store, 'node01', () => undefined);
    assert.equal(await listNodes(store), []);
  });
});

test.run();
