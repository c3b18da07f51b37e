/**
 * A quick stat-only walk that counts what a capture will read (regular files and their
 * bytes). It takes the capture's own image selection (select.ts: exclusions, live-node
 * excludes and swap files, mounts entered only when included), built once and handed to
 * both, so the total cannot disagree with the capture. It runs beside the capture so the
 * progress line gets a total (and an ETA) as soon as the count is done, without delaying
 * the capture's start.
 */
import { lstat, readdir } from 'node:fs/promises';
import path from 'node:path';
import pLimit from 'p-limit';
import type { ImageSelection } from './select.ts';

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
  const limit = pLimit(16);
  const count: TreeCount = { files: 0, bytes: 0 };
  async function walk(dir: string, rel: string, dev: number): Promise<void> {
    const names = await limit(() => readdir(dir)).catch(() => [] as string[]);
    await Promise.all(
      names.map(async (name) => {
        const relPath = `${rel}/${name}`;
        if (selection.excludes(relPath)) return;
        const st = await limit(() => lstat(path.join(dir, name))).catch(() => null);
        if (!st) return;
        if (st.isDirectory()) {
          if (st.dev !== dev && !selection.entersMount(relPath)) return;
          await walk(path.join(dir, name), relPath, st.dev);
        } else if (st.isFile()) {
          count.files++;
          count.bytes += st.size;
        }
      }),
    );
  }
  await walk(selection.root, '', rootDev);
  return count;
}
