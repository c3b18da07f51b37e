/**
 * agent/initramfs.ts on initramfs files in the real format (an uncompressed early cpio, then
 * a compressed newc cpio, made by `cpio -o -H newc` and gzip/zstd/xz/lz4 as mkinitramfs
 * does): its reader lists what Debian's lsinitramfs lists; the golden's initramfs is made
 * anew when it holds a device reference the identity step replaced (initramfs-tools'
 * conf/conf.d/resume with the golden's swap UUID, also split between two pieces), an outdated
 * copy of mdadm.conf, lacks mdadm for the layout's RAID, or cannot be read; it is kept
 * otherwise, and the boot loader phase records the decision (a re-deploy does not look again).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { openSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { installBootloader } from '../../agent/boot.ts';
import { BootMade } from '../../agent/boot-made.ts';
import { applyIdentity, type NodeFilesystem } from '../../agent/identity.ts';
import { initramfsInputs, initramfsVerdict, readInitramfs, RefScanner, type InitramfsInputs } from '../../agent/initramfs.ts';
import { haveTool } from '../../core/tools.ts';
import { applySettings, newNode } from '../../core/nodes/registry.ts';
import { file, makeTree, seededBytes, withTempDir, type Fixture } from '../helpers/fixtures.ts';

const G_ROOT = '11111111-1111-4111-8111-111111111111';
const G_SWAP = '22222222-2222-4222-8222-222222222222';
const N_ROOT = 'aaaaaaaa-0000-4000-8000-00000000000a';
const N_SWAP = 'bbbbbbbb-0000-4000-8000-00000000000b';
const FS: NodeFilesystem[] = [
  { spec: { device: 'root', type: 'ext4', mount: '/', uuid: G_ROOT }, uuid: N_ROOT, device: '/dev/sda1' },
  { spec: { device: 'swap', type: 'swap', uuid: G_SWAP }, uuid: N_SWAP, device: '/dev/sda2' },
];
const INITRD = 'boot/initrd.img-6.1.0-1-amd64';
const COMPRESS: Record<string, string> = { gzip: 'gzip -c', zstd: 'zstd -q -c', xz: 'xz --check=crc32 -c', lz4: 'lz4 -q -l -c' };

/** The main archive of a small Debian-like initramfs; `extra` adds or replaces files. */
const mainTree = (extra: Record<string, Fixture> = {}): Record<string, Fixture> => ({
  init: file('#!/bin/sh\n. /scripts/functions\n', 0o755),
  'conf/initramfs.conf': file('MODULES=most\nBUSYBOX=auto\n'),
  'etc/fstab': file(''),
  'usr/lib/modules/6.1.0-1-amd64/kernel/drivers/md/raid1.ko': file(seededBytes(7, 200_000)),
  'usr/bin/busybox': file(seededBytes(8, 300_000), 0o755),
  ...extra,
});

/** Writes `out`: an early cpio (microcode) then the main tree as a cpio compressed by `codec`. */
async function makeInitramfs(work: string, out: string, main: Record<string, Fixture>, codec = 'zstd'): Promise<void> {
  const early = path.join(work, 'early');
  const tree = path.join(work, 'main');
  spawnSync('rm', ['-rf', early, tree]);
  await makeTree(early, { 'kernel/x86/microcode/GenuineIntel.bin': file(seededBytes(9, 30_000)) });
  await makeTree(tree, main);
  const r = spawnSync('sh', ['-c', `set -e; (cd "$1" && find . | LC_ALL=C sort | cpio -o -H newc --quiet) > "$3"; (cd "$2" && find . | LC_ALL=C sort | cpio -o -H newc --quiet | ${COMPRESS[codec]}) >> "$3"`, 'sh', early, tree, out]);
  assert.is(r.status, 0, r.stderr?.toString());
}

/** A mounted image's root: /boot with the initramfs, the node's files as the identity step left them. */
async function target(dir: string, main: Record<string, Fixture>, node: Record<string, Fixture> = {}): Promise<string> {
  const root = path.join(dir, 'root');
  await makeTree(root, { 'boot/vmlinuz-6.1.0-1-amd64': file(seededBytes(1, 1000)), ...node });
  await makeInitramfs(dir, path.join(root, INITRD), main);
  return root;
}

const NONE: InitramfsInputs = { refs: [], files: [], layers: [] };

