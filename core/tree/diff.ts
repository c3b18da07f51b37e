/**
 * What changed between two trees (two revisions of an image): paths added, removed and
 * changed, with the bytes of regular files. `cloner image-diff` and the web interface's
 * image page both call `diffTrees`.
 *
 * Algorithm: both trees are walked side by side from the root, one directory object
 * each; entries are merged by name (both lists are sorted). Since a directory object is
 * content-addressed, an unchanged subdirectory has the same id in both trees and is
 * skipped without reading it (a one-file change in a million-file image reads only the
 * directories on its path). A subtree present on one side only is walked whole and every
 * path under it counted as added or removed. A file is "changed" when its data (size or
 * chunk list), type, mode, owner, symlink target, device numbers, xattrs or mtime differ;
 * a directory only when its own mode, owner or xattrs do (its mtime follows its entries).
 * Totals always cover every change; the listed entries stop at `limit` (then `truncated`).
 * Every directory object read is checked by parseDirectory (untrusted input).
 */
import { NotFoundError } from '../errors.ts';
import type { ChunkId } from '../store/chunk-id.ts';
import type { ChunkReader } from '../store/interfaces.ts';
import { getJsonObject } from '../store/objects.ts';
import type { ImageRecord } from './images.ts';
import { parseDirectory, type Entry } from './manifest.ts';

export type DiffKind = 'added' | 'removed' | 'changed';

/** One changed path; sizes in bytes (regular files only, else null). */
export interface DiffEntry {
  path: string;
  kind: DiffKind;
  /** The entry's type on the side it exists (the new one when changed). */
  type: Entry['type'];
  fromBytes: number | null;
  toBytes: number | null;
  /** For a changed entry: what differs (data, type, mode, owner, target, rdev, xattrs, mtime, flags). */
  what: string[];
}

export interface DiffTotals {
  /** Paths (every type) and regular files. */
  entries: number;
  files: number;
  /** Bytes of regular files: added or removed ones; for changed ones the new size. */
  bytes: number;
}

export interface TreeDiff {
  from: ChunkId;
  to: ChunkId;
  added: DiffTotals;
  removed: DiffTotals;
  /** Changed entries; `bytes` is the new size of changed files, `fromBytes` the old. */
  changed: DiffTotals & { fromBytes: number };
  /** Directory objects read (unchanged subtrees are not). */
  directoriesRead: number;
  entries: DiffEntry[];
  /** More entries changed than `limit`: the list stops, the totals do not. */
  truncated: boolean;
}

/** Entries listed by default (the web page and the CLI's --limit). */
export const DIFF_LIST_LIMIT = 10_000;

const zero = (): DiffTotals => ({ entries: 0, files: 0, bytes: 0 });
const sameJson = (a: unknown, b: unknown) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);

/** What differs between two entries of the same name (empty: nothing that matters). */
export function entryChanges(a: Entry, b: Entry): string[] {
  if (a.type !== b.type) return ['type'];
  const what: string[] = [];
  if (a.type === 'file' && b.type === 'file' && (a.size !== b.size || !sameJson(a.chunks, b.chunks))) what.push('data');
  if (a.type === 'symlink' && b.type === 'symlink' && a.target !== b.target) what.push('target');
  if ((a.type === 'char' || a.type === 'block') && (b.type === 'char' || b.type === 'block') && !sameJson(a.rdev, b.rdev)) what.push('rdev');
  if (a.mode !== b.mode) what.push('mode');
  if (a.uid !== b.uid || a.gid !== b.gid) what.push('owner');
  if (!sameJson(a.xattrs, b.xattrs)) what.push('xattrs');
  if ('iflags' in a && 'iflags' in b && (a.iflags ?? '') !== (b.iflags ?? '')) what.push('flags');
  // A directory's mtime moves with its entries, which are compared themselves.
  if (a.type !== 'dir' && !sameJson(a.mtime, b.mtime)) what.push('mtime');
  return what;
}

/**
 * The changes from tree `from` to tree `to` (directory object ids). `reader` is any
 * chunk reader (a LocalStore, or an HttpStore from a client). Throws what reading and
 * parsing a directory throws (CHUNK_MISSING, MANIFEST_INVALID).
 */
