/**
 * agent/writeback.ts: the writeback starts when the sync's progress turns to 'place' (once,
 * on the paths asked for then), the phase reads back as set and stays an own enumerable
 * field (reports spread the progress), and `settle` waits for the real `sync -f` and never
 * throws, even when it fails.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { newSyncProgress } from '../../core/tree/sync.ts';
import { Writeback } from '../../agent/writeback.ts';
import { withTempDir } from '../helpers/fixtures.ts';

test('starts on the place phase, once, with the paths of that moment', async () => {
  await withTempDir(async (dir) => {
    const w = new Writeback();
    const progress = newSyncProgress();
    const asked: string[][] = [];
    w.startWhenPlacing(progress, () => (asked.push([dir]), [dir]));
    for (const p of ['scan', 'data'] as const) progress.phase = p;
    assert.equal(asked, [], 'not during the scan or data phases');
    progress.phase = 'place';
    progress.phase = 'metadata';
    progress.phase = 'place';
    assert.is(asked.length, 2, 'asked each time the phase turns to place');
    assert.is(progress.phase, 'place');
    assert.is({ ...progress }.phase, 'place', 'an own enumerable field');
    assert.ok(Object.keys(progress).includes('phase'));
    await w.settle();
  });
});

test('settle never throws, also when sync -f fails', async () => {
  const w = new Writeback();
  w.start(['/nonexistent/dp-writeback']);
  await w.settle();
  await w.settle();
});

test.run();
