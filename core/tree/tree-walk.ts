/**
 * The walk of a stored tree that a commit, GC and the multicast summary share: every chunk
 * id it references and its expanded size, checked against TREE_LIMITS.
 */
import type { ChunkId } from '../store/chunk-id.ts';
import { StoreError } from '../store/errors.ts';
import type { ChunkReader } from '../store/interfaces.ts';
import { parseDirectory } from './manifest.ts';
import { ObjectBatcher, parseObject } from './parent-objects.ts';

/**
 * Limits on a tree's expanded size, checked when a revision is committed (README "Tree
 * limits"): entries (files, directories, links, devices, counted once per path, so a
 * directory object listed twice counts twice), bytes (sum of file sizes), depth (nested
 * directories). A tree of a few tiny directory objects that list each other many times
 * (a "DAG bomb") expands past them and is refused before any restore tries to expand it.
 */
export const TREE_LIMITS = { entries: 16_000_000, bytes: 64 * 1024 ** 4, depth: 256 };
export type TreeLimits = typeof TREE_LIMITS;

/** What a tree expands to: entries and depth as TREE_LIMITS counts them, regular files and their bytes. */
export interface TreeSize {
  entries: number;
  files: number;
  bytes: number;
  depth: number;
}

export class TreeTooLargeError extends StoreError {
  override readonly code = 'TREE_TOO_LARGE';
  override readonly status = 422;
}

/**
 * Subtrees a caller has already checked (every chunk below them stored, when nothing can
 * have gone since): `walkTree` neither reads them nor adds their ids; it puts the size of
 * every directory it does read in `walked`, for the caller to keep once it has checked them.
 */
export interface VerifiedSubtrees {
  known: ReadonlyMap<ChunkId, TreeSize>;
  walked: Map<ChunkId, TreeSize>;
}

/**
 * Walks a tree once per distinct directory object: adds every chunk id it references
 * (directory objects, their parts, file chunks) to `into`, and returns its expanded size,
 * each directory's size computed once and reused wherever it is listed again. With
 * `limits`, throws TreeTooLargeError as soon as a running total passes one, so a bomb
 * costs no more than its distinct objects.
 *
 * Subdirectories are walked at once and their objects read in batches (parent-objects.ts:
 * one `getMany` per turn of the event loop, so about one per level of the tree): one read
 * after the other, a commit of the bench's node tree (2,769 directories) took ~0.8 s of a
 * no-op update. A directory listed twice waits for its one walk (content ids cannot form a
 * cycle, and the depth limit stops a chain).
 */
export async function walkTree(reader: Pick<ChunkReader, 'get' | 'getMany'>, tree: ChunkId, into = new Set<ChunkId>(), limits?: TreeLimits, verified?: VerifiedSubtrees): Promise<TreeSize> {
  const sizes = new Map<ChunkId, Promise<TreeSize>>();
  const objects = new ObjectBatcher(reader);
  const over = (what: string, value: number, limit: number) => {
    throw new TreeTooLargeError(`the tree ${tree} expands past the limit of ${limit} ${what} (${value > Number.MAX_SAFE_INTEGER ? 'more' : value} counted so far)`, 'a tree this large is refused at commit (README "Tree limits"); capture less, or split it into several images');
  };
  function walk(id: ChunkId, where: string, level: number): Promise<TreeSize> {
    const done = verified?.known.get(id);
    if (done) return Promise.resolve(done);
    let known = sizes.get(id);
    if (!known) {
      known = walkOnce(id, where, level);
      known.catch(() => undefined); // awaited by every directory that lists it; the first failure is reported
      sizes.set(id, known);
    }
    return known;
  }
  async function walkOnce(id: ChunkId, where: string, level: number): Promise<TreeSize> {
    if (limits && level > limits.depth) over('nested directories', level, limits.depth);
    into.add(id);
    const loaded = await objects.load(id);
    for (const part of loaded.parts) into.add(part);
    const dir = parseDirectory(parseObject(loaded, id), where);
    const size: TreeSize = { entries: 0, files: 0, bytes: 0, depth: 1 };
    const subdirs: Array<Promise<TreeSize>> = [];
    for (const e of dir.entries) {
      size.entries++;
      if (e.type === 'file') {
        size.files++;
        size.bytes += e.size;
        for (const c of e.chunks) into.add(c[2]);
      } else if (e.type === 'dir') {
        subdirs.push(walk(e.tree, `${where === '/' ? '' : where}/${e.name}`, level + 1));
      }
    }
    const check = () => {
      if (!limits) return;
      if (size.entries > limits.entries) over('entries', size.entries, limits.entries);
      if (size.bytes > limits.bytes) over('bytes of files', size.bytes, limits.bytes);
      if (level - 1 + size.depth > limits.depth) over('nested directories', level - 1 + size.depth, limits.depth);
    };
    check();
    for (const sub of await Promise.all(subdirs)) {
      size.entries += sub.entries;
      size.files += sub.files;
      size.bytes += sub.bytes;
      size.depth = Math.max(size.depth, sub.depth + 1);
      check();
    }
    verified?.walked.set(id, size);
    return size;
  }
  return walk(tree, '/', 1);
}

/** Every chunk id a tree references: directory objects, their parts, file chunks. */
export async function treeChunkIds(reader: Pick<ChunkReader, 'get' | 'getMany'>, tree: ChunkId, into = new Set<ChunkId>()): Promise<Set<ChunkId>> {
  await walkTree(reader, tree, into);
  return into;
}

