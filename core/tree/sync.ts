/**
 * Sync: make a target directory (a node's mounted file systems) hold exactly a captured
 * tree, reading from the store only the chunks the node does not already hold. A deploy
 * onto blank file systems, a re-deploy of a new revision and a resumed, cut-off deploy are
 * all the same call.
 *
 * Algorithm, in phases; the target is never read through a symlink and nothing is
 * written outside it:
 *   1. scan: walk the target with lstat (never following symlinks; kept paths such as
 *      lost+found and the image's excluded paths are not entered). A file whose size and
 *      nanosecond mtime equal the tree's is kept unread (unless `checksum`); every other
 *      regular file is cut into chunks with the image's FastCDC parameters, each chunk
 *      found a seed (id -> file, offset), and kept when its chunk list equals the tree's.
 *   2. data: every file to write is built in a staging directory on its own file system
 *      (`.cloner-sync` at the root of each mount under the target, so the final rename
 *      never crosses file systems): seeded chunks are copied from the old files
 *      (BLAKE3 checked again, as a file may change after the scan), the rest are fetched
 *      through `reader.getMany` (batched, checked by the reader) and written to every
 *      place that holds them. A staged file is named by its path and content: a run cut
 *      off midway leaves it, and the next run checks its chunks in place and fills in
 *      the rest, so a resumed deploy does not fetch again what it already wrote.
 *   3. delete: every scanned entry that is not wanted, or wanted with another type or
 *      content (a symlink target, a device number), deepest first: unlink or rmdir, never
 *      a recursive delete, so a kept path inside is never lost.
 *   4. place, in path order: mkdir what is missing, rename staged files over their paths
 *      (an atomic replace), mknod, then hardlinks to their group's first path, and
 *      symlinks last, so none exists while anything is written below it.
 *   5. metadata as restore does (owner, mode, xattrs, times; directories deepest first).
 */
import * as fsSync from 'node:fs';
import { constants as fsc } from 'node:fs';
import * as fs from 'node:fs/promises';
import { createHash } from 'node:crypto';
import type { ChunkerParams } from '../chunker/fastcdc.ts';
import { chunkIdOf, type ChunkId } from '../store/chunk-id.ts';
import type { ChunkReader } from '../store/interfaces.ts';
import { splitDev, timestampOf } from './capture.ts';
import { excludeMatcher } from './select.ts';
import { chunkFile } from './file-chunks.ts';
import type { ChunkRef, Entry, FileEntry } from './manifest.ts';
import { applyMetadata, chunkTargets, loadTree, mknodEntry, newRestoreProgress, RestoreError, writeChunks, type RestoreProgress } from './restore.ts';

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
}

export interface SyncOptions {
  reader: Pick<ChunkReader, 'get' | 'getMany'>;
  tree: ChunkId;
  target: string;
  /** The image store's chunker: existing files are cut the same way to find their chunks. */
  chunker: ChunkerParams;
  /**
   * Target paths the tree does not have that are left alone: not scanned, changed or
   * deleted (capture exclude syntax: /scratch, /var/cache/*).
   */
  keep?: string[];
  /** Target directories (kept ones too) whose files are read only as seeds: never changed. */
  seedDirs?: string[];
  /**
   * Read every existing file. Without it a file whose size and modification time (to the
   * nanosecond) equal the tree's is taken as right without being read, as rsync does: a
   * deploy sets those times, so on a re-deploy only changed files are read.
   */
  checksum?: boolean;
  strict?: boolean;
  onWarning?: (message: string) => void;
  progress?: SyncProgress;
}

export function newSyncProgress(): SyncProgress {
  return { ...newRestoreProgress(), phase: 'scan', scannedBytes: 0, keptFiles: 0, seededBytes: 0, fetchedBytes: 0, deleted: 0 };
}

interface Existing {
  rel: string;
  depth: number;
  type: Entry['type'] | 'other';
  ino: bigint;
  size: number;
  rdev: [number, number];
  /** Regular files: the chunks found in them. */
  chunks?: ChunkRef[];
  /** Size and mtime equal the tree's (not read). */
  sameStat?: boolean;
}

const STAGING_DIR = '.cloner-sync';

/** Mount points at or under `target` (target-relative, '' for the target), deepest first. */
function mountRoots(target: string): string[] {
  const roots = new Set<string>(['']);
  let text = '';
  try {
    text = fsSync.readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return [''];
  }
  for (const line of text.split('\n')) {
    const field = line.split(' ')[4];
    if (!field) continue;
    const mountPoint = field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
    if (mountPoint === target) roots.add('');
    else if (mountPoint.startsWith(`${target}/`)) roots.add(mountPoint.slice(target.length));
  }
  return [...roots].sort((a, b) => b.length - a.length);
}

