/**
 * btrfs subvolumes on real loop devices: a golden disk whose root is subvolume @ and /home
 * subvolume @home (with a nested subvolume var/lib/machines inside @, not mounted) is
 * captured: the layout records @ at / with its options and @home at /home, the tree holds
 * every file of all three and marks the nested one; the layout applied to a blank disk
 * creates and mounts the subvolumes (fstab says subvol=), and the tree restored onto it
 * makes the nested subvolume a subvolume again. A layout with subvolumes on ext4, a
 * subvolume path with "..", or subvol= in its options is refused with the place named.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { statSync } from 'node:fs';
import path from 'node:path';
import { captureLayout } from '../../core/layout/capture.ts';
import { applyLayout, unmountPlan, type ApplyPlan } from '../../core/layout/apply.ts';
import { layoutMounts, parseLayout } from '../../core/layout/model.ts';
import { checkLayoutSync } from '../../core/layout/sync.ts';
import { LocalStore } from '../../core/store/local.ts';
import { captureTree } from '../../core/tree/capture.ts';
import { restoreTree } from '../../core/tree/restore.ts';
import { haveTool } from '../../core/tools.ts';
import { loopUnavailable, sh, withLoopDisks } from '../helpers/loop.ts';

const blocker = loopUnavailable() ?? (haveTool('mkfs.btrfs') && haveTool('btrfs') ? null : 'btrfs-progs is not installed');

if (blocker) {
  console.log(`skipped: btrfs subvolumes: ${blocker}`);
  test.skip('btrfs subvolumes', () => {});
} else {
  test('subvol=@ at /, @home at /home and a nested subvolume: layout and tree captured, applied, restored', async () => {
    await withLoopDisks(['400M', '400M'], async ([golden, blank], dir) => {
      sh(['sfdisk', '--quiet', golden], 'label: gpt\nsize=+, type=linux\n');
      sh(['partx', '-u', golden]);
      const part = `${golden}p1`;
      sh(['mkfs.btrfs', '-q', '-f', '-L', 'groot', part]);
      const top = path.join(dir, 'top');
      await mkdir(top);
      sh(['mount', part, top]);
      sh(['btrfs', '-q', 'subvolume', 'create', path.join(top, '@')]);
      sh(['btrfs', '-q', 'subvolume', 'create', path.join(top, '@home')]);
      await mkdir(path.join(top, '@/etc'));
      await mkdir(path.join(top, '@/home'));
      await mkdir(path.join(top, '@/var/lib'), { recursive: true });
      sh(['btrfs', '-q', 'subvolume', 'create', path.join(top, '@/var/lib/machines')]);
      await writeFile(path.join(top, '@/var/lib/machines/vm.raw'), 'machine image\n');
      await writeFile(path.join(top, '@/etc/hostname'), 'golden01\n');
      await mkdir(path.join(top, '@home/bob'));
      await writeFile(path.join(top, '@home/bob/notes.txt'), 'bob data\n');
      await writeFile(path.join(top, '@/etc/fstab'), 'LABEL=groot / btrfs subvol=/@,compress=zstd:1,noatime 0 0\nLABEL=groot /home btrfs subvol=@home 0 0\n');
      sh(['umount', top]);
      const root = path.join(dir, 'root');
      await mkdir(root);
      sh(['mount', '-o', 'subvol=/@', part, root]);
      sh(['mount', '-o', 'subvol=/@home', part, path.join(root, 'home')]);

      const { layout } = await captureLayout({ root });
      const fs = layout.filesystems![0];
      assert.equal([fs.type, fs.mount, fs.subvolumes], ['btrfs', undefined, [{ path: '@', mount: '/', mountOptions: 'compress=zstd:1,noatime' }, { path: '@home', mount: '/home' }]]);
      assert.equal(layoutMounts(layout), ['/', '/home']);

      const store = await LocalStore.open(path.join(dir, 'store'), { create: true });
      let plan: ApplyPlan | undefined;
      try {
        const captured = await captureTree({ root, store, chunker: store.config.chunker, includeMounts: layoutMounts(layout) });
        assert.equal(captured.leftOut, []);
        plan = await applyLayout(layout, { devices: [blank], force: true, target: path.join(dir, 'target') });
        const target = path.join(dir, 'target');
        assert.match(plan.fstab, new RegExp(`UUID=${plan.filesystems[0].uuid} / btrfs subvol=/@,compress=zstd:1,noatime 0 0`));
        assert.match(plan.fstab, new RegExp(`UUID=${plan.filesystems[0].uuid} /home btrfs subvol=/@home 0 0`));
        assert.is(plan.rootDevice, `${blank}p1`);
        assert.is(sh(['findmnt', '-n', '-o', 'FSROOT', path.join(target, 'home')]).trim(), '/@home');
        const warnings: string[] = [];
        await restoreTree({ reader: store, tree: captured.tree, target, onWarning: (m) => warnings.push(m) });
        assert.equal(warnings, []);
        assert.is(await readFile(path.join(target, 'home/bob/notes.txt'), 'utf8'), 'bob data\n');
        assert.is(await readFile(path.join(target, 'var/lib/machines/vm.raw'), 'utf8'), 'machine image\n');
        assert.is(statSync(path.join(target, 'var/lib/machines')).ino, 256, 'a subvolume again');
        assert.match(sh(['btrfs', 'subvolume', 'list', target]), /top level 256 path var\/lib\/machines\n/);
        // The sync check sees the subvolumes (the disk is mounted: a check only reads).
        const sync = await checkLayoutSync(layout, { devices: [blank] });
        assert.ok(sync.inSync, sync.differences.join('\n'));
        const more = structuredClone(layout);
        more.filesystems![0].subvolumes!.push({ path: '@srv' });
        assert.equal((await checkLayoutSync(more, { devices: [blank] })).differences, [`filesystem on disk0p1 (${blank}p1): no subvolume @srv`]);
      } finally {
        if (plan) await unmountPlan(plan);
        await store.close();
      }
    });
  });
}

test('subvolumes are refused on another filesystem, with ".." in a path, or with subvol= in their options', () => {
  const base = {
    format: 'cloner-layout/1',
    disks: [{ id: 'd', table: 'gpt', partitions: [{ id: 'p1', size: 'grow', type: 'linux' }] }],
    filesystems: [{ device: 'p1', type: 'btrfs', subvolumes: [{ path: '@', mount: '/' }] }],
  };
  assert.equal(parseLayout(base).filesystems![0].subvolumes, [{ path: '@', mount: '/' }]);
  const bad: Array<[(l: any) => void, RegExp]> = [
    [(l) => (l.filesystems[0].type = 'ext4'), /^filesystems\[0\]\.subvolumes: only btrfs has subvolumes, this filesystem is ext4/],
    [(l) => (l.filesystems[0].subvolumes[0].path = '@/../etc'), /^filesystems\[0\]\.subvolumes\[0\]\.path: subvolume path "@\/\.\.\/etc" is not a relative path/],
    [(l) => (l.filesystems[0].subvolumes[0].mountOptions = 'noatime,subvol=x'), /^filesystems\[0\]\.subvolumes\[0\]\.mountOptions: leave out subvol= and subvolid=/],
    [(l) => l.filesystems[0].subvolumes.push({ path: '@home', mount: '/' }), /^filesystems\[0\]\.subvolumes\[1\]\.mount: mount point "\/" is also used by filesystems\[0\]/],
    [(l) => (l.filesystems[0].subvolumes[0].mount = '/proc/x'), /^filesystems\[0\]\.subvolumes\[0\]\.mount: mount point "\/proc\/x" is inside \/proc/],
  ];
  for (const [edit, message] of bad) {
    const doc = structuredClone(base);
    edit(doc);
    assert.throws(() => parseLayout(doc), (e: Error) => message.test(e.message), `${message}`);
  }
});

test.run();
