/**
 * Layouts in the image store: each is a small content-addressed JSON object, and
 * `layout/<name>` lists its versions (putVersion). Saving parses and checks the document
 * first, so a bad upload stores nothing; loading checks it again (the store is input too).
 */
import type { ChunkerParams } from '../chunker/fastcdc.ts';
import type { ChunkWriter } from '../store/interfaces.ts';
import { getJsonObject, putJsonObject } from '../store/objects.ts';
import { getVersions, listVersioned, putVersion, type ImageStore } from '../tree/images.ts';
import { LayoutError, parseLayout, serializeLayout, type Layout } from './model.ts';

export class LayoutNotFoundError extends LayoutError {
  override readonly code = 'LAYOUT_NOT_FOUND';
  override readonly status = 404;
}

export type LayoutStore = ImageStore & Pick<ChunkWriter, 'put'> & { config: { chunker: ChunkerParams } };

export interface StoredLayout {
  name: string;
  version: number;
  created: string;
  layout: Layout;
}

/** Checks and stores a layout (document, untrusted value or JSON text) as the next version of `name`. */
export async function saveLayout(store: LayoutStore, name: string, input: Layout | string | unknown): Promise<{ name: string; version: number }> {
  const layout = parseLayout(typeof input === 'string' ? input : structuredClone(input));
  const id = await putJsonObject(store, layout, store.config.chunker);
  return { name, version: await putVersion(store, 'layout', name, id) };
}

/** The latest (or the given) version of a stored layout. */
export async function loadLayout(store: ImageStore, name: string, version?: number): Promise<StoredLayout> {
  const record = await getVersions(store, 'layout', name);
  if (!record?.versions.length) throw new LayoutNotFoundError(`no disk layout named ${name}`, 'list them with `cloner image-details`, or capture one with new-image or update-disklayout');
  const entry = version === undefined ? record.versions.at(-1)! : record.versions.find((v) => v.n === version);
  if (!entry) throw new LayoutNotFoundError(`disk layout ${name} has no version ${version}`, `its versions are ${record.versions.map((v) => v.n).join(', ')}`);
  return { name, version: entry.n, created: entry.created, layout: parseLayout(await getJsonObject(store, entry.object)) };
}

export async function layoutExists(store: ImageStore, name: string): Promise<boolean> {
  return !!(await getVersions(store, 'layout', name))?.versions.length;
}

/** Name, version count and last change of every stored layout. */
export async function listLayouts(store: ImageStore): Promise<Array<{ name: string; versions: number; updated: string }>> {
  return (await listVersioned(store, 'layout')).map((r) => ({ name: r.name, versions: r.versions.length, updated: r.versions.at(-1)?.created ?? '' }));
}

/** The text `disklayout --output` writes and `disklayout-upload` reads back. */
export async function exportLayout(store: ImageStore, name: string, version?: number): Promise<string> {
  return serializeLayout((await loadLayout(store, name, version)).layout);
}
