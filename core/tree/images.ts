/**
 * Image records and versioned named objects on top of a store's refs.
 *
 *   image/<name>    {name, created, revisions: [{n, created, parent, tree, layout, options, note, stats, kernel, leftOut?}]}
 *   layout/<name>   {name, versions: [{n, created, object}]}   (disk layouts, issue 4)
 *   options/<name>  {name, versions: [...]}                     (image options)
 *
 * Writing a revision into its image record is the only commit point of an image. Before
 * it, `commitRevision` walks the new tree and checks that every object and chunk it
 * references is stored (skipping directories an earlier commit checked since the store
 * last pruned), inside the store's no-prune gate, and writes the record with
 * compare-and-set: a revision that references a missing chunk is refused, and two
 * writers racing on one image both land (the loser re-reads and retries).
 *
 * GC (`collectGarbage`) marks every chunk reachable from every revision, layout and
 * options version, and prunes the rest; ids touched by uploads in flight are kept by
 * the store's guards.
 */
import { NAME_PATTERN, NAME_RULE } from '../names.ts';
import type { ChunkId } from '../store/chunk-id.ts';
import { ImageNotFoundError, RevisionRefusedError, StoreError } from '../store/errors.ts';
import type { ChunkReader, PruneReport, RefStore } from '../store/interfaces.ts';
import type { LocalStore } from '../store/local.ts';
import { objectPartIds } from '../store/objects.ts';
import { TREE_LIMITS, treeChunkIds, walkTree, type TreeLimits, type TreeSize } from './tree-walk.ts';
import { treeKernelVersion } from '../installer/kernel.ts';

export interface RevisionStats {
  files: number;
  bytes: number;
  /** Paths the capture did not store (excluded, other file systems, unreadable, sockets). */
  leftOut?: number;
}

/** One path a capture did not store, and why. */
export interface LeftOutPath {
  path: string;
  why: string;
}

/** How many left-out paths a revision lists (its stats count them all). */
export const LEFT_OUT_LISTED = 1000;
/** Most bytes (as JSON) of the left-out list a revision keeps: a commit request stays small. */
export const LEFT_OUT_BYTES = 256 * 1024;

/** The left-out paths a revision keeps: the first LEFT_OUT_LISTED, within LEFT_OUT_BYTES. */
export function leftOutToKeep(leftOut: readonly LeftOutPath[]): LeftOutPath[] {
  const kept: LeftOutPath[] = [];
  let bytes = 2;
  for (const l of leftOut.slice(0, LEFT_OUT_LISTED)) {
    bytes += JSON.stringify(l).length + 1;
    if (bytes > LEFT_OUT_BYTES) break;
    kept.push(l);
  }
  return kept;
}

export interface Revision {
  n: number;
  created: string;
  parent: number | null;
  tree: ChunkId;
  layout: string | null;
  options: ChunkId | null;
  note: string;
  stats: RevisionStats;
  /** The golden node's kernel version (`uname -r`), read from the tree at commit: which installer boots its nodes. */
  kernel?: string | null;
  /** The first LEFT_OUT_LISTED paths left out, when any were. */
  leftOut?: LeftOutPath[];
}

export interface ImageRecord {
  name: string;
  created: string;
  revisions: Revision[];
}

export interface VersionedRecord {
  name: string;
  versions: Array<{ n: number; created: string; object: ChunkId }>;
  /** The highest number ever given, kept when that version is deleted: numbers are never reused. */
  last?: number;
}

export type ImageStore = RefStore & Pick<ChunkReader, 'get' | 'getMany' | 'hasMany'> & { withoutPrune<T>(work: () => Promise<T>): Promise<T>; readonly pruneEpoch?: number };


export class InvalidNameError extends StoreError {
  override readonly code = 'NAME_INVALID';
}

export function assertName(kind: string, name: string): string {
  if (!NAME_PATTERN.test(name)) {
    throw new InvalidNameError(`invalid ${kind} name ${JSON.stringify(name)}`, `use ${NAME_RULE}`);
  }
  return name;
}

export async function getImage(store: RefStore, name: string): Promise<ImageRecord | undefined> {
  const raw = await store.getRef(`image/${assertName('image', name)}`);
  return raw === undefined ? undefined : (JSON.parse(raw) as ImageRecord);
}

