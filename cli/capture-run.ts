/** The capture half shared by new-image and update-filesystem: walk, upload what the server lacks, commit. */
import { captureTree, newCaptureProgress } from '../core/tree/capture.ts';
import type { Revision } from '../core/tree/images.ts';
import type { Backend } from './backend.ts';
import { formatBytes, ProgressReporter } from './progress.ts';

export interface CaptureRunOptions {
  backend: Backend;
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
  const { backend } = o;
  const previous = o.create ? undefined : (await backend.getImage(o.image))?.revisions.at(-1);
  // The layout's filesystems (/boot/efi, /home...) are part of the image; other mounts are not.
  const layoutName = o.layout ?? previous?.layout;
  const includeMounts = layoutName ? ((await backend.loadLayout(layoutName)).layout.filesystems ?? []).flatMap((fs) => (fs.mount ? [fs.mount] : [])) : [];
  const before = await backend.bytesMark();
  const progress = newCaptureProgress();
  const reporter = new ProgressReporter('capture', () => ({ files: progress.files, bytes: progress.bytes, extra: `${progress.reusedFiles} unchanged` }), { quiet: o.quiet });
  // The hold keeps every chunk this upload relies on from a concurrent GC until the commit.
  const hold = backend.hold();
  const started = performance.now();
  try {
    const result = await captureTree({
      root: o.root,
      store: backend.chunks,
      chunker: backend.chunker,
      parentTree: previous?.tree,
      exclude: o.exclude,
      includeMounts,
      progress,
      onWarning: (m) => process.stderr.write(`warning: ${m}\n`),
    });
    const revision = await backend.commitRevision(o.image, { tree: result.tree, note: o.note, layout: o.layout, stats: { files: progress.files, bytes: progress.bytes } }, o.create);
    const newBytes = (await backend.bytesMark()) - before;
    const seconds = (performance.now() - started) / 1000;
    if (!o.quiet) {
      process.stdout.write(
        `image ${o.image} revision ${revision.n}: ${progress.files} files, ${formatBytes(progress.bytes)} in ${seconds.toFixed(1)}s ` +
          `(${formatBytes(progress.bytes / seconds)}/s); new data stored ${formatBytes(newBytes)}\n`,
      );
    }
    return { revision, seconds, newBytes, logicalBytes: progress.bytes, files: progress.files };
  } finally {
    hold.release();
    reporter.stop();
  }
}
