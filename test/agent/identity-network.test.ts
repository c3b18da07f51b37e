/**
 * Network identity (issue 13 case 17, issue 20 cases 19 and 20): no interface of a node comes
 * up with a golden address, whichever stack reads it. Fixture images for each stack's places
 * (NetworkManager keyfiles with a bond and IPoIB, ifcfg read by NetworkManager, ifupdown with
 * source and source-directory, networkd, netplan, wicked): the golden's configuration is
 * disabled (moved to /var/lib/cloner/disabled), with a warning for interfaces the registry
 * does not describe, and the registry's bonds, VLANs, bridges and IPoIB are written in the
 * image's format.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { applyIdentity, netplanFile, networkdFiles, nmKeyfile } from '../../agent/identity.ts';
import { applySettings, newNode, type NodeRecord } from '../../core/nodes/registry.ts';
import { file, makeTree, symlink, withTempDir, type Fixture } from '../helpers/fixtures.ts';

const IB = '80:00:00:48:fe:80:00:00:00:00:00:00:00:02:c9:03:00:0a:0b:0c';
const HPC: NodeRecord = applySettings(newNode('n03'), [
  'hostname=n03', 'eno1.mac=52:54:00:00:00:31', 'eno2.mac=52:54:00:00:00:32',
  'bond0.type=bond', 'bond0.ports=eno1,eno2', 'bond0.mode=802.3ad', 'bond0.ip=198.18.1.13/24', 'bond0.gateway=198.18.1.1',
  'vlan100.type=vlan', 'vlan100.parent=bond0', 'vlan100.vlan=100', 'vlan100.ip=198.19.0.13/24',
  `ib0.mac=${IB}`, 'ib0.ip=10.10.0.13/16', 'ib0.mtu=65520',
]);
const GOLDEN_ADDR = /198\.18\.1\.10|10\.10\.0\.10/;
const NM_ON = { 'etc/systemd/system/multi-user.target.wants/NetworkManager.service': symlink('/usr/lib/systemd/system/NetworkManager.service') };

/** Every file under the node's etc (not the disabled copies) that still holds a golden address outside a comment. */
function goldenLeft(root: string): string[] {
  return readdirSync(path.join(root, 'etc'), { recursive: true, encoding: 'utf8' })
    .map((rel) => path.join(root, 'etc', rel))
    .filter((p) => { try { return readFileSync(p, 'utf8').split('\n').some((l) => !l.trim().startsWith('#') && GOLDEN_ADDR.test(l)); } catch { return false; } });
}

async function deployed(tree: Record<string, Fixture>, node: NodeRecord, check: (root: string, r: ReturnType<typeof applyIdentity>) => void | Promise<void>) {
  await withTempDir(async (root) => {
    await makeTree(root, { 'etc/hostname': file('golden01\n'), ...tree });
    const r = applyIdentity({ target: root, node, filesystems: null, hostKeys: null });
    assert.equal(goldenLeft(root), [], 'a golden address is left where a stack reads it');
    await check(root, r);
  });
}

