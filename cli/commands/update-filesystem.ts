/** update-filesystem: a new revision of an image; unchanged files are not read again. */
import type { CAC } from 'cac';
import { runCapture } from '../capture-run.ts';
import { splitList } from '../store-arg.ts';
import { backendOptions, withBackend, type BackendArgs } from '../backend.ts';
import { UsageError } from '../errors.ts';

interface UpdateOptions extends BackendArgs {
  image?: string;
  root: string;
  excludePaths?: string;
  note?: string;
}

export function register(cli: CAC): void {
  backendOptions(cli.command('update-filesystem', 'Capture a new revision of an existing image'))
    .option('--image <name>', 'Image name')
    .option('--root <dir>', 'Tree to capture', { default: '/' })
    .option('--exclude-paths <globs>', 'Comma-separated paths or globs to leave out')
    .option('--note <text>', 'Note stored with the revision')
    .action(async (o: UpdateOptions) => {
      if (!o.image) throw new UsageError('--image is required', 'name the image to update, e.g. --image node');
      await withBackend(o, async (backend) => {
        await runCapture({ backend, image: o.image!, root: o.root, exclude: splitList(o.excludePaths), create: false, note: o.note });
      });
    });
}
