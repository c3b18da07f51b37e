/**
 * The dracut side of make-installer (RHEL-family goldens): the module in contrib/dracut/
 * is valid shell that defines what dracut calls (check, depends, installkernel, install;
 * check opts out unless asked for, so the module never lands in a node's own initramfs),
 * its hooks parse; the generator is chosen from the golden root (initramfs-tools when it
 * has mkinitramfs, else dracut, else a clear error) or by --generator (refused with a hint
 * when the root lacks it), and `make-installer --dry-run` on a dracut-only golden tree says
 * it would build with dracut and how dracut is called. The real build and boot:
 * make-installer-dracut.test.ts.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { chooseGenerator, dracutArgv, pickGenerator, planInstaller, unwantedNetDrivers } from '../../core/installer/build.ts';
import { cloner } from '../helpers/cli.ts';
import { dir, file, makeTree, withTempDir } from '../helpers/fixtures.ts';

const MODULE = path.resolve(new URL('../../contrib/dracut/99cloner', import.meta.url).pathname);

test('the dracut module is valid: module-setup.sh defines check/depends/installkernel/install, check opts out, the hooks parse', () => {
  for (const f of ['module-setup.sh', 'parse-cloner.sh', 'cloner-nonet.sh', 'cloner-deploy.sh']) {
    const r = spawnSync('bash', ['-n', path.join(MODULE, f)], { encoding: 'utf8' });
    assert.is(r.status, 0, `${f}: ${r.stderr}`);
  }
  for (const f of ['parse-cloner.sh', 'cloner-nonet.sh', 'cloner-deploy.sh']) assert.is(spawnSync('sh', ['-n', path.join(MODULE, f)]).status, 0, `${f} is POSIX sh (dracut's init may be dash)`);
  const r = spawnSync('bash', ['-c', `. "$1" && for f in check depends installkernel install; do declare -F "$f" >/dev/null || { echo "missing $f"; exit 1; }; done; check; echo "check=$?"; depends`, 'x', path.join(MODULE, 'module-setup.sh')], { encoding: 'utf8' });
  assert.is(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /check=255/, 'only when make-installer adds it');
  assert.match(r.stdout, /network/, 'the network comes up before the deploy hook');
  assert.not.match(r.stdout, /network-legacy/, 'named only when the golden has it (dracutbasedir unset here)');
  const setup = spawnSync('cat', [path.join(MODULE, 'module-setup.sh')], { encoding: 'utf8' }).stdout;
  assert.match(setup, /inst_hook pre-mount \d+ "\$moddir\/cloner-deploy\.sh"/);
  assert.match(setup, /inst_hook cmdline \d+ "\$moddir\/parse-cloner\.sh"/);
  assert.match(setup, /inst_hook initqueue\/timeout \d+ "\$moddir\/cloner-nonet\.sh"/, 'no DHCP answer: the deploy loop retries, not dracut\'s emergency shell');
});

test('the generator is the golden\'s own: initramfs-tools first, then dracut, else an error with a hint; dracut is called with the private module and no host config', async () => {
  await withTempDir(async (root) => {
    const kernel = { 'usr/lib/modules/5.14.0-427.el9.x86_64': dir(), 'boot/vmlinuz-5.14.0-427.el9.x86_64': file('k') };
    await makeTree(path.join(root, 'debian'), { ...kernel, 'usr/sbin/mkinitramfs': file('#!/bin/sh\n', 0o755) });
    await makeTree(path.join(root, 'rhel'), { ...kernel, 'usr/bin/dracut': file('#!/bin/bash\n', 0o755), 'usr/lib/dracut/modules.d/90kernel-modules': dir() });
    await makeTree(path.join(root, 'both'), { ...kernel, 'usr/sbin/mkinitramfs': file('#!/bin/sh\n', 0o755), 'usr/bin/dracut': file('#!/bin/bash\n', 0o755), 'usr/lib/dracut/modules.d': dir() });
    await makeTree(path.join(root, 'none'), kernel);
    assert.is(chooseGenerator(path.join(root, 'debian')), 'initramfs-tools');
    assert.is(chooseGenerator(path.join(root, 'rhel')), 'dracut');
    assert.is(chooseGenerator(path.join(root, 'both')), 'initramfs-tools');
    assert.throws(() => chooseGenerator(path.join(root, 'none')), (err: Error & { code?: string; hint?: string }) => err.code === 'INSTALLER_BUILD_FAILED' && /neither mkinitramfs/.test(err.message));
    assert.is(planInstaller(path.join(root, 'rhel')).generator, 'dracut');

    const argv = dracutArgv({ baseDir: '/run/x/dracut', confDir: '/run/x/conf', out: '/run/x/initrd.img', version: '5.14.0-427.el9.x86_64' });
    assert.equal(argv.slice(0, 3), ['env', 'dracutbasedir=/run/x/dracut', 'dracut']);
    for (const flag of ['--no-hostonly', '--no-early-microcode', '--force']) assert.ok(argv.includes(flag), flag);
    assert.is(argv[argv.indexOf('--conf') + 1], '/dev/null', 'the golden\'s /etc/dracut.conf is not read');
    assert.is(argv[argv.indexOf('--add') + 1], 'cloner');
    assert.match(argv[argv.indexOf('--omit') + 1], /\bsystemd\b/);
    assert.equal(argv.slice(-3), ['--kver', '5.14.0-427.el9.x86_64', '/run/x/initrd.img']);
    assert.not.ok(argv.includes('--omit-drivers'), 'none unless asked for');
    const omitting = dracutArgv({ baseDir: '/b', confDir: '/c', out: '/o', version: 'v', omitDrivers: ['cdc_ether', 'usbnet'] });
    assert.is(omitting[omitting.indexOf('--omit-drivers') + 1], 'cdc_ether usbnet');

    // The unwanted network drivers are read from the root's module tree, named as modprobe names them.
    await makeTree(path.join(root, 'mods'), { 'kernel/drivers/net/usb/cdc-ether.ko': file(''), 'kernel/drivers/net/usb/usbnet.ko.xz': file(''), 'kernel/drivers/net/wireless/intel/iwlwifi/iwlwifi.ko': file(''), 'kernel/drivers/net/ethernet/intel/e1000e/e1000e.ko': file('') });
    assert.equal(unwantedNetDrivers(path.join(root, 'mods')), ['cdc_ether', 'iwlwifi', 'usbnet']);

    // --generator: one the root has (also the one that is not its default), else a usage error with a hint.
    assert.is(pickGenerator(path.join(root, 'both'), 'dracut'), 'dracut');
    assert.is(pickGenerator(path.join(root, 'both')), 'initramfs-tools');
    const both = cloner('make-installer', '--root', path.join(root, 'both'), '--generator', 'dracut', '--output', path.join(root, 'out'), '--dry-run', '--json');
    assert.is(both.code, 0, both.err);
    assert.is((JSON.parse(both.out) as { generator: string }).generator, 'dracut');
    const bothText = cloner('make-installer', '--root', path.join(root, 'both'), '--generator', 'dracut', '--output', path.join(root, 'out'), '--dry-run');
    assert.match(bothText.out, /with dracut,/);
    const lacking = cloner('make-installer', '--root', path.join(root, 'debian'), '--generator', 'dracut', '--output', path.join(root, 'out'), '--dry-run');
    assert.is(lacking.code, 2);
    assert.match(lacking.err, /--generator dracut: .* has no dracut .*\nhint: install dracut-core/);
    const lackingMk = cloner('make-installer', '--root', path.join(root, 'rhel'), '--generator', 'initramfs-tools', '--output', path.join(root, 'out'), '--dry-run');
    assert.is(lackingMk.code, 2);
    assert.match(lackingMk.err, /has no mkinitramfs \(initramfs-tools\)\nhint: install initramfs-tools/);
    const bogus = cloner('make-installer', '--root', path.join(root, 'both'), '--generator', 'mkinitcpio', '--output', path.join(root, 'out'), '--dry-run');
    assert.is(bogus.code, 2);
    assert.match(bogus.err, /--generator "mkinitcpio" is not an initramfs generator\nhint: use --generator initramfs-tools or --generator dracut/);
    assert.not.match(bogus.err + lacking.err, /\n\s+at /, 'no stack trace');

    const dry = cloner('make-installer', '--root', path.join(root, 'rhel'), '--output', path.join(root, 'out'), '--dry-run', '--json');
    assert.is(dry.code, 0, dry.err);
    const report = JSON.parse(dry.out) as { version: string; generator: string };
    assert.is(report.generator, 'dracut');
    assert.is(report.version, '5.14.0-427.el9.x86_64');
    const none = cloner('make-installer', '--root', path.join(root, 'none'), '--output', path.join(root, 'out'), '--dry-run');
    assert.is.not(none.code, 0);
    assert.match(none.err, /neither mkinitramfs \(initramfs-tools\) nor dracut/);
    assert.not.match(none.err, /\n\s+at /, 'no stack trace');
  });
});

test.run();
