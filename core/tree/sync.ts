/**
 * Sync: make a target directory (a node's mounted file systems) hold exactly a captured
 * tree, reading from the store only the chunks the node does not already hold. A deploy
 * onto blank file systems, a re-deploy of a new revision and a resumed, cut-off deploy are
 * all the same call.
 *
 * Algorithm, in phases; the target is never read through a symlink and nothing is
 * written outside it: every path is reached through TargetRoot (beneath.ts), whose parent
 * directories are fds opened without following symlinks, and names are bytes (escaped as
 * file-names.ts says), so a node holding names that are not UTF-8, or a tree deeper than
 * PATH_MAX, syncs like any other:
 *   1. scan: walk the target with statx (never following symlinks; kept paths such as lost+found
 *      and the image's excluded paths are not entered; its immutable and append-only bits spare
 *      asking each entry for its inode flags). A file whose size and
 *      nanosecond mtime equal the tree's is kept unread (unless `checksum`); every other
 *      regular file is cut into chunks with the image's FastCDC parameters, each chunk
 *      found a seed (id -> file, offset), and kept when its chunk list equals the tree's,
 *      or when it is a node-made variant still valid (variants.ts: a node's own initramfs).
 *   2. data (sync-stage.ts): every file to write is built in a staging directory on its
 *      own file system (`.cloner-sync` at the root of each mount under the target, so the
 *      final rename never crosses file systems): seeded chunks are copied from the old
 *      files (BLAKE3 checked again, as a file may change after the scan), the rest are
 *      fetched through `reader.getMany` (batched, checked by the reader) and written to
 *      every place that holds them. A staged file is named by its path and content: a run
 *      cut off midway leaves it, and the next run checks its chunks in place and fills in
 *      the rest, so a resumed deploy does not fetch again what it already wrote.
 *   3. delete: every scanned entry unwanted, or wanted as another type or content (a symlink
 *      target, a device number), deepest first: unlink or rmdir, never recursive.
 *   4. place, in path order: mkdir what is missing, rename staged files over their paths
 *      (an atomic replace), mknod, then hardlinks to their group's first path, and
 *      symlinks last, so none exists while anything is written below it.
 *   5. metadata as restore does (owner, mode, xattrs, times, on an O_PATH fd of each entry,
 *      type checked; directories deepest first), inode flags last (the node's i and a,
 *      cleared before phase 2, come back too); not for an entry that could not be created
 *      (mknod refused: reported) nor a kept variant.
 */
import * as fsSync from 'node:fs';
import { constants as fsc } from 'node:fs';
import * as fs from 'node:fs/promises';
import type { ChunkerParams } from '../chunker/fastcdc.ts';
import { chunkIdOf, type ChunkId } from '../store/chunk-id.ts';
import type { ChunkReader } from '../store/interfaces.ts';
import { TargetRoot, kindOf, mountRoots } from './beneath.ts';
import { metadataRight, splitDev } from './stat-fields.ts';
import { lstatPlain, type PlainStats } from '../native/fsx.ts';
import { chunkFile } from './file-chunks.ts';
import { decodeName, displayName, encodeName } from './file-names.ts';
import type { ChunkRef, Entry, FileEntry } from './manifest.ts';
import { applyTreeMetadata, loadTree, makeDirectory, mknodEntry, newRestoreProgress, RestoreError, type RestoreProgress, type TreeItem } from './restore.ts';
import { excludeMatcher } from './select.ts';
import { BLOCKING, clearBlockingFlags, reapplyBlockingFlags } from './inode-flags.ts';
import { stageFiles, type Seeds, type Staged } from './sync-stage.ts';
import { keepsVariant, type Variant } from './variants.ts';

export interface SyncProgress extends RestoreProgress {
  phase: 'scan' | 'data' | 'place' | 'metadata' | 'done';
  /** Existing bytes read to find what the node already holds. */
  scannedBytes: number;
  /** Files already right, left as they were. */
  keptFiles: number;
  /** Bytes copied from files already on the node. */
  seededBytes: number;
  /** Bytes fetched from the reader (raw, after decoding). */
  fetchedBytes: number;
  /** Entries removed because the tree does not have them (or has them as something else). */
  deleted: number;
  /** Paths of the node-made variants kept (SyncOptions.variants), also counted in keptFiles. */
  variantsKept: string[];
}

