/**
 * Capture: one file-system tree into directory objects and chunks.
 *
 * A walk driver lists each directory (sorted, lstat with nanosecond times, never
 * following symlinks, entering another file system only where the image selection says
 * so) and hands regular files to file-saver tasks limited by p-limit. What the walk
 * leaves out is the image selection's rule (select.ts), shared with the progress count.
 * A saver finds the file's data extents (SEEK_DATA/SEEK_HOLE for sparse files, so holes
 * are never read or stored), cuts each extent with FastCDC, hashes every chunk with BLAKE3
 * and passes it to the store without waiting for durability; the driver flushes the store
 * once at the end. Each directory becomes a canonical JSON object stored under its
 * content id, bottom-up.
 *
 * Incremental capture: given the parent revision's tree, a file whose size, mtime, ctime
 * and inode are unchanged keeps its chunk list without being read (its chunks are asked
 * for with one `hasMany` per directory, which also protects them from a concurrent GC).
 */
import { constants as fsc } from 'node:fs';
import * as fs from 'node:fs/promises';
import path from 'node:path';
import pLimit from 'p-limit';
import type { ChunkerParams } from '../chunker/fastcdc.ts';
import { chunkFile } from './file-chunks.ts';
import { fsx } from '../native/fsx.ts';
import { chunkIdOf, type ChunkId } from '../store/chunk-id.ts';
import type { ChunkReader, ChunkWriter } from '../store/interfaces.ts';
import { getJsonObject, putObject } from '../store/objects.ts';
import { parseDirectory, serializeDirectory, type ChunkRef, type DirectoryObject, type Entry, type FileEntry, type Timestamp } from './manifest.ts';
import { imageSelection, type ImageSelection, type SelectionOptions } from './select.ts';
import { ClonerError } from '../errors.ts';

// The agent takes NODE_STATE_DIR from here; the rule itself lives in select.ts.
export { NODE_STATE_DIR } from './select.ts';

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
   * The selection already built from these options (to share with countTree); built here
   * when absent. Its root must be `root` resolved, or the capture throws CaptureError.
   */
  selection?: ImageSelection;
  concurrency?: number;
  progress?: CaptureProgress;
  onWarning?: (message: string) => void;
}

export interface CaptureResult {
  tree: ChunkId;
  progress: CaptureProgress;
}

export class CaptureError extends ClonerError {
  override readonly code = 'CAPTURE_FAILED';
}

export function newCaptureProgress(): CaptureProgress {
  return { files: 0, dirs: 0, others: 0, bytes: 0, readBytes: 0, reusedFiles: 0, chunks: 0, skipped: 0 };
}

/** Bytes handed to the store but not yet durable before the walk waits for the store. */
const MAX_UNFLUSHED = 256 * 1024 * 1024;

export function timestampOf(ns: bigint): Timestamp {
  const sec = ns / 1_000_000_000n;
  let nsec = ns % 1_000_000_000n;
  let s = sec;
  if (nsec < 0n) {
    nsec += 1_000_000_000n;
    s -= 1n;
  }
  return [Number(s), Number(nsec)];
}

function sameTime(a: Timestamp | undefined, b: Timestamp): boolean {
  return !!a && a[0] === b[0] && a[1] === b[1];
}