for (const codec of Object.keys(COMPRESS)) {
  test(`the reader lists a ${codec} initramfs as lsinitramfs does`, async () => {
    if (!haveTool(COMPRESS[codec].split(' ')[0])) return console.log(`skipped: ${codec} is not installed`);
    if (!haveTool('lsinitramfs')) return console.log('skipped: the cross-check needs lsinitramfs (initramfs-tools-core)');
    await withTempDir(async (dir) => {
      const img = path.join(dir, 'initrd.img');
      await makeInitramfs(dir, img, mainTree({ 'conf/conf.d/resume': file(`RESUME=UUID=${G_SWAP}\n`) }), codec);
      const names: string[] = [];
      let resume = '';
      const compression = await readInitramfs(openSync(img, 'r'), async (e, data) => {
        names.push(e.name);
        if (e.name === 'conf/conf.d/resume') for await (const piece of data) resume += piece.toString();
      });
      assert.is(compression, codec);
      assert.is(resume, `RESUME=UUID=${G_SWAP}\n`);
      const listed = spawnSync('lsinitramfs', [img], { encoding: 'utf8' });
      assert.is(listed.status, 0, listed.stderr);
      assert.equal(names.sort(), listed.stdout.split('\n').filter(Boolean).sort());
    });
  });
}

test('a golden swap UUID in conf/conf.d/resume means rebuild; without it the image\'s initramfs is kept', async () => {
  await withTempDir(async (dir) => {
    const inputs: InitramfsInputs = { refs: [`UUID=${G_SWAP}`, G_ROOT], files: [], layers: [] };
    let root = await target(dir, mainTree({ 'conf/conf.d/resume': file(`RESUME=UUID=${G_SWAP}\n`) }));
    let v = await initramfsVerdict(root, inputs);
    assert.ok(v.rebuild);
    assert.match(v.why, `/${INITRD}: its conf/conf.d/resume holds ${G_SWAP}`);
    spawnSync('rm', ['-rf', root]);
    root = await target(dir, mainTree({ 'conf/conf.d/resume': file('RESUME=none\n') }));
    v = await initramfsVerdict(root, inputs);
    assert.not.ok(v.rebuild, v.why);
    assert.match(v.why, /zstd, \d+ files read\): none of 2 replaced device references/);
  });
});

test('a reference split between two pieces is found, in either case; one short of it is not', () => {
  const text = Buffer.from(`root=UUID=${G_ROOT.toUpperCase()} ro quiet`);
  for (let cut = 1; cut < text.length; cut++) {
    const s = new RefScanner([`UUID=${G_ROOT}`, '/dev/sda2']);
    assert.is(s.push(text.subarray(0, cut)) ?? s.push(text.subarray(cut)), G_ROOT.toUpperCase(), `cut at ${cut}`);
  }
  const s = new RefScanner([G_ROOT]);
  assert.is(s.push(Buffer.from(G_ROOT.slice(0, 20))), null);
  s.reset();
  assert.is(s.push(Buffer.from(G_ROOT.slice(20))), null);
});

test('a reference in a large file is found; modules are not searched', async () => {
  await withTempDir(async (dir) => {
    const text = Buffer.alloc(200_000, 'x');
    text.write(`UUID=${G_ROOT}`, 65_536 - 12);
    const root = await target(dir, mainTree({ 'scripts/local-top/big': file(text), 'usr/lib/modules/6.1.0-1-amd64/kernel/x.ko': file(`UUID=${G_SWAP}`) }));
    assert.ok((await initramfsVerdict(root, { ...NONE, refs: [G_ROOT] })).rebuild);
    assert.not.ok((await initramfsVerdict(root, { ...NONE, refs: [G_SWAP] })).rebuild);
  });
});

test('an outdated copy of a changed mdadm.conf, or no mdadm for the layout\'s RAID, means rebuild', async () => {
  await withTempDir(async (dir) => {
    const conf = 'HOMEHOST <system>\nMAILADDR root\n';
    const node = `${conf}ARRAY /dev/md/system metadata=1.2 UUID=0a0b0c0d:11223344:55667788:99aabbcc name=node26:system\n`;
    let root = await target(dir, mainTree({ 'etc/mdadm/mdadm.conf': file(conf), 'usr/sbin/mdadm': file(seededBytes(3, 5000), 0o755) }), { 'etc/mdadm/mdadm.conf': file(node) });
    const v = await initramfsVerdict(root, { refs: [], files: ['etc/mdadm/mdadm.conf'], layers: ['md'] });
    assert.ok(v.rebuild);
    assert.match(v.why, "its etc/mdadm/mdadm.conf is the golden's copy of /etc/mdadm/mdadm.conf");
    spawnSync('rm', ['-rf', root]);
    root = await target(dir, mainTree({ 'etc/mdadm/mdadm.conf': file(node), 'usr/sbin/mdadm': file(seededBytes(3, 5000), 0o755) }), { 'etc/mdadm/mdadm.conf': file(node) });
    assert.not.ok((await initramfsVerdict(root, { refs: [], files: ['etc/mdadm/mdadm.conf'], layers: ['md'] })).rebuild);
    const noLvm = await initramfsVerdict(root, { refs: [], files: [], layers: ['md', 'lvm'] });
    assert.ok(noLvm.rebuild);
    assert.match(noLvm.why, 'the layout made LVM volumes and it has no lvm');
  });
});

