/**
 * Node-made variants of tree files: a file the deploy itself makes anew on the node after
 * the sync (the initramfs the image's own tool builds for the node's devices, GRUB's files),
 * which a re-deploy keeps instead of writing the image's version back and making it again.
 *
 * A variant names the tree file it was made over (`tree`: a digest of the entry's size and
 * chunk list, treeFileDigest) and the node's file (`sha256` of its content). The sync keeps
 * the node's file as it is (content and metadata) only when both still hold: the tree's file
 * is the one the variant was made over, and the node's file is byte for byte the one made
 * (read through TargetRoot, never through a symlink). Anything else: the tree's file is
 * written as usual, and the caller, told which variants were kept, makes the rest again.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { constants as fsc } from 'node:fs';
import type { TargetRoot } from './beneath.ts';
import type { FileEntry } from './manifest.ts';

export interface Variant {
  /** treeFileDigest of the tree's file it was made over. */
  tree: string;
  /** sha256 (hex) of the node's file. */
  sha256: string;
}

/** A digest of a tree file's content as the tree names it (size and chunk list), hex. */
export const treeFileDigest = (entry: Pick<FileEntry, 'size' | 'chunks'>): string => createHash('sha256').update(JSON.stringify([entry.size, entry.chunks])).digest('hex');

/** sha256 (hex) of the regular file `rel` beneath `root` (not through a symlink), or null when it is not one. */
export function fileSha256(root: TargetRoot, rel: string): string | null {
  let fd: number;
  try {
    fd = root.open(rel, fsc.O_RDONLY | fsc.O_NONBLOCK);
  } catch {
    return null;
  }
  try {
    if (!fs.fstatSync(fd).isFile()) return null;
    const hash = createHash('sha256');
    const buf = Buffer.allocUnsafe(1 << 20);
    for (let n; (n = fs.readSync(fd, buf, 0, buf.length, null)) > 0; ) hash.update(buf.subarray(0, n));
    return hash.digest('hex');
  } finally {
    fs.closeSync(fd);
  }
}

/** Whether the node's file at `rel` is a variant to keep over the tree's `entry` (see the module comment); a kept one is added to `kept`. */
export function keepsVariant(variants: ReadonlyMap<string, Variant> | undefined, root: TargetRoot, rel: string, entry: FileEntry, kept: string[]): boolean {
  const v = variants?.get(rel);
  if (!v || entry.h !== undefined || v.tree !== treeFileDigest(entry) || fileSha256(root, rel) !== v.sha256) return false;
  kept.push(rel);
  return true;
}
