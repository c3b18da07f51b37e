/**
 * Capture's use of the parent revision: each directory's entries in that revision (objects
 * fetched in batches, a level ahead of the walk: parent-objects.ts), and whether an unchanged file keeps the parent's
 * chunk list and an unchanged directory its object.
 *
 * Checked (the default): the store is asked for the reused chunks, one `hasMany` per
 * directory, and for the parent's object of a directory whose entries are all as before; a
 * file with a chunk the store lacks is read again. Trusted (`trustParent`): nothing is
 * asked. The parent revision's references keep its chunks in the store, and the commit
 * (images.ts commitRevision) walks the new tree and refuses it when any chunk is missing
 * (a prune since, of a revision deleted meanwhile): the caller then captures again checked.
 * On the bench's node tree a checked no-op asked about 33,000 chunk ids in ~110 requests,
 * ~250 ms of the client's main thread and as much of the server's.
 */
import type { ChunkId } from '../store/chunk-id.ts';
import type { ChunkReader } from '../store/interfaces.ts';
import { parseDirectory, sameEntries, type Entry, type FileEntry } from './manifest.ts';
import { parseObject, type ObjectBatcher } from './parent-objects.ts';

/** What the parent revision had in one directory. */
export interface ParentDir {
  /** Its entries by name (none when there is no parent, or its object is unreadable: read all). */
  previous: Map<string, Entry>;
  /** The parent's object of this directory and its parts, when it was read. */
  parentIds?: ChunkId[];
  /** Its object says the capture read every inode flag (kept on the top object only). */
  flagsRead?: boolean;
}

/** The parent revision's entries of directory `rel` (a warning, and none, when its object is unreadable). */
export async function parentDir(parents: ObjectBatcher, parentTree: ChunkId | undefined, rel: string, warn: (message: string) => void): Promise<ParentDir> {
  const previous = new Map<string, Entry>();
  if (!parentTree) return { previous };
  try {
    const loaded = await parents.load(parentTree);
    const dir = parseDirectory(parseObject(loaded, parentTree), rel || '/');
    for (const e of dir.entries) {
      previous.set(e.name, e);
      if (e.type === 'dir') parents.prefetch(e.tree); // read a level ahead of the walk
    }
    return { previous, parentIds: [parentTree, ...loaded.parts], flagsRead: dir.flagsRead === true };
  } catch (err) {
    warn(`parent manifest of ${rel || '/'} unreadable (${(err as Error).message}); reading the directory in full`);
    return { previous: new Map() };
  }
}

/**
 * The parent's entry of an unchanged file (stat-fields.ts unchangedFile) has exactly the
 * fields a new one would: mode and owner equal, the same hardlink group, no other field.
 * The capture then keeps that entry object itself (no copy; sameEntries finds it at once).
 */
export function keptAsIs(prev: FileEntry, base: { mode: number; uid: number; gid: number }, h: string | undefined): boolean {
  if (prev.mode !== base.mode || prev.uid !== base.uid || prev.gid !== base.gid || prev.h !== h) return false;
  // name, mode, uid, gid, mtime, type, size, chunks, ino, ctime (unchangedFile checked the last four), and the optional ones
  return Object.keys(prev).length === 10 + (prev.xattrs ? 1 : 0) + (prev.iflags ? 1 : 0) + (h ? 1 : 0);
}

/**
 * Of the files that kept their parent's chunk lists, those whose chunks the store lacks
 * (none asked when `trust`): the caller reads them again.
 */
export async function filesToReread(store: Pick<ChunkReader, 'hasMany'>, reused: readonly FileEntry[], trust: boolean): Promise<FileEntry[]> {
  if (trust || !reused.length) return [];
  const ids = reused.flatMap((entry) => entry.chunks.map((c) => c[2]));
  const present = await store.hasMany(ids);
  const missing = new Set(ids.filter((_, i) => !present[i]));
  return missing.size ? reused.filter((entry) => entry.chunks.some((c) => missing.has(c[2]))) : [];
}

/**
 * The parent's object id when the directory's entries are all as the parent's and (unless
 * `trust`) the store has the object: kept instead of serialised, hashed and stored again.
 */
export async function parentObjectKept(store: Pick<ChunkReader, 'hasMany'>, parent: ParentDir, entries: readonly Entry[], trust: boolean): Promise<ChunkId | undefined> {
  if (!parent.parentIds || !sameEntries(entries, parent.previous.values())) return undefined;
  if (!trust && (await store.hasMany(parent.parentIds)).includes(false)) return undefined;
  return parent.parentIds[0];
}
