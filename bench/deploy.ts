/**
 * bench:deploy — `cloner-agent deploy` of a real OS tree (Debian bookworm, mmdebstrap)
 * from a cloner-server on loopback onto a blank loop disk (partition, mkfs, restore,
 * identity), then a re-deploy after a package-install update (the same tree built with
 * python3 installed, captured as revision two with update-filesystem). Yardsticks in the
 * same run, onto a fresh loop disk of the same size: `restic restore` from a local repository
 * (each revision onto a fresh file system: restic 0.14 cannot restore over a tree) and
 * `rsync -aHAX` from the local tree (a full copy, then `--delete` onto the first revision).
 * Needs root (loop devices).
 */
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ensureDebianTree } from './debian-tree.ts';
import { agentDeploy, loopDisk, sh, timed } from './lab.ts';
import { startBenchServer } from './server.ts';
import { haveTool } from '../core/tools.ts';

if (process.getuid?.() !== 0) {
  console.log('bench:deploy skipped: loop devices need root');
  process.exit(0);
}
const one = await ensureDebianTree();
const two = await ensureDebianTree(['python3']);
if ('skip' in one || 'skip' in two) {
  console.log(`bench:deploy skipped: ${'skip' in one ? one.skip : (two as { skip: string }).skip}`);
  process.exit(0);
}
const sizeOf = (tree: string) => Number(sh('du', '-sb', '--apparent-size', tree).split('\t')[0]);
const bytes1 = sizeOf(one.tree);
const bytes2 = sizeOf(two.tree);
for (const tree of [one.tree, two.tree]) sh('tar', '-cf', '/dev/null', tree); // warm the page cache for everyone alike

const work = await mkdtemp(path.join(process.env.CLONER_BENCH_WORK ?? '/var/tmp', 'cloner-bench-deploy-'));
const lab = await loopDisk(work, 3 * 1024 ** 3);
const { mnt } = lab;
const server = await startBenchServer(path.join(work, 'server'));

const cli = (...args: string[]) => timed([process.execPath, 'bin/cloner.js', ...args, '--server', server.url, '--token-file', server.tokenFile]);
const deploy = () => agentDeploy(server, 'bench', lab);

try {
  await writeFile(path.join(work, 'layout.json'), JSON.stringify({ format: 'cloner-layout/1', disks: [{ id: 'd', table: 'gpt', partitions: [{ id: 'root', size: 'grow', type: 'linux', name: 'root' }] }], filesystems: [{ device: 'root', type: 'ext4', mount: '/' }] }));
  cli('disklayout-upload', '--disklayout', 'benchfs', '--file', path.join(work, 'layout.json'));
  cli('new-image', '--image', 'bench', '--root', one.tree, '--disklayout', 'benchfs', '--yes');
  cli('nodes', 'add', 'bench', 'cloner_image=bench');
  await lab.wipe();
  const first = await deploy();
  cli('update-filesystem', '--image', 'bench', '--root', two.tree);
  const second = await deploy();

  let restic: { first: number; second: number } | null = null;
  if (haveTool('restic')) {
    const env = { ...process.env, RESTIC_PASSWORD: 'bench', RESTIC_REPOSITORY: path.join(work, 'restic') };
    timed(['restic', 'init', '-q'], env);
    // Both trees backed up from one path (a bind mount), so revision two restores over one.
    const src = path.join(work, 'src');
    await mkdir(src);
    for (const [tag, tree] of [['one', one.tree], ['two', two.tree]]) {
      sh('mount', '--bind', tree, src);
      try {
        timed(['restic', 'backup', '-q', '--tag', tag, src], env);
      } finally {
        sh('umount', src);
      }
    }
    await lab.blankFs();
    const a = timed(['restic', 'restore', '-q', '--tag', 'one', 'latest', '--target', mnt], env);
    // restic (0.14 here) cannot restore over an existing tree (its symlinks clash): revision
    // two goes onto a fresh file system, as a restic-based deploy would do it.
    await lab.blankFs();
    const b = timed(['restic', 'restore', '-q', '--tag', 'two', 'latest', '--target', mnt], env);
    restic = { first: a.seconds, second: b.seconds };
  }
  await lab.blankFs();
  const rsync1 = timed(['rsync', '-aHAX', `${one.tree}/`, `${mnt}/`]);
  const rsync2 = timed(['rsync', '-aHAX', '--delete', `${two.tree}/`, `${mnt}/`]);
  spawnSync('umount', [mnt]);

  const mbs = (b: number | null, s: number) => (b === null ? '' : `${(b / 1e6 / s).toFixed(1)} MB/s`);
  // A rate only where the whole tree was written (a re-deploy writes only what changed).
  const line = (label: string, s: number, b: number | null, extra = '') => console.log(`${label.padEnd(44)} ${s.toFixed(2).padStart(6)} s  ${mbs(b, s).padStart(11)}${extra}`);
  const skipped = (label: string, why: string) => console.log(`${label.padEnd(44)} skipped: ${why}`);
  console.log(`tree one ${one.tree}: ${(bytes1 / 1e6).toFixed(1)} MB; tree two (+python3): ${(bytes2 / 1e6).toFixed(1)} MB`);
  console.log('-- onto a blank disk --');
  line('cloner-agent deploy (partition, mkfs, all)', first.seconds, bytes1, `  fetched ${first.fetched}`);
  line('  of which the restore phase', first.restore, bytes1);
  if (restic) line('restic restore (local repo, ext4 made apart)', restic.first, bytes1, `  cloner restore phase / restic: ${(first.restore / restic.first).toFixed(2)}x`);
  else skipped('restic restore (local repo)', 'restic is not installed (scripts/setup.sh installs it)');
  line('rsync -aHAX (local tree, ext4 made apart)', rsync1.seconds, bytes1, `  cloner restore phase / rsync: ${(first.restore / rsync1.seconds).toFixed(2)}x`);
  console.log('-- re-deploy after the package install (revision two onto revision one) --');
  line('cloner-agent deploy (layout kept)', second.seconds, null, `  fetched ${second.fetched}`);
  line('  of which the restore phase', second.restore, null);
  if (restic) line('restic restore of revision two (fresh ext4)', restic.second, bytes2, `  cloner restore phase / restic: ${(second.restore / restic.second).toFixed(2)}x`);
  else skipped('restic restore of revision two', 'restic is not installed');
  line('rsync -aHAX --delete (local tree)', rsync2.seconds, null, `  cloner restore phase / rsync: ${(second.restore / rsync2.seconds).toFixed(2)}x`);
} finally {
  await server.stop();
  lab.close();
  await rm(work, { recursive: true, force: true });
}
