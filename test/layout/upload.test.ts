/**
 * Layouts as versioned objects in a real store: save, export, edit, upload as a new
 * version, load any version; every malformed or inconsistent upload is refused with a
 * message naming the place, and stores nothing.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { exportLayout, layoutExists, listLayouts, loadLayout, saveLayout } from '../../core/layout/store.ts';
import { parseLayout, parseSize, type Layout } from '../../core/layout/model.ts';
import { withStore } from '../helpers/store.ts';

const NODE_LAYOUT: Layout = {
  format: 'cloner-layout/1',
  disks: [
    { id: 'a', match: { transport: 'nvme' }, table: 'gpt', partitions: [{ id: 'esp', size: '512M', type: 'esp', name: 'EFI system' }, { id: 'a2', size: 'grow', type: 'raid', minSize: '10G' }] },
    { id: 'b', match: { transport: 'nvme' }, table: 'gpt', partitions: [{ id: 'esp2', size: '512M', type: 'esp' }, { id: 'b2', size: 'grow', type: 'raid' }] },
  ],
  raids: [{ id: 'md0', name: 'system', level: 1, members: ['a2', 'b2'], metadata: '1.2' }],
  volumeGroups: [{ name: 'vg0', pvs: ['md0'], lvs: [{ name: 'root', size: '20G' }, { name: 'swap', size: '4G' }, { name: 'scratch', size: 'grow' }] }],
  filesystems: [
    { device: 'esp', type: 'vfat', label: 'ESP', mount: '/boot/efi', mkfsOptions: ['-F', '32'] },
    { device: 'vg0/root', type: 'ext4', label: 'root', mount: '/', mountOptions: 'errors=remount-ro' },
    { device: 'vg0/swap', type: 'swap' },
    { device: 'vg0/scratch', type: 'xfs', mount: '/scratch' },
  ],
};

test('a layout round-trips: save, export, edit, upload as version 2, load either version', async () => {
  await withStore(async (store) => {
    assert.equal(await saveLayout(store, 'node', NODE_LAYOUT), { name: 'node', version: 1 });
    const text = await exportLayout(store, 'node');
    assert.equal(JSON.parse(text), NODE_LAYOUT);
    const edited = JSON.parse(text) as Layout;
    edited.volumeGroups![0].lvs[0].size = '40G';
    assert.equal(await saveLayout(store, 'node', JSON.stringify(edited)), { name: 'node', version: 2 });
    assert.is((await loadLayout(store, 'node')).layout.volumeGroups![0].lvs[0].size, '40G');
    assert.is((await loadLayout(store, 'node', 1)).layout.volumeGroups![0].lvs[0].size, '20G');
    assert.ok(await layoutExists(store, 'node'));
    assert.not.ok(await layoutExists(store, 'other'));
    assert.equal((await listLayouts(store)).map((l) => [l.name, l.versions]), [['node', 2]]);
    const missing = await loadLayout(store, 'node', 7).catch((e) => e);
    assert.is(missing.code, 'LAYOUT_NOT_FOUND');
    assert.match(missing.hint, /1, 2/);
  });
});

/** Each case: an edit of a good layout, and the message it must be refused with. */
const BAD: Array<[string, (l: any) => unknown, RegExp]> = [
  ['not JSON', () => '{"format": ', /not valid JSON/],
  ['unknown top-level field', (l) => ({ ...l, extra: 1 }), /^\(document\): unknown field "extra"/],
  ['wrong format', (l) => ({ ...l, format: 'cloner-layout/9' }), /^format: must be equal to constant/],
  ['bad size', (l) => (l.disks[0].partitions[0].size = '12X', l), /^disks\[0\]\.partitions\[0\]\.size: bad size "12X"/],
  ['unknown filesystem type', (l) => (l.filesystems[3].type = 'zfs', l), /^filesystems\[3\]\.type: unknown filesystem type "zfs"/],
  ['unknown table', (l) => (l.disks[0].table = 'mbr', l), /^disks\[0\]\.table: must be equal to one of the allowed values \(gpt, dos, none\)/],
  ['overlapping partitions', (l) => (l.disks[0].partitions[1] = { id: 'a2', type: 'raid', size: '1G', start: 100 * 1024 * 1024 }, l), /^disks\[0\]\.partitions\[1\]\.start: partition overlaps the one before it/],
  ['two grow partitions', (l) => (l.disks[0].partitions[0].size = 'grow', l), /^disks\[0\]\.partitions: only one partition per disk may "grow"/],
  ['five primaries on dos', (l) => ((l.disks[0] = { id: 'a', table: 'dos', partitions: ['p1', 'p2', 'p3', 'p4', 'a2'].map((id) => ({ id, size: '1G', type: id === 'a2' ? 'raid' : 'linux' })) }), l.filesystems.shift(), l), /^disks\[0\]\.partitions: a dos table holds 4 primary partitions, this disk has 5 \(put the others in an extended partition/],
  ['logical without extended', (l) => ((l.disks[0] = { id: 'a', table: 'dos', partitions: [{ id: 'p1', size: '1G', type: 'linux' }, { id: 'a2', size: '1G', type: 'raid', logical: true }] }), l.filesystems.shift(), l), /^disks\[0\]\.partitions\[1\]\.logical: a logical partition must follow an extended partition/],
  ['logical outside its extended', (l) => ((l.disks[0] = { id: 'a', table: 'dos', partitions: [{ id: 'ext', size: '1G', type: 'extended' }, { id: 'a2', size: '2G', type: 'raid', logical: true }] }), l.filesystems.shift(), l), /^disks\[0\]\.partitions\[1\]: logical partition ends at \d+, beyond its extended partition/],
  ['logical numbered out of order', (l) => ((l.disks[0] = { id: 'a', table: 'dos', partitions: [{ id: 'ext', size: 'grow', type: '5' }, { id: 'a2', size: '2G', type: 'raid', logical: true, number: 6 }] }), l.filesystems.shift(), l), /^disks\[0\]\.partitions\[1\]\.number: logical partitions are numbered 5, 6, 7\.\.\. in disk order; this one is number 5/],
  ['a filesystem on an extended partition', (l) => ((l.disks[0] = { id: 'a', table: 'dos', partitions: [{ id: 'esp', size: '3G', type: 'extended' }, { id: 'a2', size: '2G', type: 'raid', logical: true }] }), l), /^filesystems\[0\]\.device: "esp" is an extended partition/],
  ['extended on gpt', (l) => (l.disks[0].partitions[0].type = 'extended', l), /^disks\[0\]\.partitions\[0\]\.type: type "extended" exists only on dos tables/],
  ['a partition number twice', (l) => (l.disks[0].partitions[1].number = 1, l), /^disks\[0\]\.partitions\[1\]\.number: partition number 1 is also used by partitions\[0\]/],
  ['a dos partition number 5 that is not logical', (l) => ((l.disks[0].table = 'dos'), (l.disks[0].partitions = [{ id: 'esp', size: '512M', type: 'ef', number: 5 }, { id: 'a2', size: 'grow', type: 'fd' }]), l), /^disks\[0\]\.partitions\[0\]\.number: a dos primary partition number is 1 to 4, not 5/],
  ['an unaligned start inside the previous partition', (l) => (l.disks[0].partitions[1].start = 512 * 1024 * 1024 + 1024 * 1024 - 512, l), /^disks\[0\]\.partitions\[1\]\.start: partition overlaps the one before it \(starts at 537918976, the previous one ends at 537919488\)/],
  ['a start off the sector', (l) => (l.disks[0].partitions[1].start = 600 * 1024 * 1024 + 100, l), /^disks\[0\]\.partitions\[1\]\.start: a start must be a multiple of 512 bytes/],
  ['partitions on a whole-disk filesystem', (l) => (l.disks[1].table = 'none', l), /^disks\[1\]\.partitions: a disk with table "none" holds one filesystem on the whole disk and no partitions/],
  ['a minimum over the size', (l) => (l.disks[0].partitions[0].minSize = '1G', l), /^disks\[0\]\.partitions\[0\]\.minSize: the minimum is larger than the size/],
  ['xfs on a partition mkfs.xfs refuses', (l) => ((l.disks[0].partitions[0].size = '200M'), (l.filesystems[0].type = 'xfs'), delete l.filesystems[0].mkfsOptions, l), /^filesystems\[0\]\.device: mkfs\.xfs needs at least 300\.00 MiB, esp is 200\.00 MiB/],
  ['btrfs on a grow LV whose minimum mkfs.btrfs refuses', (l) => ((l.volumeGroups[0].lvs[2].minSize = '64M'), (l.filesystems[3].type = 'btrfs'), l), /^filesystems\[3\]\.device: mkfs\.btrfs needs at least 110\.00 MiB, vg0\/scratch is at least 64\.00 MiB/],
  ['MBR type 0', (l) => ((l.disks[0].table = 'dos'), (l.disks[0].partitions = [{ id: 'esp', size: '512M', type: '0' }, { id: 'a2', size: 'grow', type: 'fd' }]), l), /^disks\[0\]\.partitions\[0\]\.type: MBR type 0 marks an empty slot/],
  ['two grow LVs', (l) => (l.volumeGroups[0].lvs[0].size = 'grow', l), /^volumeGroups\[0\]\.lvs: only one logical volume per group may "grow"/],
  ['dangling reference', (l) => (l.filesystems[1].device = 'vg0/nope', l), /^filesystems\[1\]\.device: refers to "vg0\/nope", which no partition, array or logical volume defines/],
  ['device used twice', (l) => (l.filesystems[0].device = 'a2', l), /^filesystems\[0\]\.device: "a2" is already used by RAID md0/],
  ['mount point without a root', (l) => (l.filesystems[1].mount = '/srv', l), /^filesystems: no filesystem is mounted at "\/"/],
  ['duplicate mount point', (l) => (l.filesystems[3].mount = '/', l), /^filesystems\[3\]\.mount: mount point "\/" is also used by filesystems\[1\]/],
  ['mount point not normal', (l) => (l.filesystems[3].mount = '/scratch/../etc', l), /^filesystems\[3\]\.mount: mount point "\/scratch\/\.\.\/etc" is not a normal absolute path/],
  ['swap with a mount point', (l) => (l.filesystems[2].mount = '/swap', l), /^filesystems\[2\]\.mount: swap is not mounted/],
  ['label too long for vfat', (l) => (l.filesystems[0].label = 'EFISYSTEMPART', l), /^filesystems\[0\]\.label: a vfat label holds 11 characters/],
  ['RAID1 with one member', (l) => (l.raids[0].members = ['a2'], l.disks[1].partitions.pop(), l), /^raids\[0\]\.members: RAID1 needs at least 2 members, has 1/],
  ['unknown partition type', (l) => (l.disks[0].partitions[0].type = 'windows', l), /^disks\[0\]\.partitions\[0\]\.type: unknown partition type "windows"/],
  ['GUID on a dos table', (l) => (l.disks[0].table = 'dos', l.disks[0].partitions[0].type = 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B', delete l.disks[0].partitions[0].name, l), /a dos table takes an MBR type byte/],
  ['mkfs option that is a path', (l) => (l.filesystems[1].mkfsOptions = ['/dev/sda'], l), /^filesystems\[1\]\.mkfsOptions\[0\]: must match pattern/],
  ['shell characters in mount options', (l) => (l.filesystems[1].mountOptions = 'defaults;reboot', l), /^filesystems\[1\]\.mountOptions: must match pattern/],
  ['duplicate ids', (l) => (l.disks[1].partitions[0].id = 'esp', l), /^disks\[1\]\.partitions\[0\]: id "esp" is already used at disks\[0\]\.partitions\[0\]/],
  ['vfat UUID in ext4 form', (l) => (l.filesystems[0].uuid = '3b248249-be93-491e-925b-dbae5a1887ac', l), /^filesystems\[0\]\.uuid: a vfat volume id looks like ABCD-1234/],
];

test('malformed and inconsistent uploads are refused with the place named, and store nothing', async () => {
  await withStore(async (store) => {
    await saveLayout(store, 'node', NODE_LAYOUT);
    for (const [what, edit, message] of BAD) {
      const doc = edit(structuredClone(NODE_LAYOUT));
      const text = typeof doc === 'string' ? doc : JSON.stringify(doc);
      const err = await saveLayout(store, 'node', text).then(() => null, (e) => e);
      assert.ok(err, `${what}: accepted`);
      assert.is(err.code, 'LAYOUT_INVALID', `${what}: ${err.message}`);
      assert.match(err.message, message, `${what}: ${err.message}`);
      assert.ok(err.hint.length > 0);
    }
    assert.equal((await listLayouts(store)).map((l) => [l.name, l.versions]), [['node', 1]]);
    assert.equal((await loadLayout(store, 'node')).layout, NODE_LAYOUT);
    const badName = await saveLayout(store, '../etc', NODE_LAYOUT).catch((e) => e);
    assert.is(badName.code, 'NAME_INVALID');
  });
});

test('sizes parse in binary units', () => {
  assert.is(parseSize('512M'), 512 * 1024 ** 2);
  assert.is(parseSize('1.5G'), 1.5 * 1024 ** 3);
  assert.is(parseSize('20GiB'), 20 * 1024 ** 3);
  assert.is(parseSize(4096), 4096);
  assert.throws(() => parseSize('5 G'), (e: Error) => /bad size/.test(e.message));
  assert.equal(parseLayout(JSON.stringify(NODE_LAYOUT)), NODE_LAYOUT);
});

test.run();
