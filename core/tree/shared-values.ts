/**
 * Equal values of a loaded tree kept once (loadTree): a deploy holds the whole tree for its
 * length, and most of its fields repeat.
 *
 * Algorithm: every chunk id is replaced by the first string met with its value; a file's
 * chunk list by the first equal list (files with the same content: looked up by the list's
 * first id, then compared ref by ref); a timestamp by the first equal one (looked up by its
 * seconds). The shared lists, refs and timestamps are frozen, so a caller that tried to
 * change one for one entry (and so for all that share it) fails at once instead.
 *
 * On the bench's trees (bench:peers --scale 8, 196k entries): 2,719 distinct mtimes, and
 * 37k distinct chunk lists of 163k files (the 8x tree repeats the node tree's files; the
 * node tree alone has its own duplicates, license files, empty files). Each shared mtime
 * saves ~64 bytes, each shared list ~50 bytes plus ~80 a ref.
 */
import type { ChunkId } from '../store/chunk-id.ts';
import type { ChunkRef, Entry, Timestamp } from './manifest.ts';

const EMPTY: ChunkRef[] = Object.freeze([]) as unknown as ChunkRef[];

export class SharedValues {
  private readonly ids = new Map<ChunkId, ChunkId>();
  /** First chunk id -> the distinct lists that start with it. */
  private readonly lists = new Map<ChunkId, ChunkRef[][]>();
  /** Seconds -> the distinct timestamps with those seconds. */
  private readonly times = new Map<number, Timestamp[]>();

  /** Replaces the entry's repeated values (mtime; a file's chunk ids and list) with shared ones, in place. */
  entry(entry: Entry): void {
    entry.mtime = this.time(entry.mtime);
    if (entry.type !== 'file') return;
    const chunks = entry.chunks;
    if (chunks.length === 0) {
      entry.chunks = EMPTY;
      return;
    }
    for (const ref of chunks) {
      const kept = this.ids.get(ref[2]);
      if (kept === undefined) this.ids.set(ref[2], ref[2]);
      else ref[2] = kept;
    }
    const first = chunks[0][2];
    const candidates = this.lists.get(first);
    const same = candidates?.find((list) => sameList(list, chunks));
    if (same) {
      entry.chunks = same;
      return;
    }
    for (const ref of chunks) Object.freeze(ref);
    Object.freeze(chunks);
    if (candidates) candidates.push(chunks);
    else this.lists.set(first, [chunks]);
  }

  private time(t: Timestamp): Timestamp {
    const list = this.times.get(t[0]);
    const same = list?.find((x) => x[1] === t[1]);
    if (same) return same;
    Object.freeze(t);
    if (list) list.push(t);
    else this.times.set(t[0], [t]);
    return t;
  }
}

/** Equal chunk lists; ids compared as strings already shared, so by identity first. */
function sameList(a: readonly ChunkRef[], b: readonly ChunkRef[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i][0] !== b[i][0] || a[i][1] !== b[i][1] || a[i][2] !== b[i][2]) return false;
  return true;
}
