/** image-rollback: make an earlier revision the latest again (a new revision with its data, layout and options). */
import type { CAC } from 'cac';
import { ImageNotFoundError } from '../../core/store/errors.ts';
import { backendOptions, withBackend, type BackendArgs } from '../backend.ts';
import { UsageError } from '../errors.ts';

export function register(cli: CAC): void {
  backendOptions(cli.command('image-rollback', 'Make an earlier revision of an image the latest again'))
    .option('--image <name>', 'Image name')
    .option('--revision <n>', 'The revision to go back to')
    .action(async (o: BackendArgs & { image?: string; revision?: string }) => {
      if (!o.image || o.revision === undefined) throw new UsageError('--image and --revision are required', 'see the revisions with image-details');
      await withBackend(o, async (backend) => {
        const image = await backend.getImage(o.image!);
        if (!image) throw new ImageNotFoundError(`no image named ${o.image}`, 'list images with image-list');
        const target = image.revisions.find((r) => String(r.n) === String(o.revision));
        if (!target) throw new UsageError(`image ${o.image} has no revision ${o.revision}`, `revisions: ${image.revisions.map((r) => r.n).join(', ')}`);
        const revision = await backend.commitRevision(image.name, { tree: target.tree, layout: target.layout, options: target.options, stats: target.stats, note: `rollback to revision ${target.n}` }, false);
        process.stdout.write(`image ${image.name} revision ${revision.n} = revision ${target.n}\n`);
      });
    });
}
