/** The capture half shared by new-image and update-filesystem: walk, upload, commit. */
import { captureTree, newCaptureProgress } from '../core/tree/capture.ts';
import { commitRevision, getImage, type Revision } from '../core/tree/images.ts';
import type { LocalStore } from '../core/store/local.ts';
import { loadLayout } from '../core/layout/store.ts';
import { formatBytes, ProgressReporter } from './progress.ts';

export interface CaptureRunOptions {
  store: LocalStore;
  image: string;
  root: string;
  exclude: string[];
  create: boolean;
  note?: string;
  /** Disk layout name the revision refers to (kept from the previous revision when absent). */
  layout?: string;
  quiet?: boolean;
}

export async function runCapture(o: CaptureRunOptions): Promise<{ revision: Revision; seconds: number; newBytes: number; logicalBytes: number; files: number }> {
  const previous = o.create ? undefined : (await getImage(o.store, o.image))?.revisions.at(-1);
  // The layout's filesystems (/boot/efi, /home...) are part of the image; other mounts are not.
  const layoutName = o.layout ?? previous?.layout;
  const includeMounts = layoutName ? ((await loadLayout(o.store, layoutName)).layout.filesystems ?? []).flatMap((fs) => (fs.mount ? [fs.mount] : [])) : [];
  const before = await o.store.stats();
  const progress = newCaptureProgress();
  const reporter = new ProgressReporter('capture', () => ({ files: progress.files, bytes: progress.bytes, extra: `${progress.reusedFiles} unchanged` }), { quiet: o.quiet });
  // The guard keeps every chunk this upload relies on from a concurrent GC until the commit.
  const guard = o.store.guard();
  const started = performance.now();
  try {
    const result = await captureTree({
      root: o.root,
      store: o.store,
      chunker: o.store.config.chunker,
      parentTree: previous?.tree,
      exclude: o.exclude,
      includeMounts,
      progress,
      onWarning: (m) => process.stderr.write(`warning: ${m}\n`),
    });
    const revision = await commitRevision(
      o.store,
      o.image,
      { tree: result.tree, note: o.note, layout: o.layout, stats: { files: progress.files, bytes: progress.bytes } },
      { create: o.create },
    );
    const after = await o.store.stats();
    const seconds = (performance.now() - started) / 1000;
    if (!o.quiet) {
      process.stdout.write(
        `image ${o.image} revision ${revision.n}: ${progress.files} files, ${formatBytes(progress.bytes)} in ${seconds.toFixed(1)}s ` +
          `(${formatBytes(progress.bytes / seconds)}/s); new data stored ${formatBytes(after.packBytes - before.packBytes)}\n`,
      );
    }
    return { revision, seconds, newBytes: after.packBytes - before.packBytes, logicalBytes: progress.bytes, files: progress.files };
  } finally {
    guard.release();
    reporter.stop();
  }
}
