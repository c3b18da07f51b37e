/**
 * Capture: one file-system tree into directory objects and chunks.
 *
 * A walk driver lists each directory (sorted, lstat with nanosecond times, sync calls, no
 * symlink followed, another file system entered only where the image selection says so,
 * select.ts) and hands regular files to readers (read-queue.ts: a few directories listed at
 * once, newest first, and the walk braked at a few hundred queued reads, so it goes depth
 * first and memory stays flat). A reader finds the file's data extents (SEEK_DATA/SEEK_HOLE:
 * holes are never read or stored), cuts them with FastCDC, hashes each chunk with BLAKE3 and
 * passes it to the store without waiting for durability; the store is flushed once at the
 * end. Each directory becomes a canonical JSON object stored under its content id, bottom-up.
 *
 * Names are bytes, kept in the lossless escaped form of file-names.ts. A directory whose path
 * passes LONG_PATH bytes is opened and its children named through "/proc/self/fd/N/".
 * Files and directories keep their inode flags (inode-flags.ts). Every path not stored
 * (excluded, another file system, vanished or unreadable, a socket) is counted and listed in
 * `leftOut`. A file that changes while it is read is read again (capture-read.ts).
 *
 * Incremental capture: given the parent revision's tree (read in batches, parent-objects.ts),
 * a file whose size, mtime, ctime and inode are unchanged keeps its chunk list unread, and
 * its xattrs and inode flags where the parent's capture read flags (stat-fields.ts); a
 * directory whose entries are all as the parent's keeps its object. Whether the store is
 * asked for those chunks first, or the commit's check is trusted, is capture-parent.ts's.
 * Directory objects go to the write-behind like chunks: no directory waits for an upload.
 */
import { closeSync, openSync, readdirSync, readlinkSync, constants as fsc, type BigIntStats } from 'node:fs';
import * as fs from 'node:fs/promises';
import path from 'node:path';
import type { ChunkerParams } from '../chunker/fastcdc.ts';
import { readChunks, readXattrs, type FileRead, type FileReader } from './capture-read.ts';
import { readFlags } from './inode-flags.ts';
import { dirSlots, readQueue, type ReadQueue } from './read-queue.ts';
import { SUBVOLUME_INO } from './subvolumes.ts';
import { decodeName, displayName, encodeName } from './file-names.ts';
import type { ChunkId } from '../store/chunk-id.ts';
import type { ChunkReader, ChunkWriter } from '../store/interfaces.ts';
import { putObject } from '../store/objects.ts';
import { ObjectBatcher } from './parent-objects.ts';
import { filesToReread, keptAsIs, parentDir, parentObjectKept, type ParentDir } from './capture-parent.ts';
import { serializeDirectory, type DirectoryObject, type Entry, type FileEntry } from './manifest.ts';
import { splitDev, timestampOf, unchangedFile } from './stat-fields.ts';
import { imageSelection, type ImageSelection, type SelectionOptions } from './select.ts';
import { unflushedWrites, type UnflushedWrites } from './unflushed-writes.ts';
import { ClonerError } from '../errors.ts';
import { lstatPlain, type PlainStats } from '../native/fsx.ts';

export interface CaptureProgress {
  files: number;
  dirs: number;
  others: number;
  /** Logical bytes of regular files walked so far. */
  bytes: number;
  /** Bytes actually read (unchanged files are not read). */
  readBytes: number;
  reusedFiles: number;
  chunks: number;
  skipped: number;
}

/** What to capture: root, exclude, liveNode, crossMounts and includeMounts are the image selection's (select.ts). */
export interface CaptureOptions extends SelectionOptions {
  store: Pick<ChunkWriter, 'put' | 'flush'> & Pick<ChunkReader, 'hasMany' | 'get' | 'getMany'>;
  chunker: ChunkerParams;
  /** Tree id of the previous revision, for incremental capture. */
  parentTree?: ChunkId;
  /**
   * Reuse the parent's chunks and objects without asking the store (capture-parent.ts):
   * only for a caller whose commit checks the tree (commitRevision) and who captures again
   * without it when the commit refuses. Default false: every reused chunk is asked for.
   */
  trustParent?: boolean;
  /**
   * The selection already built from these options (to share with countTree); built here
   * when absent. Its root must be `root` resolved, or the capture throws CaptureError.
   */
  selection?: ImageSelection;
  concurrency?: number;
  progress?: CaptureProgress;
  onWarning?: (message: string) => void;
}

