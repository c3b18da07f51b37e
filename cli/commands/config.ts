/** config: the stored configuration of an image (options, layout name) and of a disk layout. */
import type { CAC } from 'cac';
import { backendOptions, withBackend, type BackendArgs } from '../backend.ts';
import { UsageError } from '../errors.ts';
import { ImageNotFoundError } from '../../core/store/errors.ts';

export function register(cli: CAC): void {
  backendOptions(cli.command('config', 'Show the configuration of an image and its disk layout'))
    .option('--image <name>', 'Image name')
    .option('--disklayout <name>', 'Disk layout name (default: the image\'s)')
    .option('--json', 'Print JSON')
    .action(async (o: BackendArgs & { image?: string; disklayout?: string; json?: boolean }) => {
      const { describeLayout } = await import('../layout-run.ts');
      const { loadOptions } = await import('../options-run.ts');
      if (!o.image && !o.disklayout) throw new UsageError('--image or --disklayout is required', 'e.g. cloner config --image node --disklayout node');
      await withBackend(o, async (backend) => {
        const out: Record<string, unknown> = {};
        let layoutName = o.disklayout;
        if (o.image) {
          const image = await backend.getImage(o.image);
          if (!image) throw new ImageNotFoundError(`no image named ${o.image}`, 'list images with image-list');
          const last = image.revisions.at(-1)!;
          out.image = { name: image.name, revision: last.n, layout: last.layout, options: await loadOptions(backend, last.options) };
          layoutName ??= last.layout ?? undefined;
        }
        if (layoutName) {
          const stored = await backend.loadLayout(layoutName);
          out.disklayout = { name: stored.name, version: stored.version, created: stored.created, layout: stored.layout };
        }
        if (o.json) {
          process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
          return;
        }
        const image = out.image as { name: string; revision: number; layout: string | null; options: { excludePaths: string[]; excludeDevices: string[] } } | undefined;
        if (image) {
          process.stdout.write(`image ${image.name} (revision ${image.revision})\n  disk layout: ${image.layout ?? '-'}\n  exclude paths: ${image.options.excludePaths.join(', ') || '-'}\n  exclude devices: ${image.options.excludeDevices.join(', ') || '-'}\n`);
        }
        const layout = out.disklayout as { name: string; version: number; layout: Parameters<typeof describeLayout>[0] } | undefined;
        if (layout) process.stdout.write(`disk layout ${layout.name} (version ${layout.version})\n${describeLayout(layout.layout)}`);
      });
    });
}
