/**
 * btrfs subvolumes in a tree. A nested subvolume has its own st_dev but is no mount point:
 * it is part of the file system being captured (select.ts enters it), and its directory
 * entry says `subvol: true`. Restore and sync make such a directory a subvolume again
 * (BTRFS_IOC_SUBVOL_CREATE through fsx) where the target is btrfs, and a plain directory,
 * with a warning, where it is not.
 */
import * as fsSync from 'node:fs';
import { fsx } from '../native/fsx.ts';
import type { TargetRoot } from './beneath.ts';
import { displayName, encodeName } from './file-names.ts';
import type { DirEntry } from './manifest.ts';

/** The inode number of every btrfs subvolume's top directory (BTRFS_FIRST_FREE_OBJECTID). */
export const SUBVOLUME_INO = 256n;

/** Creates the directory `rel` (mode 0700 until the metadata pass), as a subvolume when its entry is one. */
export function makeDirectory(root: TargetRoot, rel: string, entry: Pick<DirEntry, 'subvol'>, warn: (message: string) => void): void {
  if (entry.subvol) {
    const cut = rel.lastIndexOf('/');
    try {
      fsx.subvolCreate(root.dirPath(rel.slice(0, cut)), encodeName(rel.slice(cut + 1)));
      return;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOTTY' && code !== 'EOPNOTSUPP' && code !== 'ENOTSUP' && code !== 'EXDEV') throw err;
      warn(`${displayName(rel)} is a btrfs subvolume in the image, but the target is not btrfs: made a plain directory`);
    }
  }
  fsSync.mkdirSync(root.at(rel), 0o700);
}
