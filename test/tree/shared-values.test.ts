/**
 * SharedValues (loadTree's memory saving): equal chunk lists, chunk ids and mtimes are kept
 * once and frozen; lists that differ anywhere (a later ref, an offset, a length) stay apart.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { SharedValues } from '../../core/tree/shared-values.ts';
import type { ChunkRef, FileEntry, Timestamp } from '../../core/tree/manifest.ts';
import type { ChunkId } from '../../core/store/chunk-id.ts';

const A = 'a'.repeat(64) as ChunkId;
const B = 'b'.repeat(64) as ChunkId;
const C = 'c'.repeat(64) as ChunkId;
const file = (name: string, chunks: ChunkRef[], mtime: Timestamp = [1_700_000_000, 5]): FileEntry => ({ name, type: 'file', mode: 0o644, uid: 0, gid: 0, mtime, size: 1 << 20, chunks });
// A fresh string with the same value, as JSON.parse makes one per occurrence.
const copy = (id: ChunkId) => (id.slice(0, 32) + id.slice(32)) as ChunkId;

test('equal lists and mtimes become one frozen value; different ones stay apart', () => {
  const shared = new SharedValues();
  const one = file('one', [[0, 10, A], [10, 20, B]]);
  const two = file('two', [[0, 10, copy(A)], [10, 20, copy(B)]]);
  const later = file('later', [[0, 10, A], [10, 20, C]]);
  const offset = file('offset', [[0, 10, A], [11, 20, B]]);
  const length = file('length', [[0, 10, A], [10, 21, B]]);
  const shorter = file('shorter', [[0, 10, A]]);
  const otherTime = file('other-time', [[0, 10, A]], [1_700_000_000, 6]);
  const entries = [one, two, later, offset, length, shorter, otherTime];
  const before = entries.map((e) => JSON.stringify(e));
  for (const e of entries) shared.entry(e);
  assert.equal(entries.map((e) => JSON.stringify(e)), before, 'every entry keeps its value');
  assert.is(two.chunks, one.chunks, 'equal lists: one array');
  for (const e of [later, offset, length, shorter]) assert.is.not(e.chunks, one.chunks, `${e.name} differs and keeps its own list`);
  assert.is(later.chunks[0][2], one.chunks[0][2], 'one string per chunk id');
  assert.ok(Object.isFrozen(one.chunks) && Object.isFrozen(one.chunks[0]), 'shared lists are frozen');
  assert.is(two.mtime, one.mtime, 'equal mtimes: one array');
  assert.is.not(otherTime.mtime, one.mtime);
  assert.ok(Object.isFrozen(one.mtime));
  assert.throws(() => {
    (two.chunks as ChunkRef[]).push([30, 1, C]);
  }, TypeError);
});

test('an empty chunk list and a directory entry are shared safely', () => {
  const shared = new SharedValues();
  const empty1 = file('e1', []);
  const empty2 = file('e2', []);
  const dir = { name: 'd', type: 'dir' as const, mode: 0o755, uid: 0, gid: 0, mtime: [1_700_000_000, 5] as Timestamp, tree: A };
  shared.entry(empty1);
  shared.entry(empty2);
  shared.entry(dir);
  shared.entry(file('f', [[0, 1, B]]));
  assert.is(empty1.chunks, empty2.chunks);
  assert.is(empty1.chunks.length, 0);
  assert.is(dir.mtime, empty1.mtime);
});

test.run();
