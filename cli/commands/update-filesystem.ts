/**
 * update-filesystem: a new revision of an image; unchanged files are not read again. The
 * stored options (paths and devices left out) apply unless the command line gives others;
 * such conflicts are settled by --update-conflict prompt|server|commandline.
 */
import type { CAC } from 'cac';
import { splitList } from '../../core/format.ts';
import { backendOptions, withBackend, type BackendArgs } from '../backend.ts';
import type { ImageOptions } from '../options-run.ts';
import { UsageError } from '../errors.ts';
import { ImageNotFoundError } from '../../core/store/errors.ts';

interface UpdateOptions extends BackendArgs {
  image?: string;
  root: string;
  excludePaths?: string;
  excludeDevices?: string;
  note?: string;
  updateConflict?: string;
  dryRun?: boolean;
}

/** The options given on the command line (only those given). */
export function givenOptions(o: { excludePaths?: string; excludeDevices?: string }): Partial<ImageOptions> {
  const given: Partial<ImageOptions> = {};
  if (o.excludePaths !== undefined) given.excludePaths = splitList(o.excludePaths);
  if (o.excludeDevices !== undefined) given.excludeDevices = splitList(o.excludeDevices);
  return given;
}

export function register(cli: CAC): void {
  backendOptions(cli.command('update-filesystem', 'Capture a new revision of an existing image'))
    .option('--image <name>', 'Image name')
    .option('--root <dir>', 'Tree to capture', { default: '/' })
    .option('--exclude-paths <globs>', 'Comma-separated paths or globs to leave out (default: as stored)')
    .option('--exclude-devices <disks>', 'Comma-separated disks to leave out (default: as stored)')
    .option('--update-conflict <mode>', 'prompt (default), server or commandline: which wins when an option differs from the stored one')
    .option('--note <text>', 'Note stored with the revision')
    .option('--dry-run', 'Scan and chunk everything, report what would be sent, send nothing')
    .action(async (o: UpdateOptions) => {
      const { conflictMode, optionsForUpdate, storeOptions } = await import('../options-run.ts');
      const { runCapture } = await import('../capture-run.ts');
      if (!o.image) throw new UsageError('--image is required', 'name the image to update, e.g. --image node');
      const mode = conflictMode(o.updateConflict);
      await withBackend(o, async (backend) => {
        const image = await backend.getImage(o.image!);
        if (!image) throw new ImageNotFoundError(`no image named ${o.image}`, 'list images with image-list, or create it with new-image');
        const last = image.revisions.at(-1)!;
        const settled = await optionsForUpdate(backend, last.options, givenOptions(o), mode);
        const optionsId = settled.changed && !o.dryRun ? await storeOptions(backend, settled.options) : undefined;
        await runCapture({ backend, image: o.image!, root: o.root, exclude: settled.options.excludePaths, create: false, parent: last, note: o.note, options: optionsId, dryRun: o.dryRun });
      });
    });
}
