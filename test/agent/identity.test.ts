/**
 * Node identity on fixture trees, one per network format the agent writes: NetworkManager
 * keyfiles (the golden node's ethernet connection removed, a wifi one kept), ifcfg (the
 * golden ifcfg-eth0 replaced, ifcfg-lo kept), and DHCP for an interface without an
 * address; /etc/hosts with the golden name replaced; an image whose /etc/ssh is a symlink
 * out of the tree is refused, and nothing is written outside.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { applyIdentity, detectNetworkFormat, hostsFile } from '../../agent/identity.ts';
import type { NodeRecord } from '../../core/nodes/registry.ts';
import { dir, file, makeTree, symlink, withTempDir } from '../helpers/fixtures.ts';

const NODE: NodeRecord = {
  name: 'n07',
  hostname: 'n07.cluster',
  groups: [],
  netboot: 'cloner',
  interfaces: [
    { name: 'eth0', mac: '52:54:00:00:00:07', ip: '198.18.3.7/24', gateway: '198.18.3.1', dns: ['198.18.3.2', '198.18.3.3'] },
    { name: 'ib0', mac: '52:54:00:00:01:07' },
  ],
};

test('NetworkManager: keyfiles bound to each MAC; the golden ethernet connection goes, others stay', async () => {
  await withTempDir(async (root) => {
    await makeTree(root, {
      'etc/hostname': file('golden\n'),
      'etc/hosts': file('127.0.0.1\tlocalhost\n127.0.1.1\tgolden.cluster golden\n'),
      'etc/systemd/system/multi-user.target.wants/NetworkManager.service': symlink('/lib/systemd/system/NetworkManager.service'),
      'etc/NetworkManager/system-connections/Wired connection 1.nmconnection': file('[connection]\nid=Wired connection 1\ntype=ethernet\n'),
      'etc/NetworkManager/system-connections/lab-wifi.nmconnection': file('[connection]\nid=lab\ntype=wifi\n'),
      'var/lib/NetworkManager/internal-eth0.lease': file('lease'),
    });
    assert.is(detectNetworkFormat(root), 'networkmanager');
    const report = applyIdentity({ target: root, node: NODE, filesystems: null, hostKeys: null });
    assert.is(report.network, 'networkmanager');
    const dirNm = path.join(root, 'etc/NetworkManager/system-connections');
    assert.equal((await readdir(dirNm)).sort(), ['cloner-eth0.nmconnection', 'cloner-ib0.nmconnection', 'lab-wifi.nmconnection']);
    const eth0 = await readFile(path.join(dirNm, 'cloner-eth0.nmconnection'), 'utf8');
    assert.match(eth0, /\[ethernet\]\nmac-address=52:54:00:00:00:07\n/i);
    assert.match(eth0, /method=manual\naddress1=198\.18\.3\.7\/24,198\.18\.3\.1\ndns=198\.18\.3\.2;198\.18\.3\.3;/);
    assert.is((await stat(path.join(dirNm, 'cloner-eth0.nmconnection'))).mode & 0o777, 0o600, 'NetworkManager ignores keyfiles others can read');
    assert.match(await readFile(path.join(dirNm, 'cloner-ib0.nmconnection'), 'utf8'), /\[ipv4\]\nmethod=auto/);
    assert.is(await readFile(path.join(root, 'etc/hostname'), 'utf8'), 'n07\n');
    assert.is(await readFile(path.join(root, 'etc/hosts'), 'utf8'), '127.0.0.1\tlocalhost\n198.18.3.7\tn07.cluster n07\n');
    assert.not.ok(existsSync(path.join(root, 'var/lib/NetworkManager/internal-eth0.lease')));
    // The image's versions are kept as seeds for the next deploy.
    assert.is(await readFile(path.join(root, 'var/lib/cloner/image-files/etc%hostname'), 'utf8'), 'golden\n');
  });
});

test('ifcfg: the golden ifcfg-eth0 is replaced, loopback kept, DHCP without an address', async () => {
  await withTempDir(async (root) => {
    await makeTree(root, {
      'etc/sysconfig/network-scripts/ifcfg-eth0': file('DEVICE=eth0\nIPADDR=10.9.9.9\n'),
      'etc/sysconfig/network-scripts/ifcfg-lo': file('DEVICE=lo\n'),
      'etc/udev/rules.d/70-persistent-net.rules': file('SUBSYSTEM=="net", NAME="eth0"\n'),
    });
    const report = applyIdentity({ target: root, node: NODE, filesystems: [{ spec: { device: 'root', type: 'ext4', mount: '/' }, uuid: 'x', device: '/dev/sda1' }], hostKeys: null });
    assert.is(report.network, 'ifcfg');
    const scripts = path.join(root, 'etc/sysconfig/network-scripts');
    assert.equal((await readdir(scripts)).sort(), ['ifcfg-eth0', 'ifcfg-ib0', 'ifcfg-lo']);
    assert.is(await readFile(path.join(scripts, 'ifcfg-eth0'), 'utf8'), 'DEVICE=eth0\nNAME=cloner-eth0\nHWADDR=52:54:00:00:00:07\nTYPE=Ethernet\nONBOOT=yes\nBOOTPROTO=none\nIPADDR=198.18.3.7\nPREFIX=24\nNETMASK=255.255.255.0\nGATEWAY=198.18.3.1\nDNS1=198.18.3.2\nDNS2=198.18.3.3\n');
    assert.match(await readFile(path.join(scripts, 'ifcfg-ib0'), 'utf8'), /BOOTPROTO=dhcp/);
    // No systemd in this image: interface names are pinned by a udev rule instead.
    assert.not.ok(existsSync(path.join(root, 'etc/udev/rules.d/70-persistent-net.rules')));
    assert.match(await readFile(path.join(root, 'etc/udev/rules.d/70-cloner-net.rules'), 'utf8'), /ATTR\{address\}=="52:54:00:00:00:07", NAME="eth0"/);
    assert.match(await readFile(path.join(root, 'etc/fstab'), 'utf8'), /^UUID=x \/ ext4 defaults 0 1$/m);
    assert.match(await readFile(path.join(root, 'etc/machine-id'), 'utf8'), /^[0-9a-f]{32}\n$/);
  });
});

test('a symlinked /etc/ssh in the image is refused, not followed', async () => {
  await withTempDir(async (work) => {
    const root = path.join(work, 'root');
    const outside = path.join(work, 'outside');
    await makeTree(work, { 'outside/keep': file('x'), 'root/etc/hostname': file('g\n'), 'root/etc/ssh': symlink(outside) });
    await makeTree(root, { 'etc/network': dir() });
    const keys = { ssh_host_ed25519_key: Buffer.from('secret') };
    assert.throws(() => applyIdentity({ target: root, node: NODE, filesystems: null, hostKeys: keys }), /not a directory/);
    assert.equal(await readdir(outside), ['keep']);
  });
});

test('hosts: the golden cluster entry stays, loopback stays, the node is added (127.0.1.1 without an address)', () => {
  assert.is(hostsFile('127.0.0.1 localhost\n10.0.0.1 golden.example golden\n# comment\n', 'golden', 'n1', null), '127.0.0.1 localhost\n10.0.0.1 golden.example golden\n# comment\n127.0.1.1\tn1\n');
});

test.run();
