/**
 * The image selection is one rule: the progress count, the capture and a deploy's keep
 * list all follow it. A live node's swap file and the excluded paths are left out of the
 * capture, and the count's total (files and bytes) is exactly what the capture stores.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { realpath, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { captureTree } from '../../core/tree/capture.ts';
import { countTree } from '../../core/tree/count.ts';
import { loadTree } from '../../core/tree/restore.ts';
import { deployKeepList, excludeMatcher, imageSelection, LIVE_NODE_EXCLUDES, NODE_STATE_DIR } from '../../core/tree/select.ts';
import { file, hardlink, makeTree, seededBytes, symlink } from '../helpers/fixtures.ts';
import { withStore } from '../helpers/store.ts';

test('a live node: count total = what capture stores, without swap files or excluded paths', async () => {
  await withStore(async (store, work) => {
    await makeTree(path.join(work, 'node'), {
      'etc/hostname': file('golden\n'),
      'usr/bin/tool': file(seededBytes(1, 70_000)),
      'usr/bin/tool-link': hardlink('usr/bin/tool'),
      'usr/bin/sh': symlink('tool'),
      'var/log/syslog.log': file('log line\n'),
      'scratch/big': file(seededBytes(2, 50_000)),
      'tmp/junk': file('tmp'),
      'proc/1/status': file('not really proc'),
      'var/lib/cloner/deployed.json': file('{}'),
      'swapfile': file(Buffer.alloc(1024 * 1024), 0o600),
      'var/swap file': file(Buffer.alloc(1024 * 1024), 0o600),
    });
    // The kernel lists canonical paths.
    const root = await realpath(path.join(work, 'node'));
    // Real swap files (not switched on: the swap table below names them as the kernel would).
    for (const swap of ['swapfile', 'var/swap file']) {
      const made = spawnSync('mkswap', [path.join(root, swap)], { encoding: 'utf8' });
      assert.is(made.status, 0, made.stderr);
    }
    const swapTable = path.join(work, 'swaps');
    await writeFile(
      swapTable,
      'Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n' +
        `/dev/sda2                               partition\t1048572\t\t0\t\t-2\n` +
        `${root}/swapfile                        file\t\t1020\t\t0\t\t-3\n` +
        `${root}/var/swap\\040file                file\t\t1020\t\t0\t\t-4\n` +
        `/elsewhere/swapfile                     file\t\t1020\t\t0\t\t-5\n`,
    );
    const options = { root, exclude: ['/scratch', '*.log'], liveNode: true, swapTable };
    const selection = await imageSelection(options);
    assert.equal(selection.swapFiles, ['/swapfile', '/var/swap file']);

    // The capture builds its own selection from the same options: the rule, not a shared object, must agree.
    const { tree, progress } = await captureTree({ ...options, store, chunker: store.config.chunker });
    const files = (await loadTree(store, tree)).flatMap(({ rel, entry }) => (entry.type === 'file' ? [{ rel, size: entry.size }] : []));
    assert.equal(files.map((f) => f.rel).sort(), ['/etc/hostname', '/usr/bin/tool', '/usr/bin/tool-link']);
    const stored = { files: files.length, bytes: files.reduce((sum, f) => sum + f.size, 0) };
    assert.equal(stored, { files: 3, bytes: 7 + 2 * 70_000 });
    assert.equal(await countTree(selection), stored);
    assert.equal({ files: progress.files, bytes: progress.bytes }, stored);
  });
});

test('swap files are only left out of a live node; a non-live root reads no swap table', async () => {
  await withStore(async (store, work) => {
    const root = await realpath(work);
    await writeFile(path.join(work, 'swaps'), `Filename Type Size Used Priority\n${root}/swaps file 1 0 -2\n`);
    assert.equal((await imageSelection({ root, swapTable: path.join(work, 'swaps') })).swapFiles, []);
    assert.equal((await imageSelection({ root, liveNode: true, swapTable: path.join(work, 'swaps') })).swapFiles, ['/swaps']);
    assert.equal((await imageSelection({ root, liveNode: true, swapTable: path.join(work, 'missing') })).swapFiles, []);
  });
});

test('mounts: the layout\'s are entered (trailing slash or not), others not, all with crossMounts; a device change that is no mount point (a nested btrfs subvolume) is entered', async () => {
  await withStore(async (_store, work) => {
    const table = path.join(work, 'mountinfo');
    const line = (id: number, at: string) => `${id} 1 0:${id} / ${at} rw,relatime shared:1 - ext4 /dev/x rw`;
    await writeFile(table, [line(20, '/'), line(21, '/nonexistent/boot/efi'), line(22, '/nonexistent/home'), line(23, '/nonexistent/mnt'), line(24, '/nonexistent/with\\040blank'), ''].join('\n'));
    const layout = await imageSelection({ root: '/nonexistent', includeMounts: ['/boot/efi/', '/home', '/'], mountTable: table });
    assert.ok(layout.entersMount('/boot/efi'));
    assert.ok(layout.entersMount('/home'));
    assert.not.ok(layout.entersMount('/mnt'));
    assert.not.ok(layout.entersMount('/with blank'), 'octal escapes are decoded');
    assert.ok(layout.entersMount('/var/lib/machines'), 'not a mount point: a subvolume of the same file system');
    assert.not.ok(layout.isMountPoint('/var/lib/machines'));
    assert.ok((await imageSelection({ root: '/nonexistent', crossMounts: true, mountTable: table })).entersMount('/mnt'));
    assert.not.ok((await imageSelection({ root: '/nonexistent', mountTable: path.join(work, 'missing') })).entersMount('/anything'), 'no mount table: every device change is a mount');
  });
});

test('a deploy keeps what a live-node capture leaves out, and the image\'s own excludes', () => {
  assert.equal(new Set(deployKeepList()), new Set([...LIVE_NODE_EXCLUDES, NODE_STATE_DIR]));
  const kept = excludeMatcher(deployKeepList(['/scratch', '*.log']));
  for (const p of ['/proc/1', '/dev/null', '/tmp/x', '/run/lock', '/sys/kernel', NODE_STATE_DIR, '/scratch', '/var/log/a.log']) assert.ok(kept(p), p);
  for (const p of ['/proc', '/etc/hostname', '/var/lib/cloner-other', '/scratchpad']) assert.not.ok(kept(p), p);
});

test.run();
