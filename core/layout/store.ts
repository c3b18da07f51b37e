/**
 * Layouts in the image store: each is a small content-addressed JSON object, and
 * `layout/<name>` lists its versions (putVersion). Saving parses and checks the document
 * first, so a bad upload stores nothing; loading checks it again (the store is input too).
 * A layout that does not fit the disk it was captured from (`captured.size`: even with its
 * filesystems shrunk to their minimums, as a deploy would) is refused at saving, so it never
 * becomes the latest version. A version can be deleted (the object goes at the next gc) and
 * an earlier one made the latest again (a new version with its object, as image-rollback).
 */
import type { ChunkerParams } from '../chunker/fastcdc.ts';
import type { ChunkWriter } from '../store/interfaces.ts';
import { getJsonObject, putJsonObject } from '../store/objects.ts';
import { listNodes } from '../nodes/registry.ts';
import { getVersions, listImages, listVersioned, putVersion, type ImageStore, type VersionedRecord } from '../tree/images.ts';
import { formatSize, LayoutError, parseLayout, serializeLayout, type Layout } from './model.ts';
import { LayoutTooSmallError, placePartitions, scalableMinimums } from './place.ts';

export class LayoutNotFoundError extends LayoutError {
  override readonly code = 'LAYOUT_NOT_FOUND';
  override readonly status = 404;
}

export class LayoutOversizedError extends LayoutError {
  override readonly code = 'LAYOUT_OVERSIZED';
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
  checkFitsCapturedDisks(layout);
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

/** LayoutOversizedError when a disk's partitions cannot be placed on the disk it was captured from (512-byte sectors). */
export function checkFitsCapturedDisks(layout: Layout): void {
  for (const disk of layout.disks) {
    const size = disk.captured?.size;
    if (!size || disk.table === 'none') continue;
    try {
      placePartitions(disk, { path: disk.captured?.name ?? disk.id, size, sector: 512 }, scalableMinimums(disk, layout.filesystems ?? []));
    } catch (err) {
      if (!(err instanceof LayoutTooSmallError)) throw err;
      throw new LayoutOversizedError(
        `disk ${disk.id}: the layout does not fit the ${formatSize(size)} disk it was captured from (${err.message})`,
        'shrink its partitions; or, if it is meant for larger disks, set the disk\'s captured.size (and match.minSize) to their size',
      );
    }
  }
}

/** Changes the version list of `name` with compare-and-set; `change` returns the new list. */
async function changeVersions(store: ImageStore, name: string, change: (record: VersionedRecord) => VersionedRecord['versions']): Promise<VersionedRecord['versions']> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const before = await store.getRef(`layout/${name}`);
    const record = before ? (JSON.parse(before) as VersionedRecord) : undefined;
    if (!record?.versions.length) throw new LayoutNotFoundError(`no disk layout named ${name}`, 'list them with: cloner disklayout');
    const versions = change(record);
    const last = Math.max(record.last ?? 0, ...record.versions.map((v) => v.n));
    if (await store.casRef(`layout/${name}`, before, versions.length ? JSON.stringify({ ...record, versions, last }) : undefined)) return versions;
  }
  throw new LayoutError(`disk layout ${name} is being changed by too many writers at once`, 'retry');
}

const versionOf = (record: VersionedRecord, version: number) => {
  const entry = record.versions.find((v) => v.n === version);
  if (!entry) throw new LayoutNotFoundError(`disk layout ${record.name} has no version ${version}`, `its versions are ${record.versions.map((v) => v.n).join(', ')}`);
  return entry;
};

/**
 * Deletes one version of a layout (its object is freed by the next gc); the one before the
 * deleted latest becomes the latest. Deleting the only version deletes the layout, which is
 * refused while an image's latest revision or a node (`cloner_layout`) names it.
 */
export async function deleteLayoutVersion(store: ImageStore, name: string, version: number): Promise<{ name: string; deleted: number; latest: number | null }> {
  const users = [
    ...(await listImages(store)).filter((i) => i.revisions.at(-1)?.layout === name).map((i) => `image ${i.name}`),
    ...(await listNodes(store)).filter((n) => n.cloner_layout === name).map((n) => `node ${n.name}`),
  ];
  const left = await changeVersions(store, name, (record) => {
    versionOf(record, version);
    const rest = record.versions.filter((v) => v.n !== version);
    if (!rest.length && users.length) throw new LayoutError(`version ${version} is the only one of disk layout ${name}, which ${users.join(', ')} use${users.length === 1 ? 's' : ''}`, 'point them at another layout first, or upload a new version before deleting this one');
    return rest;
  });
  return { name, deleted: version, latest: left.at(-1)?.n ?? null };
}

/** Makes an earlier version the latest again: a new version with its object. */
export async function rollbackLayout(store: ImageStore, name: string, version: number): Promise<{ name: string; version: number; from: number }> {
  const record = await getVersions(store, 'layout', name);
  if (!record?.versions.length) throw new LayoutNotFoundError(`no disk layout named ${name}`, 'list them with: cloner disklayout');
  const entry = versionOf(record, version);
  return { name, version: await putVersion(store, 'layout', name, entry.object), from: version };
}