export async function diffTrees(reader: Pick<ChunkReader, 'get' | 'getMany'>, from: ChunkId, to: ChunkId, limit = DIFF_LIST_LIMIT): Promise<TreeDiff> {
  const out: TreeDiff = { from, to, added: zero(), removed: zero(), changed: { ...zero(), fromBytes: 0 }, directoriesRead: 0, entries: [], truncated: false };
  const list = (entry: DiffEntry) => {
    if (out.entries.length < limit) out.entries.push(entry);
    else out.truncated = true;
  };
  const read = async (id: ChunkId, where: string) => {
    out.directoriesRead++;
    return parseDirectory(await getJsonObject(reader, id), where).entries;
  };
  const join = (dir: string, name: string) => (dir === '/' ? `/${name}` : `${dir}/${name}`);

  /** A path and everything under it, added or removed. */
  async function oneSide(entry: Entry, path: string, kind: 'added' | 'removed'): Promise<void> {
    const totals = out[kind];
    const bytes = entry.type === 'file' ? entry.size : null;
    totals.entries++;
    if (entry.type === 'file') {
      totals.files++;
      totals.bytes += entry.size;
    }
    list({ path, kind, type: entry.type, fromBytes: kind === 'removed' ? bytes : null, toBytes: kind === 'added' ? bytes : null, what: [] });
    if (entry.type === 'dir') for (const e of await read(entry.tree, path)) await oneSide(e, join(path, e.name), kind);
  }

  async function walk(a: ChunkId, b: ChunkId, path: string): Promise<void> {
    if (a === b) return;
    const [left, right] = [await read(a, path), await read(b, path)];
    const byName = new Map(right.map((e) => [e.name, e]));
    const seen = new Set<string>();
    for (const x of left) {
      const y = byName.get(x.name);
      const p = join(path, x.name);
      if (!y) {
        await oneSide(x, p, 'removed');
        continue;
      }
      seen.add(x.name);
      const what = entryChanges(x, y);
      if (what.includes('type')) {
        // A directory that became a file (or the reverse): what was under it is gone or new.
        await oneSide(x, p, 'removed');
        await oneSide(y, p, 'added');
        continue;
      }
      if (what.length) {
        const c = out.changed;
        c.entries++;
        if (y.type === 'file' && x.type === 'file') {
          c.files++;
          c.bytes += y.size;
          c.fromBytes += x.size;
        }
        list({ path: p, kind: 'changed', type: y.type, fromBytes: x.type === 'file' ? x.size : null, toBytes: y.type === 'file' ? y.size : null, what });
      }
      if (x.type === 'dir' && y.type === 'dir') await walk(x.tree, y.tree, p);
    }
    for (const y of right) if (!seen.has(y.name)) await oneSide(y, join(path, y.name), 'added');
  }

  await walk(from, to, '/');
  out.entries.sort((x, y) => (x.path < y.path ? -1 : x.path > y.path ? 1 : 0));
  return out;
}

/** A revision number an image does not have (HTTP 404). */
export class RevisionNotFoundError extends NotFoundError {
  override readonly code = 'REVISION_NOT_FOUND';
}

export type RevisionDiff = TreeDiff & { image: string; fromRevision: number; toRevision: number };

/** The diff between revisions `from` and `to` of `image` (either order; the same revision gives no change). */
export async function revisionDiff(reader: Pick<ChunkReader, 'get' | 'getMany'>, image: ImageRecord, from: number, to: number, limit = DIFF_LIST_LIMIT): Promise<RevisionDiff> {
  const pick = (n: number) => {
    const r = image.revisions.find((x) => x.n === n);
    if (!r) throw new RevisionNotFoundError(`image ${image.name} has no revision ${n}`, `its revisions: ${image.revisions.map((x) => x.n).join(', ') || 'none'}`);
    return r;
  };
  const [a, b] = [pick(from), pick(to)];
  return { image: image.name, fromRevision: a.n, toRevision: b.n, ...(await diffTrees(reader, a.tree, b.tree, limit)) };
}
