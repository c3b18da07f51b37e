/**
 * The layout commands of the CLI, run as a user would (child processes, real loop disks):
 * new-image --disklayout captures the layout, a second image reuses it, disklayout
 * exports, disklayout-upload stores an edited file and refuses a bad one with one line and
 * a hint, disklayout-apply prints a dry run, needs --force, then partitions a blank disk
 * with the edited layout; update-disklayout records a new layout name, and a second disk
 * mounted under the root is a second drive unless --exclude-devices leaves it out.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { loopUnavailable, makeGoldenDisk, sh, withLoopDisks } from '../helpers/loop.ts';
import { cloner, clonerWithInput } from '../helpers/cli.ts';

const blocker = loopUnavailable();
if (blocker) {
  console.log(`skipped: layout CLI on loop devices: ${blocker}`);
  test.skip('layout CLI', () => {});
} else {
  test('new-image --disklayout, reuse, disklayout, disklayout-upload, disklayout-apply, update-disklayout', async () => {
    await withLoopDisks(['1200M', '1300M'], async ([golden, blank], dir) => {
      const root = await makeGoldenDisk(golden, dir);
      const store = path.join(dir, 'store');
      // Without --yes it shows the drives and directories and asks; "n" stores nothing.
      let r = clonerWithInput('n\n', 'new-image', '--store', store, '--init', '--image', 'node', '--disklayout', 'node', '--root', root);
      assert.is(r.code, 0, r.err);
      assert.match(r.out, /drives \(disk layout node, captured now\):\n  drive disk0 \(loop\d+, 1\.17 GiB\): gpt, disk0p1 64\.00 MiB swap, disk0p2 400\.00 MiB linux, disk0p3 rest linux\n/);
      assert.match(r.out, /filesystem xfs on disk0p3 at \/data \(label gdata\)/);
      assert.match(r.out, new RegExp(`directories: ${root}, /data \\(own filesystem\\)\n`));
      assert.match(r.err, /Is this correct\? \[y\/N\] n/);
      assert.match(r.out, /nothing done/);
      assert.equal(JSON.parse(cloner('disklayout', '--store', store, '--json').out), []);
      // A dry run of a first capture shows the layout it would capture (and the /data files
      // its filesystems bring in), and stores neither the layout nor the image.
      r = cloner('new-image', '--store', store, '--image', 'node', '--disklayout', 'node', '--root', root, '--dry-run');
      assert.is(r.code, 0, r.err);
      assert.match(r.out, /drives \(disk layout node, captured now\):\n  drive disk0 /);
      assert.match(r.out, /dry run: image node would have 2 files, .*nothing was sent/);
      assert.equal(JSON.parse(cloner('disklayout', '--store', store, '--json').out), []);
      assert.equal(JSON.parse(cloner('image-list', '--store', store, '--json').out), []);
      r = clonerWithInput('y\n', 'new-image', '--store', store, '--image', 'node', '--disklayout', 'node', '--root', root);
      assert.is(r.code, 0, r.err);
      assert.match(r.out, /disk layout node version 1 stored/);
      // 2 files: etc/fstab on the ext4 root and data/payload on the xfs /data mount, which the
      // capture enters because /data is one of the layout's filesystems.
      assert.match(r.out, /image node revision 1: 2 files/);

      r = cloner('new-image', '--store', store, '--image', 'other', '--disklayout', 'node', '--root', root, '--yes');
      assert.is(r.code, 0, r.err);
      assert.match(r.out, /disk layout node: reusing version 1/);
      const details = JSON.parse(cloner('image-details', '--store', store, '--image', 'other', '--json').out);
      assert.is(details.revisions[0].layout, 'node');

      const file = path.join(dir, 'node.json');
      r = cloner('disklayout', '--store', store, '--image', 'node', '--disklayout', 'node', '--output', file);
      assert.is(r.code, 0, r.err);
      const edited = JSON.parse(await readFile(file, 'utf8'));
      edited.disks[0].partitions[0].size = '128M';
      await writeFile(file, JSON.stringify(edited, null, 2));
      r = cloner('disklayout-upload', '--store', store, '--image', 'node', '--disklayout', 'node', '--file', file);
      assert.is(r.code, 0, r.err);
      assert.match(r.out, /disk layout node version 2 stored/);

      edited.filesystems[0].type = 'reiserfs';
      await writeFile(file, JSON.stringify(edited));
      r = cloner('disklayout-upload', '--store', store, '--image', 'node', '--disklayout', 'node', '--file', file);
      assert.is(r.code, 2);
      assert.match(r.err, /^cloner: error: filesystems\[0\]\.type: unknown filesystem type "reiserfs" \(supported: [^)]+\)\nhint: .+\n$/);
      const listed = JSON.parse(cloner('disklayout', '--store', store, '--json').out);
      assert.equal(listed.map((l: { name: string; versions: number }) => [l.name, l.versions]), [['node', 2]]);

      const target = path.join(dir, 'target');
      r = cloner('disklayout-apply', '--store', store, '--disklayout', 'node', '--disks', blank, '--target', target, '--dry-run', '--force');
      assert.is(r.code, 0, r.err);
      assert.match(r.out, new RegExp(`sfdisk --quiet --wipe always --wipe-partitions always ${blank} <<'EOF'\\nlabel: gpt\\nunit: sectors\\n\\n${blank}p1 : start=2048, size=262144, type=0657FD6D`));
      assert.is(sh(['wipefs', '-n', blank]).trim(), '');

      r = cloner('disklayout-apply', '--store', store, '--disklayout', 'node', '--disks', blank, '--target', target);
      assert.is(r.code, 2);
      assert.match(r.err, /this is not the cloner boot environment\nhint: add --force/);

      r = cloner('disklayout-apply', '--store', store, '--disklayout', 'node', '--disks', blank, '--target', target, '--force');
      try {
        assert.is(r.code, 0, r.err);
        assert.match(r.out, new RegExp(`done: disk0=${blank}; root ${blank}p2; EFI system partition -`));
        assert.is(Number(sh(['blockdev', '--getsize64', `${blank}p1`]).trim()), 128 * 1024 * 1024);
        assert.is(sh(['findmnt', '-n', '-o', 'FSTYPE', path.join(target, 'data')]).trim(), 'xfs');
      } finally {
        spawnSync('umount', ['-R', target]);
      }

      // --exclude-devices differs from the stored (none): the stored wins with --update-conflict server.
      r = cloner('update-disklayout', '--store', store, '--image', 'node', '--disklayout', 'node-v2', '--root', root, '--exclude-devices', '/dev/nosuch', '--update-conflict', 'server');
      assert.is(r.code, 0, r.err);
      assert.match(r.out, /disk layout node-v2:\n  drive disk0/);
      assert.match(r.out, /disk layout node-v2 version 1 stored/);
      assert.match(r.out, /image node revision 2 uses disk layout node-v2/);
      assert.equal(JSON.parse(cloner('config', '--store', store, '--image', 'node', '--json').out).image.options.excludeDevices, []);
      // With commandline, the given --exclude-devices is stored (and the golden disk is not excluded by it).
      r = cloner('update-disklayout', '--store', store, '--image', 'node', '--disklayout', 'node-v2', '--root', root, '--exclude-devices', '/dev/nosuch', '--update-conflict', 'commandline');
      assert.is(r.code, 0, r.err);
      assert.match(r.out, /disk layout node-v2 version 2 stored/);
      assert.equal(JSON.parse(cloner('config', '--store', store, '--image', 'node', '--json').out).image.options.excludeDevices, ['/dev/nosuch']);

      // A second real disk mounted under the root: captured as a second drive, unless
      // --exclude-devices leaves it out (then its filesystem is not in the layout either).
      const scratch = path.join(root, 'scratch');
      sh(['mkdir', '-p', scratch]);
      sh(['mount', `${blank}p3`, scratch]);
      try {
        const drives = (name: string) => {
          const file = path.join(dir, `${name}.json`);
          assert.is(cloner('disklayout', '--store', store, '--disklayout', name, '--output', file).code, 0);
          return JSON.parse(spawnSync('cat', [file], { encoding: 'utf8' }).stdout) as { disks: unknown[]; filesystems: Array<{ mount?: string }> };
        };
        r = cloner('update-disklayout', '--store', store, '--image', 'node', '--disklayout', 'both', '--root', root, '--exclude-devices', '', '--update-conflict', 'commandline');
        assert.is(r.code, 0, r.err);
        const both = drives('both');
        assert.is(both.disks.length, 2, 'the scratch disk is a second drive');
        assert.ok(both.filesystems.some((f) => f.mount === '/scratch'));
        r = cloner('update-disklayout', '--store', store, '--image', 'node', '--disklayout', 'one', '--root', root, '--exclude-devices', blank, '--update-conflict', 'commandline');
        assert.is(r.code, 0, r.err);
        const one = drives('one');
        assert.is(one.disks.length, 1, 'the excluded disk is left out');
        assert.not.ok(one.filesystems.some((f) => f.mount === '/scratch'));
        assert.equal(JSON.parse(cloner('config', '--store', store, '--image', 'node', '--json').out).image.options.excludeDevices, [blank]);
      } finally {
        spawnSync('umount', [scratch]);
      }
    });
  });
}

test.run();
