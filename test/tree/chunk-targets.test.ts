/** chunkTargets: every place of every chunk (shared chunks, skipped places, offsets past 2 GiB), in flat arrays. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ChunkTargets, chunkTargets } from '../../core/tree/chunk-targets.ts';
import type { FileEntry } from '../../core/tree/manifest.ts';

const A = 'a'.repeat(64);
const B = 'b'.repeat(64);
const C = 'c'.repeat(64);
const fileOf = (chunks: Array<[number, number, string]>) => ({ type: 'file', name: 'f', mode: 0o644, uid: 0, gid: 0, mtime: [0, 0], size: 0, chunks }) as unknown as FileEntry;
const placesOf = (t: ChunkTargets, id: string) => {
  const out: number[][] = [];
  t.places(id, (file, offset, length) => out.push([file, offset, length]));
  return out.sort((x, y) => x[0] - y[0] || x[1] - y[1]);
};

test('each chunk lists every file and offset that holds it, once per place', () => {
  const big = 5 * 2 ** 30 + 7; // an offset past what 32 bits hold
  const t = chunkTargets([fileOf([[0, 10, A], [10, 20, B]]), fileOf([[0, 10, A]]), fileOf([[big, 30, C], [big + 30, 10, A]])]);
  assert.equal(t.size, 3);
  assert.equal([...t.ids()].sort(), [A, B, C]);
  assert.equal(placesOf(t, A), [[0, 0, 10], [1, 0, 10], [2, big + 30, 10]]);
  assert.equal(placesOf(t, B), [[0, 10, 20]]);
  assert.equal(placesOf(t, C), [[2, big, 30]]);
  assert.equal(placesOf(t, 'd'.repeat(64)), []);
  assert.equal([...t.placesPerFile(4)], [2, 1, 2, 0]);
});

test('skip leaves places out; a chunk with no place left is not asked for', () => {
  const t = chunkTargets([fileOf([[0, 10, A], [10, 20, B]]), fileOf([[0, 10, A]])], (file, offset) => file === 0 && offset === 10);
  assert.equal([...t.ids()], [A]);
  assert.equal(placesOf(t, A), [[0, 0, 10], [1, 0, 10]]);
  assert.equal([...t.placesPerFile(2)], [1, 1]);
});

test('more places than the capacity is an error, not a silent overwrite', () => {
  const t = new ChunkTargets(1);
  t.add(A, 0, 0, 1);
  assert.throws(() => t.add(B, 0, 1, 1), /capacity/);
});

test.run();