test('an initramfs that cannot be read, or none at all, means rebuild', async () => {
  await withTempDir(async (dir) => {
    const root = await target(dir, mainTree());
    const whole = readFileSync(path.join(root, INITRD));
    writeFileSync(path.join(root, INITRD), whole.subarray(0, whole.length - 5000));
    let v = await initramfsVerdict(root, NONE);
    assert.ok(v.rebuild);
    assert.match(v.why, `/${INITRD} could not be read`);
    writeFileSync(path.join(root, INITRD), Buffer.concat([whole.subarray(0, 512 * 64), Buffer.from('not compressed data at all')]));
    v = await initramfsVerdict(root, NONE);
    assert.ok(v.rebuild);
    spawnSync('rm', ['-f', path.join(root, INITRD)]);
    v = await initramfsVerdict(root, NONE);
    assert.ok(v.rebuild);
    assert.match(v.why, 'no initramfs in /boot');
  });
});

test('after the identity step: the golden resume UUID it replaced is looked for; the boot loader phase keeps or makes the initramfs and records the decision', async () => {
  await withTempDir(async (dir) => {
    const base = { 'etc/hostname': file('golden01\n'), 'etc/fstab': file(`UUID=${G_ROOT} / ext4 defaults 0 1\nUUID=${G_SWAP} none swap sw 0 0\n`) };
    const layout = { format: 'cloner-layout/1', disks: [{ id: 'a', table: 'gpt', partitions: [] }] } as never;
    // The golden resumes from its swap (its initramfs has the UUID), or does not (initramfs-tools' RESUME=none).
    const cases: Array<{ rebuilt: boolean; golden: Record<string, Fixture>; initramfs: Record<string, Fixture>; files: string[] }> = [
      { rebuilt: true, golden: { ...base, 'etc/initramfs-tools/conf.d/resume': file(`RESUME=UUID=${G_SWAP}\n`) }, initramfs: { 'conf/conf.d/resume': file(`RESUME=UUID=${G_SWAP}\n`) }, files: ['etc/initramfs-tools/conf.d/resume'] },
      { rebuilt: false, golden: base, initramfs: { 'conf/conf.d/zz-resume-auto': file('RESUME=none\n') }, files: [] },
    ];
    for (const { rebuilt, golden, initramfs, files } of cases) {
      const root = await target(path.join(dir, String(rebuilt)), mainTree(initramfs), golden);
      const report = applyIdentity({ target: root, node: applySettings(newNode('node26'), ['hostname=node26']), filesystems: FS, hostKeys: null });
      assert.ok(report.bootChainChanged);
      assert.ok(report.replacedRefs.includes(`UUID=${G_SWAP}`) && report.replacedRefs.includes(G_ROOT), report.replacedRefs.join(' '));
      assert.equal(report.bootChainFiles, files);
      const run = async () => {
        const lines: string[] = [];
        const made = new BootMade(root, null);
        const warnings = await installBootloader({ target: root, layout, applied: null, esp: null, label: 'cloner test', initramfs: true, initramfsInputs: initramfsInputs(report, layout), made, log: (l) => lines.push(l) });
        return { lines, warnings };
      };
      const first = await run();
      // The fixture image has no initramfs tool: making it anew ends in that warning.
      assert.is(first.warnings.some((w) => /no initramfs tool/.test(w)), rebuilt, first.warnings.join('\n'));
      assert.is(first.lines.some((l) => l.startsWith("initramfs: kept the image's (")), !rebuilt, first.lines.join('\n'));
      if (!rebuilt) {
        const again = await run();
        assert.ok(again.lines.includes("initramfs: kept the image's, as the last deploy decided (same kernels, initramfs files, boot configuration and changes)"), again.lines.join('\n'));
        // Another change of the node's boot configuration: looked at again.
        writeFileSync(path.join(root, 'etc/fstab'), `UUID=${N_ROOT} / ext4 defaults 0 1\n`);
        const third = await run();
        assert.ok(third.lines.some((l) => l.startsWith("initramfs: kept the image's (")), third.lines.join('\n'));
      }
    }
  });
});

test.run();
