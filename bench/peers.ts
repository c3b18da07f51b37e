/**
 * bench:peers — Cloner next to its peers on a real node tree, all in one run.
 *
 * The node tree (Debian bookworm + systemd, openssh-server, build-essential, python3, a
 * kernel, GRUB EFI, vim) and its update (the same + htop, strace, gdb, tmux) are made by
 * mmdebstrap once and cached outside the repo (debian-tree.ts). `--quick` uses the small
 * minbase tree and minbase + htop/strace/tmux instead, to run in a few minutes.
 *
 * Timed, each as a child process (the real CLI, server and agent, from their bundles in dist/
 * as the installed commands run them; from the sources when dist/ is older): Cloner capture to a
 * cloner-server on loopback and to a local store, update, no-op update, image-export of the
 * update to an empty directory, agent deploy onto a blank loop disk and a re-deploy after
 * the update; tar|lz4 (capture, restore), restic (backup, backup, backup, restore), borg
 * (create x3, extract) and rsync -aHAX (copy, update, no-op). Restores and deploys go onto
 * a loop disk of the same size, a fresh one with a new ext4 for each yardstick. Every tool reads the same
 * path: a working copy of the tree, updated in place to the second tree by rsync (changed
 * files get new inodes, the others keep theirs, as on a node after a package install). Prints one table: seconds,
 * stored bytes, and Cloner's time and bytes divided by each peer's (below 1: Cloner is
 * ahead), then the peak RSS and CPU seconds of every Cloner process. The page cache is warm for all alike.
 * Without root (loop devices) the disk rows are skipped with the reason. `--cloner-only` runs
 * Cloner's rows alone; CLONER_BENCH_PROF=DIR writes a --cpu-prof of every Cloner process there.
 *
 * `--scale N` (root; e.g. `--scale 8`) runs only this, to read off that time grows linearly
 * and memory does not grow: capture to a fresh server and an agent deploy onto a blank loop
 * disk, of the node tree and of a tree N times larger (the node tree and N - 1 copies of it
 * with variations, debian-tree.ts ensureScaledTree: built once, ~1.1 GB a copy, cached beside
 * the node tree), one scale after the other. It prints, per scale, the seconds, the CPU
 * seconds and the peak RSS of the CLI, the server and the agent, and the ratio of each to 1x.
 * The loop disk is a sparse file of 6 GiB a copy in the work directory.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ensureDebianTree, ensureNodeTree, ensureScaledTree } from './debian-tree.ts';
import { agentDeploy, duBytes, entryNote, entryOf, loopDisk, profFlags, sh, timed, timedShell, type LoopDisk, type Timed } from './lab.ts';
import { startBenchServer } from './server.ts';
import { haveTool } from '../core/tools.ts';

const quick = process.argv.includes('--quick');
// --cloner-only: Cloner's rows alone (no yardsticks), to iterate on Cloner itself.
const peers = !process.argv.includes('--cloner-only');

/** Why a yardstick's rows are missing: --cloner-only, or the tool is not installed (and which package has it). */
function skipped(tool: string, pkg: string): string {
  return peers ? `skipped: ${tool} is not installed (scripts/setup.sh installs ${pkg})` : 'skipped: --cloner-only';
}
const scaleArg = process.argv.indexOf('--scale');
if (scaleArg > 0) {
  const n = Number(process.argv[scaleArg + 1]);
  if (!Number.isInteger(n) || n < 2 || n > 32) {
    console.error('bench:peers: --scale takes a whole number from 2 to 32 (e.g. --scale 8)');
    process.exit(2);
  }
  await scaleRun(n);
  process.exit(0);
}
const update = quick ? ['htop', 'strace', 'tmux'] : ['htop', 'strace', 'gdb', 'tmux'];
const one = quick ? await ensureDebianTree() : await ensureNodeTree();
const two = quick ? await ensureDebianTree(update) : await ensureNodeTree(update);
if ('skip' in one || 'skip' in two) {
  console.log(`bench:peers skipped: ${'skip' in one ? one.skip : (two as { skip: string }).skip}`);
  process.exit(0);
}
const root = process.getuid?.() === 0;
const work = await mkdtemp(path.join(process.env.CLONER_BENCH_WORK ?? '/var/tmp', 'cloner-bench-peers-'));
const logical = (tree: string) => Number(sh('du', '-sb', '--apparent-size', tree).split('\t')[0]);
const entries = (tree: string) => Number(sh('bash', '-c', `find ${tree} -xdev | wc -l`).trim());

