/**
 * bench:tree — capture and restore of a real OS tree, against tar|lz4 and restic on the
 * same tree in the same run.
 *
 * The tree is a Debian bookworm minbase (+ openssh-server, iproute2, less, vim-tiny) made
 * by debootstrap and cached in $CLONER_BENCH_CACHE (default /var/cache/cloner-bench), or
 * any tree given as CLONER_BENCH_TREE. Reports seconds, MB/s, files/s and stored bytes for
 * capture and restore, a second capture of a slightly changed copy (stored growth), and
 * our/their time ratios. Page cache is warm for every tool alike (each reads the tree
 * once before timing starts).
 */
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile, appendFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { LocalStore } from '../core/store/local.ts';
import { haveTool } from '../core/tools.ts';
import { captureTree } from '../core/tree/capture.ts';
import { restoreTree } from '../core/tree/restore.ts';
import { seededBytes } from '../test/helpers/fixtures.ts';
import { ensureDebianTree } from './debian-tree.ts';


const found = await ensureDebianTree();
if ('skip' in found) {
  console.log(`bench:tree skipped: ${found.skip}`);
  process.exit(0);
}
const tree = found.tree;

const work = await mkdtemp(path.join(process.env.CLONER_BENCH_WORK ?? '/var/tmp', 'cloner-bench-'));
const du = (p: string) => Number(execFileSync('du', ['-sb', p], { encoding: 'utf8' }).split('\t')[0]);
const time = async (fn: () => Promise<unknown> | unknown) => {
  const t = performance.now();
  await fn();
  return (performance.now() - t) / 1000;
};
const sh = (cmd: string, env: Record<string, string> = {}) => execFileSync('bash', ['-o', 'pipefail', '-c', cmd], { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, ...env } });

try {
  execFileSync('tar', ['-C', tree, '-cf', '/dev/null', '.']); // warm the page cache for everyone
  const logical = Number(execFileSync('bash', ['-c', `find ${tree} -xdev -type f -printf '%s\\n' | awk '{s+=$1} END {print s}'`], { encoding: 'utf8' }));
  const files = Number(execFileSync('bash', ['-c', `find ${tree} -xdev | wc -l`], { encoding: 'utf8' }));
  console.log(`tree ${tree}: ${files} entries, ${(logical / 1e6).toFixed(1)} MB of file data\n`);
  const mbs = (s: number) => `${(logical / 1e6 / s).toFixed(1)} MB/s`;
  const fps = (s: number) => `${(files / s).toFixed(0)} files/s`;

  // Cloner
  const store = await LocalStore.open(path.join(work, 'store'), { create: true });
  let captured!: Awaited<ReturnType<typeof captureTree>>;
  const ourCapture = await time(async () => (captured = await captureTree({ root: tree, store, chunker: store.config.chunker })));
  const stored = (await store.stats()).packBytes;
  const restored = path.join(work, 'restored');
  await mkdir(restored);
  const ourRestore = await time(() => restoreTree({ reader: store, tree: captured.tree, target: restored }));
  const diff = execFileSync('rsync', ['-naHAX', '--itemize-changes', `${tree}/`, `${restored}/`], { encoding: 'utf8' }).split('\n').filter(Boolean).length;
  // The copy as a revision of its own (its inodes differ from the source), then changed
  // slightly: 20 files appended to, 5 MB of new files; the timed recapture has it as parent.
  const base = await captureTree({ root: restored, store, chunker: store.config.chunker });
  const baseStored = (await store.stats()).packBytes;
  const etc = (await readdir(path.join(restored, 'etc'))).slice(0, 20);
  for (const name of etc) {
    const p = path.join(restored, 'etc', name);
    try {
      await appendFile(p, '# changed by bench\n');
    } catch {
      /* a directory or dangling link: skip */
    }
  }
  await writeFile(path.join(restored, 'opt-new.bin'), seededBytes(77, 5_000_000));
  let second!: Awaited<ReturnType<typeof captureTree>>;
  const ourRecapture = await time(async () => (second = await captureTree({ root: restored, store, chunker: store.config.chunker, parentTree: base.tree })));
  const growth = (await store.stats()).packBytes - baseStored;
  await store.close();
  console.log(`cloner capture   ${ourCapture.toFixed(2)} s  ${mbs(ourCapture)}  ${fps(ourCapture)}  stored ${(stored / 1e6).toFixed(1)} MB`);
  console.log(`cloner restore   ${ourRestore.toFixed(2)} s  ${mbs(ourRestore)}  ${fps(ourRestore)}  rsync -naHAX differences: ${diff}`);
  console.log(`cloner recapture ${ourRecapture.toFixed(2)} s  (changed copy, parent given; read ${(second.progress.readBytes / 1e6).toFixed(1)} MB)  stored growth ${(growth / 1e6).toFixed(2)} MB`);

  // tar | lz4
  if (haveTool('lz4')) {
    const archive = path.join(work, 'tree.tar.lz4');
    const tarCapture = await time(() => sh(`tar --xattrs --acls -C ${tree} -cf - . | lz4 -q -1 - ${archive}`));
    const out = path.join(work, 'tar-out');
    await mkdir(out);
    const tarRestore = await time(() => sh(`lz4 -q -dc ${archive} | tar --xattrs --acls -C ${out} -xpf -`));
    console.log(`tar|lz4 capture  ${tarCapture.toFixed(2)} s  ${mbs(tarCapture)}  stored ${(du(archive) / 1e6).toFixed(1)} MB   ratio cloner/tar ${(ourCapture / tarCapture).toFixed(2)}x time`);
    console.log(`tar|lz4 restore  ${tarRestore.toFixed(2)} s  ${mbs(tarRestore)}   ratio cloner/tar ${(ourRestore / tarRestore).toFixed(2)}x time`);
  } else console.log('tar|lz4 skipped: lz4 not installed');

  // restic
  if (haveTool('restic')) {
    const repo = path.join(work, 'restic');
    const env = { RESTIC_PASSWORD: 'bench', RESTIC_REPOSITORY: repo, RESTIC_CACHE_DIR: path.join(work, 'restic-cache') };
    sh('restic init -q', env);
    const resticCapture = await time(() => sh(`restic backup -q --one-file-system ${tree}`, env));
    const out = path.join(work, 'restic-out');
    const resticRestore = await time(() => sh(`restic restore -q latest --target ${out}`, env));
    console.log(`restic capture   ${resticCapture.toFixed(2)} s  ${mbs(resticCapture)}  stored ${(du(repo) / 1e6).toFixed(1)} MB   ratio cloner/restic ${(ourCapture / resticCapture).toFixed(2)}x time`);
    console.log(`restic restore   ${resticRestore.toFixed(2)} s  ${mbs(resticRestore)}   ratio cloner/restic ${(ourRestore / resticRestore).toFixed(2)}x time`);
  } else console.log('restic skipped: restic not installed');
} finally {
  await rm(work, { recursive: true, force: true });
}
