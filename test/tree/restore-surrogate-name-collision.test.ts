/**
 * sec-01: two manifest names that differ only in invalid Unicode ("\ud800", which
 * Buffer.from writes as the bytes of U+FFFD, and "\ufffd") landed on the same path; the
 * device entry failed to create, the symlink took the name, and the metadata phase's chmod
 * followed it to a file outside the target (mode 04777). Names are bytes now: a name must
 * be the canonical escaped form of its bytes, two entries on the same bytes are refused,
 * an entry that failed to create gets no metadata, and no metadata call follows a symlink.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { constants as fsc, mkdirSync, openSync, closeSync, statSync, symlinkSync, writeFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fsx } from '../../core/native/fsx.ts';
import { putObject } from '../../core/store/objects.ts';
import { TargetRoot } from '../../core/tree/beneath.ts';
import { parseDirectory } from '../../core/tree/manifest.ts';
import { applyTreeMetadata, restoreTree, type TreeItem } from '../../core/tree/restore.ts';
import { withStore } from '../helpers/store.ts';
import { expectRefused, meta } from './attacks.ts';

const victimIn = (work: string) => {
  mkdirSync(path.join(work, 'outside'), { recursive: true });
  const victim = path.join(work, 'outside', 'victim');
  writeFileSync(victim, 'not yours\n', { mode: 0o644 });
  return victim;
};

test('"\\ud800" and "\\ufffd" (same bytes on disk) are refused, and the file outside keeps its mode', async () => {
  await withStore(async (store, work) => {
    const victim = victimIn(work);
    const entries = [
      { ...meta, mode: 0o4777, name: '\ud800', type: 'char', rdev: [0xffffffff, 0] },
      { ...meta, mode: 0o777, name: '\ufffd', type: 'symlink', target: victim },
    ];
    for (const v of [1, 2]) {
      const tree = await putObject(store, Buffer.from(JSON.stringify({ v, root: { ...meta, mode: 0o755 }, entries })), store.config.chunker);
      const err = await expectRefused(store, path.join(work, `v${v}`), tree);
      assert.match(err.message, /not the escaped form of its bytes/);
      assert.is(statSync(victim).mode & 0o7777, 0o644);
    }
  });
});

test('escapes of bytes that are UTF-8 ("\\udcc3\\udca9" for "é") and duplicate bytes are refused; real escapes pass', () => {
  const e = (name: string) => ({ ...meta, name, type: 'fifo' });
  assert.throws(() => parseDirectory({ v: 2, entries: [e('\udcc3\udca9'), e('é')] }, '/'), /not the escaped form/);
  assert.throws(() => parseDirectory({ v: 1, entries: [e('caf\udce9')] }, '/'), /unsafe entry name/, 'format 1 holds only UTF-8 names');
  assert.throws(() => parseDirectory({ v: 2, entries: [e('x\udcff'), e('x\udcff')] }, '/'), /duplicate entry/);
  assert.throws(() => parseDirectory({ v: 2, entries: [e(`${'\udce9'.repeat(256)}`)] }, '/'), /unsafe entry name/, '256 bytes');
  assert.is(parseDirectory({ v: 2, entries: [e('caf\udce9'), e('x\udcff'), e('x\udcfe'), e('\udce9'.repeat(255))] }, '/').entries.length, 4);
  assert.throws(() => parseDirectory({ v: 2, entries: [{ ...meta, name: 'l', type: 'symlink', target: '\ud800' }] }, '/'), /symlink target/);
});

test('a device that cannot be created is reported and gets no metadata; nothing outside changes', async () => {
  await withStore(async (store, work) => {
    const victim = victimIn(work);
    const tree = await putObject(store, Buffer.from(JSON.stringify({ v: 1, root: { ...meta, mode: 0o755 }, entries: [
      { ...meta, mode: 0o4777, name: 'dev0', type: 'char', rdev: [0xffffffff, 0] },
      { ...meta, mode: 0o777, name: 'link', type: 'symlink', target: victim },
    ] })), store.config.chunker);
    const target = path.join(work, 'target');
    mkdirSync(target);
    const warnings: string[] = [];
    await restoreTree({ reader: store, tree, target, onWarning: (m) => warnings.push(m) });
    assert.ok(warnings.some((w) => /cannot create char \/dev0: .*; not restored/.test(w)), warnings.join('\n'));
    assert.is(statSync(victim).mode & 0o7777, 0o644);
    const strict = path.join(work, 'strict');
    mkdirSync(strict);
    const err = await restoreTree({ reader: store, tree, target: strict, strict: true }).catch((e) => e);
    assert.match(err.message, /cannot create char \/dev0/);
  });
});

test('metadata never follows a symlink found where the manifest says file, directory or device', async () => {
  await withStore(async (_store, work) => {
    const victim = victimIn(work);
    const outsideDir = path.dirname(victim);
    const target = path.join(work, 'target');
    mkdirSync(target);
    // What a racing or hostile writer could leave: symlinks in the places of entries, and a symlinked parent.
    for (const name of ['f', 'd', 'c']) symlinkSync(victim, path.join(target, name));
    symlinkSync(outsideDir, path.join(target, 'sub'));
    const items = [
      { rel: '/f', depth: 0, entry: { ...meta, mode: 0o4777, name: 'f', type: 'file' as const, size: 0, chunks: [] } },
      { rel: '/d', depth: 0, entry: { ...meta, mode: 0o4777, name: 'd', type: 'dir' as const, tree: '0'.repeat(64) } },
      { rel: '/c', depth: 0, entry: { ...meta, mode: 0o4777, name: 'c', type: 'char' as const, rdev: [1, 3] as [number, number] } },
      { rel: '/sub/victim', depth: 1, entry: { ...meta, mode: 0o4777, name: 'victim', type: 'file' as const, size: 0, chunks: [] } },
    ];
    const before = statSync(victim);
    const warnings: string[] = [];
    const root = TargetRoot.open(target);
    try {
      applyTreeMetadata(items as unknown as TreeItem[], root, (m) => warnings.push(m));
    } finally {
      root.close();
    }
    const after = statSync(victim);
    assert.is(after.mode & 0o7777, 0o644);
    assert.is(after.mtimeMs, before.mtimeMs);
    assert.is(warnings.length, 4, warnings.join('\n'));
    assert.ok(warnings.every((w) => /ELOOP|ENOTDIR|not the/.test(w)), warnings.join('\n'));
  });
});

test('openBeneath: no symlink on the way or at the end, no "..", no absolute path; creates only beneath', async () => {
  await withStore(async (_store, work) => {
    const victim = victimIn(work);
    const t = path.join(work, 't');
    mkdirSync(path.join(t, 'a/b'), { recursive: true });
    writeFileSync(path.join(t, 'a/b/f'), 'x');
    symlinkSync(path.dirname(victim), path.join(t, 'a/out'));
    symlinkSync(victim, path.join(t, 'a/b/last'));
    const dirfd = openSync(t, fsc.O_RDONLY | fsc.O_DIRECTORY);
    const code = (p: string | Buffer, flags = fsc.O_RDONLY) => {
      try {
        closeSync(fsx.openBeneath(dirfd, p, flags, 0o644));
        return 'ok';
      } catch (e) {
        return (e as NodeJS.ErrnoException).code;
      }
    };
    try {
      assert.is(code('a/b/f'), 'ok');
      assert.is(code(Buffer.from('a/b/f')), 'ok');
      assert.is(code('a/out/victim'), 'ELOOP');
      assert.is(code('a/b/last'), 'ELOOP');
      assert.is(code('a/out/new', fsc.O_WRONLY | fsc.O_CREAT), 'ELOOP');
      assert.is(code('../outside/victim'), 'EXDEV');
      assert.is(code(victim), 'EINVAL');
      assert.equal(readdirSync(path.dirname(victim)), ['victim']);
    } finally {
      closeSync(dirfd);
    }
  });
});

test.run();
