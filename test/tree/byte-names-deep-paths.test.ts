/**
 * Every name a Linux file system can hold (any bytes but "/" and NUL, up to 255 bytes) and
 * every depth of tree, whatever the length of the whole path, captures, restores and
 * re-deploys (issue 13, case 01-invalid-utf8-names: Latin-1 names were skipped at capture
 * as "vanished", and a re-deploy onto a node holding one died). Real store, real files;
 * bytes compared with rsync.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, lstatSync, mkdirSync, openSync, readFileSync, readdirSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { LocalStore } from '../../core/store/local.ts';
import { getJsonObject } from '../../core/store/objects.ts';
import { captureTree } from '../../core/tree/capture.ts';
import { countTree } from '../../core/tree/count.ts';
import type { DirectoryObject } from '../../core/tree/manifest.ts';
import { restoreTree } from '../../core/tree/restore.ts';
import { imageSelection } from '../../core/tree/select.ts';
import { syncTree } from '../../core/tree/sync.ts';
import { rsyncDifferences } from '../helpers/fixtures.ts';
import { withStore } from '../helpers/store.ts';

const b = (...parts: Array<string | number[]>) => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : Buffer.from(p))));
const join = (dir: string | Buffer, name: Buffer) => Buffer.concat([Buffer.from(dir), Buffer.from('/'), name]);

/** Names that are not UTF-8 (Latin-1, lone 0xff/0xfe, a cut UTF-8 sequence, CESU surrogates, 255 bytes), plus UTF-8 ones. */
function makeByteNames(root: string): void {
  const share = path.join(root, 'share');
  mkdirSync(share, { recursive: true });
  writeFileSync(join(share, b('caf', [0xe9], '.txt')), 'latin1 e-acute\n');
  writeFileSync(join(share, b('x', [0xff])), 'lone ff\n');
  writeFileSync(join(share, b('x', [0xfe])), 'lone fe\n');
  writeFileSync(join(share, b('cut', [0xe2, 0x9c])), 'cut sequence\n');
  writeFileSync(join(share, b('cesu', [0xed, 0xa0, 0x80])), 'surrogate bytes\n');
  writeFileSync(join(share, b('caf\u00e9.txt')), 'utf-8 e-acute\n');
  writeFileSync(join(share, Buffer.alloc(255, 0xe9)), '255 bytes\n');
  const d = join(share, b('dir', [0xe9]));
  mkdirSync(d);
  writeFileSync(join(d, b('f')), 'inside\n');
  symlinkSync(b('caf', [0xe9], '.txt'), join(share, b('link')));
  symlinkSync(b('../share/x', [0xff]), join(d, b('link', [0xfa])));
  mkdirSync(path.join(root, 'etc'));
  writeFileSync(path.join(root, 'etc', 'hostname'), 'golden\n');
}

/** A chain of directories whose path is past PATH_MAX (4096 bytes): 40 levels of 200-byte names, with non-UTF-8 bytes. */
function makeDeepTree(root: string): Buffer {
  let dir: Buffer = Buffer.from(path.join(root, 'deep'));
  mkdirSync(dir);
  for (let i = 0; i < 40; i++) {
    const name = Buffer.concat([Buffer.from(`level${String(i).padStart(2, '0')}-`), Buffer.alloc(188, i % 2 ? 0x61 : 0xe9)]);
    dir = join(dir, name);
    // Named through an open ancestor, since the full path passes PATH_MAX.
    mkdirSync(shorten(dir));
  }
  writeFileSync(shorten(join(dir, b('leaf', [0xff]))), 'at the bottom\n');
  return dir;
}

/** Cuts a long path by opening an ancestor and naming the rest through /proc/self/fd (the test's own helper). */
const opened = new Map<string, number>();
function shorten(p: Buffer): Buffer {
  if (p.length < 3000) return p;
  const cut = p.lastIndexOf('/', 2500);
  const head = p.subarray(0, cut);
  const key = head.toString('latin1');
  let dirfd = opened.get(key);
  if (dirfd === undefined) {
    dirfd = openSync(shorten(head), 'r');
    opened.set(key, dirfd);
  }
  return shorten(Buffer.concat([Buffer.from(`/proc/self/fd/${dirfd}`), p.subarray(cut)]));
}