interface Row {
  op: string;
  tool: string;
  seconds: number;
  stored?: number;
  note?: string;
}
const rows: Row[] = [];
const rss: Array<[string, number, number?]> = [];
const phaseText = (phases: Array<[string, number]>) => phases.map(([p, s]) => `${p} ${s.toFixed(1)}`).join(', ');
const add = (op: string, tool: string, seconds: number, stored?: number, note?: string) => rows.push({ op, tool, seconds, stored, note });

const server = await startBenchServer(path.join(work, 'server'));
const serverData = path.join(work, 'server');
let lab: LoopDisk | undefined;
// The node: a working copy of tree one, updated in place to tree two by rsync (changed files
// get new inodes, unchanged ones keep theirs, as a package install does); every tool reads it.
const node = path.join(work, 'node');
// The update tree is a second mmdebstrap run, whose initramfs was built anew (other bytes);
// installing htop, strace, gdb and tmux on a node does not rebuild it, so the node keeps its own.
const becomes = (tree: string) => {
  sh('rsync', '-aHAX', '--delete', ...(tree === two.tree ? ['--exclude=/boot/initrd.img-*'] : []), `${tree}/`, `${node}/`);
  sh('tar', '-cf', '/dev/null', node); // warm the page cache for everyone alike
};
becomes(one.tree);

