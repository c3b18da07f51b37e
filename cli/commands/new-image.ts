/** new-image: capture a tree into a new image of a local store, with its disk layout. */
import type { CAC } from 'cac';
import { runCapture } from '../capture-run.ts';
import { ensureLayout } from '../layout-run.ts';
import { splitList, withStoreArg } from '../store-arg.ts';
import { UsageError } from '../errors.ts';
import { getImage } from '../../core/tree/images.ts';
import { RevisionRefusedError } from '../../core/store/errors.ts';

interface NewImageOptions {
  store?: string;
  image?: string;
  disklayout?: string;
  root: string;
  excludePaths?: string;
  excludeDevices?: string;
  note?: string;
  init?: boolean;
}

export function register(cli: CAC): void {
  cli
    .command('new-image', 'Capture a tree (default /) into a new image')
    .option('--store <dir>', 'Local image store directory')
    .option('--init', 'Create the store if it does not exist')
    .option('--image <name>', 'Image name')
    .option('--disklayout <name>', 'Disk layout name: captured from the disks behind --root, or reused when it exists')
    .option('--root <dir>', 'Tree to capture: / on a golden node, or a chroot / mounted disk', { default: '/' })
    .option('--exclude-paths <globs>', 'Comma-separated paths or globs to leave out, e.g. /scratch,/var/cache/*')
    .option('--exclude-devices <disks>', 'Comma-separated disks to leave out of the layout, e.g. /dev/sdb')
    .option('--note <text>', 'Note stored with the revision')
    .action(async (o: NewImageOptions) => {
      if (!o.image) throw new UsageError('--image is required', 'name the image, e.g. --image node');
      await withStoreArg(
        o.store,
        async (store) => {
          // Checked before the layout capture, so a taken name costs nothing.
          if (await getImage(store, o.image!)) throw new RevisionRefusedError(`image ${o.image} already exists`, `use update-filesystem --image ${o.image} to add a revision`);
          const layout = o.disklayout ? await ensureLayout({ store, name: String(o.disklayout), root: o.root, excludeDevices: splitList(o.excludeDevices) }) : undefined;
          await runCapture({ store, image: o.image!, root: o.root, exclude: splitList(o.excludePaths), create: true, note: o.note, layout: layout?.name });
        },
        { create: !!o.init },
      );
    });
}
