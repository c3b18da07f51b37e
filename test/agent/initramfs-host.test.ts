/**
 * agent/initramfs-host.ts through initramfsVerdict, on real images: an initramfs made for the
 * golden's hardware is made anew whatever the device references — initramfs-tools with
 * MODULES=dep (last assignment wins, conf.d after initramfs.conf), dracut host-only (its own
 * build-parameter.txt or hostonly-files first, then dracut.conf and its drop-ins with etc/
 * masking usr/lib/), mkinitcpio with the autodetect hook — and kept otherwise; a leftover
 * configuration of another tool does not count; the boot loader phase logs why.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { installBootloader } from '../../agent/boot.ts';
import { initramfsVerdict, type InitramfsInputs } from '../../agent/initramfs.ts';
import { dracutParamsHostonly, lastAssignment } from '../../agent/initramfs-host.ts';
import { file, makeTree, seededBytes, withTempDir, type Fixture } from '../helpers/fixtures.ts';

const NONE: InitramfsInputs = { refs: [], files: [], layers: [] };
const INITRD = 'boot/initrd.img-6.1.0-1-amd64';

/** What each tool puts in its initramfs (what tells them apart), plus a module and a binary. */
const BUILT_BY: Record<string, Record<string, Fixture>> = {
  'initramfs-tools': { 'conf/initramfs.conf': file('MODULES=most\n'), 'scripts/functions': file('# functions\n') },
  dracut: { 'usr/lib/dracut/dracut-059': file('059\n'), 'usr/lib/dracut/modules.txt': file('base\nrootfs-block\n'), 'usr/lib/dracut-lib.sh': file('#!/bin/sh\n') },
  mkinitcpio: { init_functions: file('#!/usr/bin/ash\n'), config: file('HOOKS="base udev"\n') },
};

/** A mounted image: `image` files and /boot/initrd.img-… made by `builder` (gzip'd newc cpio) with `extra` inside. */
async function image(dir: string, builder: string, imageFiles: Record<string, Fixture>, extra: Record<string, Fixture> = {}): Promise<string> {
  const root = path.join(dir, 'root');
  const tree = path.join(dir, 'initramfs');
  spawnSync('rm', ['-rf', root, tree]);
  await makeTree(root, { 'boot/vmlinuz-6.1.0-1-amd64': file(seededBytes(1, 1000)), ...imageFiles });
  await makeTree(tree, { init: file('#!/bin/sh\n', 0o755), 'usr/lib/modules/6.1.0-1-amd64/kernel/drivers/ata/ahci.ko': file(seededBytes(2, 50_000)), ...BUILT_BY[builder], ...extra });
  const r = spawnSync('sh', ['-c', '(cd "$1" && find . | LC_ALL=C sort | cpio -o -H newc --quiet | gzip -c) > "$2"', 'sh', tree, path.join(root, INITRD)]);
  assert.is(r.status, 0, r.stderr?.toString());
  return root;
}

async function verdict(dir: string, builder: string, imageFiles: Record<string, Fixture>, extra: Record<string, Fixture> = {}) {
  return initramfsVerdict(await image(dir, builder, imageFiles, extra), NONE);
}

test('shell assignments: the last wins, quoted, unquoted, arrays, comments', () => {
  assert.is(lastAssignment('MODULES=most\n# MODULES=dep\nMODULES=dep # the golden only\n', 'MODULES'), 'dep');
  assert.is(lastAssignment('hostonly="yes"\nhostonly=\'no\'\n', 'hostonly'), 'no');
  assert.is(lastAssignment('HOOKS=(base udev autodetect modconf block filesystems fsck)\n', 'HOOKS'), 'base udev autodetect modconf block filesystems fsck');
  assert.is(lastAssignment('MYMODULES=dep\n', 'MODULES'), null);
  assert.is(dracutParamsHostonly(" '--kver' '6.1' '-H' '--no-hostonly'"), false);
  assert.is(dracutParamsHostonly(" '--force' '--hostonly'"), true);
  assert.is(dracutParamsHostonly(" '--force'"), null);
});

test('initramfs-tools: MODULES=dep in conf.d means made anew; MODULES=most is kept; a later conf.d wins', async () => {
  await withTempDir(async (dir) => {
    const conf = (main: string, confd: Record<string, string> = {}) => ({
      'etc/initramfs-tools/initramfs.conf': file(main),
      ...Object.fromEntries(Object.entries(confd).map(([n, c]) => [`etc/initramfs-tools/conf.d/${n}`, file(c)])),
    });
    let v = await verdict(dir, 'initramfs-tools', conf('MODULES=most\nBUSYBOX=auto\n', { 'driver-policy': 'MODULES=dep\n' }));
    assert.ok(v.rebuild);
    assert.is(v.why, "the image's initramfs-tools builds MODULES=dep (/etc/initramfs-tools/conf.d/driver-policy), for the golden's hardware");
    v = await verdict(dir, 'initramfs-tools', conf('MODULES=most\n'));
    assert.not.ok(v.rebuild, v.why);
    v = await verdict(dir, 'initramfs-tools', conf('MODULES=dep\n', { 'a-dep': 'MODULES=dep\n', 'z-most': 'MODULES=most\n', 'z-most.dpkg-old': 'MODULES=dep\n' }));
    assert.not.ok(v.rebuild, v.why);
    // usr/share's conf.d is read before etc/'s, and etc/ masks the same name.
    v = await verdict(dir, 'initramfs-tools', { ...conf('MODULES=most\n'), 'usr/share/initramfs-tools/conf.d/vendor': file('MODULES=dep\n') });
    assert.ok(v.rebuild);
    v = await verdict(dir, 'initramfs-tools', { ...conf('MODULES=most\n', { vendor: '# none\n' }), 'usr/share/initramfs-tools/conf.d/vendor': file('MODULES=dep\n') });
    assert.not.ok(v.rebuild, v.why);
  });
});

