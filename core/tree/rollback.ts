/**
 * Rollback of an image: an earlier revision made the latest again, as a new revision
 * carrying that revision's tree, layout, options and stats (the history keeps every
 * revision; nothing is deleted). The commit goes through commitRevision, so the same
 * checks apply as to any revision (every chunk it refers to must still be stored).
 * The CLI's image-rollback does the same over the API; the web UI calls this directly.
 */
import { ImageNotFoundError } from '../store/errors.ts';
import { commitRevision, getImage, type ImageStore, type Revision } from './images.ts';

/** Makes revision `n` of image `name` the latest again; returns the new revision. */
export async function rollbackImage(store: ImageStore, name: string, n: number): Promise<Revision> {
  const image = await getImage(store, name);
  if (!image) throw new ImageNotFoundError(`no image named ${name}`, 'list images with image-list');
  const target = image.revisions.find((r) => r.n === n);
  if (!target) throw new ImageNotFoundError(`image ${name} has no revision ${n}`, `revisions: ${image.revisions.map((r) => r.n).join(', ')}`);
  return commitRevision(store, name, { tree: target.tree, layout: target.layout, options: target.options, stats: target.stats, note: `rollback to revision ${target.n}` }, { create: false });
}