export async function listImages(store: RefStore): Promise<ImageRecord[]> {
  return (await store.listRefs('image/')).map(([, v]) => JSON.parse(v) as ImageRecord);
}

export { TREE_LIMITS, TreeTooLargeError, treeChunkIds, walkTree, type TreeLimits, type TreeSize } from './tree-walk.ts';

async function objectChunkIds(reader: Pick<ChunkReader, 'get'>, id: ChunkId, into: Set<ChunkId>): Promise<void> {
  into.add(id);
  for (const part of objectPartIds(await reader.get(id), id)) into.add(part);
}

/** The words of commitRevision's refusal of a tree with chunks the store lacks, which `isMissingChunksRefusal` looks for. */
const MISSING_CHUNKS = 'missing chunk(s)';

/**
 * True when `err` is commitRevision's refusal of a tree that references chunks the store
 * lacks, thrown here (RevisionRefusedError) or answered by a server (its ServerError has
 * the same code and message): a capture that trusted its parent revision captures again.
 */
export function isMissingChunksRefusal(err: unknown): boolean {
  return err instanceof Error && (err as { code?: unknown }).code === 'REVISION_REFUSED' && err.message.includes(` ${MISSING_CHUNKS}, e.g. `);
}

/**
 * Appends a revision to an image (creating the image when `create`), after checking that
 * everything it references is stored and that the tree is within TREE_LIMITS. The
 * revision's stats (regular files, their bytes) are the ones counted here: what a client
 * reports is never stored. `onCommitted` gets every chunk id the revision references once
 * it is written (the server's upload grace stops holding them). Returns the new revision.
 */
export async function commitRevision(
  store: ImageStore,
  name: string,
  input: { tree: ChunkId; layout?: string | null; options?: ChunkId | null; note?: string; stats?: RevisionStats; leftOut?: LeftOutPath[]; parent?: number | null },
  mode: { create: boolean; onCommitted?: (ids: readonly ChunkId[]) => void },
  limits: TreeLimits = TREE_LIMITS,
): Promise<Revision> {
  assertName('image', name);
  return store.withoutPrune(async () => {
    const treeIds = new Set<ChunkId>();
    const memo = verifiedSubtrees(store);
    const walked = new Map<ChunkId, TreeSize>();
    const size = await walkTree(store, input.tree, treeIds, limits, memo && { known: memo, walked });
    const ids = [...treeIds];
    if (input.options) {
      const optionIds = new Set<ChunkId>();
      await objectChunkIds(store, input.options, optionIds);
      ids.push(...optionIds);
    }
    const present = await store.hasMany(ids);
    const missing = ids.filter((_, i) => !present[i]);
    if (missing.length) {
      throw new RevisionRefusedError(
        `revision of image ${name} references ${missing.length} ${MISSING_CHUNKS}, e.g. ${missing[0]}`,
        'the upload did not finish; re-run the capture (chunks already stored are skipped)',
      );
    }
    if (memo) remember(memo, walked);
    const kernel = await treeKernelVersion(store, input.tree);
    for (let attempt = 0; attempt < 100; attempt++) {
      const key = `image/${name}`;
      const before = await store.getRef(key);
      const record: ImageRecord = before ? JSON.parse(before) : { name, created: new Date().toISOString(), revisions: [] };
      if (mode.create && before) {
        throw new RevisionRefusedError(`image ${name} already exists`, `use update-filesystem --image ${name} to add a revision`);
      }
      if (!mode.create && !before) throw new ImageNotFoundError(`no image named ${name}`, 'list images with image-list, or create it with new-image');
      const last = record.revisions.at(-1);
      const revision: Revision = {
        n: (last?.n ?? 0) + 1,
        created: new Date().toISOString(),
        parent: input.parent === undefined ? (last?.n ?? null) : input.parent,
        tree: input.tree,
        layout: input.layout ?? last?.layout ?? null,
        options: input.options ?? last?.options ?? null,
        note: input.note ?? '',
        // Files and bytes counted here; how many paths the capture left out only it can know.
        stats: { files: size.files, bytes: size.bytes, ...(input.stats?.leftOut !== undefined ? { leftOut: input.stats.leftOut } : {}) },
        kernel,
        ...(input.leftOut?.length ? { leftOut: leftOutToKeep(input.leftOut) } : {}),
      };
      record.revisions.push(revision);
      if (await store.casRef(key, before, JSON.stringify(record))) {
        mode.onCommitted?.(ids);
        return revision;
      }
    }
    throw new RevisionRefusedError(`image ${name} is being updated by too many writers at once`, 'retry');
  });
}