/** Every entry under `root` as "path(latin1) type mode mtime content-or-target", walked by fds so any depth works (rsync stops at PATH_MAX). */
function snapshot(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: Buffer, rel: string) => {
    let fd: number | undefined;
    if (dir.length > 2048) {
      fd = openSync(dir, 'r');
      dir = Buffer.from(`/proc/self/fd/${fd}`);
    }
    try {
      for (const name of readdirSync(dir, { encoding: 'buffer' }).sort(Buffer.compare)) {
        const p = join(dir, name);
        const st = lstatSync(p, { bigint: true });
        const r = `${rel}/${name.toString('latin1')}`;
        const head = `${r} ${(st.mode & 0o170000n).toString(8)} ${(st.mode & 0o7777n).toString(8)} ${st.mtimeNs}`;
        if (st.isDirectory()) {
          out.push(head);
          walk(p, r);
        } else if (st.isSymbolicLink()) out.push(`${head} -> ${readlinkSync(p, { encoding: 'buffer' }).toString('latin1')}`);
        else out.push(`${head} ${createHash('sha256').update(readFileSync(p)).digest('hex')}`);
      }
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
  };
  walk(Buffer.from(root), '');
  return out;
}

test('names that are not UTF-8 and a tree deeper than PATH_MAX capture, restore and re-deploy byte for byte', async () => {
  await withStore(async (store, work) => {
    try {
      await roundTrip(store, work);
    } finally {
      // node:fs's recursive rm stops at PATH_MAX; GNU rm walks by directory fds.
      for (const fd of opened.values()) closeSync(fd);
      opened.clear();
      spawnSync('rm', ['-rf', '--', path.join(work, 'golden'), path.join(work, 'out'), path.join(work, 'node')]);
    }
  });
});

async function roundTrip(store: LocalStore, work: string): Promise<void> {
  {
    const golden = path.join(work, 'golden');
    makeByteNames(golden);
    const deepest = makeDeepTree(golden);
    assert.ok(deepest.length > 7000, `path of ${deepest.length} bytes`);
    const warnings: string[] = [];
    const { tree, progress } = await captureTree({ root: golden, store, chunker: store.config.chunker, onWarning: (m) => warnings.push(m) });
    assert.equal(warnings, []);
    assert.is(progress.files, 10);
    assert.equal(await countTree(await imageSelection({ root: golden })), { files: 10, bytes: progress.bytes });

    // Format 2 only where a name or target is not UTF-8.
    const top = (await getJsonObject(store, tree)) as DirectoryObject;
    assert.is(top.v, 1);
    const etc = (await getJsonObject(store, (top.entries.find((e) => e.name === 'etc') as { tree: string }).tree)) as DirectoryObject;
    assert.is(etc.v, 1);
    const share = (await getJsonObject(store, (top.entries.find((e) => e.name === 'share') as { tree: string }).tree)) as DirectoryObject;
    assert.is(share.v, 2);
    assert.ok(share.entries.some((e) => e.name === 'caf\udce9.txt'));

    const out = path.join(work, 'out');
    mkdirSync(out);
    await restoreTree({ reader: store, tree, target: out });
    const want = snapshot(golden);
    assert.equal(snapshot(out), want);
    assert.equal(rsyncDifferences(path.join(golden, 'share'), path.join(out, 'share'), ['-c']), []);
    assert.is(readlinkSync(join(out, b('share/link')), { encoding: 'buffer' }).toString('latin1'), b('caf', [0xe9], '.txt').toString('latin1'));

    // Re-deploy onto a node that holds other non-UTF-8 names, deep leftovers and changed files.
    const node = path.join(work, 'node');
    mkdirSync(node);
    await syncTree({ reader: store, tree, target: node, chunker: store.config.chunker });
    assert.equal(snapshot(node), want);
    mkdirSync(path.join(node, 'home/alice'), { recursive: true });
    writeFileSync(join(path.join(node, 'home/alice'), b('r', [0xe9], 'sum', [0xe9], '.txt')), 'x\n');
    writeFileSync(join(node, b('share/x', [0xff])), 'changed\n');
    const nodeDeepest = shorten(Buffer.concat([Buffer.from(node), deepest.subarray(Buffer.from(golden).length)]));
    writeFileSync(join(nodeDeepest, b('stray', [0xfe])), 'left by someone\n');
    const syncWarnings: string[] = [];
    const p = await syncTree({ reader: store, tree, target: node, chunker: store.config.chunker, onWarning: (m) => syncWarnings.push(m) });
    assert.equal(syncWarnings, []);
    assert.ok(p.deleted >= 4, `deleted ${p.deleted}`);
    assert.equal(snapshot(node), want);
    assert.is(readFileSync(join(node, b('share/x', [0xff])), 'utf8'), 'lone ff\n');
    assert.equal(readdirSync(node).sort(), ['deep', 'etc', 'share']);
  }
}

test.run();