/** A path the capture did not store (or stored empty), and why. */
export interface LeftOut {
  path: string;
  why: string;
}

export interface CaptureResult {
  tree: ChunkId;
  progress: CaptureProgress;
  /** Every path left out, sorted: excluded, another file system, unreadable, a socket. */
  leftOut: LeftOut[];
}

export class CaptureError extends ClonerError {
  override readonly code = 'CAPTURE_FAILED';
}

export function newCaptureProgress(): CaptureProgress {
  return { files: 0, dirs: 0, others: 0, bytes: 0, readBytes: 0, reusedFiles: 0, chunks: 0, skipped: 0 };
}

/** Past this many bytes of path, a directory is opened and its children named through its fd (PATH_MAX is 4096). */
const LONG_PATH = 2048;

/** Everything one capture's walk shares. */
interface Walk {
  opts: CaptureOptions;
  selection: ImageSelection;
  rootStat: BigIntStats;
  progress: CaptureProgress;
  warn: (message: string) => void;
  reads: ReadQueue; // file reads, and the brake that keeps the walk from queuing the whole tree
  dirs: ReturnType<typeof dirSlots>; // directories listed at once, newest first (depth first)
  writes: UnflushedWrites;
  reader: FileReader;
  hardlinks: Map<string, Promise<FileRead>>; // hardlink group ("device:inode") -> the read of its first path
  leftOut: LeftOut[];
  /** Records a path not stored (or stored empty): counted, listed, and a warning unless it was excluded. */
  leave: (rel: string, why: string, warn?: string) => void;
  /** Device -> small index, so hardlink groups stay apart across included mounts. */
  deviceIndex: Map<number, number>;
  /** The parent revision's directory objects, fetched in batches (parent-objects.ts). */
  parents: ObjectBatcher;
  /** The parent tree says its capture read every inode flag (its top object's `flagsRead`). */
  parentFlags: boolean;
}

/** One directory being captured: where it is, what its parent revision had, what it collects. */
interface DirWalk {
  dir: Buffer; // the directory's path as bytes (a "/proc/self/fd/N" name once the real path is long)
  rel: string;
  dev: number;
  /** What the parent revision had here. */
  parent: ParentDir;
  entries: Entry[];
  /** Files whose chunk lists came from the parent revision, to be confirmed in the store. */
  reused: FileEntry[];
  tasks: Promise<void>[];
}

/**
 * Captures the tree at `opts.root` into `opts.store`; returns the root directory's id and
 * the progress counters (also kept up to date in `opts.progress` while it runs).
 * Unreadable entries are warnings (`onWarning`); throws CaptureError when the root is not
 * a readable directory, and the store's own errors.
 */
export async function captureTree(opts: CaptureOptions): Promise<CaptureResult> {
  const selection = await selectionFor(opts);
  const warn = opts.onWarning ?? (() => undefined);
  const progress = opts.progress ?? newCaptureProgress();
  const writes = unflushedWrites(opts.store);
  const leftOut: LeftOut[] = [];
  const walk: Walk = {
    opts,
    selection,
    rootStat: await statRoot(selection.root),
    progress,
    warn,
    reads: readQueue(opts.concurrency ?? 8),
    dirs: dirSlots(),
    writes,
    reader: {
      chunker: opts.chunker,
      noatime: process.getuid?.() === 0 ? fsc.O_NOATIME : 0,
      put: writes.put,
      drain: writes.drainIfFull,
      onChunk: () => progress.chunks++,
      onRead: (bytes) => (progress.readBytes += bytes),
      warn,
      buffers: [],
    },
    hardlinks: new Map(),
    leftOut,
    leave: (rel, why, message) => {
      progress.skipped++;
      leftOut.push({ path: displayName(rel || '/'), why });
      if (message) warn(message);
    },
    deviceIndex: new Map(),
    parents: new ObjectBatcher(opts.store),
    parentFlags: false,
  };
  walk.deviceIndex.set(Number(walk.rootStat.dev), 0);
  const tree = await captureDir(walk, Buffer.from(selection.root), '', opts.parentTree, Number(walk.rootStat.dev));
  await walk.writes.settle();
  leftOut.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)); // walk order is not stable
  return { tree, progress: walk.progress, leftOut };
}

