/**
 * image-delete: drop an image record with its scripts and BIOS settings; its data goes at
 * the next gc. Says what it removes (revisions, attachments, the stored bytes only it uses)
 * and asks first, unless --yes.
 */
import type { CAC } from 'cac';
import { backendOptions, withBackend, type BackendArgs } from '../backend.ts';
import { confirm } from '../confirm.ts';
import { UsageError } from '../errors.ts';
import { ImageNotFoundError } from '../../core/store/errors.ts';
import { formatBytes } from '../progress.ts';

export function register(cli: CAC): void {
  backendOptions(cli.command('image-delete', 'Delete an image with its scripts and BIOS settings (its unshared data is freed by gc); asks first'))
    .option('--image <name>', 'Image name')
    .option('--yes', 'Do not ask')
    .action(async (o: BackendArgs & { image?: string; yes?: boolean }) => {
      if (!o.image) throw new UsageError('--image is required', 'list images with image-list');
      await withBackend(o, async (backend) => {
        const image = await backend.getImage(o.image!);
        if (!image) throw new ImageNotFoundError(`no image named ${o.image}`, 'list images with image-list');
        const last = image.revisions.at(-1);
        const attachments = await backend.listAttachments(image.name);
        const unique = (await backend.usage()).find((u) => u.name === image.name)?.uniqueBytes ?? 0;
        process.stdout.write(`image ${image.name}: ${image.revisions.length} revision(s), latest ${last ? `${last.n} (${last.stats.files} files, ${formatBytes(last.stats.bytes)})` : '-'}\n`);
        process.stdout.write(`  with ${attachments.length ? attachments.map((a) => `${a.kind} ${a.item}`).join(', ') : 'no scripts or BIOS settings'}; gc frees about ${formatBytes(unique)} only it uses\n`);
        if (!(await confirm(`Delete image ${image.name}?`, o.yes))) {
          process.stdout.write('nothing deleted\n');
          return;
        }
        await backend.deleteImage(image.name);
        process.stdout.write(`deleted image ${image.name}; run gc to free its space\n`);
      });
    });
}
