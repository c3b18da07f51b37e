/**
 * The tree manifest: one JSON object per directory, stored as a content-addressed object
 * (core/store/objects.ts), listing its entries sorted by name; a subdirectory entry holds
 * the id of its own directory object. Like a Merkle tree, an unchanged directory
 * serialises to the same bytes, so a new revision re-uses its object at no cost.
 *
 * Names and symlink targets are bytes on disk, carried in the lossless escaped form of
 * file-names.ts (valid UTF-8 as itself, other bytes as U+DC80-U+DCFF). Format 1 objects
 * hold only UTF-8 names; a directory with a name or target that is not UTF-8 is written
 * as format 2 (the same fields), so a reader that predates escaped names refuses it
 * instead of writing other names, and every directory without one keeps its old bytes
 * (and id). Both formats are read.
 *
 * Every manifest read from a store is untrusted: `parseDirectory` checks every field,
 * rejects names that are empty, `.`, `..` or contain `/` or NUL (so no entry can name a
 * path outside its directory, absolute or relative), names that are not the canonical
 * escaped form of their bytes (a lone "\ud800" would land on disk as the bytes of
 * "\ufffd"), two entries with the same bytes, chunk lists that overlap or run past the
 * file size, unknown types, and inode flags (`iflags`) other than known letters in order.
 */
import { isChunkId, type ChunkId } from '../store/chunk-id.ts';
import { ClonerError } from '../errors.ts';
import { encodeName, hasEscapedBytes, isCanonicalName } from './file-names.ts';

/** The format of a directory whose names and targets are all UTF-8. */
export const MANIFEST_VERSION = 1;
/** The format of a directory with a name or symlink target that is not UTF-8 (escaped bytes). */
export const MANIFEST_VERSION_BYTES = 2;

/** Seconds and nanoseconds, both integers. */
export type Timestamp = [number, number];

/** One stored piece of a regular file: [offset in the file, length, chunk id]. */
export type ChunkRef = [number, number, ChunkId];

interface EntryBase {
  name: string;
  /** Permission bits including setuid, setgid and sticky (mode & 0o7777). */
  mode: number;
  uid: number;
  gid: number;
  mtime: Timestamp;
  /** Extended attributes (security.capability, security.selinux, system.posix_acl_*, user.*, btrfs.compression), base64. */
  xattrs?: Record<string, string>;
}

export interface FileEntry extends EntryBase {
  type: 'file';
  size: number;
  /** Data pieces in file order; the gaps between them are holes. */
  chunks: ChunkRef[];
  /** Hardlink group: every entry with the same key is one inode. */
  h?: string;
  /** Inode number and ctime at capture, for the unchanged-file test of the next capture. */
  ino?: string;
  ctime?: Timestamp;
  /** Inode flags as lsattr letters in INODE_FLAG_LETTERS order (inode-flags.ts). */
  iflags?: string;
}

export interface DirEntry extends EntryBase {
  type: 'dir';
  tree: ChunkId;
  iflags?: string;
  /** A btrfs subvolume (subvolumes.ts). */
  subvol?: true;
}

export interface SymlinkEntry extends EntryBase {
  type: 'symlink';
  target: string;
}

export interface DeviceEntry extends EntryBase {
  type: 'char' | 'block';
  rdev: [number, number];
}

export interface FifoEntry extends EntryBase {
  type: 'fifo';
}

export type Entry = FileEntry | DirEntry | SymlinkEntry | DeviceEntry | FifoEntry;

export interface DirectoryObject {
  v: number;
  /** Only in a tree's top object: the root directory's own metadata. */
  root?: Omit<DirEntry, 'name' | 'type' | 'tree'>;
  /**
   * Only in a tree's top object: the capture that wrote it read every file's and
   * directory's inode flags (captures since flags are kept), so the next capture may take an
   * unchanged file's flags and xattrs from it. Readers that predate it ignore it.
   */
  flagsRead?: true;
  entries: Entry[];
}

export class ManifestError extends ClonerError {
  override readonly code = 'MANIFEST_INVALID';
  constructor(message: string) {
    super(message, 'the image manifest is damaged or was not written by cloner; re-capture the image');
  }
}

/** The inode flags a manifest may carry, in the order it writes them (inode-flags.ts says which and why). */
export const INODE_FLAG_LETTERS = 'sucSiadAjtDTCP';
const IFLAGS = new RegExp(`^${[...INODE_FLAG_LETTERS].map((c) => `${c}?`).join('')}$`);

