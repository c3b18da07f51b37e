/**
 * `cloner disklayout-apply --dry-run` makes the real run's safety checks, on real loop
 * disks: a mounted disk, a disk too small for the layout, a --disks device that is not
 * there, and no --force outside the cloner boot environment. For each, the dry run prints
 * what it would do with the refusal first (or the refusal alone when nothing can be
 * planned) and exits 2 with the same reason the real run gives; nothing is written. With
 * every check passed it exits 0.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import path from 'node:path';
import { loopUnavailable, makeGoldenDisk, sh, withLoopDisks } from '../helpers/loop.ts';
import { cloner } from '../helpers/cli.ts';

const blocker = loopUnavailable();
if (blocker) {
  console.log(`skipped: disklayout-apply dry run on loop devices: ${blocker}`);
  test.skip('disklayout-apply --dry-run refusals', () => {});
} else {
  test('disklayout-apply --dry-run reports the real run\'s refusals and exits 2', async () => {
    await withLoopDisks(['1200M', '1300M', '64M'], async ([golden, blank, tiny], dir) => {
      const root = await makeGoldenDisk(golden, dir);
      const store = path.join(dir, 'store');
      let r = cloner('new-image', '--store', store, '--init', '--image', 'node', '--disklayout', 'node', '--root', root, '--yes');
      assert.is(r.code, 0, r.err);
      const apply = (...args: string[]) => cloner('disklayout-apply', '--store', store, '--disklayout', 'node', '--target', path.join(dir, 'never'), ...args);
      const signatures = (dev: string) => sh(['wipefs', '-n', dev]);
      const before = { golden: signatures(golden), blank: signatures(blank) };
      const oneLine = (err: string) => assert.match(err, /^cloner: error: [^\n]+\nhint: [^\n]+\n$/);

      // The golden disk is mounted: the dry run shows its plan with the refusal on top.
      r = apply('--disks', golden, '--force', '--dry-run');
      assert.is(r.code, 2, r.err);
      oneLine(r.err);
      assert.match(r.out, new RegExp(`^# REFUSED \\(the real run stops here, before any command\\): refusing to touch ${golden}: [^\\n]*mounted`));
      assert.match(r.out, new RegExp(`\\nwipefs -a -q ${golden}\\n`), 'the plan is still shown');
      assert.match(r.err, new RegExp(`^cloner: error: the real run would refuse: refusing to touch ${golden}: `));
      const real = apply('--disks', golden, '--force');
      assert.is(real.code, 2);
      assert.match(real.err, new RegExp(`^cloner: error: refusing to touch ${golden}: `));
      assert.ok(r.err.includes(real.err.split('\n')[0].replace('cloner: error: ', '')), `the dry run gives the real run's reason:\n${r.err}\n${real.err}`);
      const json = JSON.parse(apply('--disks', golden, '--force', '--dry-run', '--json').out);
      assert.equal(json.refusals.map((x: { code: string }) => x.code), ['LAYOUT_DISK_IN_USE']);

      // Without --force outside the cloner boot environment: the second refusal is listed too.
      r = apply('--disks', golden, '--dry-run');
      assert.is(r.code, 2);
      assert.match(r.out, /^# REFUSED[^\n]+mounted[^\n]*\n# REFUSED[^\n]+not the cloner boot environment/);
      assert.match(r.err, /and 1 more reason, listed above/);

      // A disk too small for the layout, and a device the node does not have: nothing to plan,
      // the dry run fails with the real run's error.
      for (const [disks, reason] of [[tiny, /LAYOUT_TOO_SMALL|too small|does not fit|cannot hold/], ['/dev/nosuch', /\/dev\/nosuch is not a disk of this node/]] as const) {
        const dry = apply('--disks', disks, '--force', '--dry-run');
        const wet = apply('--disks', disks, '--force');
        assert.is(dry.code, 2, dry.err);
        assert.is(wet.code, 2, wet.err);
        oneLine(dry.err);
        assert.match(dry.err, reason);
        assert.is(dry.err, wet.err, 'the same refusal as the real run');
      }

      // A free disk, no --force: the plan and the one refusal; with --force no refusal, exit 0.
      r = apply('--disks', blank, '--dry-run');
      assert.is(r.code, 2);
      assert.match(r.out, /^# REFUSED[^\n]+this is not the cloner boot environment; add --force/);
      assert.match(r.err, /^cloner: error: the real run would refuse: applying a layout erases [^\n]+\nhint: add --force/);
      r = apply('--disks', blank, '--dry-run', '--force');
      assert.is(r.code, 0, r.err);
      assert.not.match(r.out, /REFUSED/);
      assert.match(r.out, new RegExp(`sfdisk --quiet --wipe always --wipe-partitions always ${blank} <<'EOF'`));

      assert.equal({ golden: signatures(golden), blank: signatures(blank) }, before, 'a dry run writes nothing');
    });
  });
}

test.run();
