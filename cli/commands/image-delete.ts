/** image-delete: drop an image record; its data goes at the next gc. */
import type { CAC } from 'cac';
import { deleteImage } from '../../core/tree/images.ts';
import { UsageError } from '../errors.ts';
import { withStoreArg } from '../store-arg.ts';

export function register(cli: CAC): void {
  cli
    .command('image-delete', 'Delete an image (its unshared data is freed by gc)')
    .option('--store <dir>', 'Local image store directory')
    .option('--image <name>', 'Image name')
    .action(async (o: { store?: string; image?: string }) => {
      if (!o.image) throw new UsageError('--image is required', 'list images with image-list');
      await withStoreArg(o.store, async (store) => {
        await deleteImage(store, o.image!);
        process.stdout.write(`deleted image ${o.image}; run gc to free its space\n`);
      });
    });
}
