/**
 * Issue 20, golden device identifiers beyond filesystem UUIDs: PARTUUIDs (fstab, root=, resume=),
 * md array UUIDs in rd.md.uuid=, LVM's devices file and PVIDs, /dev/disk/by-id and by-path names
 * (lvm.conf filter, crypttab, GRUB defaults) rewritten for the node's devices, the ambiguous ones
 * reported; the node's PARTUUIDs and by-id links probed on a real loop disk; files outside /etc
 * naming the golden; a failing initramfs tool fails the boot loader phase with its output.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { copyFileSync, existsSync, mkdirSync, readFileSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { applyIdentity, type NodeDisk, type NodeFilesystem } from '../../agent/identity.ts';
import { installBootloader, InitramfsError } from '../../agent/boot.ts';
import { nodeDisks, withPartuuids } from '../../agent/identity/node-tools.ts';
import { applySettings, newNode } from '../../core/nodes/registry.ts';
import type { Layout } from '../../core/layout/model.ts';
import { file, isRoot, makeTree, withTempDir } from '../helpers/fixtures.ts';
import { loopUnavailable, sh, withLoopDisks } from '../helpers/loop.ts';

const G_BOOT_PART = '0d5c5e1a-1111-4c3b-9d1e-0000000000b1';
const G_SWAP_PART = '0d5c5e1a-2222-4c3b-9d1e-0000000000b2';
const N_BOOT_PART = 'aaaa0000-1111-4000-8000-0000000000b1';
const N_SWAP_PART = 'aaaa0000-2222-4000-8000-0000000000b2';
const G_MD = '6f3c2a1b:9d8e7f60:1a2b3c4d:5e6f7081';
const N_MD = '0a0b0c0d:11223344:55667788:99aabbcc';
const G_PVID = 'Gq1Xq2Xq3Xq4Xq5Xq6Xq7Xq8Xq9Xq0Xq';
const N_PV = 'Nn1Aa2-Bb3C-c4Dd-5Ee6-Ff7G-g8Hh-9Ii0Jk';
const FS: NodeFilesystem[] = [
  { spec: { device: 'boot', type: 'ext4', mount: '/boot', uuid: '11111111-1111-4111-8111-111111111111' }, uuid: 'aaaaaaaa-0000-4000-8000-00000000000a', device: '/dev/sda1', partuuid: N_BOOT_PART },
  { spec: { device: 'swap', type: 'swap', uuid: '22222222-2222-4222-8222-222222222222' }, uuid: 'bbbbbbbb-0000-4000-8000-00000000000b', device: '/dev/sda2', partuuid: N_SWAP_PART },
  { spec: { device: 'root', type: 'ext4', mount: '/', uuid: '33333333-3333-4333-8333-333333333333' }, uuid: 'cccccccc-0000-4000-8000-00000000000c', device: '/dev/vg0/root' },
];
const ONE_DISK: NodeDisk[] = [{ id: 'a', goldenSerial: 'GOLDENSER1', device: '/dev/sda', links: ['/dev/disk/by-id/ata-NODEDISK_NODESER9', '/dev/disk/by-id/wwn-0x5000c500aaaa0001', '/dev/disk/by-path/pci-0000:00:17.0-ata-2'] }];
const NODE = applySettings(newNode('node31'), ['hostname=node31']);
const dashed = (id: string) => `${id.slice(0, 6)}-${[6, 10, 14, 18, 22].map((i) => id.slice(i, i + 4)).join('-')}-${id.slice(26)}`;
const read = (root: string, rel: string) => readFileSync(path.join(root, rel), 'utf8');

test('PARTUUIDs, rd.md.uuid=, LVM\'s devices file and by-id/by-path names become the node\'s', async () => {
  await withTempDir(async (root) => {
    await makeTree(root, {
      'etc/hostname': file('golden01\n'),
      'etc/fstab': file(`PARTUUID=${G_BOOT_PART} /boot ext4 defaults 0 2\nPARTUUID=${G_SWAP_PART} none swap sw 0 0\n/dev/vg0/root / ext4 defaults 0 1\n`),
      'etc/default/grub': file(`GRUB_CMDLINE_LINUX="rd.md.uuid=${G_MD} rd.lvm.lv=vg0/root resume=PARTUUID=${G_SWAP_PART}"\n`),
      'etc/kernel/cmdline': file(`root=/dev/vg0/root rd.md.uuid=${G_MD} resume=/dev/disk/by-partuuid/${G_SWAP_PART}\n`),
      'etc/mdadm/mdadm.conf': file(`ARRAY /dev/md/pv metadata=1.2 UUID=${G_MD} name=golden01:pv\n`),
      'etc/lvm/lvm.conf': file(`devices {\n  filter = [ "a|^/dev/disk/by-id/ata-GOLDENDISK_GOLDENSER1-part3$|", "a|^/dev/disk/by-id/md-uuid-${G_MD}$|", "a|/dev/disk/by-id/lvm-pv-uuid-${dashed(G_PVID)}|", "r|.*|" ]\n}\n`),
      'etc/lvm/devices/system.devices': file(`# LVM uses devices listed in this file.\nVERSION=1.1.7\nIDTYPE=md_uuid IDNAME=${G_MD.replace(/:/g, '')} DEVNAME=/dev/md127 PVID=${G_PVID}\n`),
      'etc/crypttab': file('cdata /dev/disk/by-id/wwn-0x5000c500gold0001-part4 none luks\n'),
      'etc/initramfs-tools/conf.d/extra': file('# the disk by its slot\nBOOT_DISK=/dev/disk/by-path/pci-0000:00:1f.2-ata-1\n'),
    });
    const scan = `ARRAY /dev/md/pv metadata=1.2 UUID=${N_MD} name=node31:pv\n`;
    const r = applyIdentity({ target: root, node: NODE, filesystems: FS, hostKeys: null, mdadmScan: scan, pvs: [{ device: '/dev/md127', uuid: N_PV, vg: 'vg0' }], disks: ONE_DISK });
    assert.ok(r.bootChainChanged);
    assert.is(read(root, 'etc/fstab'), `PARTUUID=${N_BOOT_PART} /boot ext4 defaults 0 2\nPARTUUID=${N_SWAP_PART} none swap sw 0 0\n/dev/vg0/root / ext4 defaults 0 1\n`);
    assert.is(read(root, 'etc/default/grub'), `GRUB_CMDLINE_LINUX="rd.md.uuid=${N_MD} rd.lvm.lv=vg0/root resume=PARTUUID=${N_SWAP_PART}"\n`);
    assert.is(read(root, 'etc/kernel/cmdline'), `root=/dev/vg0/root rd.md.uuid=${N_MD} resume=/dev/disk/by-partuuid/${N_SWAP_PART}\n`);
    assert.is(read(root, 'etc/lvm/lvm.conf'), `devices {\n  filter = [ "a|^/dev/disk/by-id/ata-NODEDISK_NODESER9-part3$|", "a|^/dev/disk/by-id/md-uuid-${N_MD}$|", "a|/dev/disk/by-id/lvm-pv-uuid-${N_PV}|", "r|.*|" ]\n}\n`);
    assert.is(read(root, 'etc/crypttab'), 'cdata /dev/disk/by-id/wwn-0x5000c500aaaa0001-part4 none luks\n');
    assert.is(read(root, 'etc/initramfs-tools/conf.d/extra'), '# the disk by its slot\nBOOT_DISK=/dev/disk/by-path/pci-0000:00:17.0-ata-2\n');
    const devices = read(root, 'etc/lvm/devices/system.devices');
    assert.match(devices, /^VERSION=1\.1\.7$/m);
    assert.match(devices, new RegExp(`^IDTYPE=devname IDNAME=/dev/md127 DEVNAME=/dev/md127 PVID=${N_PV.replace(/-/g, '')}$`, 'm'));
    assert.not.match(devices, new RegExp(G_PVID));
    assert.not.ok(r.warnings.some((w) => /names devices this node does not have/.test(w)), r.warnings.join('\n'));
    assert.ok(r.changes.some((c) => c.file === '/etc/lvm/devices/system.devices' && /the golden's 1 entries replaced/.test(c.change)), JSON.stringify(r.changes));
  });
});

test('ambiguous golden ids are reported, never silently kept: an unknown serial and a by-path name on two disks, an unpaired array, a golden PVID', async () => {
  await withTempDir(async (root) => {
    const twoDisks: NodeDisk[] = [{ ...ONE_DISK[0] }, { id: 'b', goldenSerial: 'GOLDENSER2', device: '/dev/sdb', links: ['/dev/disk/by-id/ata-NODEDISK_NODESER8'] }];
    await makeTree(root, {
      'etc/hostname': file('golden01\n'),
      'etc/fstab': file('/dev/vg0/root / ext4 defaults 0 1\n'),
      'etc/default/grub': file(`GRUB_CMDLINE_LINUX="rd.md.uuid=${G_MD} rd.md.uuid=11111111:22222222:33333333:44444444"\n`),
      'etc/mdadm/mdadm.conf': file(`ARRAY /dev/md/a metadata=1.2 UUID=${G_MD} name=golden01:a\nARRAY /dev/md/b metadata=1.2 UUID=11111111:22222222:33333333:44444444 name=golden01:b\n`),
      'etc/crypttab': file('c1 /dev/disk/by-id/ata-GOLDENDISK_GOLDENSER2-part2 none luks\nc2 /dev/disk/by-id/ata-OTHER_UNKNOWN-part1 none luks\nc3 /dev/disk/by-path/pci-0000:00:1f.2-ata-1-part3 none luks\n'),
      'etc/lvm/lvm.conf': file(`devices { filter = [ "a|/dev/disk/by-id/lvm-pv-uuid-${G_PVID}|" ] }\n`),
      'etc/lvm/devices/system.devices': file(`VERSION=1.1.2\nIDTYPE=devname IDNAME=/dev/sda3 DEVNAME=/dev/sda3 PVID=${G_PVID}\nIDTYPE=devname IDNAME=/dev/sdb3 DEVNAME=/dev/sdb3 PVID=Zq1Xq2Xq3Xq4Xq5Xq6Xq7Xq8Xq9Xq0Xq\n`),
    });
    const scan = `ARRAY /dev/md/a metadata=1.2 UUID=${N_MD} name=node31:a\n`;
    const pvs = [{ device: '/dev/sda3', uuid: N_PV, vg: 'vg0' }, { device: '/dev/sdb3', uuid: 'Mm1Aa2-Bb3C-c4Dd-5Ee6-Ff7G-g8Hh-9Ii0Jk', vg: 'vg0' }];
    const r = applyIdentity({ target: root, node: NODE, filesystems: FS.slice(2), hostKeys: null, mdadmScan: scan, pvs, disks: twoDisks });
    const all = r.warnings.join('\n');
    // The paired ones are rewritten: array a by name, disk b by its serial.
    assert.match(read(root, 'etc/default/grub'), `rd.md.uuid=${N_MD} rd.md.uuid=11111111:22222222:33333333:44444444`);
    assert.match(read(root, 'etc/crypttab'), 'c1 /dev/disk/by-id/ata-NODEDISK_NODESER8-part2 ');
    assert.match(all, /\/etc\/default\/grub names devices this node does not have: rd\.md\.uuid=11111111:22222222:33333333:44444444 \(no array of the node pairs with it\)/);
    assert.match(all, /\/etc\/crypttab names devices this node does not have: .*ata-OTHER_UNKNOWN-part1 \(no layout disk has the serial it names\).*pci-0000:00:1f\.2-ata-1-part3 \(a by-path name maps only with a single-disk layout\)/);
    assert.match(all, /\/etc\/lvm\/lvm\.conf names devices this node does not have: .*lvm-pv-uuid-/);
    // Two PVs each side in no defined order: the devices file is the node's, its PVIDs not guessed in lvm.conf.
    assert.match(read(root, 'etc/lvm/devices/system.devices'), /PVID=Nn1Aa2Bb3Cc4Dd5Ee6Ff7Gg8Hh9Ii0Jk\n.*PVID=Mm1Aa2Bb3Cc4Dd5Ee6Ff7Gg8Hh9Ii0Jk\n/);
  });
});

test('on a real loop disk: the node\'s PARTUUIDs from blkid and its by-id names from the links pointing at it', async () => {
  const why = loopUnavailable();
  if (why) return console.log(`skipped (returned early): ${why}`);
  await withLoopDisks(['64M'], async ([disk], dir) => {
    sh(['sfdisk', '--quiet', disk], 'label: gpt\nsize=16MiB, type=linux\ntype=swap\n');
    sh(['partx', '-u', disk]);
    sh(['mkfs.ext4', '-q', `${disk}p1`]);
    sh(['mkswap', `${disk}p2`]);
    const want = sh(['sfdisk', '--part-uuid', disk, '1']).trim().toLowerCase();
    const got = await withPartuuids([{ spec: { device: 'p1', type: 'ext4', mount: '/boot' }, uuid: 'x', device: `${disk}p1` }]);
    assert.is(got![0].partuuid?.toLowerCase(), want);
    const links = path.join(dir, 'disk');
    mkdirSync(path.join(links, 'by-id'), { recursive: true });
    mkdirSync(path.join(links, 'by-path'), { recursive: true });
    symlinkSync(disk, path.join(links, 'by-id/ata-NODEDISK_NODESER9'));
    symlinkSync(`${disk}p1`, path.join(links, 'by-id/ata-NODEDISK_NODESER9-part1'));
    symlinkSync('/dev/null', path.join(links, 'by-id/ata-SOMETHING_ELSE'));
    symlinkSync(disk, path.join(links, 'by-path/pci-0000:00:17.0-ata-2'));
    const layout = { format: 'cloner-layout/1', disks: [{ id: 'a', table: 'gpt', partitions: [], captured: { name: 'sda', serial: 'GOLDENSER1' } }] } as Layout;
    const disks = nodeDisks(layout, { a: disk }, links);
    assert.equal(disks, [{ id: 'a', goldenSerial: 'GOLDENSER1', device: disk, links: ['/dev/disk/by-id/ata-NODEDISK_NODESER9', '/dev/disk/by-path/pci-0000:00:17.0-ata-2'] }]);
  });
});

test('outside /etc: a name file gets the node\'s name, a crontab and /opt config naming the golden are reported; bounded to the documented places', async () => {
  await withTempDir(async (root) => {
    const gid = '0123456789abcdef0123456789abcdef';
    await makeTree(root, {
      'etc/hostname': file('golden01\n'),
      'etc/machine-id': file(`${gid}\n`),
      'opt/app/etc/hostname': file('golden01.cluster.example\n'),
      'opt/app/etc/node-id': file(`${gid}\n`),
      'opt/app/etc/app.ini': file('[server]\nbind = golden01\n'),
      'var/spool/cron/crontabs/root': file('0 * * * * rsync -a golden01:/data /data\n'),
      'usr/local/etc/blob.bin': file(Buffer.from('golden01\0binary')),
      'home/user/notes.txt': file('golden01 is not scanned here\n'),
    });
    const r = applyIdentity({ target: root, node: NODE, filesystems: null, hostKeys: null });
    assert.is(read(root, 'opt/app/etc/hostname'), 'node31.cluster.example\n');
    assert.is(read(root, 'opt/app/etc/node-id'), read(root, 'etc/machine-id'));
    assert.is(read(root, 'opt/app/etc/app.ini'), '[server]\nbind = golden01\n');
    const w = r.warnings.find((x) => /still name the golden's hostname/.test(x)) ?? '';
    assert.match(w, '/opt/app/etc/app.ini');
    assert.match(w, '/var/spool/cron/crontabs/root');
    assert.not.match(w, /blob\.bin|notes\.txt|opt\/app\/etc\/hostname/);
  });
});

test('a failing initramfs tool fails the boot loader phase with the tool, its exit status and output; GRUB is not installed', async () => {
  if (!isRoot) return console.log('skipped (returned early): chroot needs root');
  await withTempDir(async (root) => {
    for (const f of ['/bin/sh', '/lib/x86_64-linux-gnu/libc.so.6', '/lib64/ld-linux-x86-64.so.2']) {
      mkdirSync(path.join(root, path.dirname(f)), { recursive: true });
      copyFileSync(f, path.join(root, f));
    }
    await makeTree(root, {
      'usr/sbin/update-initramfs': file('#!/bin/sh\necho "update-initramfs: Generating /boot/initrd.img-6.1.0-18-amd64"\necho "E: mdadm: no arrays found in config file" >&2\nexit 1\n', 0o755),
      'usr/sbin/grub-install': file('#!/bin/sh\n: > /grub-install-ran\n', 0o755),
    });
    const layout = { format: 'cloner-layout/1', disks: [{ id: 'a', table: 'gpt', partitions: [] }] } as Layout;
    const o = { target: root, layout, applied: null, esp: null, label: 'cloner t', disks: ['/dev/null'], log: () => {} };
    const err = await installBootloader({ ...o, initramfs: true }).then(() => null, (e: Error) => e);
    assert.instance(err, InitramfsError);
    assert.match(err!.message, "the image's initramfs tool failed (/usr/sbin/update-initramfs -u -k all, exit 1): E: mdadm: no arrays found in config file");
    assert.not.ok(existsSync(path.join(root, 'grub-install-ran')));
    // No golden device reference changed: the image's initramfs is kept, the tool not run.
    const warnings = await installBootloader({ ...o, initramfs: false });
    assert.ok(warnings.some((w) => /no GRUB BIOS modules/.test(w)), warnings.join('\n'));
  });
});

test.run();