export interface SyncOptions {
  reader: Pick<ChunkReader, 'get' | 'getMany'>;
  tree: ChunkId;
  target: string;
  /** The image store's chunker: existing files are cut the same way to find their chunks. */
  chunker: ChunkerParams;
  /** Target paths the tree lacks that are left alone: not scanned, changed or deleted (capture exclude syntax: /scratch, /var/cache/*). */
  keep?: string[];
  /** Target directories (kept ones too) whose files are read only as seeds: never changed. */
  seedDirs?: string[];
  /**
   * Read every existing file. Without it a file whose size and modification time (to the
   * nanosecond) equal the tree's is taken as right without being read, as rsync does: a
   * deploy sets those times, so on a re-deploy only changed files are read.
   */
  checksum?: boolean;
  /** Node-made variants of tree files, kept when still valid (variants.ts), by tree path. */
  variants?: ReadonlyMap<string, Variant>;
  /** Called with the tree's entries once loaded (a caller that needs them too). */
  onTree?: (items: readonly TreeItem[]) => void;
  strict?: boolean;
  onWarning?: (message: string) => void;
  progress?: SyncProgress;
}

export function newSyncProgress(): SyncProgress {
  return { ...newRestoreProgress(), phase: 'scan', scannedBytes: 0, keptFiles: 0, seededBytes: 0, fetchedBytes: 0, deleted: 0, variantsKept: [] };
}

interface Existing {
  rel: string;
  depth: number;
  type: Entry['type'] | 'other';
  ino: string;
  size: number;
  rdev: [number, number];
  blocking: boolean; // immutable or append-only (statx), or not said: its flags are asked
  chunks?: ChunkRef[]; // regular files: the chunks found in them
  sameStat?: boolean; // size and mtime equal the tree's (not read)
  metaRight?: boolean; // owner, mode, times as the tree's, nothing else to set: left out of phase 5 if kept and not pinned
}

const STAGING_DIR = '.cloner-sync';
const sameChunks = (a: ChunkRef[], b: ChunkRef[]) => a.length === b.length && a.every((r, i) => r[0] === b[i][0] && r[1] === b[i][1] && r[2] === b[i][2]);

/** What every phase of one sync shares. */
interface SyncRun {
  opts: SyncOptions;
  progress: SyncProgress;
  warn: (message: string) => void;
  /** The target, every path reached beneath it without following symlinks. */
  root: TargetRoot;
  items: TreeItem[];
  wanted: Map<string, Entry>;
  /** Mount points at or under the target (target-relative, '' for the target), deepest first. */
  roots: string[];
  /** Paths the scan does not enter and the sync neither changes nor deletes. */
  keptHere: (rel: string) => boolean;
  /** Entries this run could not create (mknod refused): their metadata is not set. */
  notCreated: Set<string>;
}

/** What the scan found: every entry on the node, and where each chunk it holds is. */
interface Scan {
  existing: Map<string, Existing>;
  seeds: Seeds;
}

/** What stays (`matched`), what is written (the tree's own items, not copies), and the hardlinks to make to their group's first path. */
interface Plan {
  matched: Set<string>;
  toWrite: Array<{ rel: string; entry: FileEntry }>;
  secondaries: Array<{ rel: string; primary: string }>;
}

/**
 * Makes `opts.target` hold exactly the tree `opts.tree` (see the module comment); returns
 * the progress counters (also kept up to date in `opts.progress`). Metadata problems are
 * warnings (`onWarning`), errors with `strict`. Throws RestoreError when the target is not
 * a directory or an entry cannot be removed, ManifestError for a bad tree, and the reader's
 * errors (a missing or corrupt chunk, a cut link: running again resumes).
 */
