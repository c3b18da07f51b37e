/**
 * Inode flags on real ext4, xfs and btrfs (loop devices, real chattr): each flag the file
 * system takes is captured and restored onto files and directories (an immutable directory
 * with files in it too, set after its content); a re-deploy over a node whose files and
 * directories are immutable or append-only (an admin's pin) replaces, deletes and adds what
 * the new revision says, sets the image's flags, keeps the node's pins and leaves no
 * staging directory; a manifest with flags out of order, unknown or on a symlink is refused.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { captureTree } from '../../core/tree/capture.ts';
import { restoreTree } from '../../core/tree/restore.ts';
import { syncTree } from '../../core/tree/sync.ts';
import { readFlags } from '../../core/tree/inode-flags.ts';
import { ManifestError, parseDirectory } from '../../core/tree/manifest.ts';
import { haveTool } from '../../core/tools.ts';
import { LocalStore } from '../../core/store/local.ts';
import { loopUnavailable, sh, withLoopDisks } from '../helpers/loop.ts';

/** The flags each file system takes through FS_IOC_SETFLAGS (beyond i, a, d, A, S). */
const EXTRA: Record<string, { file: string[]; dir: string[] }> = {
  ext4: { file: [], dir: ['D', 'T'] },
  xfs: { file: [], dir: [] },
  btrfs: { file: ['c'], dir: ['C'] },
};
const MKFS: Record<string, string[]> = { ext4: ['mkfs.ext4', '-q', '-F'], xfs: ['mkfs.xfs', '-q', '-f'], btrfs: ['mkfs.btrfs', '-q', '-f'] };

function chattr(flags: string, ...paths: string[]): void {
  sh(['chattr', flags, ...paths]);
}

/** Every file and directory below root with its kept flags (rel -> letters). */
async function flagsBelow(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const name of (await readdir(root, { recursive: true })).sort()) {
    if (name.startsWith('.cloner-sync') || name.startsWith('lost+found')) continue;
    const f = readFlags(Buffer.from(path.join(root, name)));
    if (f) out[name] = f;
  }
  return out;
}

async function withFilesystem(type: string, work: (mnt: string) => Promise<void>): Promise<void> {
  await withLoopDisks(['400M'], async ([device], dir) => {
    sh([...MKFS[type], device]);
    const mnt = path.join(dir, 'mnt');
    await mkdir(mnt);
    sh(['mount', device, mnt]);
    try {
      await work(mnt);
    } finally {
      spawnSync('chattr', ['-R', '-i', '-a', mnt]);
    }
  });
}