const MAX_NAME_BYTES = 255;
const MAX_FILE_SIZE = 2 ** 53 - 1;
const MAX_XATTR_NAME = 255;
const MAX_XATTR_BYTES = 64 * 1024;

/** A name one directory entry may have: its bytes are one path component (1-255 bytes, not . or .., no / or NUL). */
export function isSafeName(name: unknown, allowEscaped = true): name is string {
  if (typeof name !== 'string' || name.length === 0 || name === '.' || name === '..' || name.includes('/') || name.includes('\0')) return false;
  // Most names are UTF-8: counted without making their bytes.
  if (name.isWellFormed()) return Buffer.byteLength(name, 'utf8') <= MAX_NAME_BYTES;
  return allowEscaped && isCanonicalName(name) && encodeName(name).length <= MAX_NAME_BYTES;
}

function fail(where: string, what: string): never {
  throw new ManifestError(`manifest ${where}: ${what}`);
}

function isUint(v: unknown, max = 0xffffffff): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= max;
}

function checkTimestamp(v: unknown, where: string, field: string): void {
  if (!Array.isArray(v) || v.length !== 2 || !Number.isInteger(v[0]) || !isUint(v[1], 999_999_999)) {
    fail(where, `${field} must be [seconds, nanoseconds]`);
  }
}

/** Parses and checks one directory object; `where` names it in errors (its path). */
export function parseDirectory(value: unknown, where: string): DirectoryObject {
  const dir = value as DirectoryObject;
  if (typeof dir !== 'object' || dir === null || (dir.v !== MANIFEST_VERSION && dir.v !== MANIFEST_VERSION_BYTES) || !Array.isArray(dir.entries)) {
    fail(where, `not a version ${MANIFEST_VERSION} or ${MANIFEST_VERSION_BYTES} directory object`);
  }
  const escaped = dir.v === MANIFEST_VERSION_BYTES;
  if (dir.root !== undefined) checkRootMeta(dir.root, where);
  if (dir.flagsRead !== undefined && (dir.flagsRead !== true || dir.root === undefined)) fail(where, 'flagsRead must be true, in a top object');
  // Two entries must never share a path on disk. A name is the canonical form of its bytes
  // (isSafeName), so distinct names are distinct bytes: the names themselves are the keys.
  const names = new Set<string>();
  for (const e of dir.entries) {
    if (typeof e !== 'object' || e === null) fail(where, 'an entry is not an object');
    if (!isSafeName(e.name, escaped)) {
      const name: unknown = (e as { name: unknown }).name;
      const why = typeof name === 'string' && !name.isWellFormed() ? 'not the escaped form of its bytes' : 'path traversal';
      fail(where, `unsafe entry name ${JSON.stringify(e.name)?.slice(0, 100)} (${why})`);
    }
    const at = `${where === '/' ? '' : where}/${e.name}`;
    if (names.has(e.name)) fail(at, 'duplicate entry (two entries with the same name on disk)');
    names.add(e.name);
    if (!isUint(e.mode, 0o7777)) fail(at, 'mode must be an integer in 0..0o7777');
    if (!isUint(e.uid) || !isUint(e.gid)) fail(at, 'uid and gid must be integers in 0..2^32-1');
    checkTimestamp(e.mtime, at, 'mtime');
    if (e.xattrs !== undefined) {
      if (typeof e.xattrs !== 'object' || e.xattrs === null || Array.isArray(e.xattrs)) fail(at, 'xattrs must be an object');
      for (const [k, v] of Object.entries(e.xattrs)) {
        if (k.length === 0 || k.length > MAX_XATTR_NAME || k.includes('\0') || !/^(security|system|trusted|user|btrfs)\./.test(k)) {
          fail(at, `bad xattr name ${JSON.stringify(k).slice(0, 80)}`);
        }
        if (typeof v !== 'string' || v.length > (MAX_XATTR_BYTES * 4) / 3 + 4) fail(at, `bad xattr value for ${k}`);
      }
    }
    const iflags = (e as { iflags?: unknown }).iflags;
    if (iflags !== undefined && (typeof iflags !== 'string' || iflags === '' || !IFLAGS.test(iflags) || (e.type !== 'file' && e.type !== 'dir'))) fail(at, `iflags must be inode flag letters in the order ${INODE_FLAG_LETTERS}, on a file or directory`);
    switch (e.type) {
      case 'file':
        checkFile(e, at);
        break;
      case 'dir':
        if (!isChunkId(e.tree)) fail(at, 'directory without a valid tree id');
        if (e.subvol !== undefined && e.subvol !== true) fail(at, 'subvol must be true when present');
        break;
      case 'symlink':
        if (typeof e.target !== 'string' || e.target.length === 0 || e.target.includes('\0') || !(escaped ? isCanonicalName(e.target) : e.target.isWellFormed()) || encodeName(e.target).length > 4095) {
          fail(at, 'symlink target must be a non-empty string without NUL, the escaped form of at most 4095 bytes');
        }
        break;
      case 'char':
      case 'block':
        if (!Array.isArray(e.rdev) || e.rdev.length !== 2 || !isUint(e.rdev[0]) || !isUint(e.rdev[1])) fail(at, 'rdev must be [major, minor]');
        break;
      case 'fifo':
        break;
      default:
        fail(at, `unknown entry type ${JSON.stringify((e as { type: unknown }).type)}`);
    }
  }
  return dir;
}

