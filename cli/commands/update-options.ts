/** update-options: replace the stored options of an image (a revision with the same data). */
import type { CAC } from 'cac';
import { backendOptions, withBackend, type BackendArgs } from '../backend.ts';
import { UsageError } from '../errors.ts';
import { ImageNotFoundError } from '../../core/store/errors.ts';
import { givenOptions } from './update-filesystem.ts';

interface Options extends BackendArgs {
  image?: string;
  excludePaths?: string;
  excludeDevices?: string;
}

export function register(cli: CAC): void {
  backendOptions(cli.command('update-options', 'Replace the stored options of an image; the data stays'))
    .option('--image <name>', 'Image name')
    .option('--exclude-paths <globs>', 'Comma-separated paths or globs to leave out of later updates')
    .option('--exclude-devices <disks>', 'Comma-separated disks to leave out')
    .action(async (o: Options) => {
      const { loadOptions, storeOptions } = await import('../options-run.ts');
      if (!o.image) throw new UsageError('--image is required', 'e.g. cloner update-options --image node --exclude-paths /scratch');
      const given = givenOptions(o);
      if (!Object.keys(given).length) throw new UsageError('no option given', 'give --exclude-paths and/or --exclude-devices');
      await withBackend(o, async (backend) => {
        const image = await backend.getImage(o.image!);
        if (!image) throw new ImageNotFoundError(`no image named ${o.image}`, 'list images with image-list');
        const last = image.revisions.at(-1)!;
        const options = { ...(await loadOptions(backend, last.options)), ...given };
        const id = await storeOptions(backend, options);
        const revision = await backend.commitRevision(image.name, { tree: last.tree, layout: last.layout, options: id, stats: last.stats, note: 'options updated' }, false);
        process.stdout.write(`image ${image.name} revision ${revision.n}: options ${JSON.stringify(options)}\n`);
      });
    });
}
