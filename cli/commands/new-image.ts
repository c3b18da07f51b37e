/** new-image: capture a tree into a new image of a local store. */
import type { CAC } from 'cac';
import { runCapture } from '../capture-run.ts';
import { openStoreArg, splitList } from '../store-arg.ts';
import { UsageError } from '../errors.ts';

interface NewImageOptions {
  store?: string;
  image?: string;
  root: string;
  excludePaths?: string;
  note?: string;
  init?: boolean;
}

export function register(cli: CAC): void {
  cli
    .command('new-image', 'Capture a tree (default /) into a new image')
    .option('--store <dir>', 'Local image store directory')
    .option('--init', 'Create the store if it does not exist')
    .option('--image <name>', 'Image name')
    .option('--root <dir>', 'Tree to capture: / on a golden node, or a chroot / mounted disk', { default: '/' })
    .option('--exclude-paths <globs>', 'Comma-separated paths or globs to leave out, e.g. /scratch,/var/cache/*')
    .option('--note <text>', 'Note stored with the revision')
    .action(async (o: NewImageOptions) => {
      if (!o.image) throw new UsageError('--image is required', 'name the image, e.g. --image node');
      const store = await openStoreArg(o.store, !!o.init);
      try {
        await runCapture({ store, image: o.image, root: o.root, exclude: splitList(o.excludePaths), create: true, note: o.note });
      } finally {
        await store.close();
      }
    });
}
