/**
 * fstab and /etc/hosts of a node are the golden's with only its own entries changed (issue 13,
 * cases 15 and 16): every non-layout line and comment of fstab kept, each layout filesystem's
 * source rewritten in the form the golden used; in hosts the golden's name tokens on loopback
 * lines become the node's, localhost and the cluster's list stay.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { hostsFile, mergeFstab, type NodeFilesystem } from '../../agent/identity.ts';

const G_ROOT = '11111111-1111-4111-8111-111111111111';
const G_SWAP = '22222222-2222-4222-8222-222222222222';
const G_BOOT = '33333333-3333-4333-8333-333333333333';
const FS: NodeFilesystem[] = [
  { spec: { device: 'root', type: 'ext4', mount: '/', label: 'groot', uuid: G_ROOT }, uuid: 'aaaaaaaa-0000-4000-8000-00000000000a', device: '/dev/sda3', partuuid: 'p-root' },
  { spec: { device: 'swap', type: 'swap', uuid: G_SWAP }, uuid: 'bbbbbbbb-0000-4000-8000-00000000000b', device: '/dev/sda2' },
  { spec: { device: 'boot', type: 'ext4', mount: '/boot', uuid: G_BOOT }, uuid: 'cccccccc-0000-4000-8000-00000000000c', device: '/dev/sda1', partuuid: 'p-boot' },
  { spec: { device: 'data', type: 'xfs', mount: '/data', mountOptions: 'noatime' }, uuid: 'dddddddd-0000-4000-8000-00000000000d', device: '/dev/sdb1' },
];

const KEPT = [
  '# golden01: local disks and the cluster filesystems',
  'nfs01.cluster.example:/export/home /home nfs4 rw,hard,_netdev 0 0',
  'mgs@o2ib:/lustre /lustre lustre defaults,_netdev,flock 0 0',
  'tmpfs /dev/shm tmpfs defaults,noexec 0 0',
  '/srv/scratch /scratch none bind 0 0',
  '/swapfile none swap sw 0 0',
  'proc /proc proc hidepid=2 0 0',
  '',
];

test('fstab by UUID: the layout entries get the node UUIDs, options kept; every other line kept; missing layout filesystems added', () => {
  const golden = [`UUID=${G_ROOT}  /  ext4  defaults,noatime  0 1`, `UUID="${G_SWAP}" none swap sw 0 0`, `UUID=${G_BOOT} /boot ext4 nodev 0 2`, ...KEPT].join('\n');
  const r = mergeFstab(`${golden}\n`, FS);
  const lines = r.text.split('\n');
  assert.is(lines[0], 'UUID=aaaaaaaa-0000-4000-8000-00000000000a  /  ext4  defaults,noatime  0 1');
  assert.is(lines[1], 'UUID=bbbbbbbb-0000-4000-8000-00000000000b none swap sw 0 0');
  assert.is(lines[2], 'UUID=cccccccc-0000-4000-8000-00000000000c /boot ext4 nodev 0 2');
  assert.equal(lines.slice(3, 3 + KEPT.length), KEPT);
  assert.match(r.text, /^UUID=dddddddd-0000-4000-8000-00000000000d \/data xfs noatime 0 [02]$/m);
  assert.ok(r.notes.some((n) => n.startsWith(`/: UUID=${G_ROOT} -> UUID=aaaa`)), r.notes.join('\n'));
  assert.equal(r.warnings, []);
});

test('fstab in the other forms: LABEL kept where the node has it, PARTUUID and /dev paths the node\'s, by-uuid links the node\'s', () => {
  const golden = ['LABEL=groot / ext4 defaults 0 1', '/dev/vda2 none swap sw 0 0', 'PARTUUID=0a0b0c0d-01 /boot ext4 defaults 0 2', `/dev/disk/by-uuid/${G_ROOT.toUpperCase()} /mnt/alias ext4 bind 0 0`, 'LABEL=gdata /data xfs defaults 0 2', 'UUID=99999999-9999-4999-8999-999999999999 /extra ext4 nofail 0 2'].join('\n');
  const r = mergeFstab(golden, FS);
  const lines = r.text.split('\n');
  assert.is(lines[0], 'LABEL=groot / ext4 defaults 0 1');
  assert.is(lines[1], '/dev/sda2 none swap sw 0 0');
  assert.is(lines[2], 'PARTUUID=p-boot /boot ext4 defaults 0 2');
  // The golden's label for /data is not the node's filesystem's (the layout gives none): by UUID.
  assert.is(lines[4], 'UUID=dddddddd-0000-4000-8000-00000000000d /data xfs defaults 0 2');
  assert.is(lines[5], 'UUID=99999999-9999-4999-8999-999999999999 /extra ext4 nofail 0 2');
  assert.ok(r.warnings.some((w) => /99999999.*\/extra.*not a filesystem of the layout/.test(w)), r.warnings.join('\n'));
  // The root was already claimed by LABEL=groot: the bind alias of it is not a second root.
  assert.is(lines[3], `/dev/disk/by-uuid/${G_ROOT.toUpperCase()} /mnt/alias ext4 bind 0 0`);
});

test('fstab: no golden fstab gives the layout\'s', () => {
  const r = mergeFstab(null, FS);
  assert.match(r.text, /^UUID=aaaaaaaa-0000-4000-8000-00000000000a \/ ext4 defaults 0 1$/m);
  assert.match(r.text, /^UUID=bbbbbbbb-0000-4000-8000-00000000000b none swap sw 0 0$/m);
});

test('hosts: RHEL loopback lines naming the golden get the node, localhost and the cluster list stay', () => {
  const golden = '127.0.0.1   localhost localhost.localdomain golden01\n::1         localhost localhost6 golden01 golden01.cluster.example\n198.18.1.10 golden01.cluster.example golden01\n198.18.1.20 nfs01.cluster.example nfs01\n';
  assert.is(hostsFile(golden, 'golden01', 'node02', '198.18.1.12'), '127.0.0.1   localhost localhost.localdomain node02\n::1         localhost localhost6 node02 node02.cluster.example\n198.18.1.10 golden01.cluster.example golden01\n198.18.1.20 nfs01.cluster.example nfs01\n');
});

test('hosts: Debian 127.0.1.1 gets the node\'s address (or stays without one); an FQDN hostname names itself; the node listed already is not added twice', () => {
  const golden = '127.0.0.1\tlocalhost\n127.0.1.1\tgolden01.lab golden01\n\n# The following lines are desirable for IPv6 capable hosts\n::1     localhost ip6-localhost ip6-loopback\n';
  assert.is(hostsFile(golden, 'golden01.lab', 'n7.cluster', '10.0.0.7'), '127.0.0.1\tlocalhost\n10.0.0.7\tn7.cluster n7\n\n# The following lines are desirable for IPv6 capable hosts\n::1     localhost ip6-localhost ip6-loopback\n');
  assert.is(hostsFile(golden, 'golden01', 'n7', null), '127.0.0.1\tlocalhost\n127.0.1.1\tn7.lab n7\n\n# The following lines are desirable for IPv6 capable hosts\n::1     localhost ip6-localhost ip6-loopback\n');
  assert.is(hostsFile('127.0.0.1 localhost\n10.0.0.7 n7.cluster n7\n', 'golden01', 'n7', '10.0.0.7'), '127.0.0.1 localhost\n10.0.0.7 n7.cluster n7\n');
});

test.run();