/**
 * Directories a commit has checked (every chunk below them stored), per store, for as long
 * as the store has not pruned or rebuilt its index since (`pruneEpoch`: the only ways a
 * chunk goes, both under its exclusive gate, while commits hold it shared). The next commit
 * walks only the directories that are new: a no-op update's commit read and checked the
 * whole tree again (2,769 directory objects, ~45,000 chunk ids on the bench's node tree).
 * Ids below a remembered directory are not handed to `onCommitted`: the upload grace keeps
 * those the client asked about until it rotates (30-60 min), as for an abandoned upload.
 */
const checked = new WeakMap<object, { epoch: number; sizes: Map<ChunkId, TreeSize> }>();
/** Directories remembered per store at most; past it the memory starts again (~200 bytes each). */
const MAX_REMEMBERED = 200_000;

function verifiedSubtrees(store: ImageStore): Map<ChunkId, TreeSize> | undefined {
  if (typeof store.pruneEpoch !== 'number') return undefined;
  let memo = checked.get(store);
  if (!memo || memo.epoch !== store.pruneEpoch) checked.set(store, (memo = { epoch: store.pruneEpoch, sizes: new Map() }));
  return memo.sizes;
}

function remember(memo: Map<ChunkId, TreeSize>, walked: Map<ChunkId, TreeSize>): void {
  if (memo.size + walked.size > MAX_REMEMBERED) memo.clear();
  for (const [id, size] of walked) memo.set(id, size);
}

export async function deleteImage(store: RefStore, name: string): Promise<void> {
  const key = `image/${assertName('image', name)}`;
  const before = await store.getRef(key);
  if (before === undefined) throw new ImageNotFoundError(`no image named ${name}`, 'list images with image-list');
  if (!(await store.casRef(key, before, undefined))) throw new RevisionRefusedError(`image ${name} changed while deleting`, 'retry');
  // Its scripts and BIOS settings go with it.
  for (const [attachment, value] of await store.listRefs(`attach/${name}/`)) await store.casRef(attachment, value, undefined);
}

/** Marks everything reachable from every image revision and versioned object. */
export async function markLive(store: ImageStore): Promise<Set<ChunkId>> {
  const live = new Set<ChunkId>();
  for (const image of await listImages(store)) {
    for (const rev of image.revisions) {
      await treeChunkIds(store, rev.tree, live);
      if (rev.options) await objectChunkIds(store, rev.options, live);
    }
  }
  for (const prefix of ['layout/', 'options/', 'object/', 'attach/']) {
    for (const [, raw] of await store.listRefs(prefix)) {
      for (const v of (JSON.parse(raw) as VersionedRecord).versions) await objectChunkIds(store, v.object, live);
    }
  }
  return live;
}

/** Mark and sweep: a guard taken before marking keeps every chunk touched meanwhile. */
export async function collectGarbage(store: LocalStore): Promise<PruneReport & { liveChunks: number }> {
  const guard = store.guard();
  try {
    const live = await markLive(store);
    // Revisions committed between the mark and the sweep only reference chunks that
    // were touched (guarded) or already live, so the sweep cannot drop them.
    const report = await store.prune((id) => live.has(id) || guard.has(id));
    return { ...report, liveChunks: live.size };
  } finally {
    guard.release();
  }
}

/** Stores `objectId` as the next version of a named object (layout/NAME, options/NAME...). */
export async function putVersion(store: ImageStore, kind: 'layout' | 'options' | 'object', name: string, objectId: ChunkId): Promise<number> {
  assertName(kind, name);
  const key = `${kind}/${name}`;
  return store.withoutPrune(async () => {
    const [present] = await store.hasMany([objectId]);
    if (!present) throw new RevisionRefusedError(`${kind} object ${objectId} is not stored`, 'upload it first');
    for (let attempt = 0; attempt < 100; attempt++) {
      const before = await store.getRef(key);
      const record: VersionedRecord = before ? JSON.parse(before) : { name, versions: [] };
      const n = Math.max(record.last ?? 0, record.versions.at(-1)?.n ?? 0) + 1;
      record.versions.push({ n, created: new Date().toISOString(), object: objectId });
      if (await store.casRef(key, before, JSON.stringify(record))) return n;
    }
    throw new RevisionRefusedError(`${kind} ${name} is being updated by too many writers at once`, 'retry');
  });
}


