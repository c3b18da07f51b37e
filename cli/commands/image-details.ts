/** image-details: the revisions of one image. */
import type { CAC } from 'cac';
import { ImageNotFoundError } from '../../core/store/errors.ts';
import { UsageError } from '../errors.ts';
import { formatBytes } from '../progress.ts';
import { backendOptions, withBackend } from '../backend.ts';

export function register(cli: CAC): void {
  backendOptions(cli.command('image-details', 'Show the revisions of an image'))
    .option('--image <name>', 'Image name')
    .option('--json', 'Print JSON')
    .action(async (o: { store?: string; image?: string; json?: boolean }) => {
      if (!o.image) throw new UsageError('--image is required', 'list images with image-list');
      await withBackend(o, async (backend) => {
        const image = await backend.getImage(o.image!);
        if (!image) throw new ImageNotFoundError(`no image named ${o.image}`, 'list images with image-list');
        if (o.json) {
          process.stdout.write(JSON.stringify(image, null, 2) + '\n');
          return;
        }
        process.stdout.write(`image ${image.name}, created ${image.created}\n`);
        for (const r of image.revisions) {
          process.stdout.write(`  revision ${r.n}  ${r.created}  parent ${r.parent ?? '-'}  ${r.stats.files} files  ${formatBytes(r.stats.bytes)}  tree ${r.tree.slice(0, 16)}  ${r.note}\n`);
        }
      });
    });
}
