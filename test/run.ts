/**
 * Test runner: runs every test/**\/*.test.ts file in its own Node 24 process (uvu suites;
 * a crash or leak in one file cannot hide the others), reads uvu's totals from each, and
 * ends with the line CI reads: `N passed, N failed, N skipped`. A file that runs over
 * its time limit (CLONER_TEST_FILE_TIMEOUT_S, default 600) is killed and counts as failed.
 * Usage: node test/run.ts [substring filter]
 */
import { spawn } from 'node:child_process';
import fg from 'fast-glob';

const filter = process.argv[2] ?? '';
const fileTimeoutMs = Number(process.env.CLONER_TEST_FILE_TIMEOUT_S ?? 600) * 1000;
const files = (await fg('test/**/*.test.ts', { cwd: new URL('..', import.meta.url).pathname })).filter((f) => f.includes(filter)).sort();
let passed = 0;
let failed = 0;
let skipped = 0;
for (const file of files) {
  const started = performance.now();
  const output = await new Promise<{ code: number | null; text: string }>((resolve) => {
    const child = spawn(process.execPath, [file], { cwd: new URL('..', import.meta.url).pathname, stdio: ['ignore', 'pipe', 'pipe'] });
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
      child.kill('SIGKILL');
    }, fileTimeoutMs);
    child.on('close', (code) => {
      clearTimeout(overrun);
      resolve({ code, text });
    });
  });
  const plain = output.text.replace(/\x1b\[[0-9;]*m/g, '');
  const total = Number(/Total:\s+(\d+)/.exec(plain)?.[1] ?? 0);
  const ok = Number(/Passed:\s+(\d+)/.exec(plain)?.[1] ?? 0);
  const skip = Number(/Skipped:\s+(\d+)/.exec(plain)?.[1] ?? 0);
  let bad = total - ok - skip;
  if (output.code !== 0 && bad <= 0) bad = 1; // crashed before or after its suites
  passed += ok;
  failed += Math.max(bad, 0);
  skipped += skip;
  process.stdout.write(`# ${file}: ${ok} passed, ${Math.max(bad, 0)} failed, ${skip} skipped (${((performance.now() - started) / 1000).toFixed(1)}s)\n`);
}
process.stdout.write(`${passed} passed, ${failed} failed, ${skipped} skipped\n`);
process.exit(failed > 0 || files.length === 0 ? 1 : 0);
