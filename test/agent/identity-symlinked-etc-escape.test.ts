/**
 * sec-02: an image with symlinked directories below a real /etc (etc/udev -> OUTSIDE/udev,
 * etc/lvm -> OUTSIDE/lvm, etc/NetworkManager/system-connections -> OUTSIDE/nm) made the
 * identity step delete files on the machine running the agent and copy them into the node.
 * Every identity write, delete, read and copy is now resolved beneath the target without
 * following a symlink: files below a symlinked directory are left alone (and reported),
 * writes below one are refused, nothing outside changes and nothing from outside is copied.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { applyIdentity, writeTargetFile } from '../../agent/identity.ts';
import type { NodeRecord } from '../../core/nodes/registry.ts';
import { dir, file, makeTree, symlink, withTempDir } from '../helpers/fixtures.ts';

const NODE: NodeRecord = { name: 'n02', hostname: 'n02', groups: [], netboot: 'cloner', interfaces: [{ name: 'eth0', mac: '52:54:00:aa:bb:02' }] };

/** Every file under `dir` with its content, to compare before and after. */
function contents(d: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const rel of readdirSync(d, { recursive: true, encoding: 'utf8' }).sort()) {
    const p = path.join(d, rel);
    try {
      out[rel] = readFileSync(p, 'utf8');
    } catch {
      out[rel] = '(dir)';
    }
  }
  return out;
}

test('symlinked directories under /etc: nothing outside is deleted, changed or copied into the node', async () => {
  await withTempDir(async (work) => {
    const outside = path.join(work, 'outside');
    await makeTree(outside, {
      'udev/rules.d/70-persistent-net.rules': file('SUBSYSTEM=="net", NAME="keep-me"\n'),
      'lvm/devices/system.devices': file('keep me\n'),
      'nm/Wired connection 1.nmconnection': file('[connection]\ntype=ethernet\n'),
      'ssh/ssh_host_ed25519_key': file('outside key\n'),
      'dhcp/dhclient.eth0.leases': file('lease\n'),
    });
    const target = path.join(work, 'target');
    await makeTree(target, {
      'etc/hostname': file('golden\n'),
      'etc/udev': symlink(path.join(outside, 'udev')),
      'etc/lvm': symlink(path.join(outside, 'lvm')),
      'etc/NetworkManager/system-connections': symlink(path.join(outside, 'nm')),
      'etc/systemd/system/multi-user.target.wants/NetworkManager.service': symlink('/lib/systemd/system/NetworkManager.service'),
      'var/lib/dhcp': symlink(path.join(outside, 'dhcp')),
      'var/lib/systemd': dir(),
    });
    const before = contents(outside);
    let report: ReturnType<typeof applyIdentity> | null = null;
    const err = (() => {
      try {
        report = applyIdentity({ target, node: NODE, filesystems: null, hostKeys: null });
        return null;
      } catch (e) {
        return e as { code?: string; message: string };
      }
    })();
    // Writing the NetworkManager keyfile below the symlinked directory is refused, not followed.
    assert.ok(err, 'the identity step wrote below a symlinked directory');
    assert.is(err.code, 'IDENTITY_FAILED');
    assert.match(err.message, /system-connections is not a directory/);
    assert.is(report, null);
    assert.equal(contents(outside), before, 'something outside the target changed');
    const saved = path.join(target, 'var/lib/cloner/image-files');
    const copied = existsSync(saved) ? readdirSync(saved) : [];
    assert.ok(copied.every((name) => name === 'etc%hostname' || name === 'etc%hosts' || name === 'etc%machine-id'), `copied in from outside: ${copied}`);
  });
});

test('removals below a symlinked directory are skipped and reported; the deploy goes on', async () => {
  await withTempDir(async (work) => {
    const outside = path.join(work, 'outside');
    await makeTree(outside, { 'udev/rules.d/70-persistent-net.rules': file('keep\n'), 'lvm/devices/system.devices': file('keep\n'), 'ssh/ssh_host_rsa_key': file('outside key\n') });
    const target = path.join(work, 'target');
    await makeTree(target, {
      'etc/hostname': file('golden\n'),
      'etc/udev': symlink(path.join(outside, 'udev')),
      'etc/lvm': symlink('../../outside/lvm'),
      'etc/systemd/network': dir(),
      'etc/ssh/ssh_host_rsa_key': symlink(path.join(outside, 'ssh/ssh_host_rsa_key')),
    });
    const before = contents(outside);
    const report = applyIdentity({ target, node: NODE, filesystems: null, hostKeys: { ssh_host_ed25519_key: Buffer.from('node key\n') } });
    assert.equal(contents(outside), before);
    assert.ok(report.warnings.some((w) => /\/etc\/udev\/rules\.d is a symlink .* left alone/.test(w)), report.warnings.join('\n'));
    assert.ok(report.warnings.some((w) => /\/etc\/lvm\/devices is a symlink/.test(w)), report.warnings.join('\n'));
    // The symlinked host key itself (a link in a real directory) is removed as a link, its target kept.
    assert.ok(report.changes.some((c) => c.file === "/etc/ssh/ssh_host_rsa_key" && /removed/.test(c.change)));
    assert.is(readFileSync(path.join(target, 'etc/ssh/ssh_host_ed25519_key'), 'utf8'), 'node key\n');
    assert.equal(readdirSync(path.join(target, 'var/lib/cloner/image-files')).sort(), ['etc%hostname']);
  });
});

test('writeTargetFile never writes through a symlinked parent or a planted symlink at the temporary name', async () => {
  await withTempDir(async (work) => {
    const outside = path.join(work, 'outside');
    mkdirSync(outside);
    writeFileSync(path.join(outside, 'fstab'), 'outside\n');
    const target = path.join(work, 'target');
    mkdirSync(path.join(target, 'etc'), { recursive: true });
    symlinkSync(path.join(outside, 'fstab'), path.join(target, 'etc/fstab.cloner-new'));
    symlinkSync(path.join(outside, 'fstab'), path.join(target, 'etc/fstab'));
    writeTargetFile(target, 'etc/fstab', 'node\n');
    assert.is(readFileSync(path.join(outside, 'fstab'), 'utf8'), 'outside\n');
    assert.is(readFileSync(path.join(target, 'etc/fstab'), 'utf8'), 'node\n');
    symlinkSync(outside, path.join(target, 'var'));
    assert.throws(() => writeTargetFile(target, 'var/lib/cloner/state.json', '{}'), /not a directory/);
    assert.equal(readdirSync(outside), ['fstab']);
  });
});

test.run();
