/** new-image: capture a tree into a new image (on a server or a local store), with its disk layout and options. */
import type { CAC } from 'cac';
import { splitList } from '../../core/format.ts';
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
  dryRun?: boolean;
  yes?: boolean;
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
    .option('--dry-run', 'Scan and chunk everything, report what would be sent, send nothing')
    .option('--yes', 'Do not ask "Is this correct?"')
    .action(async (o: NewImageOptions) => {
      const { storeOptions, stdinAsker } = await import('../options-run.ts');
      const { confirmPlan, ensureLayout } = await import('../layout-run.ts');
      const { runCapture } = await import('../capture-run.ts');
      if (!o.image) throw new UsageError('--image is required', 'name the image, e.g. --image node');
      await withBackend(o, async (backend) => {
        // Checked before the layout capture, so a taken name costs nothing.
        if (await backend.getImage(o.image!)) throw new RevisionRefusedError(`image ${o.image} already exists`, `use update-filesystem --image ${o.image} to add a revision`);
        const options = { excludePaths: splitList(o.excludePaths), excludeDevices: splitList(o.excludeDevices) };
        const layout = o.disklayout ? await ensureLayout({ backend, name: String(o.disklayout), root: o.root, excludeDevices: options.excludeDevices, dryRun: o.dryRun, quiet: true }) : undefined;
        const asker = o.dryRun || o.yes ? null : stdinAsker();
        try {
          if (!(await confirmPlan({ root: o.root, layout, excludePaths: options.excludePaths, ask: asker?.ask }))) {
            process.stdout.write('nothing done\n');
            return;
          }
        } finally {
          asker?.close();
        }
        if (layout && !layout.reused && !o.dryRun) await layout.save();
        const optionsId = o.dryRun ? undefined : await storeOptions(backend, options);
        await runCapture({ backend, image: o.image!, root: o.root, exclude: options.excludePaths, create: true, note: o.note, layout: layout?.name, layoutDoc: layout?.layout, options: optionsId, dryRun: o.dryRun });
      });
    });
}
