/**
 * Hostile layouts (sec-09): a layout is stored once and applied on every node, so each field
 * must be what the tool it reaches accepts. A mount point with a newline wrote extra lines
 * into every node's fstab; VG/LV names "..", mounts over /proc, mkfs options that read a
 * directory of the boot environment into the new file system, and a disk selector glob
 * that backtracked for minutes were all stored. Each is refused here by parseLayout (which
 * disklayout-upload and every deploy run), with the place named.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fstabFor } from '../../core/layout/apply.ts';
import { globMatch, parseGlob } from '../../core/layout/glob.ts';
import { parseLayout, type Layout } from '../../core/layout/model.ts';

const GOOD: Layout = {
  format: 'cloner-layout/1',
  disks: [{ id: 'd', match: { model: '*SSD*' }, table: 'gpt', partitions: [{ id: 'esp', size: '512M', type: 'esp' }, { id: 'r', size: '4G', type: 'linux' }, { id: 'p', size: 'grow', type: 'lvm' }] }],
  volumeGroups: [{ name: 'vg0', pvs: ['p'], lvs: [{ name: 'srv', size: '1G' }] }],
  filesystems: [
    { device: 'esp', type: 'vfat', mount: '/boot/efi', mkfsOptions: ['-F', '32'] },
    { device: 'r', type: 'ext4', mount: '/', mkfsOptions: ['-b', '4096', '-O', '^metadata_csum,64bit', '-E', 'stride=16,lazy_itable_init=0'] },
    { device: 'vg0/srv', type: 'xfs', mount: '/srv', mkfsOptions: ['-m', 'reflink=1', '-d', 'agcount=4'] },
  ],
};

const refuse: Array<[string, (l: any) => void, RegExp]> = [
  ['a mount point with a newline (fstab injection)', (l) => (l.filesystems[2].mount = '/srv\n/dev/sdz9 /root/.ssh ext4 defaults 0 0\n#'), /^filesystems\[2\]\.mount: mount point .* not an absolute path of letters/],
  ['a mount point with a blank', (l) => (l.filesystems[2].mount = '/srv data'), /^filesystems\[2\]\.mount: /],
  ['a mount point with a tab', (l) => (l.filesystems[2].mount = '/srv\tx'), /^filesystems\[2\]\.mount: /],
  ['a mount point with a backslash', (l) => (l.filesystems[2].mount = '/srv\\040x'), /^filesystems\[2\]\.mount: /],
  ['a mount at /proc', (l) => (l.filesystems[2].mount = '/proc'), /^filesystems\[2\]\.mount: mount point "\/proc" is inside \/proc, which the kernel provides/],
  ['a mount under /sys', (l) => (l.filesystems[2].mount = '/sys/firmware'), /inside \/sys/],
  ['a mount at /dev/shm', (l) => (l.filesystems[2].mount = '/dev/shm'), /inside \/dev/],
  ['a mount at /run', (l) => (l.filesystems[2].mount = '/run'), /inside \/run/],
  ['a mount with a . component', (l) => (l.filesystems[2].mount = '/srv/./x'), /not a normal absolute path/],
  ['a VG named ..', (l) => ((l.volumeGroups[0].name = '..'), (l.filesystems[2].device = '../srv')), /^volumeGroups\[0\]\.name: "\.\." is not a valid VG name/],
  ['a VG named .', (l) => ((l.volumeGroups[0].name = '.'), (l.filesystems[2].device = './srv')), /^volumeGroups\[0\]\.name: "\." is not a valid VG name/],
  ['a VG named after /dev/mapper', (l) => ((l.volumeGroups[0].name = 'mapper'), (l.filesystems[2].device = 'mapper/srv')), /collide with \/dev\/mapper/],
  ['an LV named ..', (l) => ((l.volumeGroups[0].lvs[0].name = '..'), (l.filesystems[2].device = 'vg0/..')), /^volumeGroups\[0\]\.lvs\[0\]\.name: "\.\." is not a valid LV name/],
  ['an LV with a reserved suffix', (l) => ((l.volumeGroups[0].lvs[0].name = 'data_tmeta'), (l.filesystems[2].device = 'vg0/data_tmeta')), /cannot contain "_tmeta"/],
  ['an LV named snapshot', (l) => ((l.volumeGroups[0].lvs[0].name = 'snapshot'), (l.filesystems[2].device = 'vg0/snapshot')), /reserved by LVM/],
  ['mke2fs -d reading a relative directory', (l) => (l.filesystems[1].mkfsOptions = ['-d', 'etc']), /^filesystems\[1\]\.mkfsOptions\[0\]: "-d" is not an option cloner passes to mkfs\.ext4/],
  ['mke2fs -l reading a bad-block file', (l) => (l.filesystems[1].mkfsOptions = ['-l', 'badblocks.txt']), /"-l" is not an option/],
  ['mke2fs -E offset=', (l) => (l.filesystems[1].mkfsOptions = ['-E', 'offset=4096']), /^filesystems\[1\]\.mkfsOptions\[1\]: "offset=4096" is not a value mkfs\.ext4 -E takes/],
  ['mke2fs -S (no new file system)', (l) => (l.filesystems[1].mkfsOptions = ['-S']), /"-S" is not an option/],
  ['mkfs.xfs -p protofile', (l) => (l.filesystems[2].mkfsOptions = ['-p', 'proto']), /"-p" is not an option cloner passes to mkfs\.xfs/],
  ['mkfs.xfs -d file=', (l) => (l.filesystems[2].mkfsOptions = ['-d', 'file=1,name=x']), /is not a value mkfs\.xfs -d takes/],
  ['mkfs.btrfs --rootdir=', (l) => ((l.filesystems[2].type = 'btrfs'), (l.filesystems[2].mkfsOptions = ['--rootdir=etc'])), /"--rootdir=etc" is not an option cloner passes to mkfs\.btrfs/],
  ['mkfs.vfat -B bootfile', (l) => (l.filesystems[0].mkfsOptions = ['-B', 'boot.bin']), /"-B" is not an option cloner passes to mkfs\.vfat/],
  ['an option without its value', (l) => (l.filesystems[1].mkfsOptions = ['-b']), /-b needs a value/],
  ['a glob with an unclosed class', (l) => (l.disks[0].match.serial = 'S[0-9'), /^disks\[0\]\.match\.serial: bad pattern "S\[0-9": a "\[" without its "\]"/],
];

test('hostile layout fields are refused with the place named', () => {
  assert.equal(parseLayout(JSON.stringify(GOOD)), GOOD);
  for (const [what, edit, message] of refuse) {
    const doc = structuredClone(GOOD);
    edit(doc);
    let err: any = null;
    try {
      parseLayout(JSON.stringify(doc));
    } catch (e) {
      err = e;
    }
    assert.ok(err, `${what}: accepted`);
    assert.is(err.code, 'LAYOUT_INVALID', `${what}: ${err.message}`);
    assert.match(err.message, message, `${what}: ${err.message}`);
    assert.not.match(err.message, /\n/, `${what}: one-line message`);
  }
});

test('fstabFor escapes what an fstab field cannot hold, even if a bad layout got past parseLayout', () => {
  const text = fstabFor([{ device: 'r', type: 'ext4', mount: '/', uuid: 'U1' }, { device: 's', type: 'ext4', mount: '/srv\n/dev/sdz9 /root ext4 defaults 0 0\n#x y', uuid: 'U2' }]);
  const lines = text.trim().split('\n');
  assert.is(lines.length, 4, text);
  assert.is(lines[3], 'UUID=U2 /srv\\012/dev/sdz9\\040/root\\040ext4\\040defaults\\0400\\0400\\012\\043x\\040y ext4 defaults 0 2');
});

test('disk selector globs: shell semantics, no regex features, bounded time', () => {
  const yes: Array<[string, string]> = [['*SSD*', 'Samsung SSD 870'], ['nvme?n1', 'NVME0N1'], ['S[0-9][!a-z]*', 'S1-X77'], ['a\\*b', 'a*b'], ['*', ''], ['{a,b}', '{a,b}'], ['+(a|b)', '+(a|b)'], ['[a-c]*[x-z]', 'bqqqz']];
  const no: Array<[string, string]> = [['*SSD*', 'WDC WD40'], ['nvme?n1', 'nvme10n1'], ['{a,b}', 'a'], ['+(a|b)', 'a'], ['a\\*b', 'axb'], ['[!0-9]', '5']];
  for (const [p, v] of yes) assert.ok(globMatch(p, v), `${p} should match ${v}`);
  for (const [p, v] of no) assert.not.ok(globMatch(p, v), `${p} should not match ${v}`);
  // Patterns that make backtracking matchers exponential: 128-character patterns against long values.
  const hostile = ['*a'.repeat(63) + 'b', '+(a|aa)'.repeat(18), `${'*?'.repeat(63)}b`, `${'a*'.repeat(60)}[b]`];
  const value = 'a'.repeat(1000);
  const started = process.hrtime.bigint();
  for (const p of hostile) {
    assert.ok(p.length <= 128);
    assert.type(parseGlob(p), 'object');
    for (let i = 0; i < 20; i++) assert.not.ok(globMatch(p, value));
  }
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  assert.ok(ms < 2000, `80 hostile matches took ${ms} ms`);
  assert.not.ok(globMatch('*', 'x'.repeat(5000)), 'over-long values match nothing');
});

test.run();
