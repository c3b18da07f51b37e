/** new-image: capture a tree into a new image (on a server or a local store), with its disk layout. */
import type { CAC } from 'cac';
import { runCapture } from '../capture-run.ts';
import { ensureLayout } from '../layout-run.ts';
import { splitList } from '../store-arg.ts';
import { backendOptions, withBackend, type BackendArgs } from '../backend.ts';
import { UsageError } from '../errors.ts';
import { RevisionRefusedError } from '../../core/store/errors.ts';

interface NewImageOptions extends BackendArgs {
  image?: string;
  disklayout?: string;
  root: string;
  excludePaths?: string;
  excludeDevices?: string;
  note?: string;
  init?: boolean;
}

export function register(cli: CAC): void {
  backendOptions(cli.command('new-image', 'Capture a tree (default /) into a new image'))
    .option('--init', 'With --store: create the store if it does not exist')
    .option('--image <name>', 'Image name')
    .option('--disklayout <name>', 'Disk layout name: captured from the disks behind --root, or reused when it exists')
    .option('--root <dir>', 'Tree to capture: / on a golden node, or a chroot / mounted disk', { default: '/' })
    .option('--exclude-paths <globs>', 'Comma-separated paths or globs to leave out, e.g. /scratch,/var/cache/*')
    .option('--exclude-devices <disks>', 'Comma-separated disks to leave out of the layout, e.g. /dev/sdb')
    .option('--note <text>', 'Note stored with the revision')
    .action(async (o: NewImageOptions) => {
      if (!o.image) throw new UsageError('--image is required', 'name the image, e.g. --image node');
      await withBackend(o, async (backend) => {
        // Checked before the layout capture, so a taken name costs nothing.
        if (await backend.getImage(o.image!)) throw new RevisionRefusedError(`image ${o.image} already exists`, `use update-filesystem --image ${o.image} to add a revision`);
        const layout = o.disklayout ? await ensureLayout({ backend, name: String(o.disklayout), root: o.root, excludeDevices: splitList(o.excludeDevices) }) : undefined;
        await runCapture({ backend, image: o.image!, root: o.root, exclude: splitList(o.excludePaths), create: true, note: o.note, layout: layout?.name });
      });
    });
}
