/**
 * The registry's network model (issue 13, "Network profiles"): bonds with their ports, VLANs,
 * bridges and IPoIB with 20-byte hardware addresses, each with a per-node address; whole-set
 * rules (ports and parents exist, an interface is a port of one bond, a port carries no
 * address, no loops) refused with the key named; MACs unique across nodes, IPoIB ones too.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { applySettings, newNode, updateNode } from '../../core/nodes/registry.ts';
import { typeOf } from '../../core/nodes/network.ts';
import { withStore } from '../helpers/store.ts';

const IB = '80:00:00:48:FE:80:00:00:00:00:00:00:00:02:C9:03:00:0A:0B:0C';

test('bonds, VLANs, bridges and IPoIB with per-node addresses', () => {
  const n = applySettings(newNode('n01'), [
    'eno1.mac=52:54:00:00:00:01', 'eno2.mac=52:54:00:00:00:02', 'bond0.type=bond', 'bond0.ports=eno1, eno2', 'bond0.mode=802.3ad', 'bond0.ip=198.18.1.11/24',
    'vlan7.type=vlan', 'vlan7.parent=bond0', 'vlan7.vlan=7', 'vlan7.ip=198.19.7.11/24', `ib0.mac=${IB}`, 'ib0.ip=10.10.0.11/16', 'ib0.mtu=65520',
    'eno3.mac=52:54:00:00:00:03', 'br0.type=bridge', 'br0.ports=eno3', 'br0.ip=198.20.0.11/24',
  ]);
  const by = (name: string) => n.interfaces.find((i) => i.name === name)!;
  assert.equal(by('bond0'), { name: 'bond0', mac: '', type: 'bond', ports: ['eno1', 'eno2'], mode: '802.3ad', ip: '198.18.1.11/24' });
  assert.is(typeOf(by('ib0')), 'infiniband');
  assert.is(by('ib0').mac, IB.toLowerCase());
  assert.is(typeOf(by('eno1')), 'ethernet');
  assert.equal(by('vlan7'), { name: 'vlan7', mac: '', type: 'vlan', parent: 'bond0', vlan: 7, ip: '198.19.7.11/24' });
  // Clearing a field drops it.
  assert.equal(applySettings(n, ['ib0.mtu=']).interfaces.find((i) => i.name === 'ib0')!.mtu, undefined);
});

test('whole-set rules are refused with the interface named', () => {
  const base = ['eno1.mac=52:54:00:00:00:01', 'eno2.mac=52:54:00:00:00:02'];
  for (const [settings, why] of [
    [['bond0.type=bond'], /bond bond0 of n01 has no ports/],
    [['bond0.type=bond', 'bond0.ports=eno1,eno9'], /names eno9, which is not one of its interfaces/],
    [['bond0.type=bond', 'bond0.ports=eno1', 'eno1.ip=198.18.1.1/24'], /eno1 of n01 is a port of bond0: its address belongs on bond0/],
    [['bond0.type=bond', 'bond0.ports=eno1', 'br0.type=bridge', 'br0.ports=eno1'], /eno1 of n01 is a port of bond0 and br0/],
    [['v1.type=vlan', 'v1.parent=eno1'], /vlan v1 of n01 needs a parent and an id/],
    [['v1.type=vlan', 'v1.parent=v2', 'v1.vlan=1', 'v2.type=vlan', 'v2.parent=v1', 'v2.vlan=2'], /loop/],
    [['bond0.type=bond', 'bond0.ports=eno1', 'bond0.mode=fastest'], /bond0\.mode: "fastest" is not a bond mode/],
    [['ib0.type=infiniband', 'ib0.mac=52:54:00:00:00:09'], /infiniband without a 20-byte hardware address/],
    [['bond0.type=bond', 'bond0.ports=eno1', 'bond0.mac=52:54:00:00:00:09'], /bond0 of n01 is a bond: it has no MAC of its own/],
    [['v1.type=vlan', 'v1.parent=eno1', 'v1.vlan=4095'], /not a VLAN id/],
    [['eno1.mtu=10'], /not an MTU/],
    [['eno1.ports=eno2'], /only a bond or bridge has ports/],
  ] as const) {
    assert.throws(() => applySettings(newNode('n01'), [...base, ...settings]), (e: Error) => why.test(e.message), settings.join(' '));
  }
});

test('an IPoIB address is unique across nodes like a MAC; bonds without a MAC do not collide', async () => {
  await withStore(async (store) => {
    const a = applySettings(newNode('a1'), ['eno1.mac=52:54:00:00:01:01', 'bond0.type=bond', 'bond0.ports=eno1', `ib0.mac=${IB}`]);
    await updateNode(store, 'a1', () => a);
    const b = applySettings(newNode('a2'), ['eno1.mac=52:54:00:00:01:02', 'bond0.type=bond', 'bond0.ports=eno1']);
    await updateNode(store, 'a2', () => b);
    const c = applySettings(newNode('a3'), [`ib0.mac=${IB}`]);
    try {
      await updateNode(store, 'a3', () => c);
      assert.unreachable('a second node took the IPoIB address');
    } catch (err) {
      assert.match((err as Error).message, /already a1's/);
    }
  });
});

test.run();
