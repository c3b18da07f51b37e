/**
 * Apply, then capture back: a layout applied to a blank loop disk and captured from its
 * mounted result is the same layout (ids and the golden-disk record aside). Uses what the
 * GPT test does not: a dos table with a boot flag, btrfs and ext2, a fixed start offset,
 * a UUID kept on request, and mount options read back from the fstab the apply wrote.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import path from 'node:path';
import { applyLayout, unmountPlan, type ApplyPlan } from '../../core/layout/apply.ts';
import { captureLayout } from '../../core/layout/capture.ts';
import { parseLayout, type Layout } from '../../core/layout/model.ts';
import { blkidProbe } from '../../core/layout/probe.ts';
import { haveTool } from '../../core/tools.ts';
import { mkdir, writeFile } from 'node:fs/promises';
import { loopUnavailable, withLoopDisks } from '../helpers/loop.ts';

const LAYOUT: Layout = parseLayout({
  format: 'cloner-layout/1',
  disks: [{
    id: 'disk0',
    table: 'dos',
    partitions: [
      { id: 'disk0p1', size: '128M', type: 'linux', start: 4 * 1024 * 1024, bootable: true },
      { id: 'disk0p2', size: 'grow', minSize: '256M', type: 'linux' },
    ],
  }],
  filesystems: [
    { device: 'disk0p1', type: 'ext2', label: 'boot', mount: '/boot', uuid: '0f4c5d8e-2f6b-4a1c-9d3e-5b7a8c9d0e1f', keepUuid: true },
    { device: 'disk0p2', type: 'btrfs', label: 'root', mount: '/', mountOptions: 'compress=zstd' },
  ],
});

const blocker = loopUnavailable() ?? (haveTool('mkfs.btrfs') ? null : 'mkfs.btrfs is not installed (btrfs-progs)');

if (blocker) {
  console.log(`skipped: dos layout round trip: ${blocker}`);
  test.skip('dos layout round trip', () => {});
} else {
  test('a dos layout (boot flag, fixed start, ext2 with a kept UUID, btrfs) applied and captured back is the same layout', async () => {
    await withLoopDisks(['900M'], async ([disk], dir) => {
      let plan: ApplyPlan | undefined;
      try {
        plan = await applyLayout(LAYOUT, { devices: [disk], force: true, target: path.join(dir, 'root') });
        assert.is((await blkidProbe(`${disk}p1`)).UUID, '0f4c5d8e-2f6b-4a1c-9d3e-5b7a8c9d0e1f');
        // As a deploy does: the new node's fstab goes into its /etc (capture reads mount options there).
        await mkdir(path.join(dir, 'root/etc'));
        await writeFile(path.join(dir, 'root/etc/fstab'), plan.fstab);
        const back = (await captureLayout({ root: path.join(dir, 'root') })).layout;
        const strip = (l: Layout) => ({ ...l, disks: l.disks.map(({ captured, match, ...d }) => ({ ...d, partitions: d.partitions.map(({ minSize, ...p }) => (p.size === 'grow' ? { ...p, minSize } : p)) })), filesystems: l.filesystems!.map(({ uuid, keepUuid, dump, pass, ...f }) => f) });
        assert.equal(strip(back), { ...strip(LAYOUT), raids: [], volumeGroups: [] });
        assert.is(back.disks[0].partitions[0].start, 4 * 1024 * 1024);
        assert.ok(back.disks[0].partitions[0].bootable);
        assert.is(back.filesystems![0].uuid, '0f4c5d8e-2f6b-4a1c-9d3e-5b7a8c9d0e1f');
      } finally {
        if (plan) await unmountPlan(plan);
      }
    });
  });
}

test.run();
