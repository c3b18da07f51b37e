/**
 * Shared pieces of the benches that run real programs: a timed child process with its
 * peak RSS (GNU time's %M, KB) and CPU seconds (%U + %S: on a busy machine the wall seconds
 * say more about the neighbours than about the program), a blank loop disk with a mount point, a fresh ext4 on it
 * for the yardsticks, and `cloner-agent deploy` onto it with its restore phase timed from
 * the agent's own phase lines. Everything made here is undone by `LoopDisk.close`.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { mkdir, open } from 'node:fs/promises';
import path from 'node:path';

export interface Timed {
  seconds: number;
  out: string;
  /** Peak resident set of the child in bytes (0 when GNU time is not installed). */
  rss: number;
  /** User + system CPU seconds of the child, all its threads (0 without GNU time). */
  cpu: number;
}

const GNU_TIME = '/usr/bin/time';

/** GNU time's format: peak RSS (KB), user and system CPU seconds, on its last line. */
const TIME_FORMAT = '%M %U %S';

/** GNU time's %M (KB) in bytes and %U + %S in seconds, from its last line; the file is removed. */
function usageOf(file: string, wrapped: boolean): { rss: number; cpu: number } {
  if (!wrapped) return { rss: 0, cpu: 0 };
  const [kb, user, system] = readFileSync(file, 'utf8').trim().split('\n').at(-1)!.split(' ').map(Number);
  rmSync(file, { force: true });
  return { rss: kb * 1024, cpu: user + system };
}

/** Runs argv to its end; throws with its output when it fails. */
/**
 * Writes back every dirty page first (untimed), so a step does not pay for the writeback of
 * the step before it (a deploy onto a loop disk leaves up to a GB dirty on the file system
 * the next step writes to).
 */
export const settle = () => void spawnSync('sync');

export function timed(argv: string[], env?: NodeJS.ProcessEnv, cwd?: string): Timed {
  settle();
  const rssFile = path.join('/tmp', `cloner-bench-rss-${process.pid}`);
  const wrap = existsSync(GNU_TIME) ? [GNU_TIME, '-f', TIME_FORMAT, '-o', rssFile] : [];
  const all = [...wrap, ...argv];
  const t = performance.now();
  const r = spawnSync(all[0], all.slice(1), { encoding: 'utf8', env: env ?? process.env, cwd, maxBuffer: 64 << 20 });
  const seconds = (performance.now() - t) / 1000;
  if (r.status !== 0) throw new Error(`${argv.join(' ')} failed: ${r.stderr}${r.stdout}`);
  return { seconds, out: r.stdout, ...usageOf(rssFile, wrap.length > 0) };
}

/** Runs a shell pipeline (bash -o pipefail), timed. */
export const timedShell = (cmd: string, env?: NodeJS.ProcessEnv) => timed(['bash', '-o', 'pipefail', '-c', cmd], env);

