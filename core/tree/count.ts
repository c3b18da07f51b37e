/**
 * A quick stat-only walk that counts what a capture will read (regular files and their
 * bytes). It takes the capture's own image selection (select.ts: exclusions, live-node
 * excludes and swap files, mounts entered only when included), built once and handed to
 * both, so the total cannot disagree with the capture. It runs beside the capture so the
 * progress line gets a total (and an ETA) as soon as the count is done, without delaying
 * the capture's start.
 */
import { constants } from 'node:fs';
import { lstat, open, readdir } from 'node:fs/promises';
import { decodeName } from './file-names.ts';
import type { ImageSelection } from './select.ts';

/**
 * lstat calls out at once, within one directory. Directories are walked one at a time,
 * depth first: the walk used to start every directory's lstats at once (16 running, the
 * rest queued), which held the whole tree's queue in memory while it ran (~150 MB of heap
 * on bench:peers' 8x tree).
 */
const LSTATS_AT_ONCE = 64;

export interface TreeCount {
  /** Regular files, every hardlinked path counted (as the capture counts them). */
  files: number;
  /** Their logical sizes, in bytes (holes included). */
  bytes: number;
}

/**
 * Counts the regular files under `selection.root` that a capture with the same selection
 * stores, and their bytes. Unreadable directories and entries count as nothing (the
 * capture warns about them); throws only when the root cannot be stat'ed.
 */
export async function countTree(selection: ImageSelection): Promise<TreeCount> {
  const rootDev = (await lstat(selection.root)).dev;
  const count: TreeCount = { files: 0, bytes: 0 };
  // Names as bytes (escaped as the capture keeps them), so names that are not UTF-8 count too.
  async function walk(dir: Buffer, rel: string, dev: number): Promise<void> {
    // Past 2048 bytes of path (PATH_MAX is 4096), children are named through the directory's fd, as capture does.
    if (dir.length > 2048) {
      const handle = await open(dir, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW).catch(() => null);
      if (!handle) return;
      try {
        return await walk(Buffer.from(`/proc/self/fd/${handle.fd}`), rel, dev);
      } finally {
        await handle.close();
      }
    }
    const names = await readdir(dir, { encoding: 'buffer' }).catch(() => [] as Buffer[]);
    const subdirs: Array<[Buffer, string, number]> = [];
    for (let i = 0; i < names.length; i += LSTATS_AT_ONCE) {
      await Promise.all(
        names.slice(i, i + LSTATS_AT_ONCE).map(async (bytes) => {
          const relPath = `${rel}/${decodeName(bytes)}`;
          if (selection.excludes(relPath)) return;
          const full = Buffer.concat([dir, Buffer.from('/'), bytes]);
          const st = await lstat(full).catch(() => null);
          if (!st) return;
          if (st.isDirectory()) {
            if (st.dev === dev || selection.entersMount(relPath)) subdirs.push([full, relPath, st.dev]);
          } else if (st.isFile()) {
            count.files++;
            count.bytes += st.size;
          }
        }),
      );
    }
    for (const [full, relPath, subDev] of subdirs) await walk(full, relPath, subDev);
  }
  await walk(Buffer.from(selection.root), '', rootDev);
  return count;
}