try {
  const remote = ['--server', server.url, '--token-file', server.tokenFile];
  const cloner = (label: string, ...args: string[]) => {
    const r = timed([process.execPath, ...profFlags(), entryOf('cloner'), ...args]);
    rss.push([`cloner ${label}`, r.rss, r.cpu]);
    return r;
  };
  // -- Cloner --
  if (root) {
    lab = await loopDisk(work, (quick ? 3 : 6) * 1024 ** 3);
    await writeFile(path.join(work, 'layout.json'), JSON.stringify({ format: 'cloner-layout/1', disks: [{ id: 'd', table: 'gpt', partitions: [{ id: 'root', size: 'grow', type: 'linux', name: 'root' }] }], filesystems: [{ device: 'root', type: 'ext4', mount: '/' }] }));
    cloner('disklayout-upload', 'disklayout-upload', '--disklayout', 'benchfs', '--file', path.join(work, 'layout.json'), ...remote);
  }
  const layout = root ? ['--disklayout', 'benchfs'] : [];
  const cap = cloner('new-image (server)', 'new-image', '--yes', '--image', 'node', '--root', node, ...layout, ...remote);
  add('capture', 'cloner (server on loopback)', cap.seconds, duBytes(serverData));
  const local = cloner('new-image (local store)', 'new-image', '--yes', '--store', path.join(work, 'local'), '--init', '--image', 'node', '--root', node);
  add('capture', 'cloner (local store)', local.seconds, duBytes(path.join(work, 'local')));
  let first: Awaited<ReturnType<typeof agentDeploy>> | undefined;
  if (lab) {
    cloner('nodes add', 'nodes', 'add', 'bench', 'cloner_image=node', ...remote);
    await lab.wipe();
    first = await agentDeploy(server, 'bench', lab);
    rss.push(['cloner-agent deploy (blank disk)', first.rss, first.cpu]);
    if (process.env.CLONER_BENCH_PROF) await writeFile(path.join(process.env.CLONER_BENCH_PROF, 'agent-deploy.log'), first.out);
    add('deploy onto a blank disk', 'cloner-agent deploy (all)', first.seconds, undefined, `fetched ${first.fetched}; ${phaseText(first.phases)}`);
  }
  const storedOne = duBytes(serverData);
  becomes(two.tree);
  const upd = cloner('update-filesystem', 'update-filesystem', '--image', 'node', '--root', node, ...remote);
  add('update', 'cloner (server)', upd.seconds, duBytes(serverData) - storedOne, `stored growth; ${/\d+ files unchanged, [\d.]+ \S+ read/.exec(upd.out)?.[0]}`);
  const noop = cloner('update-filesystem (no-op)', 'update-filesystem', '--image', 'node', '--root', node, ...remote);
  add('no-op update', 'cloner (server)', noop.seconds, undefined, /\d+ files unchanged, [\d.]+ \S+ read/.exec(noop.out)?.[0]);
  if (lab) {
    const again = await agentDeploy(server, 'bench', lab);
    rss.push(['cloner-agent re-deploy', again.rss, again.cpu]);
    if (process.env.CLONER_BENCH_PROF) await writeFile(path.join(process.env.CLONER_BENCH_PROF, 'agent-redeploy.log'), again.out);
    add('re-deploy after the update', 'cloner-agent deploy (all)', again.seconds, undefined, `fetched ${again.fetched}; ${phaseText(again.phases)}`);
  }
  const exportDir = path.join(work, 'export');
  const exp = cloner('image-export', 'image-export', '--image', 'node', '--target', exportDir, ...remote);
  add('restore of the update', 'cloner image-export (server)', exp.seconds);
  await rm(exportDir, { recursive: true, force: true });
  rss.push(['cloner-server', server.peakRss()]);

  // -- tar | lz4 --
  if (peers && haveTool('lz4')) {
    becomes(one.tree);
    const archive = path.join(work, 'tree.tar.lz4');
    add('capture', 'tar -c | cat (read limit)', timedShell(`tar -C ${node} -cf - . | cat > /dev/null`).seconds);
    add('capture', 'tar | lz4 -1', timedShell(`tar --xattrs --acls -C ${node} -cf - . | lz4 -q -1 - ${archive}`).seconds, duBytes(archive));
    const out = lab ? (await lab.blankFs(), lab.mnt) : path.join(work, 'tar-out');
    await mkdir(out, { recursive: true });
    add('deploy onto a blank disk', 'lz4 -d | tar -x', timedShell(`lz4 -q -dc ${archive} | tar --xattrs --acls -C ${out} -xpf -`).seconds);
    await rm(archive);
  } else add('capture', 'tar | lz4', NaN, undefined, skipped('lz4', 'lz4'));

  // -- restic --
  if (peers && haveTool('restic')) {
    becomes(one.tree);
    const repo = path.join(work, 'restic');
    const env = { ...process.env, RESTIC_PASSWORD: 'bench', RESTIC_REPOSITORY: repo, RESTIC_CACHE_DIR: path.join(work, 'restic-cache') };
    timed(['restic', 'init', '-q'], env);
    const backup = (tag: string) => timed(['restic', 'backup', '-q', '--tag', tag, node], env);
    add('capture', 'restic backup', backup('one').seconds, duBytes(repo));
    const before = duBytes(repo);
    becomes(two.tree);
    add('update', 'restic backup', backup('two').seconds, duBytes(repo) - before, 'stored growth');
    add('no-op update', 'restic backup', backup('two').seconds);
    const out = lab ? (await lab.blankFs(), lab.mnt) : path.join(work, 'restic-out');
    add('deploy onto a blank disk', 'restic restore', timed(['restic', 'restore', '-q', '--tag', 'one', 'latest', '--target', out], env).seconds);
  } else add('capture', 'restic', NaN, undefined, skipped('restic', 'restic'));

  // -- borg --
  if (peers && haveTool('borg')) {
    becomes(one.tree);
    const repo = path.join(work, 'borg');
    const env = { ...process.env, BORG_REPO: repo, BORG_BASE_DIR: path.join(work, 'borg-home'), BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK: 'yes' };
    timed(['borg', 'init', '-e', 'none'], env);
    const create = (name: string) => timed(['borg', 'create', '--one-file-system', '--compression', 'lz4', `::${name}`, node], env);
    add('capture', 'borg create (lz4)', create('one').seconds, duBytes(repo));
    const before = duBytes(repo);
    becomes(two.tree);
    add('update', 'borg create', create('two').seconds, duBytes(repo) - before, 'stored growth');
    add('no-op update', 'borg create', create('three').seconds);
    const out = lab ? (await lab.blankFs(), lab.mnt) : path.join(work, 'borg-out');
    await mkdir(out, { recursive: true });
    add('deploy onto a blank disk', 'borg extract', timed(['borg', 'extract', '::one'], env, out).seconds);
  } else add('capture', 'borg', NaN, undefined, skipped('borg', 'borgbackup'));

  // -- rsync -aHAX --
  if (peers) {
    becomes(one.tree);
    const copy = lab ? (await lab.blankFs(), lab.mnt) : path.join(work, 'rsync-copy');
    await mkdir(copy, { recursive: true });
    const r1 = timed(['rsync', '-aHAX', `${node}/`, `${copy}/`]);
    add('capture', 'rsync -aHAX (copy)', r1.seconds, duBytes(copy));
    add('deploy onto a blank disk', 'rsync -aHAX (from a local copy)', r1.seconds);
    becomes(two.tree);
    add('update', 'rsync -aHAX --delete', timed(['rsync', '-aHAX', '--delete', `${node}/`, `${copy}/`]).seconds);
    add('re-deploy after the update', 'rsync -aHAX --delete', rows.at(-1)!.seconds);
    add('no-op update', 'rsync -aHAX --delete', timed(['rsync', '-aHAX', '--delete', `${node}/`, `${copy}/`]).seconds);
  }
  if (!lab) add('deploy onto a blank disk', 'cloner-agent deploy', NaN, undefined, 'skipped: loop devices need root');

  // -- the table --
  console.log(entryNote());
  console.log(`tree ${one.tree}: ${entries(one.tree)} entries, ${(logical(one.tree) / 1e6).toFixed(1)} MB; update ${two.tree}: ${entries(two.tree)} entries, ${(logical(two.tree) / 1e6).toFixed(1)} MB`);
  console.log(`${'operation'.padEnd(28)} ${'tool'.padEnd(34)} ${'seconds'.padStart(8)} ${'stored MB'.padStart(10)} ${'cloner/it time'.padStart(15)} ${'cloner/it bytes'.padStart(16)}  note`);
  for (const op of [...new Set(rows.map((r) => r.op))]) {
    const ours = rows.find((r) => r.op === op && r.tool.startsWith('cloner'));
    for (const r of rows.filter((x) => x.op === op)) {
      const isOurs = r.tool.startsWith('cloner');
      const t = ours && !isOurs && r.seconds > 0 ? (ours.seconds / r.seconds).toFixed(2) : '';
      const b = ours?.stored !== undefined && !isOurs && r.stored ? (ours.stored / r.stored).toFixed(2) : '';
      const s = Number.isNaN(r.seconds) ? '-' : r.seconds.toFixed(2);
      console.log(`${op.padEnd(28)} ${r.tool.padEnd(34)} ${s.padStart(8)} ${(r.stored === undefined ? '' : (r.stored / 1e6).toFixed(1)).padStart(10)} ${t.padStart(15)} ${b.padStart(16)}  ${r.note ?? ''}`);
    }
  }
  console.log('peak RSS (and CPU seconds, user + system, all threads) of the Cloner processes:');
  for (const [label, bytes, cpu] of rss) console.log(`  ${label.padEnd(40)} ${bytes ? `${(bytes / 1e6).toFixed(0)} MB` : 'unknown (GNU time not installed)'}${cpu ? `, ${cpu.toFixed(1)} s CPU` : ''}`);
} finally {
  await server.stop();
  lab?.close();
  await rm(work, { recursive: true, force: true });
}

