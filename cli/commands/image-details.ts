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
      const { loadOptions } = await import('../options-run.ts');
      if (!o.image) throw new UsageError('--image is required', 'list images with image-list');
      await withBackend(o, async (backend) => {
        const image = await backend.getImage(o.image!);
        if (!image) throw new ImageNotFoundError(`no image named ${o.image}`, 'list images with image-list');
        const last = image.revisions.at(-1)!;
        const options = await loadOptions(backend, last.options);
        const attachments = await backend.listAttachments(image.name);
        const scripts = attachments.filter((a) => a.kind === 'script').map((a) => a.item);
        const bios = attachments.filter((a) => a.kind === 'bios').map((a) => a.item);
        if (o.json) {
          process.stdout.write(JSON.stringify({ ...image, layout: last.layout, options, scripts, biossettings: bios }, null, 2) + '\n');
          return;
        }
        process.stdout.write(`image ${image.name}, created ${image.created}\n`);
        process.stdout.write(`  disk layout: ${last.layout ?? '-'}\n  options: exclude paths ${options.excludePaths.join(', ') || '-'}; exclude devices ${options.excludeDevices.join(', ') || '-'}\n`);
        process.stdout.write(`  scripts: ${scripts.join(', ') || '-'}\n  BIOS settings: ${bios.join(', ') || '-'}\n`);
        for (const r of image.revisions) {
          const left = r.stats.leftOut ? `  ${r.stats.leftOut} left out` : '';
          process.stdout.write(`  revision ${r.n}  ${r.created}  parent ${r.parent ?? '-'}  ${r.stats.files} files  ${formatBytes(r.stats.bytes)}${left}  tree ${r.tree.slice(0, 16)}  ${r.note}\n`);
        }
        // What the newest revision did not store, so nothing is left out silently.
        if (last.leftOut?.length) process.stdout.write((await import('../capture-run.ts')).formatLeftOut(last.leftOut, image.name, last.stats.leftOut).replace(/^left out/, `revision ${last.n} left out`));
      });
    });
}