async function selectionFor(opts: CaptureOptions): Promise<ImageSelection> {
  if (!opts.selection) return imageSelection(opts);
  if (opts.selection.root !== path.resolve(opts.root)) throw new CaptureError(`the image selection is for ${opts.selection.root}, not ${path.resolve(opts.root)}`);
  return opts.selection;
}

async function statRoot(root: string): Promise<BigIntStats> {
  const rootStat = await fs.lstat(root, { bigint: true }).catch((err: NodeJS.ErrnoException) => {
    throw new CaptureError(`cannot read ${root}: ${err.code}`, 'pass an existing directory with --root');
  });
  if (!rootStat.isDirectory()) throw new CaptureError(`${root} is not a directory`, 'pass a directory with --root');
  return rootStat;
}

/**
 * Adds a task the directory awaits once its listing is done. The task may fail before then
 * (a store that went away, an unreadable file); the handler attached here keeps that from
 * being an unhandled rejection, which would kill Node instead of reporting the error: the
 * error still reaches the caller through `Promise.all(d.tasks)`.
 */
function pushTask(d: DirWalk, task: Promise<void>): void {
  task.catch(() => undefined);
  d.tasks.push(task);
}

async function captureDir(w: Walk, dir: Buffer, rel: string, parentTree: ChunkId | undefined, dev: number): Promise<ChunkId> {
  const parent = await parentDir(w.parents, parentTree, rel, w.warn); // fetched before the slot: no slot waits on a round trip
  if (rel === '') w.parentFlags = parent.flagsRead === true;
  const listed = await w.dirs.acquire(); // held while listing, not while waiting for subdirectories
  let fd: number | undefined;
  if (dir.length > LONG_PATH) {
    try {
      fd = openSync(dir, fsc.O_RDONLY | fsc.O_DIRECTORY | fsc.O_NOFOLLOW);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      w.leave(rel, `unreadable directory (${code}), stored empty`, `cannot open ${shownPath(w, rel)}: ${code}; captured as empty`);
    }
    if (fd !== undefined) dir = Buffer.from(`/proc/self/fd/${fd}`);
  }
  try {
    const rootMeta = rel === '' ? rootMetadata(w.rootStat, dir) : undefined;
    w.progress.dirs++;
    const d: DirWalk = { dir, rel, dev, parent, entries: [], reused: [], tasks: [] };
    const names = dir.length <= LONG_PATH || fd !== undefined ? await listDir(w, d) : [];
    for (const name of names) {
      const full = w.reads.ahead(); // the readers' queue is full (read-queue.ts); no await (a turn) per entry otherwise
      if (full) await full;
      captureEntry(w, d, name);
    }
    listed();
    await confirmReused(w, d);
    await Promise.all(d.tasks);
    // Entries all as the parent's: its object (no serialising, hashing or upload: ~10% of a no-op's CPU).
    const kept = rootMeta ? undefined : await parentObjectKept(w.opts.store, d.parent, d.entries, w.opts.trustParent === true);
    if (kept) return kept;
    return await putDir(w, serializeDirectory(d.entries, rootMeta));
  } finally {
    listed();
    if (fd !== undefined) closeSync(fd);
  }
}

/** A directory object goes to the write-behind as file chunks do: its id is known at once (waiting for each upload cost a round trip per level). */
const putDir = (w: Walk, bytes: Buffer) => putObject({ put: async (data) => w.writes.put(Buffer.isBuffer(data) ? data : Buffer.from(data)) }, bytes, w.opts.chunker);

