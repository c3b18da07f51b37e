/**
 * Start-up time of the installed commands (the shell launchers in bin/, as scripts/install.sh
 * links them), hyperfine-style: each command is run WARMUP times untimed, then RUNS times
 * (interleaved, so a busy moment of the machine hits every command alike), and the median and
 * the spread (min..p90) of the wall time are printed, with each command's ratio to the
 * fastest yardstick: `restic version` (a Go binary) and `ipmitool -V` (a C binary), the
 * no-op calls of tools an admin already runs. Beside the wall time, each command's mean CPU
 * time (user + system, from the children's times in /proc/self/stat, in clock ticks): on a
 * busy machine the wall time grows with the load, the CPU time much less, so it is the
 * figure to compare between runs made under different loads. The bundles are rebuilt first (scripts/build.ts),
 * so the launchers run dist/ and not the sources.
 *
 * Goal (issue 15): `cloner --help` and `cloner image-list` against a running server <= 150 ms.
 * Usage: npm run bench:startup [-- RUNS]   (default 30 runs)
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startBenchServer } from './server.ts';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const RUNS = Number(process.argv[2] ?? 30);
const WARMUP = 3;
const GOAL_MS = 150;

const build = spawnSync(process.execPath, [path.join(root, 'scripts/build.ts')], { encoding: 'utf8' });
if (build.status !== 0) throw new Error(`build failed: ${build.stderr}`);

const dir = await mkdtemp(path.join(tmpdir(), 'cloner-bench-startup-'));
const server = await startBenchServer(path.join(dir, 'data'));
try {
  const env = { ...process.env, CLONER_CLIENT_CONFIG: path.join(dir, 'none.json') };
  const bin = (prog: string) => path.join(root, 'bin', prog);
  const have = (tool: string) => spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;
  const cases: Array<{ name: string; argv: string[]; goal?: boolean; yardstick?: boolean }> = [
    { name: 'cloner --help', argv: [bin('cloner'), '--help'], goal: true },
    { name: 'cloner --version', argv: [bin('cloner'), '--version'] },
    { name: 'cloner image-list (server)', argv: [bin('cloner'), 'image-list', '--server', server.url, '--token-file', server.tokenFile], goal: true },
    { name: 'cloner-server --help', argv: [bin('cloner-server'), '--help'] },
    { name: 'cloner-agent --help', argv: [bin('cloner-agent'), '--help'] },
    ...(have('restic') ? [{ name: 'restic version', argv: ['restic', 'version'], yardstick: true }] : []),
    ...(have('ipmitool') ? [{ name: 'ipmitool -V', argv: ['ipmitool', '-V'], yardstick: true }] : []),
  ];
  const tick = 1000 / Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim() || 100);
  // cutime + cstime: the CPU time of waited-for children (fields 16 and 17 of /proc/self/stat).
  const childCpuMs = () => {
    const stat = readFileSync('/proc/self/stat', 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[13]) + Number(fields[14])) * tick;
  };
  const times = new Map(cases.map((c) => [c.name, [] as number[]]));
  const cpu = new Map(cases.map((c) => [c.name, 0]));
  for (let i = 0; i < WARMUP + RUNS; i++) {
    for (const c of cases) {
      const c0 = childCpuMs();
      const t0 = performance.now();
      const r = spawnSync(c.argv[0], c.argv.slice(1), { env, stdio: ['ignore', 'ignore', 'pipe'] });
      const ms = performance.now() - t0;
      if (r.status !== 0) throw new Error(`${c.name} failed (${r.status}): ${r.stderr}`);
      if (i >= WARMUP) {
        times.get(c.name)!.push(ms);
        cpu.set(c.name, cpu.get(c.name)! + childCpuMs() - c0);
      }
    }
  }
  const q = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))];
  const medians = new Map(cases.map((c) => [c.name, q(times.get(c.name)!, 0.5)]));
  const yard = cases.filter((c) => c.yardstick).map((c) => medians.get(c.name)!);
  const base = yard.length ? Math.min(...yard) : NaN;
  process.stdout.write(`start-up, ${RUNS} runs each after ${WARMUP} warm-up, wall time (Node ${process.version}, ${path.relative(process.cwd(), root) || '.'})\n`);
  const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  process.stdout.write(`load average ${load} (2-core machine: wall times grow with it)\n`);
  process.stdout.write(`${'command'.padEnd(30)} ${'median'.padStart(8)} ${'min..p90'.padStart(16)} ${'x yardstick'.padStart(12)} ${'cpu/run'.padStart(9)}  goal\n`);
  let missed = 0;
  for (const c of cases) {
    const xs = times.get(c.name)!;
    const med = medians.get(c.name)!;
    const goal = c.goal ? (med <= GOAL_MS ? `<= ${GOAL_MS} ms: met` : `<= ${GOAL_MS} ms: MISSED`) : '';
    if (c.goal && med > GOAL_MS) missed++;
    process.stdout.write(`${c.name.padEnd(30)} ${`${med.toFixed(1)} ms`.padStart(8)} ${`${q(xs, 0).toFixed(0)}..${q(xs, 0.9).toFixed(0)} ms`.padStart(16)} ${(med / base).toFixed(1).padStart(11)}x ${`${(cpu.get(c.name)! / RUNS).toFixed(0)} ms`.padStart(9)}  ${goal}\n`);
  }
  if (missed) process.stdout.write(`${missed} command(s) over the ${GOAL_MS} ms goal\n`);
} finally {
  await server.stop();
  await rm(dir, { recursive: true, force: true });
}
