/** update-disklayout: recapture the disk layout of the disks behind --root as a new version; the image data stays. */
import type { CAC } from 'cac';
import { ImageNotFoundError } from '../../core/store/errors.ts';
import { UsageError } from '../errors.ts';
import { splitList } from '../../core/format.ts';
import { backendOptions, withBackend, type BackendArgs } from '../backend.ts';

interface Options extends BackendArgs {
  updateConflict?: string;
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
    .option('--exclude-devices <disks>', 'Comma-separated disks to leave out, e.g. /dev/sdb (default: as stored)')
    .option('--update-conflict <mode>', 'prompt (default), server or commandline: which wins when --exclude-devices differs from the stored one')
    .action(async (o: Options) => {
      const { conflictMode, optionsForUpdate, storeOptions } = await import('../options-run.ts');
      const { ensureLayout } = await import('../layout-run.ts');
      const mode = conflictMode(o.updateConflict);
      if (!o.image || !o.disklayout) throw new UsageError('--image and --disklayout are required', 'e.g. cloner update-disklayout --image node --disklayout node');
      await withBackend(o, async (backend) => {
        const image = await backend.getImage(o.image!);
        if (!image) throw new ImageNotFoundError(`no image named ${o.image}`, 'list images with image-list; new-image creates one');
        const last = image.revisions.at(-1)!;
        const settled = await optionsForUpdate(backend, last.options, o.excludeDevices === undefined ? {} : { excludeDevices: splitList(o.excludeDevices) }, mode);
        const optionsChanged = settled.changed;
        const layout = await ensureLayout({ backend, name: String(o.disklayout), root: o.root, excludeDevices: settled.options.excludeDevices, recapture: true });
        if (last.layout !== layout.name || optionsChanged) {
          // The image now uses another layout name or options: a revision with the same tree records it.
          const options = optionsChanged ? await storeOptions(backend, settled.options) : last.options;
          const revision = await backend.commitRevision(image.name, { tree: last.tree, layout: layout.name, options, stats: last.stats, note: `disk layout ${layout.name}` }, false);
          process.stdout.write(`image ${image.name} revision ${revision.n} uses disk layout ${layout.name}\n`);
        }
      });
    });
}