/** A path for messages: the root as given, then the tree path with escaped bytes shown as \xNN. */
const shownPath = (w: Walk, rel: string) => `${w.selection.root.replace(/\/$/, '')}${displayName(rel)}` || '/';

const childPath = (dir: Buffer, name: string) => Buffer.concat([dir, Buffer.from('/'), encodeName(name)]);

function rootMetadata(st: BigIntStats, dir: Buffer): DirectoryObject['root'] {
  const xattrs = readXattrs(dir);
  return { mode: Number(st.mode & 0o7777n), uid: Number(st.uid), gid: Number(st.gid), mtime: timestampOf(st.mtimeNs), ...(xattrs ? { xattrs } : {}) };
}

/** The directory's names, as bytes in their escaped form, sorted. */
async function listDir(w: Walk, d: DirWalk): Promise<string[]> {
  try {
    return readdirSync(d.dir, { encoding: 'buffer' }).map(decodeName).sort();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    w.leave(d.rel, `unreadable directory (${code}), stored empty`, `cannot list ${shownPath(w, d.rel)}: ${code}; captured as empty`);
    return [];
  }
}

/** One directory entry: skipped when the selection excludes it, else added to `d.entries`. */
function captureEntry(w: Walk, d: DirWalk, name: string): void {
  const full = childPath(d.dir, name);
  const relPath = `${d.rel}/${name}`;
  if (w.selection.excludes(relPath)) {
    w.leave(relPath, 'excluded by the image selection');
    return;
  }
  let st: PlainStats; // plain numbers, no BigInt (fsx.ts)
  try {
    st = lstatPlain(full);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    w.leave(relPath, `vanished or unreadable (${code})`, `${shownPath(w, relPath)} vanished or is unreadable (${code}); skipped`);
    return;
  }
  // Key order is part of the canonical bytes (and so of the tree id): base, type fields, xattrs.
  const base = { name, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtime: st.mtime };
  const ctime = st.ctime;
  const prev = st.isFile() ? d.parent.previous.get(name) : undefined;
  const unchanged = prev?.type === 'file' && unchangedFile(prev, st, base.mtime, ctime) ? prev : undefined;
  // An unchanged file's xattrs and flags are its parent's (stat-fields.ts), where the parent read flags: they were ~30% of a no-op's walk.
  const known = unchanged && w.parentFlags ? unchanged : undefined;
  // Nothing differs: the parent's entry itself, so sameEntries finds it at once and nothing is copied.
  if (known && keptAsIs(known, base, hardlinkKey(w, st))) return captureFile(w, d, full, st, known, known);
  const xattrs = known ? known.xattrs : readXattrs(full);
  const iflags = known ? known.iflags : st.isFile() || st.isDirectory() ? readFlags(full) : undefined;
  const withXattrs = <T extends Entry>(e: T): T => {
    const out = xattrs ? { ...e, xattrs } : e;
    return iflags ? { ...out, iflags } : out;
  };
  if (st.isDirectory()) captureSubdir(w, d, full, relPath, st, withXattrs({ ...base, type: 'dir' as const, tree: '' }));
  else if (st.isFile()) captureFile(w, d, full, st, withXattrs({ ...base, type: 'file' as const, size: Number(st.size), chunks: [], ino: st.ino.toString(), ctime }), unchanged);
  else if (st.isSymbolicLink()) {
    w.progress.others++;
    d.entries.push(withXattrs({ ...base, type: 'symlink' as const, target: decodeName(readlinkSync(full, { encoding: 'buffer' })) }));
  } else if (st.isCharacterDevice() || st.isBlockDevice()) {
    w.progress.others++;
    d.entries.push(withXattrs({ ...base, type: st.isCharacterDevice() ? ('char' as const) : ('block' as const), rdev: splitDev(BigInt(st.rdev)) }));
  } else if (st.isFIFO()) {
    w.progress.others++;
    d.entries.push(withXattrs({ ...base, type: 'fifo' as const }));
  } else {
    w.leave(relPath, 'a socket (made by the program that listens on it)', `${shownPath(w, relPath)} is a socket; skipped`);
  }
}

