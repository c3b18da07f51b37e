/**
 * agent/boot-made.ts with the real sync (core/tree/sync.ts, a local store): the initramfs a
 * deploy made on the node is kept by a re-deploy when the image's initramfs inputs and the
 * node's boot configuration are the same (whatever else changed), and made again when the
 * golden's initramfs, an initramfs configuration file or the node's fstab changed, when the
 * node's file was altered, or when the record is damaged. The "tool" here writes the file the
 * way update-initramfs does (a new file renamed over the old); the agent runs the image's own.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { BOOT_MADE_FILE, BootMade } from '../../agent/boot-made.ts';
import type { ChunkId } from '../../core/store/chunk-id.ts';
import type { LocalStore } from '../../core/store/local.ts';
import { captureTree } from '../../core/tree/capture.ts';
import { deployKeepList } from '../../core/tree/select.ts';
import { syncTree } from '../../core/tree/sync.ts';
import { file, makeTree, seededBytes } from '../helpers/fixtures.ts';
import { withStore } from '../helpers/store.ts';

const INITRD = 'boot/initrd.img-6.1.0-1-amd64';
const GOLDEN = {
  'boot/vmlinuz-6.1.0-1-amd64': file(seededBytes(1, 300_000)),
  [INITRD]: file(seededBytes(2, 500_000)),
  'etc/fstab': file('# UNCONFIGURED FSTAB FOR BASE SYSTEM\n'),
  'etc/initramfs-tools/modules': file('# modules\n'),
  'usr/bin/tool': file(seededBytes(3, 100_000), 0o755),
};

interface Node {
  store: LocalStore;
  src: string;
  dst: string;
  /** What the "tool" writes for the node (changes with each build). */
  builds: number;
}

/** Captures src, syncs it onto dst as the agent does, writes the node's fstab (identity), and runs the initramfs step. */
async function deploy(n: Node, fstab = 'UUID=aaaa / ext4 defaults 0 1\n'): Promise<{ made: boolean; kept: string[] }> {
  const { tree } = await captureTree({ root: n.src, store: n.store, chunker: n.store.config.chunker });
  const made = new BootMade(n.dst, null);
  const progress = await syncTree({ reader: n.store, tree: tree as ChunkId, target: n.dst, chunker: n.store.config.chunker, keep: [...deployKeepList(), ...made.keepPatterns()], variants: made.variants(), onTree: (items) => made.tree(items) });
  made.synced(progress.variantsKept);
  await writeFile(path.join(n.dst, 'etc/fstab'), fstab);
  const ran = await made.step('initramfs', [], async () => {
    n.builds++;
    await writeFile(path.join(n.dst, `${INITRD}.new`), Buffer.concat([seededBytes(2, 400_000), Buffer.from(`node build ${n.builds} ${fstab}`)]));
    await rename(path.join(n.dst, `${INITRD}.new`), path.join(n.dst, INITRD));
  });
  return { made: ran, kept: progress.variantsKept };
}

async function withNode(work: (n: Node) => Promise<void>): Promise<void> {
  await withStore(async (store, dir) => {
    const n: Node = { store, src: path.join(dir, 'src'), dst: path.join(dir, 'dst'), builds: 0 };
    await makeTree(n.src, GOLDEN);
    await mkdir(n.dst);
    await work(n);
  });
}

const nodeInitrd = (n: Node) => readFile(path.join(n.dst, INITRD), 'utf8').then((s) => s.slice(-80));

test('a re-deploy keeps the initramfs it made when its inputs are the same, though other files changed', async () => {
  await withNode(async (n) => {
    assert.equal(await deploy(n), { made: true, kept: [] }, 'the first deploy makes it');
    assert.match(await nodeInitrd(n), /node build 1/);
    await writeFile(path.join(n.src, 'usr/bin/tool'), seededBytes(9, 100_000)); // a package update elsewhere
    await makeTree(n.src, { 'usr/bin/htop': file('htop') });
    assert.equal(await deploy(n), { made: false, kept: [`/${INITRD}`] }, 'kept, not made again');
    assert.match(await nodeInitrd(n), /node build 1/, 'the node\'s own file, not the golden\'s');
    assert.is(n.builds, 1);
    assert.equal(await deploy(n), { made: false, kept: [`/${INITRD}`] }, 'and again');
  });
});

test('the initramfs is made again when the golden\'s initramfs, its configuration or the node\'s fstab changed', async () => {
  await withNode(async (n) => {
    await deploy(n);
    await writeFile(path.join(n.src, INITRD), seededBytes(5, 500_000)); // the golden regenerated its own
    assert.equal(await deploy(n), { made: true, kept: [] }, 'a new golden initramfs is written by the sync, then made for the node');
    await writeFile(path.join(n.src, 'etc/initramfs-tools/modules'), '# modules\nraid1\n');
    assert.equal(await deploy(n), { made: true, kept: [`/${INITRD}`] }, 'a configuration change: kept by the sync but made again');
    assert.equal((await deploy(n, 'UUID=bbbb / ext4 defaults 0 1\n')).made, true, 'the node\'s fstab changed');
    assert.match(await nodeInitrd(n), /UUID=bbbb/);
    assert.is(n.builds, 4);
  });
});

test('an altered initramfs on the node, or a damaged record, means it is made again', async () => {
  await withNode(async (n) => {
    await deploy(n);
    await writeFile(path.join(n.dst, INITRD), 'tampered');
    assert.equal(await deploy(n), { made: true, kept: [] }, 'the sync writes the golden\'s back; the step makes it again');
    await writeFile(path.join(n.dst, BOOT_MADE_FILE), '{"format":"cloner-boot-made/1","steps":{"initramfs":{"inputs":1');
    assert.equal(await deploy(n), { made: true, kept: [] }, 'a record that cannot be read is ignored');
    const record = JSON.parse(await readFile(path.join(n.dst, BOOT_MADE_FILE), 'utf8'));
    record.steps.initramfs.files[0].rel = '/../../etc/passwd';
    await writeFile(path.join(n.dst, BOOT_MADE_FILE), JSON.stringify(record));
    assert.equal(await deploy(n), { made: true, kept: [] }, 'a record naming a path outside is not trusted');
    assert.equal(await deploy(n), { made: false, kept: [`/${INITRD}`] }, 'the record written after it holds again');
  });
});

test.run();
