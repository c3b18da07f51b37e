/**
 * A quick stat-only walk that counts what a capture will read (regular files and their
 * bytes), with the capture's own rules: exclusions, live-node excludes, and mounts entered
 * only when included. It runs beside the capture so the progress line gets a total (and
 * an ETA) as soon as the count is done, without delaying the capture's start.
 */
import { lstat, readdir } from 'node:fs/promises';
import path from 'node:path';
import pLimit from 'p-limit';
import { ALWAYS_EXCLUDED, excludeMatcher, LIVE_NODE_EXCLUDES } from './capture.ts';

export interface TreeCount {
  files: number;
  bytes: number;
}

export async function countTree(opts: { root: string; exclude?: string[]; includeMounts?: string[]; liveNode?: boolean }): Promise<TreeCount> {
  const root = path.resolve(opts.root);
  const rootDev = (await lstat(root)).dev;
  const patterns = [...(opts.exclude ?? []), ...ALWAYS_EXCLUDED];
  if (opts.liveNode ?? root === '/') patterns.push(...LIVE_NODE_EXCLUDES);
  const isExcluded = excludeMatcher(patterns);
  const included = new Set(opts.includeMounts ?? []);
  const limit = pLimit(16);
  const count: TreeCount = { files: 0, bytes: 0 };
  async function walk(dir: string, rel: string, dev: number): Promise<void> {
    const names = await limit(() => readdir(dir)).catch(() => [] as string[]);
    await Promise.all(
      names.map(async (name) => {
        const relPath = `${rel}/${name}`;
        if (isExcluded(relPath)) return;
        const st = await limit(() => lstat(path.join(dir, name))).catch(() => null);
        if (!st) return;
        if (st.isDirectory()) {
          if (st.dev !== dev && !included.has(relPath)) return;
          await walk(path.join(dir, name), relPath, st.dev);
        } else if (st.isFile()) {
          count.files++;
          count.bytes += st.size;
        }
      }),
    );
  }
  await walk(root, '', rootDev);
  return count;
}