export async function captureTree(opts: CaptureOptions): Promise<CaptureResult> {
  const selection = await selectionFor(opts);
  const root = selection.root;
  const rootStat = await fs.lstat(root, { bigint: true }).catch((err: NodeJS.ErrnoException) => {
    throw new CaptureError(`cannot read ${root}: ${err.code}`, 'pass an existing directory with --root');
  });
  if (!rootStat.isDirectory()) throw new CaptureError(`${root} is not a directory`, 'pass a directory with --root');
  const progress = opts.progress ?? newCaptureProgress();
  const warn = opts.onWarning ?? (() => undefined);
  const limit = pLimit(opts.concurrency ?? 8);
  const store = opts.store;
  const noatime = process.getuid?.() === 0 ? fsc.O_NOATIME : 0;

  // Chunks handed to the store whose durability we have not awaited yet.
  let unflushed: Promise<unknown>[] = [];
  let unflushedBytes = 0;
  let storeError: unknown = null;
  const hardlinks = new Map<string, Promise<ChunkRef[]>>();
  const deviceIndex = new Map<bigint, number>([[rootStat.dev, 0]]);

  function putChunk(data: Buffer): ChunkId {
    const id = chunkIdOf(data);
    const p = store.put(data, id).catch((err) => {
      storeError ??= err;
    });
    unflushed.push(p);
    unflushedBytes += data.length;
    progress.chunks++;
    return id;
  }

  async function drainIfFull(): Promise<void> {
    if (unflushedBytes < MAX_UNFLUSHED) return;
    const waiting = unflushed;
    unflushed = [];
    unflushedBytes = 0;
    await store.flush();
    await Promise.all(waiting);
    if (storeError) throw storeError;
  }

  async function readChunks(file: string, size: number, sparse: boolean): Promise<ChunkRef[]> {
    let handle: fs.FileHandle;
    try {
      handle = await fs.open(file, fsc.O_RDONLY | fsc.O_NOFOLLOW | noatime);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EPERM' || !noatime) throw err;
      handle = await fs.open(file, fsc.O_RDONLY | fsc.O_NOFOLLOW);
    }
    try {
      return await chunkFile(handle, size, {
        params: opts.chunker,
        sparse,
        onChunk: (data) => putChunk(data),
        onRead: (bytes) => (progress.readBytes += bytes),
        onShrunk: (bytes) => warn(`${file} shrank while being read; captured its first ${bytes} bytes of this extent`),
        afterExtent: drainIfFull,
      });
    } finally {
      await handle.close();
    }
  }

  function readXattrs(file: string): Record<string, string> | undefined {
    let names: string[];
    try {
      names = fsx.llistxattr(file);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOTSUP' || code === 'ENOENT') return undefined;
      throw err;
    }
    if (names.length === 0) return undefined;
    const out: Record<string, string> = {};
    for (const name of names.sort()) {
      try {
        out[name] = fsx.lgetxattr(file, name).toString('base64');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENODATA') throw err;
      }
    }
    return Object.keys(out).length ? out : undefined;
  }

  async function captureDir(dir: string, rel: string, parentTree: ChunkId | undefined, dirDev: bigint = rootStat.dev): Promise<ChunkId> {
    let rootMeta: DirectoryObject['root'];
    if (rel === '') {
      const xattrs = readXattrs(dir);
      rootMeta = { mode: Number(rootStat.mode & 0o7777n), uid: Number(rootStat.uid), gid: Number(rootStat.gid), mtime: timestampOf(rootStat.mtimeNs), ...(xattrs ? { xattrs } : {}) };
    }
    progress.dirs++;
    const parentEntries = new Map<string, Entry>();
    if (parentTree) {
      try {
        for (const e of parseDirectory(await getJsonObject(store, parentTree), rel || '/').entries) parentEntries.set(e.name, e);
      } catch (err) {
        warn(`parent manifest of ${rel || '/'} unreadable (${(err as Error).message}); reading the directory in full`);
      }
    }
    let names: string[];
    try {
      names = (await fs.readdir(dir)).sort();
    } catch (err) {
      warn(`cannot list ${dir}: ${(err as NodeJS.ErrnoException).code}; captured as empty`);
      names = [];
    }
    const entries: Entry[] = [];
    const reused: Array<{ entry: FileEntry }> = [];
    const tasks: Promise<void>[] = [];
    for (const name of names) {
      const full = path.join(dir, name);
      const relPath = `${rel}/${name}`;
      if (selection.excludes(relPath)) {
        progress.skipped++;
        continue;
      }
      let st;
      try {
        st = await fs.lstat(full, { bigint: true });
      } catch (err) {
        warn(`${full} vanished or is unreadable (${(err as NodeJS.ErrnoException).code}); skipped`);
        continue;
      }
      const base = {
        name,
        mode: Number(st.mode & 0o7777n),
        uid: Number(st.uid),
        gid: Number(st.gid),
        mtime: timestampOf(st.mtimeNs),
      };
      const xattrs = readXattrs(full);
      const withXattrs = <T extends Entry>(e: T): T => (xattrs ? { ...e, xattrs } : e);
      if (st.isDirectory()) {
        const prev = parentEntries.get(name);
        const crosses = st.dev !== dirDev;
        if (crosses && !selection.entersMount(relPath)) {
          // A mount point: keep the directory, not the other file system's content.
          const empty = await putObject(store, serializeDirectory([]), opts.chunker);
          entries.push(withXattrs({ ...base, type: 'dir', tree: empty }));
          continue;
        }
        if (crosses && !deviceIndex.has(st.dev)) deviceIndex.set(st.dev, deviceIndex.size);
        const entry = withXattrs({ ...base, type: 'dir' as const, tree: '' });
        entries.push(entry);
        tasks.push(
          captureDir(full, relPath, prev?.type === 'dir' ? prev.tree : undefined, st.dev).then((tree) => {
            entry.tree = tree;
          }),
        );
      } else if (st.isFile()) {
        progress.files++;
        progress.bytes += Number(st.size);
        const size = Number(st.size);
        const entry: FileEntry = withXattrs({
          ...base,
          type: 'file' as const,
          size,
          chunks: [],
          ino: st.ino.toString(),
          ctime: timestampOf(st.ctimeNs),
        });
        if (st.nlink > 1n) entry.h = `${deviceIndex.get(st.dev) ?? 0}:${st.ino}`;
        entries.push(entry);
        const prev = parentEntries.get(name);
        if (
          prev?.type === 'file' &&
          prev.size === size &&
          prev.ino === entry.ino &&
          sameTime(prev.ctime, entry.ctime!) &&
          sameTime(prev.mtime, entry.mtime)
        ) {
          entry.chunks = prev.chunks;
          reused.push({ entry });
          continue;
        }
        const sparse = st.blocks * 512n < st.size;
        const read = () => limit(() => readChunks(full, size, sparse));
        const key = entry.h;
        let chunks: Promise<ChunkRef[]>;
        if (key) {
          chunks = hardlinks.get(key) ?? read();
          hardlinks.set(key, chunks);
        } else {
          chunks = read();
        }
        tasks.push(
          chunks.then(
            (refs) => {
              entry.chunks = refs;
            },
            (err: NodeJS.ErrnoException) => {
              if (err.code === 'ENOENT' || err.code === 'EACCES' || err.code === 'ELOOP') {
                warn(`${full} unreadable (${err.code}); captured as an empty file`);
                entry.size = 0;
                return;
              }
              throw err;
            },
          ),
        );
      } else if (st.isSymbolicLink()) {
        progress.others++;
        entries.push(withXattrs({ ...base, type: 'symlink' as const, target: await fs.readlink(full) }));
      } else if (st.isCharacterDevice() || st.isBlockDevice()) {
        progress.others++;
        entries.push(withXattrs({ ...base, type: st.isCharacterDevice() ? ('char' as const) : ('block' as const), rdev: splitDev(st.rdev) }));
      } else if (st.isFIFO()) {
        progress.others++;
        entries.push(withXattrs({ ...base, type: 'fifo' as const }));
      } else {
        warn(`${full} is a socket; skipped`);
        progress.skipped++;
      }
    }
    if (reused.length) {
      const ids = reused.flatMap(({ entry }) => entry.chunks.map((c) => c[2]));
      const present = await store.hasMany(ids);
      const missing = new Set(ids.filter((_, i) => !present[i]));
      for (const { entry } of reused) {
        if (entry.chunks.some((c) => missing.has(c[2]))) {
          const full = path.join(dir, entry.name);
          tasks.push(
            limit(() => readChunks(full, entry.size, false)).then((refs) => {
              entry.chunks = refs;
            }),
          );
        } else {
          progress.reusedFiles++;
        }
      }
    }
    await Promise.all(tasks);
    return putObject(store, serializeDirectory(entries, rootMeta), opts.chunker);
  }

  const tree = await captureDir(root, '', opts.parentTree);
  await store.flush();
  await Promise.all(unflushed);
  if (storeError) throw storeError;
  return { tree, progress };
}

async function selectionFor(opts: CaptureOptions): Promise<ImageSelection> {
  if (!opts.selection) return imageSelection(opts);
  if (opts.selection.root !== path.resolve(opts.root)) throw new CaptureError(`the image selection is for ${opts.selection.root}, not ${path.resolve(opts.root)}`);
  return opts.selection;
}

/** glibc's major/minor split of a 64-bit dev_t. */
export function splitDev(rdev: bigint): [number, number] {
  return [Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn)), Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn & 0xffffffffn))];
}