export async function syncTree(opts: SyncOptions): Promise<SyncProgress> {
  const run = await startSync(opts);
  try {
    const { progress, root } = run;
    progress.phase = 'scan';
    const scan = await scanTarget(run);
    const plan = planChanges(run, scan.existing);
    // i/a entries take no staging, replace, delete or metadata until cleared.
    const flagged = clearBlockingFlags(root, ['', ...[...scan.existing.values()].filter((e) => e.blocking && (e.type === 'file' || e.type === 'dir')).map((e) => e.rel)], run.warn, (rel) => (run.wanted.get(rel) as { iflags?: string } | undefined)?.iflags);
    let finished = false;
    try {
      progress.phase = 'data';
      const stagingDirOf = (rel: string) => `${run.roots.find((r) => r === '' || rel === r || rel.startsWith(`${r}/`))!}/${STAGING_DIR}`;
      const staged = await stageFiles(opts.reader, plan.toWrite, { root, stagingDirOf }, scan.seeds, progress);
      progress.phase = 'place';
      deleteUnwanted(run, scan.existing, plan.matched);
      placeEntries(run, plan, staged);
      progress.phase = 'metadata';
      const variants = new Set(progress.variantsKept);
      const rewritten = new Set(plan.toWrite.map((w) => w.rel));
      applyTreeMetadata(run.items.filter((i) => !run.notCreated.has(i.rel) && !variants.has(i.rel) && !(scan.existing.get(i.rel)?.metaRight && plan.matched.has(i.rel) && !rewritten.has(i.rel) && !flagged.has(i.rel))), root, run.warn, flagged);
      finished = true;
    } finally {
      if (!finished) reapplyBlockingFlags(root, flagged, run.warn);
    }
    progress.entries = run.items.length;
    progress.phase = 'done';
    return progress;
  } finally {
    run.root.close();
  }
}

/** Checks the target, loads the tree and the target's mounts, and builds the keep rule. */
async function startSync(opts: SyncOptions): Promise<SyncRun> {
  const progress = opts.progress ?? newSyncProgress();
  const warn = (message: string) => {
    if (opts.strict) throw new RestoreError(message, 'run without --strict to restore with warnings');
    opts.onWarning?.(message);
  };
  const targetStat = await fs.lstat(opts.target).catch(() => null);
  if (!targetStat?.isDirectory()) throw new RestoreError(`sync target ${opts.target} is not a directory`, 'mount the node\'s file systems there first');
  const target = await fs.realpath(opts.target);
  const items = await loadTree(opts.reader, opts.tree, { lean: true });
  opts.onTree?.(items);
  const root = TargetRoot.open(target);
  const wanted = new Map(items.map((item) => [item.rel, item.entry]));
  const roots = mountRoots(target);
  const isKept = excludeMatcher(opts.keep ?? []);
  // lost+found and the staging directory at the root of each file system are not part of the tree.
  const atRoot = (rel: string, name: string) => rel.endsWith(`/${name}`) && roots.includes(rel.slice(0, -name.length - 1));
  // A kept path the tree has (a captured /dev/null under a kept /dev/*) is synced as usual.
  const keptHere = (rel: string) => !wanted.has(rel) && (isKept(rel) || atRoot(rel, 'lost+found') || atRoot(rel, STAGING_DIR));
  return { opts, progress, warn, root, items, wanted, roots, keptHere, notCreated: new Set() };
}