/** The version record of a named object (layout/NAME...), or undefined. */
export async function getVersions(store: RefStore, kind: 'layout' | 'options' | 'object', name: string): Promise<VersionedRecord | undefined> {
  assertName(kind, name);
  const raw = await store.getRef(`${kind}/${name}`);
  return raw ? (JSON.parse(raw) as VersionedRecord) : undefined;
}

/** Every version record of a kind, by name. */
export async function listVersioned(store: RefStore, kind: 'layout' | 'options' | 'object'): Promise<VersionedRecord[]> {
  return (await store.listRefs(`${kind}/`)).map(([, raw]) => JSON.parse(raw) as VersionedRecord);
}

export interface ImageVerifyReport {
  ok: boolean;
  checked: number;
  missing: ChunkId[];
  corrupt: ChunkId[];
  /** Packs with a bad magic, damaged record headers or a torn tail (store verify). */
  damagedPacks: string[];
  /**
   * Every revision that refers to a chunk that is not indexed, missing from its pack or
   * corrupt: `missing` counts all of those it cannot read, `corrupt` the corrupt ones among
   * them; `error` when its tree itself could not be read.
   */
  incomplete: Array<{ image: string; revision: number; missing: number; corrupt?: number; error?: string }>;
}

/**
 * Re-reads every chunk (BLAKE3) and names every revision of every image that refers to a
 * chunk found missing or corrupt, or to one the index lacks.
 */
export async function verifyImages(store: LocalStore): Promise<ImageVerifyReport> {
  const report = await store.verify();
  const missingSet = new Set(report.missing);
  const corruptSet = new Set(report.corrupt);
  const incomplete: ImageVerifyReport['incomplete'] = [];
  for (const image of await listImages(store)) {
    for (const rev of image.revisions) {
      try {
        const idSet = await treeChunkIds(store, rev.tree);
        if (rev.options) await objectChunkIds(store, rev.options, idSet);
        const ids = [...idSet];
        const present = await store.present(ids); // a check, not an upload: holds nothing from gc
        let missing = 0;
        let corrupt = 0;
        ids.forEach((id, i) => {
          if (corruptSet.has(id)) corrupt++;
          if (!present[i] || missingSet.has(id) || corruptSet.has(id)) missing++;
        });
        if (missing) incomplete.push({ image: image.name, revision: rev.n, missing, ...(corrupt ? { corrupt } : {}) });
      } catch (err) {
        incomplete.push({ image: image.name, revision: rev.n, missing: -1, error: (err as Error).message });
      }
    }
  }
  const ok = report.missing.length === 0 && report.corrupt.length === 0 && report.damagedPacks.length === 0 && incomplete.length === 0;
  return { ok, checked: report.checked, missing: report.missing, corrupt: report.corrupt, damagedPacks: report.damagedPacks, incomplete };
}

/**
 * What each image costs: the stored bytes of the chunks only it refers to (what deleting
 * it and running gc would free), and of all the chunks it refers to.
 */
export async function imageUsage(store: LocalStore): Promise<Array<{ name: string; uniqueBytes: number; totalBytes: number }>> {
  const images = await listImages(store);
  const idsOf = new Map<string, Set<ChunkId>>();
  const users = new Map<ChunkId, number>();
  for (const image of images) {
    const ids = new Set<ChunkId>();
    for (const rev of image.revisions) {
      await treeChunkIds(store, rev.tree, ids);
      if (rev.options) await objectChunkIds(store, rev.options, ids);
    }
    idsOf.set(image.name, ids);
    for (const id of ids) users.set(id, (users.get(id) ?? 0) + 1);
  }
  const sizes = await store.storedSizes([...users.keys()]);
  return images.map((image) => {
    let uniqueBytes = 0;
    let totalBytes = 0;
    for (const id of idsOf.get(image.name)!) {
      const size = sizes.get(id) ?? 0;
      totalBytes += size;
      if (users.get(id) === 1) uniqueBytes += size;
    }
    return { name: image.name, uniqueBytes, totalBytes };
  });
}