function typeOf(st: fsSync.BigIntStats): Existing['type'] {
  if (st.isDirectory()) return 'dir';
  if (st.isFile()) return 'file';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isCharacterDevice()) return 'char';
  if (st.isBlockDevice()) return 'block';
  if (st.isFIFO()) return 'fifo';
  return 'other';
}

const sameChunks = (a: ChunkRef[], b: ChunkRef[]) => a.length === b.length && a.every((r, i) => r[0] === b[i][0] && r[1] === b[i][1] && r[2] === b[i][2]);

export async function syncTree(opts: SyncOptions): Promise<SyncProgress> {
  const progress = opts.progress ?? newSyncProgress();
  const warn = (message: string) => {
    if (opts.strict) throw new RestoreError(message, 'run without --strict to restore with warnings');
    opts.onWarning?.(message);
  };
  const targetStat = await fs.lstat(opts.target).catch(() => null);
  if (!targetStat?.isDirectory()) throw new RestoreError(`sync target ${opts.target} is not a directory`, 'mount the node\'s file systems there first');
  const target = await fs.realpath(opts.target);
  const abs = (rel: string) => target + rel;
  const items = await loadTree(opts.reader, opts.tree);
  const wanted = new Map(items.map((item) => [item.rel, item.entry]));
  const roots = mountRoots(target);
  const rootOf = (rel: string) => roots.find((r) => r === '' || rel === r || rel.startsWith(`${r}/`))!;
  const isKept = excludeMatcher(opts.keep ?? []);
  // lost+found and the staging directory at the root of each file system are not part of the tree.
  const atRoot = (rel: string, name: string) => rel.endsWith(`/${name}`) && roots.includes(rel.slice(0, -name.length - 1));
  // A kept path the tree has (a captured /dev/null under a kept /dev/*) is synced as usual.
  const keptHere = (rel: string) => !wanted.has(rel) && (isKept(rel) || atRoot(rel, 'lost+found') || atRoot(rel, STAGING_DIR));

  // Phase 1: scan what the node holds.
  progress.phase = 'scan';
  const existing = new Map<string, Existing>();
  const seeds = new Map<ChunkId, { path: string; offset: number }>();
  async function chunkExisting(rel: string, st: fsSync.BigIntStats): Promise<ChunkRef[]> {
    const handle = await fs.open(abs(rel), fsc.O_RDONLY | fsc.O_NOFOLLOW);
    try {
      return await chunkFile(handle, Number(st.size), {
        params: opts.chunker,
        sparse: st.blocks * 512n < st.size,
        onChunk: (data, offset) => {
          const id = chunkIdOf(data);
          if (!seeds.has(id)) seeds.set(id, { path: abs(rel), offset });
          return id;
        },
        onRead: (bytes) => (progress.scannedBytes += bytes),
      });
    } finally {
      await handle.close();
    }
  }
  async function scan(rel: string, depth: number): Promise<void> {
    let names: string[];
    try {
      names = fsSync.readdirSync(abs(rel) || '/');
    } catch (err) {
      warn(`cannot read ${rel || '/'} on the target: ${(err as NodeJS.ErrnoException).code}`);
      return;
    }
    for (const name of names.sort()) {
      const childRel = `${rel}/${name}`;
      if (keptHere(childRel)) continue;
      const st = fsSync.lstatSync(abs(childRel), { bigint: true });
      const found: Existing = { rel: childRel, depth, type: typeOf(st), ino: st.ino, size: Number(st.size), rdev: splitDev(st.rdev) };
      existing.set(childRel, found);
      if (found.type === 'dir') await scan(childRel, depth + 1);
      else if (found.type === 'file' && found.size > 0) {
        const want = wanted.get(childRel);
        const mtime = timestampOf(st.mtimeNs);
        if (!opts.checksum && want?.type === 'file' && want.size === found.size && want.mtime[0] === mtime[0] && want.mtime[1] === mtime[1]) found.sameStat = true;
        else found.chunks = await chunkExisting(childRel, st);
      }
    }
  }
  await scan('', 0);
  for (const dir of opts.seedDirs ?? []) {
    // Seeds only, one level (flat directories of saved files); a symlinked one is not read.
    const rel = dir.replace(/\/+$/, '');
    if (!fsSync.lstatSync(abs(rel), { throwIfNoEntry: false })?.isDirectory() || fsSync.realpathSync(abs(rel)) !== abs(rel)) continue;
    for (const name of fsSync.readdirSync(abs(rel))) {
      const st = fsSync.lstatSync(abs(`${rel}/${name}`), { bigint: true });
      if (st.isFile() && st.size > 0n) await chunkExisting(`${rel}/${name}`, st);
    }
  }

  // What stays as it is, what is written. Mount points (and the directories above them)
  // stay even when the tree lacks them: the layout made them.
  const matched = new Set<string>(['']);
  for (const root of roots) for (let r = root; r; r = r.slice(0, r.lastIndexOf('/'))) matched.add(r);
  const groupPrimary = new Map<string, string>();
  const secondaries: Array<{ rel: string; primary: string }> = [];
  const toWrite: Array<{ rel: string; entry: FileEntry }> = [];
  for (const { rel, entry } of items) {
    if (!rel) continue;
    const have = existing.get(rel);
    if (entry.type === 'file' && entry.h !== undefined) {
      if (groupPrimary.has(entry.h)) {
        secondaries.push({ rel, primary: groupPrimary.get(entry.h)! });
        continue;
      }
      groupPrimary.set(entry.h, rel);
    }
    if (!have || have.type !== entry.type) {
      if (entry.type === 'file') toWrite.push({ rel, entry });
      continue;
    }
    switch (entry.type) {
      case 'dir':
        matched.add(rel);
        break;
      case 'file':
        matched.add(rel); // replaced by a rename when it is rewritten
        if (have.size === entry.size && (have.sameStat || sameChunks(have.chunks ?? [], entry.chunks))) progress.keptFiles++;
        else toWrite.push({ rel, entry });
        break;
      case 'symlink':
        if (fsSync.readlinkSync(abs(rel)) === entry.target) matched.add(rel);
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
  // A hardlink whose path already is the same inode as its (kept) primary stays.
  const rewritten = new Set(toWrite.map((w) => w.rel));
  for (const link of secondaries) {
    const have = existing.get(link.rel);
    const primary = existing.get(link.primary);
    if (have && primary && have.type === 'file' && have.ino === primary.ino && !rewritten.has(link.primary)) matched.add(link.rel);
  }

  // Phase 2: build every file to write in its file system's staging directory. A staged
  // file is named by its path and content, so a run cut off midway leaves files the next
  // run finds and completes (their chunks checked in place) instead of fetching again.
  progress.phase = 'data';
  const stagingDirs = new Set<string>();
  const staged: string[] = toWrite.map(({ rel, entry }) => {
    const dir = `${abs(rootOf(rel))}/${STAGING_DIR}`;
    if (!stagingDirs.has(dir)) {
      fsSync.mkdirSync(dir, { recursive: true, mode: 0o700 });
      if (!fsSync.lstatSync(dir).isDirectory()) throw new RestoreError(`${dir} is not a directory`, 'remove it and deploy again');
      stagingDirs.add(dir);
    }
    const key = createHash('sha256').update(rel).update('\0').update(JSON.stringify([entry.size, entry.chunks])).digest('hex').slice(0, 40);
    return `${dir}/${key}`;
  });
  const entries = toWrite.map((w) => w.entry);
  const seeded = new Set<string>();
  entries.forEach((entry, i) => {
    const fd = fsSync.openSync(staged[i], fsc.O_RDWR | fsc.O_CREAT | fsc.O_NOFOLLOW, 0o600);
    try {
      // Left by a cut-off run: every chunk already in place counts.
      if (fsSync.fstatSync(fd).size > 0) {
        for (const [offset, length, id] of entry.chunks) {
          const data = Buffer.allocUnsafe(length);
          if (fsSync.readSync(fd, data, 0, length, offset) === length && chunkIdOf(data) === id) {
            seeded.add(`${i}:${offset}`);
            progress.seededBytes += length;
            progress.bytes += length;
          }
        }
      }
      fsSync.ftruncateSync(fd, entry.size);
    } finally {
      fsSync.closeSync(fd);
    }
    progress.totalBytes += entry.chunks.reduce((sum, c) => sum + c[1], 0);
  });
  copySeeds(entries, staged, seeds, progress, seeded);
  const targets = chunkTargets(entries, (fileIndex, offset) => seeded.has(`${fileIndex}:${offset}`));
  await writeChunks(opts.reader, staged, targets, progress, (bytes) => (progress.fetchedBytes += bytes));
  progress.files = toWrite.length;

  // Phase 3: delete what the tree does not have, deepest first.
  progress.phase = 'place';
  const doomed = [...existing.values()].filter((e) => !matched.has(e.rel)).sort((a, b) => b.depth - a.depth);
  for (const e of doomed) {
    try {
      if (e.type === 'dir') fsSync.rmdirSync(abs(e.rel));
      else fsSync.unlinkSync(abs(e.rel));
      progress.deleted++;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') continue;
      if (code === 'ENOTEMPTY' && !wanted.has(e.rel)) {
        warn(`kept ${e.rel}: it holds kept paths`);
        continue;
      }
      throw new RestoreError(`cannot remove ${e.rel} from the target: ${code}`, 'check that nothing else writes to the target');
    }
  }

  // Phase 4: place everything, parents first; hardlinks, then symlinks, last.
  const stagedOf = new Map(toWrite.map((w, i) => [w.rel, staged[i]]));
  const symlinks: string[] = [];
  for (const { rel, entry } of items) {
    if (!rel || (matched.has(rel) && entry.type !== 'file')) continue;
    const p = abs(rel);
    switch (entry.type) {
      case 'dir':
        try {
          fsSync.mkdirSync(p, 0o700);
        } catch (err) {
          // A kept path (lost+found) the scan did not enter.
          if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || !fsSync.lstatSync(p).isDirectory()) throw err;
        }
        break;
      case 'file': {
        const from = stagedOf.get(rel);
        if (from) fsSync.renameSync(from, p);
        break;
      }
      case 'char':
      case 'block':
      case 'fifo': {
        try {
          mknodEntry(p, entry);
        } catch (err) {
          warn(`cannot create ${entry.type} ${rel}: ${(err as NodeJS.ErrnoException).code}`);
        }
        break;
      }
      case 'symlink':
        symlinks.push(rel);
        break;
    }
  }
  for (const link of secondaries) {
    if (matched.has(link.rel)) continue;
    fsSync.rmSync(abs(link.rel), { force: true });
    fsSync.linkSync(abs(link.primary), abs(link.rel));
  }
  for (const rel of symlinks) fsSync.symlinkSync((wanted.get(rel) as { target: string }).target, abs(rel));
  // Staged files of a cut-off run that this one did not need go too.
  for (const dir of stagingDirs) fsSync.rmSync(dir, { recursive: true, force: true });

  // Phase 5: metadata; directories last and deepest first.
  progress.phase = 'metadata';
  const isRoot = process.getuid?.() === 0;
  const applied = new Set<string>();
  for (const item of items) if (item.entry.type !== 'dir') applyMetadata(abs(item.rel), item.entry, isRoot, warn, applied);
  for (const item of items.filter((i) => i.entry.type === 'dir').sort((a, b) => b.depth - a.depth)) applyMetadata(abs(item.rel), item.entry, isRoot, warn, applied);
  progress.entries = items.length;
  progress.phase = 'done';
  return progress;
}

/**
 * Copies every chunk a staged file needs that the node already holds from where the scan
 * found it, checking its BLAKE3 again.  Adds the places filled ("file:offset") to `filled`.
 */
function copySeeds(entries: FileEntry[], staged: string[], seeds: Map<ChunkId, { path: string; offset: number }>, progress: SyncProgress, filled: Set<string>): void {
  const sources = new Map<string, number>();
  const sourceFd = (file: string) => {
    let fd = sources.get(file);
    if (fd === undefined) {
      fd = fsSync.openSync(file, fsc.O_RDONLY | fsc.O_NOFOLLOW);
      sources.set(file, fd);
    }
    return fd;
  };
  try {
    entries.forEach((entry, index) => {
      let out: number | undefined;
      try {
        for (const [offset, length, id] of entry.chunks) {
          const seed = seeds.get(id);
          if (!seed || filled.has(`${index}:${offset}`)) continue;
          const data = Buffer.allocUnsafe(length);
          let got: number;
          try {
            got = fsSync.readSync(sourceFd(seed.path), data, 0, length, seed.offset);
          } catch {
            continue; // gone or unreadable since the scan: fetch it instead
          }
          if (got !== length || chunkIdOf(data) !== id) continue;
          out ??= fsSync.openSync(staged[index], fsc.O_WRONLY | fsc.O_NOFOLLOW);
          let written = 0;
          while (written < length) written += fsSync.writeSync(out, data, written, length - written, offset + written);
          filled.add(`${index}:${offset}`);
          progress.seededBytes += length;
          progress.bytes += length;
        }
      } finally {
        if (out !== undefined) fsSync.closeSync(out);
      }
      if (sources.size > 64) {
        for (const fd of sources.values()) fsSync.closeSync(fd);
        sources.clear();
      }
    });
  } finally {
    for (const fd of sources.values()) fsSync.closeSync(fd);
  }
}