/** A subdirectory, walked as its own task; a mount point the selection does not enter stays an empty directory. */
function captureSubdir(w: Walk, d: DirWalk, full: Buffer, relPath: string, st: PlainStats, entry: Extract<Entry, { type: 'dir' }>): void {
  const crosses = st.dev !== d.dev;
  if (crosses && !w.selection.entersMount(relPath)) {
    w.leave(relPath, 'another file system (not in the image\'s layout), stored as an empty directory');
    d.entries.push(entry);
    pushTask(d, putDir(w, serializeDirectory([])).then((tree) => void (entry.tree = tree)));
    return;
  }
  if (crosses && !w.deviceIndex.has(st.dev)) w.deviceIndex.set(st.dev, w.deviceIndex.size);
  if (crosses && st.ino === String(SUBVOLUME_INO) && !w.selection.isMountPoint(relPath)) entry.subvol = true;
  d.entries.push(entry);
  const prev = d.parent.previous.get(entry.name);
  pushTask(d, captureDir(w, full, relPath, prev?.type === 'dir' ? prev.tree : undefined, st.dev).then((tree) => void (entry.tree = tree)));
}

/** A regular file: its parent revision's chunks when unchanged, else read (once per hardlink group). */
/** A file's hardlink group ("device index:inode") when it has more than one link. */
const hardlinkKey = (w: Walk, st: PlainStats) => (st.nlink > 1 ? `${w.deviceIndex.get(st.dev) ?? 0}:${st.ino}` : undefined);

function captureFile(w: Walk, d: DirWalk, full: Buffer, st: PlainStats, entry: FileEntry, unchanged: FileEntry | undefined): void {
  w.progress.files++;
  w.progress.bytes += entry.size;
  const h = hardlinkKey(w, st);
  if (h) entry.h = h;
  d.entries.push(entry);
  if (unchanged) {
    if (entry !== unchanged) entry.chunks = unchanged.chunks;
    d.reused.push(entry);
    return;
  }
  const shown = shownPath(w, `${d.rel}/${entry.name}`);
  const read = () => w.reads.run(() => readChunks(w.reader, full, shown));
  let chunks: Promise<FileRead>;
  if (entry.h) {
    chunks = w.hardlinks.get(entry.h) ?? read();
    w.hardlinks.set(entry.h, chunks);
  } else {
    chunks = read();
  }
  pushTask(d, 
    chunks.then(
      ({ refs, stat }) => {
        entry.chunks = refs;
        // The read stored is of the file as it was then (it may have changed since the lstat).
        entry.size = Number(stat.size);
        entry.mtime = timestampOf(stat.mtimeNs);
        entry.ctime = timestampOf(stat.ctimeNs);
      },
      (err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT' || err.code === 'EACCES' || err.code === 'ELOOP') {
          w.leave(`${d.rel}/${entry.name}`, `unreadable (${err.code}), stored as an empty file`, `${shown} unreadable (${err.code}); captured as an empty file`);
          entry.size = 0;
          return;
        }
        throw err;
      },
    ),
  );
}

/** Unchanged files keep their parent's chunks unless the store lacks one of them (capture-parent.ts): those are read again. */
async function confirmReused(w: Walk, d: DirWalk): Promise<void> {
  const reread = new Set(await filesToReread(w.opts.store, d.reused, w.opts.trustParent === true));
  w.progress.reusedFiles += d.reused.length - reread.size;
  for (const kept of reread) {
    // A copy: the entry may be the parent's own object (keptAsIs), which sameEntries compares with.
    const entry = { ...kept };
    d.entries[d.entries.indexOf(kept)] = entry;
    const full = childPath(d.dir, entry.name);
    pushTask(d, w.reads.run(() => readChunks(w.reader, full, shownPath(w, `${d.rel}/${entry.name}`))).then(({ refs, stat }) => {
      entry.chunks = refs;
      entry.size = Number(stat.size);
    }));
  }
}
