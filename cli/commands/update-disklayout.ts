/** update-disklayout: recapture the disk layout of the disks behind --root as a new version; the image data stays. */
import type { CAC } from 'cac';
import { ImageNotFoundError } from '../../core/store/errors.ts';
import { UsageError } from '../errors.ts';
import { ensureLayout } from '../layout-run.ts';
import { splitList } from '../store-arg.ts';
import { backendOptions, withBackend, type BackendArgs } from '../backend.ts';

interface Options extends BackendArgs {
  image?: string;
  disklayout?: string;
  root: string;
  excludeDevices?: string;
}

export function register(cli: CAC): void {
  backendOptions(cli.command('update-disklayout', 'Recapture the disk layout (new version); the image data stays as it is'))
    .option('--image <name>', 'Image whose layout this is')
    .option('--disklayout <name>', 'Disk layout name')
    .option('--root <dir>', 'Tree whose disks to capture', { default: '/' })
    .option('--exclude-devices <disks>', 'Comma-separated disks to leave out, e.g. /dev/sdb')
    .action(async (o: Options) => {
      if (!o.image || !o.disklayout) throw new UsageError('--image and --disklayout are required', 'e.g. cloner update-disklayout --image node --disklayout node');
      await withBackend(o, async (backend) => {
        const image = await backend.getImage(o.image!);
        if (!image) throw new ImageNotFoundError(`no image named ${o.image}`, 'list images with image-list; new-image creates one');
        const layout = await ensureLayout({ backend, name: String(o.disklayout), root: o.root, excludeDevices: splitList(o.excludeDevices), recapture: true });
        const last = image.revisions.at(-1)!;
        if (last.layout !== layout.name) {
          // The image now uses another layout name: a revision with the same tree records it.
          const revision = await backend.commitRevision(image.name, { tree: last.tree, layout: layout.name, options: last.options, stats: last.stats, note: `disk layout ${layout.name}` }, false);
          process.stdout.write(`image ${image.name} revision ${revision.n} uses disk layout ${layout.name}\n`);
        }
      });
    });
}