test("dracut: host-only from its own build-parameter.txt or hostonly-files, else from dracut.conf's drop-ins (etc/ masks usr/lib/)", async () => {
  await withTempDir(async (dir) => {
    const dist = { 'usr/bin/dracut': file('#!/bin/bash\n', 0o755), 'usr/lib/dracut/dracut.conf.d/01-dist.conf': file('hostonly="yes"\nhostonly_cmdline="no"\n') };
    let v = await verdict(dir, 'dracut', dist);
    assert.ok(v.rebuild);
    assert.is(v.why, "the image's dracut builds host-only (hostonly=yes in /usr/lib/dracut/dracut.conf.d/01-dist.conf), for the golden's hardware");
    v = await verdict(dir, 'dracut', { ...dist, 'etc/dracut.conf.d/01-dist.conf': file('hostonly="no"\n') });
    assert.not.ok(v.rebuild, v.why);
    v = await verdict(dir, 'dracut', { ...dist, 'etc/dracut.conf.d/90-generic.conf': file('hostonly=no\n') });
    assert.not.ok(v.rebuild, v.why);
    v = await verdict(dir, 'dracut', { ...dist, 'etc/dracut.conf': file('hostonly=no\n') });
    assert.ok(v.rebuild, 'drop-ins are read after etc/dracut.conf');
    // The initramfs's own record of its command line wins over the configuration.
    v = await verdict(dir, 'dracut', dist, { 'usr/lib/dracut/build-parameter.txt': file(" '--no-hostonly' '--kver' '6.1.0-1-amd64'\n") });
    assert.not.ok(v.rebuild, v.why);
    v = await verdict(dir, 'dracut', { 'usr/bin/dracut': file('#!/bin/bash\n', 0o755) }, { 'usr/lib/dracut/build-parameter.txt': file(" '-f' '--hostonly'\n") });
    assert.ok(v.rebuild);
    assert.match(v.why, 'dracut built it host-only (--hostonly in its lib/dracut/build-parameter.txt)');
    v = await verdict(dir, 'dracut', {}, { 'usr/lib/dracut/hostonly-files': file('/etc/vconsole.conf\n/etc/locale.conf\n') });
    assert.ok(v.rebuild);
    assert.match(v.why, 'hostonly-files');
    v = await verdict(dir, 'dracut', { 'usr/bin/dracut': file('#!/bin/bash\n', 0o755) });
    assert.not.ok(v.rebuild, v.why);
  });
});

test('mkinitcpio: the autodetect hook means made anew; without it kept; a leftover configuration of another tool does not count', async () => {
  await withTempDir(async (dir) => {
    const hooks = 'MODULES=()\nHOOKS=(base udev autodetect microcode modconf kms keyboard block filesystems fsck)\n';
    let v = await verdict(dir, 'mkinitcpio', { 'etc/mkinitcpio.conf': file(hooks) });
    assert.ok(v.rebuild);
    assert.is(v.why, "the image's mkinitcpio has the autodetect hook (/etc/mkinitcpio.conf), for the golden's hardware");
    v = await verdict(dir, 'mkinitcpio', { 'etc/mkinitcpio.conf': file(hooks.replace('autodetect ', '')) });
    assert.not.ok(v.rebuild, v.why);
    // A Debian initramfs (initramfs-tools made it), an Arch configuration left behind in /etc.
    v = await verdict(dir, 'initramfs-tools', { 'etc/initramfs-tools/initramfs.conf': file('MODULES=most\n'), 'etc/mkinitcpio.conf': file(hooks), 'etc/dracut.conf': file('hostonly=yes\n') });
    assert.not.ok(v.rebuild, v.why);
  });
});

test("the boot loader phase logs why it makes the golden's initramfs anew", async () => {
  await withTempDir(async (dir) => {
    const root = await image(dir, 'initramfs-tools', { 'etc/initramfs-tools/initramfs.conf': file('MODULES=most\n'), 'etc/initramfs-tools/conf.d/driver-policy': file('MODULES=dep\n') });
    const lines: string[] = [];
    const layout = { format: 'cloner-layout/1', disks: [{ id: 'a', table: 'gpt', partitions: [] }] } as never;
    const warnings = await installBootloader({ target: root, layout, applied: null, esp: null, label: 'cloner test', initramfs: true, initramfsInputs: NONE, log: (l) => lines.push(l) });
    assert.ok(lines.includes("initramfs: made anew: the image's initramfs-tools builds MODULES=dep (/etc/initramfs-tools/conf.d/driver-policy), for the golden's hardware"), lines.join('\n'));
    // The fixture image has no initramfs tool: making it anew ends in that warning.
    assert.ok(warnings.some((w) => /no initramfs tool/.test(w)), warnings.join('\n'));
  });
});

test.run();