/** Phase 1: what the node holds, and the chunks in its files (seeds), seed directories included. */
async function scanTarget(run: SyncRun): Promise<Scan> {
  const { root, opts } = run;
  const scan: Scan = { existing: new Map(), seeds: new Map() };
  async function walk(rel: string, depth: number): Promise<void> {
    root.trim();
    let names: string[];
    try {
      names = fsSync.readdirSync(root.dirPath(rel), { encoding: 'buffer' }).map(decodeName);
    } catch (err) {
      run.warn(`cannot read ${displayName(rel || '/')} on the target: ${(err as NodeJS.ErrnoException).code}`);
      return;
    }
    for (const name of names.sort()) {
      const childRel = `${rel}/${name}`;
      if (run.keptHere(childRel)) continue;
      const st = lstatPlain(root.at(childRel));
      const found: Existing = { rel: childRel, depth, type: kindOf(st), ino: st.ino, size: st.size, rdev: splitDev(BigInt(st.rdev)), blocking: (st.attributes & BLOCKING) !== 0 || (st.attributesKnown & BLOCKING) !== BLOCKING, metaRight: metadataRight(run.wanted.get(childRel), st) };
      scan.existing.set(childRel, found);
      if (found.type === 'dir') await walk(childRel, depth + 1);
      else if (found.type === 'file' && found.size > 0) {
        const want = run.wanted.get(childRel);
        const mtime = st.mtime;
        if (!opts.checksum && want?.type === 'file' && want.size === found.size && want.mtime[0] === mtime[0] && want.mtime[1] === mtime[1]) found.sameStat = true;
        else found.chunks = await chunkExisting(run, scan.seeds, childRel, st);
      }
    }
  }
  await walk('', 0);
  for (const dir of opts.seedDirs ?? []) {
    // Seeds only, one level (flat directories of saved files); a symlinked one (or one
    // below a symlink) is not read: TargetRoot refuses to open it.
    const rel = dir.replace(/\/+$/, '');
    root.trim();
    let names: string[];
    try {
      names = fsSync.readdirSync(root.dirPath(rel), { encoding: 'buffer' }).map(decodeName);
    } catch {
      continue;
    }
    for (const name of names) {
      const st = lstatPlain(root.at(`${rel}/${name}`));
      if (st.isFile() && st.size > 0) await chunkExisting(run, scan.seeds, `${rel}/${name}`, st);
    }
  }
  return scan;
}

/** Cuts one existing file into chunks with the image's parameters; the first place of each chunk becomes its seed. */
async function chunkExisting(run: SyncRun, seeds: Seeds, rel: string, st: PlainStats): Promise<ChunkRef[]> {
  // The path is used at once (no trim can run before the open): only its last component is looked up.
  const handle = await fs.open(run.root.at(rel), fsc.O_RDONLY | fsc.O_NOFOLLOW);
  try {
    return await chunkFile(handle, st.size, {
      params: run.opts.chunker,
      sparse: st.blocks * 512 < st.size,
      onChunk: (data, offset) => {
        const id = chunkIdOf(data);
        if (!seeds.has(id)) seeds.set(id, { rel, offset });
        return id;
      },
      onRead: (bytes) => (run.progress.scannedBytes += bytes),
    });
  } finally {
    await handle.close();
  }
}

/**
 * What stays as it is, what is written. Mount points (and the directories above them)
 * stay even when the tree lacks them: the layout made them.
 */
function planChanges(run: SyncRun, existing: Map<string, Existing>): Plan {
  const matched = new Set<string>(['']);
  for (const root of run.roots) for (let r = root; r; r = r.slice(0, r.lastIndexOf('/'))) matched.add(r);
  const groupPrimary = new Map<string, string>();
  const plan: Plan = { matched, toWrite: [], secondaries: [] };
  for (const item of run.items) {
    const { rel, entry } = item;
    if (!rel) continue;
    const have = existing.get(rel);
    if (entry.type === 'file' && entry.h !== undefined) {
      if (groupPrimary.has(entry.h)) {
        plan.secondaries.push({ rel, primary: groupPrimary.get(entry.h)! });
        continue;
      }
      groupPrimary.set(entry.h, rel);
    }
    if (!have || have.type !== entry.type) {
      if (entry.type === 'file') plan.toWrite.push(item as TreeItem & { entry: FileEntry });
      continue;
    }
    switch (entry.type) {
      case 'dir':
        matched.add(rel);
        break;
      case 'file':
        matched.add(rel); // replaced by a rename when it is rewritten
        if ((have.size === entry.size && (have.sameStat || sameChunks(have.chunks ?? [], entry.chunks))) || keepsVariant(run.opts.variants, run.root, rel, entry, run.progress.variantsKept)) run.progress.keptFiles++;
        else plan.toWrite.push(item as TreeItem & { entry: FileEntry });
        break;
      case 'symlink':
        if (fsSync.readlinkSync(run.root.at(rel), { encoding: 'buffer' }).equals(encodeName(entry.target))) matched.add(rel);
        break;
      case 'char':
      case 'block':
        if (have.rdev[0] === entry.rdev[0] && have.rdev[1] === entry.rdev[1]) matched.add(rel);
        break;
      case 'fifo':
        matched.add(rel);
        break;
    }
  }
  // A hardlink whose path already is the same inode as its (kept) primary stays (a set of primaries, not of all 163k paths written at 8x).
  const rewritten = new Set(plan.secondaries.length ? plan.toWrite.filter((w) => groupPrimary.get((w.entry as FileEntry).h!) === w.rel).map((w) => w.rel) : []);
  for (const link of plan.secondaries) {
    const have = existing.get(link.rel);
    const primary = existing.get(link.primary);
    if (have && primary && have.type === 'file' && have.ino === primary.ino && !rewritten.has(link.primary)) matched.add(link.rel);
  }
  return plan;
}