function checkRootMeta(m: NonNullable<DirectoryObject['root']>, where: string): void {
  if (typeof m !== 'object' || m === null || !isUint(m.mode, 0o7777) || !isUint(m.uid) || !isUint(m.gid)) fail(where, 'bad root metadata');
  checkTimestamp(m.mtime, where, 'root mtime');
  if (m.xattrs !== undefined && (typeof m.xattrs !== 'object' || m.xattrs === null)) fail(where, 'bad root xattrs');
  for (const [k, v] of Object.entries(m.xattrs ?? {})) {
    if (!/^(security|system|trusted|user|btrfs)\./.test(k) || typeof v !== 'string') fail(where, 'bad root xattr');
  }
}

function checkFile(e: FileEntry, at: string): void {
  if (!isUint(e.size, MAX_FILE_SIZE)) fail(at, 'size must be a non-negative integer');
  if (!Array.isArray(e.chunks)) fail(at, 'chunks must be a list');
  let end = 0;
  for (const c of e.chunks) {
    if (!Array.isArray(c) || c.length !== 3 || !isUint(c[0], MAX_FILE_SIZE) || !isUint(c[1], 64 * 1024 * 1024) || c[1] === 0 || !isChunkId(c[2])) {
      fail(at, 'a chunk must be [offset, length > 0, chunk id]');
    }
    if (c[0] < end) fail(at, 'chunks overlap or are out of order');
    end = c[0] + c[1];
  }
  if (end > e.size) fail(at, `chunks run to ${end}, past the file size ${e.size}`);
  if (e.h !== undefined && (typeof e.h !== 'string' || e.h.length === 0 || e.h.length > 64)) fail(at, 'bad hardlink group');
  if (e.ino !== undefined && typeof e.ino !== 'string') fail(at, 'bad inode');
  if (e.ctime !== undefined) checkTimestamp(e.ctime, at, 'ctime');
}

/** Canonical serialisation: entries sorted by name, so equal trees give equal bytes; format 2 only when a name or target is not UTF-8. A top object (with `root`) says its capture read inode flags. */
export function serializeDirectory(entries: Entry[], root?: DirectoryObject['root']): Buffer {
  const sorted = [...entries].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const v = sorted.some((e) => hasEscapedBytes(e.name) || (e.type === 'symlink' && hasEscapedBytes(e.target))) ? MANIFEST_VERSION_BYTES : MANIFEST_VERSION;
  const dir: DirectoryObject = root ? { v, root, flagsRead: true, entries: sorted } : { v, entries: sorted };
  return Buffer.from(JSON.stringify(dir));
}

/** Equal as manifest values: the same keys (undefined ones left out, as JSON leaves them) and equal values; arrays in order. */
function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null || Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) return a.length === (b as unknown[]).length && a.every((v, i) => sameValue(v, (b as unknown[])[i]));
  const x = a as Record<string, unknown>;
  const y = b as Record<string, unknown>;
  const keys = Object.keys(x).filter((k) => x[k] !== undefined);
  return keys.length === Object.keys(y).filter((k) => y[k] !== undefined).length && keys.every((k) => sameValue(x[k], y[k]));
}

/**
 * True when `entries` (in name order, as a capture lists them) are `previous` (a parsed
 * directory's, in its order) field for field: the directory is its parent revision's, whose
 * object may then be kept as it is instead of serialised and stored again.
 */
export function sameEntries(entries: readonly Entry[], previous: Iterable<Entry>): boolean {
  let i = 0;
  for (const p of previous) if (i >= entries.length || !sameValue(entries[i++], p)) return false;
  return i === entries.length;
}
