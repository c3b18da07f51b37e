/**
 * Where every chunk of a set of files goes: chunk id -> every (file index, offset, length)
 * that holds it, for restore and sync to write each fetched chunk to all its places.
 *
 * Algorithm: a tree holds hundreds of thousands of chunks, most in one place, so the places
 * are not objects: they live in flat typed arrays sized once (the files' chunk count), and
 * each chunk id maps to the index of its first place, the others linked through `next`
 * (-1 ends a list). About 50 bytes per chunk instead of ~250 for a Map of arrays of arrays.
 */
import type { ChunkId } from '../store/chunk-id.ts';
import type { FileEntry } from './manifest.ts';

export class ChunkTargets {
  private readonly first = new Map<ChunkId, number>();
  private readonly fileOf: Int32Array;
  private readonly offsetOf: Float64Array;
  private readonly lengthOf: Int32Array;
  private readonly next: Int32Array;
  private count = 0;

  /** Room for `capacity` places. */
  constructor(capacity: number) {
    this.fileOf = new Int32Array(capacity);
    this.offsetOf = new Float64Array(capacity);
    this.lengthOf = new Int32Array(capacity);
    this.next = new Int32Array(capacity);
  }

  /** Adds one place of chunk `id` (offset and length in bytes). Throws RangeError past the capacity. */
  add(id: ChunkId, fileIndex: number, offset: number, length: number): void {
    const t = this.count;
    if (t >= this.next.length) throw new RangeError('ChunkTargets: more places than its capacity');
    this.fileOf[t] = fileIndex;
    this.offsetOf[t] = offset;
    this.lengthOf[t] = length;
    this.next[t] = this.first.get(id) ?? -1;
    this.first.set(id, t);
    this.count++;
  }

  /** Distinct chunk ids. */
  get size(): number {
    return this.first.size;
  }

  /** Every distinct chunk id, in the order first added. */
  ids(): IterableIterator<ChunkId> {
    return this.first.keys();
  }

  /** Calls `fn` with every place of `id` (none for an id not added). */
  places(id: ChunkId, fn: (fileIndex: number, offset: number, length: number) => void): void {
    for (let t = this.first.get(id) ?? -1; t >= 0; t = this.next[t]) fn(this.fileOf[t], this.offsetOf[t], this.lengthOf[t]);
  }

  /** How many places each file index in [0, files) has. */
  placesPerFile(files: number): Int32Array {
    const per = new Int32Array(files);
    for (let t = 0; t < this.count; t++) per[this.fileOf[t]]++;
    return per;
  }
}

/** Where every chunk of `entries` goes; `skip(fileIndex, offset)` leaves a place out (already filled). */
export function chunkTargets(entries: readonly FileEntry[], skip?: (fileIndex: number, offset: number) => boolean): ChunkTargets {
  let capacity = 0;
  for (const entry of entries) capacity += entry.chunks.length;
  const targets = new ChunkTargets(capacity);
  entries.forEach((entry, index) => {
    for (const [offset, length, id] of entry.chunks) if (!skip?.(index, offset)) targets.add(id, index, offset, length);
  });
  return targets;
}