/** `--scale N`: capture to a server and a blank deploy, at 1x and at Nx, side by side (header). */
async function scaleRun(n: number): Promise<void> {
  if (process.getuid?.() !== 0) return void console.log('bench:peers --scale skipped: the deploy onto a loop disk needs root');
  const base = quick ? await ensureDebianTree() : await ensureNodeTree();
  if ('skip' in base) return void console.log(`bench:peers --scale skipped: ${base.skip}`);
  const big = await ensureScaledTree(base.tree, n);
  if ('skip' in big) return void console.log(`bench:peers --scale skipped: ${big.skip}`);
  const results: Array<{ scale: number; bytes: number; files: number; capture: Timed; server: number; deploy: Awaited<ReturnType<typeof agentDeploy>> }> = [];
  for (const [scale, tree] of [[1, base.tree], [n, big.tree]] as const) {
    const work = await mkdtemp(path.join(process.env.CLONER_BENCH_WORK ?? '/var/tmp', `cloner-bench-scale${scale}-`));
    const server = await startBenchServer(path.join(work, 'server'));
    let disk: LoopDisk | undefined;
    try {
      const remote = ['--server', server.url, '--token-file', server.tokenFile];
      const run = (...args: string[]) => timed([process.execPath, ...profFlags(), entryOf('cloner'), ...args]);
      await writeFile(path.join(work, 'layout.json'), JSON.stringify({ format: 'cloner-layout/1', disks: [{ id: 'd', table: 'gpt', partitions: [{ id: 'root', size: 'grow', type: 'linux', name: 'root' }] }], filesystems: [{ device: 'root', type: 'ext4', mount: '/' }] }));
      run('disklayout-upload', '--disklayout', 'benchfs', '--file', path.join(work, 'layout.json'), ...remote);
      console.error(`[scale ${scale}x] capture of ${tree}`);
      const capture = run('new-image', '--yes', '--image', 'node', '--root', tree, '--disklayout', 'benchfs', ...remote);
      run('nodes', 'add', 'bench', 'cloner_image=node', ...remote);
      disk = await loopDisk(work, (quick ? 3 : 6) * scale * 1024 ** 3);
      await disk.wipe();
      console.error(`[scale ${scale}x] deploy onto a blank ${(quick ? 3 : 6) * scale} GiB loop disk`);
      const deploy = await agentDeploy(server, 'bench', disk);
      const [files, bytes] = /(\d+) files, ([\d.]+ \S+) in/.exec(capture.out)?.slice(1) ?? ['?', '?'];
      console.error(`[scale ${scale}x] ${files} files, ${bytes}: capture ${capture.seconds.toFixed(1)} s, deploy ${deploy.seconds.toFixed(1)} s`);
      results.push({ scale, files: Number(files), bytes: Number(sh('du', '-sb', '--apparent-size', tree).split('\t')[0]), capture, server: server.peakRss(), deploy });
    } finally {
      disk?.close();
      await server.stop();
      await rm(work, { recursive: true, force: true });
    }
  }
  const [one] = results;
  const mb = (b: number) => `${(b / 1e6).toFixed(0)} MB`;
  const x = (a: number, b: number) => (b > 0 ? `${(a / b).toFixed(2)}x` : '');
  console.log(`${'scale'.padEnd(6)} ${'files'.padStart(8)} ${'GB'.padStart(6)} | ${'capture s'.padStart(9)} ${'CPU s'.padStart(6)} ${'CLI RSS'.padStart(8)} ${'server RSS'.padStart(10)} | ${'deploy s'.padStart(8)} ${'restore s'.padStart(9)} ${'CPU s'.padStart(6)} ${'agent RSS'.padStart(9)}`);
  for (const r of results) {
    const restore = r.deploy.phases.find(([p]) => p === 'restore')?.[1] ?? NaN;
    console.log(`${`${r.scale}x`.padEnd(6)} ${String(r.files).padStart(8)} ${(r.bytes / 1e9).toFixed(2).padStart(6)} | ${r.capture.seconds.toFixed(1).padStart(9)} ${r.capture.cpu.toFixed(1).padStart(6)} ${mb(r.capture.rss).padStart(8)} ${mb(r.server).padStart(10)} | ${r.deploy.seconds.toFixed(1).padStart(8)} ${restore.toFixed(1).padStart(9)} ${r.deploy.cpu.toFixed(1).padStart(6)} ${mb(r.deploy.rss).padStart(9)}`);
  }
  for (const r of results.slice(1)) {
    const restore = (d: typeof r.deploy) => d.phases.find(([p]) => p === 'restore')?.[1] ?? NaN;
    console.log(`${r.scale}x / 1x: bytes ${x(r.bytes, one.bytes)}, capture time ${x(r.capture.seconds, one.capture.seconds)}, restore time ${x(restore(r.deploy), restore(one.deploy))}, deploy time ${x(r.deploy.seconds, one.deploy.seconds)}; peak RSS: CLI ${x(r.capture.rss, one.capture.rss)}, server ${x(r.server, one.server)}, agent ${x(r.deploy.rss, one.deploy.rss)}`);
  }
}
