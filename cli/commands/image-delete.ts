/** image-delete: drop an image record; its data goes at the next gc. */
import type { CAC } from 'cac';
import { backendOptions, withBackend, type BackendArgs } from '../backend.ts';
import { UsageError } from '../errors.ts';

export function register(cli: CAC): void {
  backendOptions(cli.command('image-delete', 'Delete an image (its unshared data is freed by gc)'))
    .option('--image <name>', 'Image name')
    .action(async (o: BackendArgs & { image?: string }) => {
      if (!o.image) throw new UsageError('--image is required', 'list images with image-list');
      await withBackend(o, async (backend) => {
        await backend.deleteImage(o.image!);
        process.stdout.write(`deleted image ${o.image}; run gc to free its space\n`);
      });
    });
}