export const sh = (...argv: string[]) => execFileSync(argv[0], argv.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

/** Apparent bytes under a path (du -sb). */
export const duBytes = (p: string) => Number(sh('du', '-sb', p).split('\t')[0]);

export interface LoopDisk {
  /** The loop device now in use (blankFs may move to a new one). */
  disk: string;
  mnt: string;
  /** A fresh ext4 on a fresh loop device of the same size, mounted at `mnt`. */
  blankFs(): Promise<void>;
  /** Unmounts and wipes the disk (for an agent deploy that partitions it itself). */
  wipe(): Promise<void>;
  close(): void;
}

/**
 * A sparse file of `bytes` under `work` behind a loop device, and a mount point. Needs root.
 * A process that made its own mount namespace while the disk was mounted (another test on
 * this machine) keeps that file system busy after our unmount, and the kernel then refuses
 * wipefs; so a blank disk is a new sparse file on a new loop device whenever the old one
 * cannot be wiped, and the yardsticks' file systems always are.
 */
export async function loopDisk(work: string, bytes: number): Promise<LoopDisk> {
  const mnt = path.join(work, 'mnt');
  await mkdir(mnt, { recursive: true });
  let n = 0;
  const attach = async () => {
    const file = path.join(work, `disk-${n++}.img`);
    const handle = await open(file, 'wx');
    await handle.truncate(bytes);
    await handle.close();
    return sh('losetup', '-f', '--show', file).trim();
  };
  const release = (disk: string) => {
    spawnSync('umount', ['-R', mnt]);
    spawnSync('partx', ['-d', disk]);
    spawnSync('losetup', ['-d', disk]);
  };
  const d: LoopDisk = {
    disk: await attach(),
    mnt,
    async wipe() {
      spawnSync('umount', ['-R', mnt]);
      spawnSync('udevadm', ['settle']);
      if (spawnSync('wipefs', ['-a', '-q', d.disk]).status === 0) return void spawnSync('partx', ['-d', d.disk]);
      release(d.disk);
      d.disk = await attach();
    },
    async blankFs() {
      release(d.disk);
      d.disk = await attach();
      sh('mkfs.ext4', '-q', '-F', d.disk);
      sh('mount', d.disk, mnt);
    },
    close() {
      release(d.disk);
    },
  };
  return d;
}

export interface Deployed {
  seconds: number;
  /** The restore phase alone (from the agent's [restore] to its [identity] line). */
  restore: number;
  fetched: string;
  out: string;
  /** The agent's peak RSS in bytes and CPU seconds (0 without GNU time). */
  rss: number;
  cpu: number;
  /** Seconds spent in each phase, from the agent's `[phase]` lines as they arrived (start to the next). */
  phases: Array<[string, number]>;
}

/**
 * Node flags for the bench's Cloner processes: CLONER_BENCH_PROF=DIR adds a --cpu-prof into
 * DIR; CLONER_BENCH_NODE_FLAGS replaces the launchers' own (space-separated; default --max-semi-space-size=8).
 */
export const profFlags = () => [...(process.env.CLONER_BENCH_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.CLONER_BENCH_PROF}`] : []), ...(process.env.CLONER_BENCH_NODE_FLAGS ?? LAUNCHER_FLAGS).split(' ').filter(Boolean)];
/**
 * The script that runs program `prog` as the installed launchers (bin/cloner, ...) pick it:
 * the bundle dist/PROG.js (scripts/build.ts) when no source file under cli, core, server
 * or agent is newer, else the TypeScript source through bin/PROG.js, which costs 0.2-0.5 s
 * more start-up a run. CLONER_BENCH_SOURCES=1 always takes the sources.
 */
export function entryOf(prog: 'cloner' | 'cloner-server' | 'cloner-agent'): string {
  const known = entries.get(prog);
  if (known) return known;
  const bundle = `dist/${prog}.js`;
  let entry = `bin/${prog}.js`;
  if (process.env.CLONER_BENCH_SOURCES !== '1' && existsSync(bundle)) {
    const built = statSync(bundle).mtimeMs;
    const newer = ['cli', 'core', 'server', 'agent'].some((dir) =>
      (readdirSync(dir, { recursive: true }) as string[]).some((f) => f.endsWith('.ts') && statSync(path.join(dir, f)).mtimeMs > built),
    );
    if (!newer) entry = bundle;
  }
  entries.set(prog, entry);
  return entry;
}
const entries = new Map<string, string>();

/** A line for a bench's header: which build its Cloner programs run. */
export function entryNote(): string {
  return entryOf('cloner').startsWith('dist/')
    ? 'Cloner runs from its bundle, dist/ (as the installed commands do)'
    : 'Cloner runs from its TypeScript sources (dist/ is missing or older than them: npm run build makes it; or CLONER_BENCH_SOURCES=1)';
}

/** What the installed launchers (bin/cloner, bin/cloner-server, bin/cloner-agent) and the installer give Node. */
const LAUNCHER_FLAGS = '--max-semi-space-size=8';

/** `cloner-agent deploy` of node `node` onto `d.disk`, reading the phase lines as they arrive. */
export async function agentDeploy(server: { url: string; tokenFile: string }, node: string, d: LoopDisk): Promise<Deployed> {
  const rssFile = path.join('/tmp', `cloner-bench-rss-agent-${process.pid}`);
  const wrap = existsSync(GNU_TIME) ? [GNU_TIME, '-f', TIME_FORMAT, '-o', rssFile] : [];
  const argv = [...wrap, process.execPath, ...profFlags(), entryOf('cloner-agent'), 'deploy', '--server', server.url, '--token-file', server.tokenFile, '--node', node, '--disks', d.disk, '--target', d.mnt, '--force', '--no-reboot'];
  settle();
  const t = performance.now();
  const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, CLONER_PROGRESS_INTERVAL_MS: '60000' } });
  let out = '';
  let restoreStart = 0;
  let restoreEnd = 0;
  const marks: Array<[string, number]> = [];
  child.stdout.on('data', (b: Buffer) => {
    const now = performance.now();
    for (const m of String(b).matchAll(/^\[([a-z-]+)\]/gm)) marks.push([m[1], now]);
    out += b;
    if (!restoreStart && out.includes('[restore]')) restoreStart = performance.now();
    if (!restoreEnd && out.includes('[identity]')) restoreEnd = performance.now();
  });
  child.stderr.on('data', (b: Buffer) => (out += b));
  const code = await new Promise((r) => child.once('close', r));
  if (code !== 0) throw new Error(`cloner-agent deploy failed:\n${out}`);
  // The restore phase is timed from the agent's own phase lines; without both, it is not measured.
  if (!restoreStart || !restoreEnd || restoreEnd < restoreStart) throw new Error(`the agent printed no [restore] ... [identity] phase lines to time the restore by:\n${out}`);
  const fetched = /fetched ([\d.]+ \S+), reused/.exec(out)?.[1];
  if (!fetched) throw new Error(`the agent did not report what it fetched:\n${out}`);
  const end = performance.now();
  const phases = marks.map(([name, at], i): [string, number] => [name, ((marks[i + 1]?.[1] ?? end) - at) / 1000]);
  phases.unshift(['start', ((marks[0]?.[1] ?? end) - t) / 1000]);
  return { phases, seconds: (end - t) / 1000, restore: (restoreEnd - restoreStart) / 1000, fetched, out, ...usageOf(rssFile, wrap.length > 0) };
}