const blocker = loopUnavailable() ?? (haveTool('chattr') ? null : 'chattr is not installed (e2fsprogs)');
if (blocker) {
  console.log(`skipped: inode flags: ${blocker}`);
  test.skip('inode flags', () => {});
} else {
  for (const type of ['ext4', 'xfs', 'btrfs']) {
    test(`${type}: i, a, d, A, S and ${[...EXTRA[type].file, ...EXTRA[type].dir].join(', ') || 'no other'} flags are captured and restored, after content`, async () => {
      if (!haveTool(MKFS[type][0])) return;
      await withFilesystem(type, async (mnt) => {
        const src = path.join(mnt, 'src');
        await mkdir(path.join(src, 'etc'), { recursive: true });
        await mkdir(path.join(src, 'pinned'), { recursive: true });
        await mkdir(path.join(src, 'tuned'), { recursive: true });
        await writeFile(path.join(src, 'etc/resolv.conf'), 'nameserver 198.18.0.53\n');
        await writeFile(path.join(src, 'audit.log'), 'start\n');
        await writeFile(path.join(src, 'scratch.tmp'), 'nodump\n');
        await writeFile(path.join(src, 'quiet'), 'noatime, sync\n');
        await writeFile(path.join(src, 'pinned/inside'), 'in an immutable directory\n');
        await writeFile(path.join(src, 'extra'), 'more flags\n');
        chattr('+i', path.join(src, 'etc/resolv.conf'));
        chattr('+a', path.join(src, 'audit.log'));
        chattr('+d', path.join(src, 'scratch.tmp'));
        chattr('+AS', path.join(src, 'quiet'));
        for (const f of EXTRA[type].file) chattr(`+${f}`, path.join(src, 'extra'));
        for (const f of EXTRA[type].dir) chattr(`+${f}`, path.join(src, 'tuned'));
        chattr('+i', path.join(src, 'pinned'));
        const want = await flagsBelow(src);
        assert.is(want['etc/resolv.conf'], 'i');
        assert.is(want.pinned, 'i');
        const store = await LocalStore.open(path.join(mnt, 'store'), { create: true });
        try {
          const { tree } = await captureTree({ root: src, store, chunker: store.config.chunker });
          const out = path.join(mnt, 'out');
          await mkdir(out);
          const warnings: string[] = [];
          await restoreTree({ reader: store, tree, target: out, onWarning: (m) => warnings.push(m) });
          assert.equal(warnings, []);
          assert.equal(await flagsBelow(out), want);
          assert.is(await readFile(path.join(out, 'pinned/inside'), 'utf8'), 'in an immutable directory\n');
          assert.is(await readFile(path.join(out, 'etc/resolv.conf'), 'utf8'), 'nameserver 198.18.0.53\n');
        } finally {
          await store.close();
        }
      });
    });
  }

  test('a re-deploy over immutable and append-only files and directories: replaced, deleted, added; image flags set, node pins kept, no staging left', async () => {
    await withFilesystem('ext4', async (mnt) => {
      const src = path.join(mnt, 'src');
      const node = path.join(mnt, 'node');
      await mkdir(path.join(src, 'etc'), { recursive: true });
      await mkdir(path.join(src, 'var/log'), { recursive: true });
      await mkdir(path.join(src, 'old'), { recursive: true });
      await writeFile(path.join(src, 'etc/resolv.conf'), 'nameserver 198.18.0.53\n');
      await writeFile(path.join(src, 'etc/hosts'), '127.0.0.1 localhost\n');
      await writeFile(path.join(src, 'var/log/audit.log'), 'start\n');
      await writeFile(path.join(src, 'old/gone'), 'deleted next\n');
      chattr('+i', path.join(src, 'etc/resolv.conf'));
      chattr('+a', path.join(src, 'var/log/audit.log'));
      const store = await LocalStore.open(path.join(mnt, 'store'), { create: true });
      try {
        const one = await captureTree({ root: src, store, chunker: store.config.chunker });
        await mkdir(node);
        await syncTree({ reader: store, tree: one.tree, target: node, chunker: store.config.chunker });
        // On the node, an admin pins more: hosts, the directory that goes, and /var/log.
        chattr('+i', path.join(node, 'etc/hosts'), path.join(node, 'old/gone'), path.join(node, 'old'));
        chattr('+a', path.join(node, 'var/log'));
        // The next revision changes resolv.conf and hosts, drops old/, adds a log file.
        chattr('-i', path.join(src, 'etc/resolv.conf'));
        await writeFile(path.join(src, 'etc/resolv.conf'), 'nameserver 198.18.0.54\n');
        chattr('+i', path.join(src, 'etc/resolv.conf'));
        await writeFile(path.join(src, 'etc/hosts'), '127.0.0.1 localhost\n10.0.0.1 head\n');
        spawnSync('chattr', ['-R', '-i', path.join(src, 'old')]);
        sh(['rm', '-r', path.join(src, 'old')]);
        await writeFile(path.join(src, 'var/log/new.log'), 'new\n');
        const two = await captureTree({ root: src, store, chunker: store.config.chunker, parentTree: one.tree });
        const warnings: string[] = [];
        await syncTree({ reader: store, tree: two.tree, target: node, chunker: store.config.chunker, onWarning: (m) => warnings.push(m) });
        assert.is(await readFile(path.join(node, 'etc/resolv.conf'), 'utf8'), 'nameserver 198.18.0.54\n');
        assert.is(await readFile(path.join(node, 'etc/hosts'), 'utf8'), '127.0.0.1 localhost\n10.0.0.1 head\n');
        assert.is(await readFile(path.join(node, 'var/log/new.log'), 'utf8'), 'new\n');
        assert.not.ok(existsSync(path.join(node, 'old')));
        assert.not.ok(existsSync(path.join(node, '.cloner-sync')));
        assert.equal(await flagsBelow(node), { 'etc/hosts': 'i', 'etc/resolv.conf': 'i', 'var/log': 'a', 'var/log/audit.log': 'a' });
        assert.equal(warnings.filter((w) => /inode flags/.test(w)).sort(), [
          '/etc/hosts has inode flags i on the node that the image does not: cleared to sync it, set again after',
          '/old has inode flags i on the node that the image does not: cleared to sync it, set again after',
          '/old/gone has inode flags i on the node that the image does not: cleared to sync it, set again after',
          '/var/log has inode flags a on the node that the image does not: cleared to sync it, set again after',
        ]);
      } finally {
        await store.close();
      }
    });
  });
}

test('a manifest with inode flags out of order, unknown, or on a symlink is refused', () => {
  const base = { name: 'f', mode: 0o644, uid: 0, gid: 0, mtime: [1, 0], type: 'file', size: 0, chunks: [] };
  for (const [iflags, type] of [['ai', 'file'], ['iz', 'file'], ['', 'file'], [17, 'file'], ['i', 'symlink']] as const) {
    const entry = type === 'symlink' ? { ...base, type, target: 'x', iflags } : { ...base, iflags };
    assert.throws(() => parseDirectory({ v: 1, entries: [entry] }, '/'), (e: unknown) => e instanceof ManifestError && /iflags must be inode flag letters in the order sucSiadAjtDTCP, on a file or directory/.test((e as Error).message), `${JSON.stringify(iflags)} on a ${type}`);
  }
  assert.equal(parseDirectory({ v: 1, entries: [{ ...base, iflags: 'iadA' }] }, '/').entries[0], { ...base, iflags: 'iadA' });
});

test.run();
