/** Capture's read queue: reads run a few at a time, and the walk's brake holds while too many wait. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import path from 'node:path';
import { captureTree } from '../../core/tree/capture.ts';
import { dirSlots, readQueue } from '../../core/tree/read-queue.ts';
import { DEFAULT_CHUNKER_PARAMS } from '../../core/chunker/fastcdc.ts';
import { LocalStore } from '../../core/store/local.ts';
import { file, makeTree, withTempDir } from '../helpers/fixtures.ts';

/** A read that ends when `release()` is called. */
function gated() {
  let release!: () => void;
  const done = new Promise<void>((r) => (release = r));
  return { release, read: () => done };
}

test('ahead() is undefined below the limit, and a promise that resolves once queued reads start', async () => {
  const q = readQueue(1, 2);
  const reads = [gated(), gated(), gated()];
  const results = reads.map((g) => q.run(g.read));
  await Promise.resolve();
  // One runs, two are queued: the walk must wait.
  assert.is(q.ahead() === undefined, false);
  let woke = false;
  const brake = q.ahead()!.then(() => (woke = true));
  await new Promise((r) => setTimeout(r, 10));
  assert.is(woke, false, 'the brake held while the queue was full');
  reads[0].release();
  await brake;
  assert.is(woke, true, 'a read leaving the queue released the brake');
  assert.is(q.ahead(), undefined);
  reads[1].release();
  reads[2].release();
  await Promise.all(results);
});

test('a read that fails still leaves the queue and passes its error on', async () => {
  const q = readQueue(1, 1);
  const failing = q.run(() => Promise.reject(new Error('boom')));
  const next = q.run(() => Promise.resolve(7));
  const err = await failing.then(() => null, (e: Error) => e);
  assert.match(String(err?.message), /boom/);
  assert.is(await next, 7);
  assert.is(q.ahead(), undefined);
});

test('a capture of a tree with more files than the queue holds stores them all', async () => {
  await withTempDir(async (dir) => {
    const root = path.join(dir, 'root');
    const spec: Record<string, ReturnType<typeof file>> = {};
    // 1,200 files in 3 directories: more than MAX_QUEUED_READS (512), so the brake engages.
    for (let i = 0; i < 1200; i++) spec[`d${i % 3}/f${i}`] = file(`content ${i}\n`.repeat(1 + (i % 7)));
    await makeTree(root, spec);
    const store = await LocalStore.open(path.join(dir, 'store'), { create: true });
    try {
      const { progress } = await captureTree({ root, store, chunker: DEFAULT_CHUNKER_PARAMS });
      assert.is(progress.files, 1200);
      assert.is(progress.dirs, 4);
      assert.is(progress.reusedFiles, 0);
    } finally {
      await store.close();
    }
  });
});

test('directory slots: at most N held, granted newest first, a release counts once', async () => {
  const slots = dirSlots(2);
  const a = await slots.acquire();
  const b = await slots.acquire();
  const order: string[] = [];
  const c = slots.acquire().then((r) => (order.push('c'), r));
  const d = slots.acquire().then((r) => (order.push('d'), r));
  await new Promise((r) => setTimeout(r, 5));
  assert.equal(order, [], 'both slots are held: the others wait');
  a();
  a(); // a second call of the same release frees nothing more
  const releaseD = await d;
  await new Promise((r) => setTimeout(r, 5));
  assert.equal(order, ['d'], 'the newest waiter got the slot, and only one was freed');
  b();
  (await c)();
  releaseD();
});

test.run();
