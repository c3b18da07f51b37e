/**
 * runSteps (core/layout/apply.ts) with real processes: steps next to each other with the same
 * `together` key run at once (one waits for a file the other makes, which only works if both
 * run), all of them finish before the next step, the first failure in step order is the one
 * thrown, and the plan of a layout with several file systems puts their mkfs together.
 * No timing: each proof is a side effect that only the right order can produce.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { planLayout, runSteps } from '../../core/layout/apply.ts';
import type { Step } from '../../core/layout/steps.ts';
import { withTempDir } from '../helpers/fixtures.ts';

/** A step that waits (up to ~3 s) for `file` to exist, then appends `mark` to `log`. */
const waitFor = (file: string, log: string, mark: string): Step => ({ what: `wait for ${path.basename(file)}`, argv: ['sh', '-c', `i=0; while [ ! -e "$1" ]; do i=$((i+1)); [ $i -gt 300 ] && exit 7; sleep 0.01; done; echo ${mark} >> "$2"`, 'sh', file, log] });
const touch = (file: string, log: string, mark: string): Step => ({ what: `make ${path.basename(file)}`, argv: ['sh', '-c', `touch "$1"; echo ${mark} >> "$2"`, 'sh', file, log] });

test('steps together run at once and all finish before the next', async () => {
  await withTempDir(async (dir) => {
    const log = path.join(dir, 'log');
    const f = path.join(dir, 'f');
    const lines: string[] = [];
    await runSteps([{ ...waitFor(f, log, 'waited'), together: 'mkfs' }, { ...touch(f, log, 'made'), together: 'mkfs' }, touch(path.join(dir, 'g'), log, 'next')], (l) => lines.push(l));
    assert.equal(readFileSync(log, 'utf8').split('\n').filter(Boolean), ['made', 'waited', 'next']);
    assert.is(lines.length, 3);
    assert.match(lines[0], /^\[1\/3\] wait for f: /);
  });
});

test('without the key the same steps run in order (the first waits in vain)', async () => {
  await withTempDir(async (dir) => {
    const log = path.join(dir, 'log');
    const f = path.join(dir, 'f');
    let message = '';
    await runSteps([waitFor(f, log, 'waited'), touch(f, log, 'made')]).catch((err: Error) => (message = err.message));
    assert.match(message, /step 1\/2 \(wait for f\) failed/);
    assert.not.ok(existsSync(f), 'the second step never ran');
  });
});

test('a failure among steps together: the first in step order, after all of them finished', async () => {
  await withTempDir(async (dir) => {
    const log = path.join(dir, 'log');
    const late = path.join(dir, 'late');
    let message = '';
    await runSteps([
      { what: 'mkfs one', argv: ['sh', '-c', 'sleep 0.2; exit 3'], together: 'mkfs' },
      { what: 'mkfs two', argv: ['sh', '-c', 'exit 4'], together: 'mkfs' },
      { ...touch(late, log, 'three'), together: 'mkfs' },
      touch(path.join(dir, 'after'), log, 'after'),
    ]).catch((err: Error) => (message = err.message));
    assert.match(message, /step 1\/4 \(mkfs one\) failed/);
    assert.ok(existsSync(late), 'the others ran to their end');
    assert.not.ok(existsSync(path.join(dir, 'after')), 'nothing after them ran');
  });
});

test('the plan puts the mkfs of every file system together, subvolumes after them', async () => {
  const layout = {
    format: 'cloner-layout/1',
    disks: [{ id: 'd', table: 'gpt', partitions: [{ id: 'esp', size: '256MiB', type: 'uefi' }, { id: 'swap', size: '512MiB', type: 'swap' }, { id: 'root', size: 'grow', type: 'linux' }] }],
    filesystems: [{ device: 'esp', type: 'vfat', mount: '/boot/efi' }, { device: 'swap', type: 'swap' }, { device: 'root', type: 'btrfs', subvolumes: [{ path: '@', mount: '/' }] }],
  };
  const plan = await planLayout(layout as never, { nodeDisks: [{ name: 'vdz', path: '/dev/vdz', size: 8 * 1024 ** 3, model: null, serial: null, rotational: false, transport: 'virtio', kind: 'disk', readOnly: false, removable: false, logicalSectorSize: 512, inUse: null }] });
  const kinds = plan.steps.map((s) => (s.together ? `${s.together}:${s.argv[0]}` : s.argv[0]));
  const first = kinds.findIndex((k) => k.startsWith('mkfs:'));
  assert.equal(kinds.slice(first, first + 3), ['mkfs:mkfs.vfat', 'mkfs:mkswap', 'mkfs:mkfs.btrfs']);
  assert.is(kinds[first + 3], 'mkdir', 'the subvolumes come after every mkfs');
  assert.ok(kinds.slice(first + 3).includes('btrfs'));
});

test.run();
