/** image-export: restore a revision of an image into a directory. */
import type { CAC } from 'cac';
import { mkdir, readdir } from 'node:fs/promises';
import { ImageNotFoundError } from '../../core/store/errors.ts';
import { UsageError } from '../errors.ts';
import { formatBytes, ProgressReporter } from '../progress.ts';
import { backendOptions, withBackend } from '../backend.ts';

/** Creates the target (with its parents); refuses one that holds anything but a fresh file system's lost+found. */
async function prepareTarget(target: string): Promise<void> {
  await mkdir(target, { recursive: true });
  const entries = (await readdir(target)).filter((e) => e !== 'lost+found');
  if (entries.length) throw new UsageError(`--target ${target} is not empty (${entries.slice(0, 3).join(', ')}${entries.length > 3 ? ', ...' : ''})`, 'give a new or empty directory');
}

interface ExportOptions {
  store?: string;
  image?: string;
  revision?: string;
  target?: string;
  strict?: boolean;
}

export function register(cli: CAC): void {
  backendOptions(cli.command('image-export', 'Restore a revision of an image into a directory'))
    .option('--image <name>', 'Image name')
    .option('--revision <n>', 'Revision number (default: the latest)')
    .option('--target <dir>', 'Directory to restore into: created if missing; must be empty (or a fresh file system)')
    .option('--strict', 'Fail on any metadata that cannot be restored')
    .action(async (o: ExportOptions) => {
      const { newRestoreProgress, restoreTree } = await import('../../core/tree/restore.ts');
      if (!o.image || !o.target) throw new UsageError('--image and --target are required', 'e.g. image-export --image node --target /mnt/node');
      await withBackend(o, async (backend) => {
        const image = await backend.getImage(o.image!);
        if (!image) throw new ImageNotFoundError(`no image named ${o.image}`, 'list images with image-list');
        const wanted = o.revision === undefined ? image.revisions.at(-1) : image.revisions.find((r) => String(r.n) === String(o.revision));
        if (!wanted) throw new UsageError(`image ${o.image} has no revision ${o.revision}`, `revisions: ${image.revisions.map((r) => r.n).join(', ')}`);
        await prepareTarget(o.target!);
        const progress = newRestoreProgress();
        const reporter = new ProgressReporter('restore', () => ({ files: progress.files, bytes: progress.bytes, totalFiles: progress.totalFiles, totalBytes: progress.totalBytes }));
        const started = performance.now();
        try {
          await restoreTree({ reader: backend.chunks, tree: wanted.tree, target: o.target!, strict: o.strict, progress, onWarning: (m) => process.stderr.write(`warning: ${m}\n`) });
        } finally {
          reporter.stop();
        }
        const secs = (performance.now() - started) / 1000;
        process.stdout.write(`restored ${o.image} revision ${wanted.n} into ${o.target}: ${progress.entries} entries, ${formatBytes(progress.bytes)} in ${secs.toFixed(1)}s (${formatBytes(progress.bytes / secs)}/s)\n`);
      });
    });
}
