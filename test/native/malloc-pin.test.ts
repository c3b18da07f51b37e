/**
 * The fsx addon pins glibc malloc's thresholds as it loads (core/native/memory.c): after a
 * large block was freed, later large blocks must still be mmap'd (returned to the kernel on
 * free), not carved from the heap arena, whose freed middle is never given back.
 *
 * Each case runs in a child Node (the pin is per process): it allocates and frees an 8 MiB
 * buffer (which, unpinned, raises glibc's dynamic mmap threshold to 8 MiB), then holds
 * eight 4 MiB buffers and reports how much the [heap] mapping grew. Unpinned (the control,
 * which shows the test can see the difference), the heap grows by the 32 MiB; pinned, it
 * does not. An administrator's MALLOC_MMAP_THRESHOLD_ wins over the pin.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { FSX_ADDON_PATH } from '../../core/native/codec.ts';

const MiB = 1024 * 1024;

const CHILD = `
const heap = () => {
  const line = require('node:fs').readFileSync('/proc/self/maps', 'utf8').split('\\n').find((l) => l.endsWith('[heap]'));
  if (!line) return 0;
  const [a, b] = line.split(' ')[0].split('-').map((x) => parseInt(x, 16));
  return b - a;
};
const addon = process.argv[1] ? require(process.argv[1]) : undefined;
(async () => {
  let big = Buffer.allocUnsafeSlow(8 * 1024 * 1024);
  big.fill(1);
  big = undefined;
  for (let i = 0; i < 5; i++) { globalThis.gc(); await new Promise((r) => setTimeout(r, 20)); }
  const before = heap();
  const held = [];
  for (let i = 0; i < 8; i++) held.push(Buffer.allocUnsafeSlow(4 * 1024 * 1024).fill(2));
  console.log(JSON.stringify({ pinned: addon?.mallocPinned ?? null, growth: heap() - before, held: held.length }));
})();
`;

function run(withAddon: boolean, env: NodeJS.ProcessEnv = {}): { pinned: boolean | null; growth: number } {
  const out = execFileSync(process.execPath, ['--expose-gc', '-e', CHILD, withAddon ? FSX_ADDON_PATH : ''], { encoding: 'utf8', env: { ...process.env, ...env } });
  return JSON.parse(out) as { pinned: boolean | null; growth: number };
}

const glibc = !!(process.report.getReport() as { header?: { glibcVersionRuntime?: string } }).header?.glibcVersionRuntime;

test('unpinned (control): after an 8 MiB block is freed, 4 MiB blocks grow the heap', () => {
  if (!glibc) return void console.log('skipped: malloc-pin control: not glibc');
  const r = run(false);
  assert.ok(r.growth >= 28 * MiB, `the heap grew ${r.growth} bytes: glibc's dynamic threshold was expected to put the 4 MiB blocks there`);
});

test('pinned by the addon: 4 MiB blocks stay mmap\'d, the heap does not grow by them', () => {
  const r = run(true);
  if (!glibc) return void assert.is(r.pinned, false);
  assert.is(r.pinned, true);
  assert.ok(r.growth < 8 * MiB, `the heap grew ${r.growth} bytes with the thresholds pinned`);
});

test('an administrator\'s MALLOC_MMAP_THRESHOLD_ wins: nothing is pinned', () => {
  const r = run(true, { MALLOC_MMAP_THRESHOLD_: String(2 * MiB) });
  assert.is(r.pinned, false);
});

test.run();