/** Phase 3: delete what the tree does not have, deepest first; never a recursive delete. */
function deleteUnwanted(run: SyncRun, existing: Map<string, Existing>, matched: Set<string>): void {
  const doomed = [...existing.values()].filter((e) => !matched.has(e.rel)).sort((a, b) => b.depth - a.depth);
  for (const e of doomed) {
    run.root.trim();
    try {
      if (e.type === 'dir') {
        fsSync.rmdirSync(run.root.at(e.rel));
        run.root.forget(e.rel);
      } else fsSync.unlinkSync(run.root.at(e.rel));
      run.progress.deleted++;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') continue;
      if (code === 'ENOTEMPTY' && !run.wanted.has(e.rel)) run.warn(`kept ${displayName(e.rel)}: it holds kept paths`);
      else throw new RestoreError(`cannot remove ${displayName(e.rel)} from the target: ${code}`, 'check that nothing else writes to the target');
    }
  }
}

/** Phase 4: place everything, parents first; hardlinks, then symlinks, last; then remove the staging directories. */
function placeEntries(run: SyncRun, plan: Plan, staged: Staged): void {
  const { root } = run;
  let next = 0; // toWrite holds items in items' order: the next one to rename
  const symlinks: string[] = [];
  for (const { rel, entry } of run.items) {
    if (!rel || (plan.matched.has(rel) && entry.type !== 'file')) continue;
    root.trim();
    switch (entry.type) {
      case 'dir':
        try {
          makeDirectory(root, rel, entry, run.warn);
        } catch (err) {
          // A kept path (lost+found) the scan did not enter.
          if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || !fsSync.lstatSync(root.at(rel)).isDirectory()) throw err;
        }
        break;
      case 'file':
        if (plan.toWrite[next]?.rel === rel) fsSync.renameSync(staged.pathOf(next++), root.at(rel));
        break;
      case 'char':
      case 'block':
      case 'fifo':
        try {
          mknodEntry(root.at(rel), entry);
        } catch (err) {
          run.notCreated.add(rel);
          run.warn(`cannot create ${entry.type} ${displayName(rel)}: ${(err as NodeJS.ErrnoException).code}; not restored`);
        }
        break;
      case 'symlink':
        symlinks.push(rel);
        break;
    }
  }
  for (const link of plan.secondaries) {
    if (plan.matched.has(link.rel)) continue;
    root.trim();
    fsSync.rmSync(root.at(link.rel), { force: true }); // not there: nothing to replace
    fsSync.linkSync(root.at(link.primary), root.at(link.rel));
  }
  for (const rel of symlinks) {
    root.trim();
    fsSync.symlinkSync(encodeName((run.wanted.get(rel) as { target: string }).target), root.at(rel));
  }
  // Staged files of a cut-off run that this one did not need go too.
  staged.removeAll();
}
