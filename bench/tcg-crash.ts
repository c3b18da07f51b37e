/**
 * bench:tcg-crash — how often Node dies of a signal inside a test VM, under qemu's
 * multi-threaded TCG against single-threaded TCG (the test VMs' setting, TCG_ACCEL).
 *
 * Guest Node died of SIGSEGV/SIGTRAP now and then in CI's VM tests; this is the experiment
 * that chose `-accel tcg,thread=single`. For each mode it boots the test VM (2 vCPUs), then
 * runs a loop of short Node processes, each kind of run that crashed before: a JIT-heavy
 * script, the CLI's start-up (`cloner --version`) and `cloner layout-capture --help`.
 * A run whose exit status is 128 or more died of a signal. It prints, per mode, the runs,
 * the deaths by signal (and which signals) and the wall time of the loop.
 *
 * CLONER_BENCH_ROUNDS sets the rounds of the three runs (default 40: 120 runs per mode,
 * ~15 min per mode on 2 cores). Needs what the VM tests need (qemu, the cached VM image).
 */
import { withVm, vmUnavailable } from '../test/vm/harness.ts';

const rounds = Number(process.env.CLONER_BENCH_ROUNDS ?? 40);
if (!Number.isInteger(rounds) || rounds < 1 || rounds > 1000) {
  console.error(`bench:tcg-crash: CLONER_BENCH_ROUNDS must be a whole number from 1 to 1000 (got "${process.env.CLONER_BENCH_ROUNDS}")`);
  process.exit(2);
}
const blocker = vmUnavailable();
if (blocker) {
  console.log(`bench:tcg-crash skipped: ${blocker}`);
  process.exit(0);
}
if ((process.env.CLONER_VM_ACCEL ?? 'tcg') !== 'tcg') {
  console.log('bench:tcg-crash skipped: CLONER_VM_ACCEL is not tcg (the comparison is of TCG modes)');
  process.exit(0);
}

const JIT = 'let s=0;for(let i=0;i<2e7;i++)s+=Math.sqrt(i)%7;const a=[];for(let i=0;i<2e5;i++)a.push({i,t:String(i)});a.sort((x,y)=>y.i-x.i);';
// One line per run: "<kind> <exit status>"; the loop itself never stops on a failure.
const LOOP = `for i in $(seq ${rounds}); do
  node -e '${JIT}' >/dev/null 2>&1; echo "jit $?"
  node bin/cloner.js --version >/dev/null 2>&1; echo "start-up $?"
  node bin/cloner.js layout-capture --help >/dev/null 2>&1; echo "help $?"
done`;

interface Result {
  mode: 'multi' | 'single';
  runs: number;
  died: string[];
  seconds: number;
}
const results: Result[] = [];
for (const mode of ['multi', 'single'] as const) {
  const result = await withVm({ cpus: 2, memoryMiB: 1024, tcgThread: mode, timeoutMs: rounds * 3 * 30_000 + 300_000 }, async (vm) => {
    console.log(`bench:tcg-crash: tcg,thread=${mode}: VM booted in ${vm.bootSeconds.toFixed(1)} s; ${rounds * 3} runs`);
    const started = performance.now();
    const { output } = await vm.run(LOOP, { timeoutMs: rounds * 3 * 30_000 });
    const seconds = (performance.now() - started) / 1000;
    const lines = output.split('\n').map((l) => /^(\S+) (\d+)$/.exec(l.trim())).filter((m) => m !== null);
    const died = lines.filter((m) => Number(m[2]) >= 128).map((m) => `${m[1]}: signal ${Number(m[2]) - 128}`);
    return { mode, runs: lines.length, died, seconds };
  });
  console.log(`bench:tcg-crash: tcg,thread=${mode}: ${result.died.length} of ${result.runs} runs died of a signal in ${result.seconds.toFixed(0)} s${result.died.length ? ` (${result.died.join(', ')})` : ''}`);
  results.push(result);
}

console.log('\nmode                 runs  died by a signal  seconds');
for (const r of results) console.log(`tcg,thread=${r.mode.padEnd(9)} ${String(r.runs).padStart(5)}  ${String(r.died.length).padStart(16)}  ${r.seconds.toFixed(0).padStart(7)}`);
