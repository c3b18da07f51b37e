/**
 * Inode flags (chattr/lsattr): what an image keeps of them, and how restore and sync set
 * them without tripping over them.
 *
 * Kept: the flags an admin sets and a node's behaviour depends on, the same on ext4, xfs
 * and btrfs where the file system has them: i (immutable), a (append only), d (no dump),
 * A (no atime), S (sync), D (dirsync), s, u, c (compress), C (no copy-on-write), j, t, T,
 * P. Left out: the flags a file system manages itself (e extents, I indexed directory,
 * N inline data, E encrypted, V verity, F casefold, x DAX). A manifest holds them as
 * lsattr letters in the fixed order of FLAGS below (`iflags: "ia"`).
 *
 * Restore sets them last, after content, owner, mode, xattrs and times (an immutable file
 * takes none of those). Sync first clears i and a on every entry of the node that has them
 * (an immutable or append-only file cannot be replaced, deleted or given new metadata, nor
 * can an entry be added to or removed from such a directory), and at the end sets the
 * image's flags together with the i and a the node had, so an admin's pin survives.
 */
import * as fsSync from 'node:fs';
import { fsx } from '../native/fsx.ts';
import { displayName } from './file-names.ts';
import type { TargetRoot } from './beneath.ts';
import { INODE_FLAG_LETTERS, type Entry } from './manifest.ts';

/** lsattr letter -> FS_*_FL bit, in the order a manifest writes them. */
export const FLAGS: ReadonlyArray<readonly [string, number]> = [
  ['s', 0x1], ['u', 0x2], ['c', 0x4], ['S', 0x8], ['i', 0x10], ['a', 0x20], ['d', 0x40], ['A', 0x80],
  ['j', 0x4000], ['t', 0x8000], ['D', 0x10000], ['T', 0x20000], ['C', 0x800000], ['P', 0x20000000],
];
if (FLAGS.map(([letter]) => letter).join('') !== INODE_FLAG_LETTERS) throw new Error('inode-flags: FLAGS and INODE_FLAG_LETTERS disagree');
const KEPT = FLAGS.reduce((m, [, bit]) => m | bit, 0);
/** Flags that stop a file or directory from being changed: immutable and append only. */
export const BLOCKING = 0x10 | 0x20;

export function flagsText(bits: number): string {
  return FLAGS.filter(([, bit]) => bits & bit).map(([letter]) => letter).join('');
}

export function flagsBits(text: string): number {
  return FLAGS.reduce((m, [letter, bit]) => (text.includes(letter) ? m | bit : m), 0);
}

/** True when `text` is a canonical flags string (known letters, each once, in FLAGS order). */
export function isFlagsText(text: unknown): text is string {
  return typeof text === 'string' && text.length > 0 && flagsText(flagsBits(text)) === text;
}

/** The kept flags of a file or directory as letters, or undefined (none, or no flags on this file system). */
export function readFlags(path: Buffer): string | undefined {
  try {
    return flagsText(fsx.lgetflags(path) & KEPT) || undefined;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // ENOTTY/EOPNOTSUPP: a file system without flags (tmpfs before 6.0, vfat); the rest: gone or unreadable.
    if (code === 'ENOTTY' || code === 'EOPNOTSUPP' || code === 'ENOTSUP' || code === 'EINVAL' || code === 'ENOENT' || code === 'EACCES' || code === 'EPERM' || code === 'ELOOP' || code === 'ENXIO') return undefined;
    throw err;
  }
}

/** Opens rel for its flags: a file or directory, by an O_PATH fd beneath the root. */
function withFd<T>(root: TargetRoot, rel: string, work: (fd: number) => T): T {
  const fd = root.open(rel, fsx.O_PATH);
  try {
    return work(fd);
  } finally {
    fsSync.closeSync(fd);
  }
}

/**
 * Clears i and a on the given entries of the node (those found with them), deepest last
 * so a directory is opened before what it holds; returns rel -> the blocking bits it had.
 */
export function clearBlockingFlags(root: TargetRoot, rels: string[], warn: (message: string) => void, imageFlags: (rel: string) => string | undefined = () => undefined): Map<string, number> {
  const had = new Map<string, number>();
  for (const rel of rels) {
    root.trim();
    try {
      withFd(root, rel, (fd) => {
        const bits = fsx.fdGetFlags(fd);
        if (!(bits & BLOCKING)) return;
        fsx.fdSetFlags(fd, bits & ~BLOCKING);
        had.set(rel, bits & BLOCKING);
        // Worth a word only where the image does not set them itself (an admin's pin on the node).
        const extra = bits & BLOCKING & ~flagsBits(imageFlags(rel) ?? '');
        if (extra) warn(`${displayName(rel || '/')} has inode flags ${flagsText(extra)} on the node that the image does not: cleared to sync it, set again after`);
      });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOTTY' && code !== 'EOPNOTSUPP' && code !== 'ENOTSUP' && code !== 'ENOENT') warn(`cannot clear the inode flags of ${displayName(rel || '/')}: ${code ?? (err as Error).message}`);
    }
  }
  return had;
}

/**
 * Sets the image's flags (and the node's blocking ones in `keep`) on every file and
 * directory, deepest first; best effort: a flag the file system lacks is a warning.
 */
export function applyTreeFlags(items: Array<{ rel: string; depth: number; entry: Entry }>, root: TargetRoot, warn: (message: string) => void, keep: Map<string, number> = new Map()): void {
  // Only the items with flags to set, found in one pass: no map of every path (196k at 8x).
  const flagged = items.filter((i) => (i.entry.type === 'file' || i.entry.type === 'dir') && (i.entry.iflags || keep.has(i.rel)));
  // Deepest first; a path listed twice (not in a tree from loadTree) is set once.
  const seen = new Set<string>();
  const ordered = flagged.filter((i) => !seen.has(i.rel) && seen.add(i.rel)).sort((a, b) => b.rel.split('/').length - a.rel.split('/').length);
  for (const { rel, entry } of ordered) {
    if (entry.type !== 'file' && entry.type !== 'dir') continue;
    const want = flagsBits(entry.iflags ?? '') | (keep.get(rel) ?? 0);
    root.trim();
    try {
      withFd(root, rel, (fd) => {
        const st = fsSync.fstatSync(fd);
        if (st.isDirectory() !== (entry.type === 'dir') || (entry.type === 'file' && !st.isFile())) throw Object.assign(new Error('not the entry this restore made'), { code: 'ESTALE' });
        const bits = fsx.fdGetFlags(fd);
        if ((bits & KEPT) !== want) fsx.fdSetFlags(fd, (bits & ~KEPT) | want);
      });
    } catch (err) {
      warn(`cannot set inode flags ${flagsText(want)} on ${displayName(rel || '/')}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  }
}

/** Sets the node's blocking flags back where a sync stopped before its end (best effort). */
export function reapplyBlockingFlags(root: TargetRoot, had: Map<string, number>, warn: (message: string) => void): void {
  for (const [rel, bits] of [...had].sort((a, b) => b[0].split('/').length - a[0].split('/').length)) {
    root.trim();
    try {
      withFd(root, rel, (fd) => fsx.fdSetFlags(fd, fsx.fdGetFlags(fd) | bits));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') warn(`cannot set inode flags ${flagsText(bits)} on ${displayName(rel || '/')} again: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  }
}
