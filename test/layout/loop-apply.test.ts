/**
 * Disk layouts on real loop devices with real sfdisk, mkfs and mount: a golden disk (GPT,
 * swap, ext4 root, xfs data) is captured, and the layout applied to blank disks of a
 * larger and a slightly smaller size, checked with lsblk; a disk too small, a mounted
 * disk, an excluded one, an unmatched selector and a run without --force are refused
 * before anything is written; a dry run writes nothing; the sync check tells a matching
 * disk from a changed one.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { captureLayout } from '../../core/layout/capture.ts';
import { applyLayout, formatPlan, planLayout, unmountPlan, type ApplyPlan } from '../../core/layout/apply.ts';
import { checkLayoutSync } from '../../core/layout/sync.ts';
import { PARTITION_TYPES, type Layout } from '../../core/layout/model.ts';
import { loopUnavailable, makeGoldenDisk, sh, withLoopDisks } from '../helpers/loop.ts';

interface Node {
  path: string;
  size: number;
  fstype: string | null;
  label: string | null;
  uuid: string | null;
  parttype: string | null;
  partlabel: string | null;
  mountpoints: (string | null)[];
  children?: Node[];
}

/** lsblk for the tree, sizes and mounts; blkid -p for what is on each device (no udev here). */
function lsblk(device: string): Node {
  const node = JSON.parse(sh(['lsblk', '-J', '-b', '-o', 'NAME,PATH,SIZE,MOUNTPOINTS', device])).blockdevices[0] as Node;
  for (const kid of node.children ?? []) {
    const r = spawnSync('blkid', ['-p', '-o', 'export', kid.path], { encoding: 'utf8' });
    const f = Object.fromEntries(r.stdout.split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
    Object.assign(kid, { fstype: f.TYPE ?? null, label: f.LABEL ?? null, uuid: f.UUID ?? null, parttype: f.PART_ENTRY_TYPE ?? null, partlabel: f.PART_ENTRY_NAME ?? null });
  }
  return node;
}
const MiB = 1024 * 1024;

const blocker = loopUnavailable();
if (blocker) {
  console.log(`skipped: layout tests on loop devices: ${blocker}`);
  test.skip('layouts on loop devices', () => {});
} else {
  test('capture a golden GPT disk (swap, ext4 /, xfs /data) and apply it to a larger and a slightly smaller disk', async () => {
    await withLoopDisks(['1200M', '1600M', '1100M', '300M'], async ([golden, larger, smaller, tiny], dir) => {
      const root = await makeGoldenDisk(golden, dir);
      const captured = await captureLayout({ root });
      const layout = captured.layout;
      assert.equal(captured.disks, [golden]);
      assert.is(layout.disks.length, 1);
      const parts = layout.disks[0].partitions;
      assert.equal(parts.map((p) => [p.type, p.name, p.size]), [['swap', 'swap', '64M'], ['linux', 'root', '400M'], ['linux', 'data', 'grow']]);
      assert.is(parts[2].minSize, '300M', 'an xfs grow partition keeps the xfs minimum');
      const fsByDevice = Object.fromEntries((layout.filesystems ?? []).map((f) => [f.device, f]));
      assert.equal([fsByDevice.disk0p1.type, fsByDevice.disk0p1.label, fsByDevice.disk0p1.mount], ['swap', 'gswap', undefined]);
      assert.equal([fsByDevice.disk0p2.type, fsByDevice.disk0p2.label, fsByDevice.disk0p2.mount, fsByDevice.disk0p2.mountOptions], ['ext4', 'groot', '/', 'errors=remount-ro']);
      assert.equal([fsByDevice.disk0p3.type, fsByDevice.disk0p3.label, fsByDevice.disk0p3.mount, fsByDevice.disk0p3.mountOptions], ['xfs', 'gdata', '/data', 'noatime']);

      // A dry run prints every command and writes nothing.
      const dry = await applyLayout(layout, { devices: [larger], dryRun: true, target: path.join(dir, 'never') });
      const script = formatPlan(dry);
      for (const word of ['wipefs -a -q', 'sfdisk --quiet', 'partx -u', 'mkswap -L gswap', 'mkfs.ext4 -F -q -L groot', 'mkfs.xfs -f -q -L gdata', 'mount -t xfs']) assert.ok(script.includes(word), `${word} missing from\n${script}`);
      assert.is(lsblk(larger).children, undefined);

      // Outside the cloner boot environment a real run needs force.
      const unforced = await applyLayout(layout, { devices: [larger] }).catch((e) => e);
      assert.is(unforced.code, 'LAYOUT_NEEDS_FORCE');
      assert.is(lsblk(larger).children, undefined);

      const applied: ApplyPlan[] = [];
      try {
        for (const [device, size] of [[larger, 1600], [smaller, 1100]] as const) {
          const target = path.join(dir, `target-${size}`);
          const plan = await applyLayout(layout, { devices: [device], force: true, target });
          applied.push(plan);
          const disk = lsblk(device);
          const kids = disk.children ?? [];
          assert.equal(kids.map((k) => [k.parttype?.toUpperCase(), k.partlabel, k.fstype, k.label]), [
            [PARTITION_TYPES.swap.gpt, 'swap', 'swap', 'gswap'],
            [PARTITION_TYPES.linux.gpt, 'root', 'ext4', 'groot'],
            [PARTITION_TYPES.linux.gpt, 'data', 'xfs', 'gdata'],
          ]);
          assert.is(kids[0].size, 64 * MiB);
          assert.is(kids[1].size, 400 * MiB);
          // The grow partition takes the rest: disk - 1 MiB lead - 64 - 400 - GPT backup, on 1 MiB boundaries.
          assert.is(kids[2].size, (size - 1 - 64 - 400 - 1) * MiB);
          assert.equal(kids.map((k) => k.uuid), plan.filesystems.map((f) => f.uuid));
          assert.ok(!kids.some((k) => [fsByDevice.disk0p2.uuid, fsByDevice.disk0p3.uuid].includes(k.uuid ?? '')), 'UUIDs are new');
          assert.equal(kids.map((k) => k.mountpoints.filter(Boolean)), [[], [target], [path.join(target, 'data')]]);
          assert.is(plan.rootDevice, `${device}p2`);
          assert.is(plan.espDevice, null);
          assert.ok(plan.fstab.includes(`UUID=${kids[2].uuid} /data xfs noatime 0 0`), plan.fstab);
          assert.ok(plan.fstab.includes(`UUID=${kids[1].uuid} / ext4 errors=remount-ro 0 1`), plan.fstab);
          assert.ok(plan.fstab.includes(`UUID=${kids[0].uuid} none swap sw 0 0`), plan.fstab);
          const sync = await checkLayoutSync(layout, { devices: [device] });
          assert.ok(sync.inSync, sync.differences.join('\n'));
          assert.is(sync.uuids.disk0p3, kids[2].uuid);
        }
        // Changing a filesystem breaks the sync.
        await unmountPlan(applied[1]);
        sh(['mkfs.ext4', '-q', '-F', `${smaller}p3`]);
        const changed = await checkLayoutSync(layout, { devices: [smaller] });
        assert.not.ok(changed.inSync);
        assert.match(changed.differences.join('\n'), /disk0p3 \(\/dev\/loop\d+p3\): ext4, the layout has xfs/);
        const blank = await checkLayoutSync(layout, { devices: [tiny] });
        assert.equal(blank.differences, [`disk0 (${tiny}): no partition table`]);
      } finally {
        for (const plan of applied) await unmountPlan(plan);
      }

      // Refusals, each before anything is written.
      const small = await applyLayout(layout, { devices: [tiny], force: true }).catch((e) => e);
      assert.is(small.code, 'LAYOUT_TOO_SMALL');
      assert.match(small.message, new RegExp(`disk disk0 \\(${tiny}, 300.00 MiB\\) is too small for the layout: it needs 3\\d\\d.\\d\\d MiB with every partition at its smallest \\(disk0p1 16.00 MiB, disk0p2 \\d+.00 MiB, disk0p3 300.00 MiB\\)`));
      assert.is(lsblk(tiny).children, undefined);
      assert.is(sh(['wipefs', '-n', tiny]).trim(), '');

      const busy = await applyLayout(layout, { devices: [golden], force: true }).catch((e) => e);
      assert.is(busy.code, 'LAYOUT_DISK_IN_USE');
      assert.match(busy.message, /is mounted at/);
      assert.is(await readFile(path.join(root, 'data/payload'), 'utf8'), 'golden data\n');

      const excluded = await applyLayout(layout, { devices: [larger], exclude: [larger], force: true }).catch((e) => e);
      assert.is(excluded.code, 'LAYOUT_DISK_UNMATCHED');
      const picky: Layout = { ...layout, disks: [{ ...layout.disks[0], match: { model: 'NoSuchModel*' } }] };
      const unmatched = await planLayout(picky, { devices: [larger] }).catch((e) => e);
      assert.is(unmatched.code, 'LAYOUT_DISK_UNMATCHED');
      assert.match(unmatched.message, /layout disk "disk0" \(model=NoSuchModel\*\) matches no disk of this node; disks not taken: loop\d+ 1\.56 GiB loop/);
    });
  });
}

test.run();