test('NetworkManager with a bond of two ports and IPoIB (case 17): golden profiles disabled; the registry\'s bond, ports, VLAN and IPoIB written', async () => {
  const C = 'etc/NetworkManager/system-connections';
  await deployed({
    ...NM_ON,
    [`${C}/bond0.nmconnection`]: file('[connection]\nid=bond0\ntype=bond\ninterface-name=bond0\n\n[ipv4]\nmethod=manual\naddress1=198.18.1.10/24,198.18.1.1\n', 0o600),
    [`${C}/bond0-port1.nmconnection`]: file('[connection]\nid=p1\ntype=ethernet\ninterface-name=eno1\ncontroller=bond0\nport-type=bond\n', 0o600),
    [`${C}/ib0.nmconnection`]: file('[connection]\nid=ib0\ntype=infiniband\ninterface-name=ib0\n\n[ipv4]\nmethod=manual\naddress1=10.10.0.10/16\n', 0o600),
    [`${C}/opa1.nmconnection`]: file('[connection]\nid=opa1\ntype=infiniband\ninterface-name=ib1\n\n[ipv4]\nmethod=manual\naddress1=10.11.0.10/16\n', 0o600),
    [`${C}/guest-wifi.nmconnection`]: file('[connection]\nid=guest\ntype=wifi\n', 0o600),
  }, HPC, (root, r) => {
    assert.is(r.network, 'networkmanager');
    assert.equal(readdirSync(path.join(root, C)).sort(), ['cloner-bond0.nmconnection', 'cloner-eno1.nmconnection', 'cloner-eno2.nmconnection', 'cloner-ib0.nmconnection', 'cloner-vlan100.nmconnection', 'guest-wifi.nmconnection']);
    const bond = readFileSync(path.join(root, C, 'cloner-bond0.nmconnection'), 'utf8');
    assert.match(bond, /type=bond\n/);
    assert.match(bond, /\[bond\]\nmode=802\.3ad/);
    assert.match(bond, /address1=198\.18\.1\.13\/24,198\.18\.1\.1/);
    const port = readFileSync(path.join(root, C, 'cloner-eno1.nmconnection'), 'utf8');
    assert.match(port, /master=bond0\nslave-type=bond/);
    assert.not.match(port, /\[ipv4\]/);
    assert.match(readFileSync(path.join(root, C, 'cloner-ib0.nmconnection'), 'utf8'), new RegExp(`type=infiniband[\\s\\S]*mac-address=${IB.toUpperCase()}[\\s\\S]*mtu=65520[\\s\\S]*address1=10\\.10\\.0\\.13/16`));
    assert.match(readFileSync(path.join(root, C, 'cloner-vlan100.nmconnection'), 'utf8'), /\[vlan\]\nparent=bond0\nid=100/);
    // ib1 is not the node's: its profile is disabled, and said so; the others were replaced.
    assert.ok(existsSync(path.join(root, 'var/lib/cloner/disabled', `${C}/opa1.nmconnection`.replace(/\//g, '%'))));
    assert.equal(r.warnings.filter((w) => /disabled/.test(w)).length, 1, r.warnings.join('\n'));
    assert.match(r.warnings.find((w) => /disabled/.test(w))!, /opa1\.nmconnection.*ib1, an interface the registry does not describe/);
    assert.ok(r.changes.some((c) => c.file === `/${C}/bond0.nmconnection` && /replaced by cloner/.test(c.change)));
  });
});

test('NetworkManager reading ifcfg (case 19): the golden ifcfg-eno1 and its routes are disabled, the timestamps go', async () => {
  const S = 'etc/sysconfig/network-scripts';
  const node = applySettings(newNode('n02'), ['eno1.mac=52:54:00:00:00:02', 'eno1.ip=198.18.1.12/24']);
  await deployed({
    ...NM_ON,
    'etc/NetworkManager/NetworkManager.conf': file('[main]\nplugins=ifcfg-rh,keyfile\n'),
    [`${S}/ifcfg-eno1`]: file('TYPE=Ethernet\nBOOTPROTO=none\nIPADDR=198.18.1.10\nPREFIX=24\nDEVICE=eno1\nONBOOT=yes\n'),
    [`${S}/route-eno1`]: file('10.0.0.0/8 via 198.18.1.10\n'),
    [`${S}/ifcfg-lo`]: file('DEVICE=lo\n'),
    'var/lib/NetworkManager/timestamps': file('[timestamps]\nx=1\n'),
  }, node, (root, r) => {
    assert.equal(readdirSync(path.join(root, S)), ['ifcfg-lo']);
    assert.not.ok(existsSync(path.join(root, 'var/lib/NetworkManager/timestamps')));
    assert.equal(r.warnings.filter((w) => /disabled/.test(w)), []);
  });
});

test('ifupdown with source and source-directory (case 20): golden stanzas disabled or taken out (the file set aside), loopback kept, one stanza per interface', async () => {
  const node = applySettings(newNode('n02'), ['eno1.mac=52:54:00:00:00:02', 'eno1.ip=198.18.1.12/24', 'eno1.mtu=9000']);
  await deployed({
    'etc/network/interfaces': file('source /etc/network/interfaces.d/*\nsource-directory more\n\nauto lo eno3\niface lo inet loopback\n\niface eno3 inet static\n    address 198.18.1.10/24\n'),
    'etc/network/interfaces.d/eno1': file('auto eno1\niface eno1 inet static\n    address 198.18.1.10/24\n    gateway 198.18.1.1\n'),
    'etc/network/more/ib0': file('auto ib0\niface ib0 inet static\n    address 10.10.0.10/16\n'),
  }, node, (root, r) => {
    assert.is(r.network, 'ifupdown');
    const main = readFileSync(path.join(root, 'etc/network/interfaces'), 'utf8');
    assert.is(main, 'source /etc/network/interfaces.d/*\nsource-directory more\n\nauto lo\niface lo inet loopback\n\n# cloner: the golden\'s stanzas for eno3 were here (the file as it was: /var/lib/cloner/disabled/etc%network%interfaces)\n');
    assert.match(readFileSync(path.join(root, 'var/lib/cloner/disabled/etc%network%interfaces'), 'utf8'), /iface eno3 inet static\n    address 198\.18\.1\.10/);
    assert.equal(readdirSync(path.join(root, 'etc/network/interfaces.d')), ['cloner-eno1']);
    assert.equal(readdirSync(path.join(root, 'etc/network/more')), []);
    assert.is(readFileSync(path.join(root, 'etc/network/interfaces.d/cloner-eno1'), 'utf8'), 'auto eno1\niface eno1 inet static\n    address 198.18.1.12/24\n    mtu 9000\n');
    assert.ok(r.warnings.some((w) => /eno3/.test(w)) && r.warnings.some((w) => /more\/ib0.*ib0/.test(w)), r.warnings.join('\n'));
  });
});

test('ifupdown without interfaces.d: cloner\'s files are sourced', async () => {
  const node = applySettings(newNode('n02'), ['eth0.mac=52:54:00:00:00:02']);
  await deployed({ 'etc/network/interfaces': file('auto lo\niface lo inet loopback\nauto eth0\niface eth0 inet dhcp\n') }, node, (root) => {
    assert.match(readFileSync(path.join(root, 'etc/network/interfaces'), 'utf8'), /^source \/etc\/network\/interfaces\.d\/cloner-\*$/m);
    // Written twice in one run, the file's image version (the seed of the next deploy) is still the image's.
    assert.is(readFileSync(path.join(root, 'var/lib/cloner/image-files/etc%network%interfaces'), 'utf8'), 'auto lo\niface lo inet loopback\nauto eth0\niface eth0 inet dhcp\n');
  });
});

test('networkd: static .network files and golden netdevs disabled, catch-all DHCP kept; bond, VLAN and IPoIB written', async () => {
  const N = 'etc/systemd/network';
  await deployed({
    'etc/systemd/system/multi-user.target.wants/systemd-networkd.service': symlink('/lib/systemd/system/systemd-networkd.service'),
    [`${N}/20-bond0.netdev`]: file('[NetDev]\nName=bond0\nKind=bond\n'),
    [`${N}/20-bond0.network`]: file('[Match]\nName=bond0\n\n[Network]\nAddress=198.18.1.10/24\n'),
    [`${N}/30-ib0.network`]: file('[Match]\nName=ib0\n\n[Address]\nAddress=10.10.0.10/16\n'),
    [`${N}/99-dhcp.network`]: file('[Match]\nName=en*\n\n[Network]\nDHCP=yes\n'),
  }, HPC, (root) => {
    const files = readdirSync(path.join(root, N)).sort();
    assert.ok(files.includes('99-dhcp.network'));
    assert.not.ok(files.some((f) => f.startsWith('20-') || f.startsWith('30-')));
    assert.match(readFileSync(path.join(root, N, '10-cloner-bond0.netdev'), 'utf8'), /Kind=bond\n\n\[Bond\]\nMode=802\.3ad/);
    assert.match(readFileSync(path.join(root, N, '10-cloner-bond0.network'), 'utf8'), /Address=198\.18\.1\.13\/24\nGateway=198\.18\.1\.1\nVLAN=vlan100/);
    assert.match(readFileSync(path.join(root, N, '10-cloner-eno1.network'), 'utf8'), /MACAddress=52:54:00:00:00:31\n\n\[Network\]\nBond=bond0/);
    assert.match(readFileSync(path.join(root, N, '10-cloner-ib0.network'), 'utf8'), /Name=ib0[\s\S]*MTUBytes=65520/);
    // Only NICs are pinned by MAC (an IPoIB address does not fit a .link match).
    assert.ok(existsSync(path.join(root, N, '10-cloner-eno1.link')));
    assert.not.ok(existsSync(path.join(root, N, '10-cloner-ib0.link')));
  });
});

test('netplan (Ubuntu): golden YAML disabled, one cloner file with the renderer kept', async () => {
  await deployed({
    'usr/sbin/netplan': file('#!/bin/sh\n', 0o755),
    'etc/netplan/50-cloud-init.yaml': file('network:\n  version: 2\n  renderer: networkd\n  ethernets:\n    eno1:\n      addresses: [198.18.1.10/24]\n'),
  }, HPC, (root, r) => {
    assert.is(r.network, 'netplan');
    assert.equal(readdirSync(path.join(root, 'etc/netplan')), ['90-cloner.yaml']);
    const y = readFileSync(path.join(root, 'etc/netplan/90-cloner.yaml'), 'utf8');
    assert.match(y, /renderer: networkd\n/);
    assert.match(y, /  bonds:\n    bond0:\n      interfaces: \[eno1, eno2\]\n      parameters:\n        mode: 802\.3ad/);
    assert.match(y, /  vlans:\n    vlan100:\n      id: 100\n      link: bond0/);
  });
});

test('wicked (SUSE): golden ifcfg and ifroute disabled, the node\'s written', async () => {
  const node = applySettings(newNode('n02'), ['eth0.mac=52:54:00:00:00:02', 'eth0.ip=198.18.1.12/24', 'eth0.gateway=198.18.1.1']);
  await deployed({
    'etc/systemd/system/multi-user.target.wants/wicked.service': symlink('/usr/lib/systemd/system/wicked.service'),
    'etc/sysconfig/network/ifcfg-eth0': file("BOOTPROTO='static'\nIPADDR='198.18.1.10/24'\nSTARTMODE='auto'\n"),
    'etc/sysconfig/network/ifroute-eth0': file('default 198.18.1.10 - eth0\n'),
    'etc/sysconfig/network/ifcfg-lo': file("IPADDR=127.0.0.1/8\n"),
  }, node, (root) => {
    assert.equal(readdirSync(path.join(root, 'etc/sysconfig/network')).sort(), ['ifcfg-eth0', 'ifcfg-lo', 'ifroute-eth0']);
    assert.match(readFileSync(path.join(root, 'etc/sysconfig/network/ifcfg-eth0'), 'utf8'), /IPADDR='198\.18\.1\.12\/24'/);
    assert.is(readFileSync(path.join(root, 'etc/sysconfig/network/ifroute-eth0'), 'utf8'), 'default 198.18.1.1 - eth0\n');
  });
});

test('writers: DHCP without an address, IPv6 static, bridge ports', () => {
  const n = applySettings(newNode('x'), ['eth0.mac=52:54:00:00:00:01', 'br0.type=bridge', 'br0.ports=eth0', 'br0.ip=2001:db8::5/64', 'eth1.mac=52:54:00:00:00:02']);
  const [eth0, br0, eth1] = ['eth0', 'br0', 'eth1'].map((name) => n.interfaces.find((i) => i.name === name)!);
  assert.match(nmKeyfile(eth1, n.interfaces), /\[ipv4\]\nmethod=auto/);
  assert.match(nmKeyfile(br0, n.interfaces), /\[ipv4\]\nmethod=disabled[\s\S]*\[ipv6\]\nmethod=manual\naddress1=2001:db8::5\/64/);
  assert.match(nmKeyfile(eth0, n.interfaces), /master=br0\nslave-type=bridge/);
  assert.match(networkdFiles(eth0, n.interfaces).at(-1)!.content, /Bridge=br0/);
  assert.match(netplanFile(n.interfaces, null), /bridges:\n    br0:\n      interfaces: \[eth0\]/);
});

test.run();
