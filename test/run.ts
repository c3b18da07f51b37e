/**
 * Test runner: runs every test/**\/*.test.ts file in its own Node 24 process (uvu suites;
 * a crash or leak in one file cannot hide the others), reads uvu's totals from each, and
 * ends with the line CI reads: `N passed, N failed, N skipped`. A file that runs over
 * its time limit (CLONER_TEST_FILE_TIMEOUT_S, default 600; LONGER below) is killed and counts as failed.
 *
 * Counts: uvu prints `Total` (the tests it ran; skipped ones are not in it), `Passed` and
 * `Skipped`, so a file's failures are Total - Passed. A file that exits non-zero with no
 * failure counted (a crash before or after its suites) counts one failure.
 *
 * Skips: a file whose tests cannot run here prints one line `skipped: <what>: <why>` and
 * registers `test.skip` (test/helpers/skip.ts); a test that gives up and returns prints
 * `skipped (returned early): <what>: <why>` (uvu counts it as passed; it is moved to
 * skipped here). A uvu skip without a line is a skip "without a printed reason". With
 * CI=true a skip is a failure: it is counted as failed (not skipped) and its reason
 * printed, so a green CI means every test ran. CLONER_SKIP_VM is not passed on in CI.
 * Usage: node test/run.ts [substring filter]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fg from 'fast-glob';

const filter = process.argv[2] ?? '';
const ci = process.env.CI === 'true' || process.env.CI === '1';
const defaultTimeoutS = Number(process.env.CLONER_TEST_FILE_TIMEOUT_S ?? 600);
/**
 * Files whose own limit is longer (seconds; CLONER_TEST_FILE_TIMEOUT_S, when larger, wins):
 * the PXE lab boots three nodes from their firmware through the installer to their clones
 * under TCG, 10 to 23 minutes here (23 at load 16). The file is told its limit in CLONER_TEST_FILE_TIMEOUT_S.
 */
const LONGER: Record<string, number> = { 'test/vm/pxe-lab.test.ts': 1500 };
const timeoutSOf = (file: string) => Math.max(defaultTimeoutS, LONGER[file] ?? 0);
const env = { ...process.env };
if (ci && env.CLONER_SKIP_VM) {
  process.stdout.write('# CI=true: CLONER_SKIP_VM is ignored (a skipped VM test would fail the run)\n');
  delete env.CLONER_SKIP_VM;
}
const files = (await fg('test/**/*.test.ts', { cwd: new URL('..', import.meta.url).pathname })).filter((f) => f.includes(filter)).sort();

/** What one file's output says: tests passed, failed and skipped, and why each skip. */
function countFile(text: string, exitCode: number | null): { passed: number; failed: number; skipped: number; reasons: string[] } {
  const plain = text.replace(/\x1b\[[0-9;]*m/g, '');
  const totals = /Total:\s+(\d+)\s+Passed:\s+(\d+)\s+Skipped:\s+(\d+)/.exec(plain);
  const total = Number(totals?.[1] ?? 0);
  let passed = Number(totals?.[2] ?? 0);
  const uvuSkipped = Number(totals?.[3] ?? 0);
  let failed = total - passed; // uvu's Total already leaves skipped tests out
  if (!totals || (exitCode !== 0 && failed <= 0)) failed = Math.max(failed, 1); // crashed before or after its suites
  // `skipped: ` lines explain uvu's skips; `skipped (returned early): ` lines come from tests
  // that gave up and returned, which uvu counted as passed. Either may follow uvu's marks.
  const reasons = [...plain.matchAll(/(?:^|[•✘] )skipped: ([^\n]+)/gm)].map((m) => m[1].trim());
  const early = [...plain.matchAll(/(?:^|[•✘] )skipped \(returned early\): ([^\n]+)/gm)].map((m) => `${m[1].trim()} (returned early)`);
  passed = Math.max(0, passed - early.length);
  for (let i = reasons.length; i < uvuSkipped; i++) reasons.push('a test was skipped without a printed reason');
  reasons.push(...early);
  const skipped = Math.max(uvuSkipped, reasons.length - early.length) + early.length;
  return { passed, failed, skipped, reasons };
}

let passed = 0;
let failed = 0;
let skipped = 0;
const skipFailures: string[] = [];
let current: ChildProcess | undefined;
const killGroup = (child: ChildProcess, signal: NodeJS.Signals) => {
  try {
    process.kill(-child.pid!, signal);
  } catch {
    child.kill(signal);
  }
};
// Ctrl-C or a stop of the runner reaches the running file's group (it is detached from ours).
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    if (current && current.exitCode === null) killGroup(current, signal);
    process.exit(130);
  });
}
for (const file of files) {
  const started = performance.now();
  const output = await new Promise<{ code: number | null; text: string }>((resolve) => {
    const fileTimeoutMs = timeoutSOf(file) * 1000;
    // Its own process group, so an overrun kills what the file started too (servers, VMs,
    // agents), which SIGKILL gives it no chance to tear down.
    const child = spawn(process.execPath, [file], { cwd: new URL('..', import.meta.url).pathname, stdio: ['ignore', 'pipe', 'pipe'], env: { ...env, CLONER_TEST_FILE_TIMEOUT_S: String(timeoutSOf(file)) }, detached: true });
    current = child;
    let text = '';
    child.stdout.on('data', (d) => {
      text += d;
      process.stdout.write(d);
    });
    child.stderr.on('data', (d) => {
      text += d;
      process.stderr.write(d);
    });
    const overrun = setTimeout(() => {
      text += `\n# ${file}: killed after ${fileTimeoutMs / 1000} s\n`;
      process.stderr.write(`# ${file}: killed after ${fileTimeoutMs / 1000} s\n`);
      killGroup(child, 'SIGKILL');
    }, fileTimeoutMs);
    child.on('close', (code) => {
      clearTimeout(overrun);
      resolve({ code, text });
    });
  });
  const c = countFile(output.text, output.code);
  if (ci && c.skipped > 0) {
    c.failed += c.skipped;
    for (const reason of c.reasons) skipFailures.push(`${file}: ${reason}`);
    c.skipped = 0;
  }
  passed += c.passed;
  failed += c.failed;
  skipped += c.skipped;
  const why = c.reasons.length ? ` [${ci ? 'skip is a failure in CI' : 'skipped'}: ${c.reasons.join('; ')}]` : '';
  process.stdout.write(`# ${file}: ${c.passed} passed, ${c.failed} failed, ${c.skipped} skipped${why} (${((performance.now() - started) / 1000).toFixed(1)}s)\n`);
}
if (skipFailures.length) {
  process.stdout.write(`# CI=true: ${skipFailures.length} skipped test(s) fail the run:\n`);
  for (const line of skipFailures) process.stdout.write(`#   ${line}\n`);
}
process.stdout.write(`${passed} passed, ${failed} failed, ${skipped} skipped\n`);
process.exit(failed > 0 || files.length === 0 ? 1 : 0);
