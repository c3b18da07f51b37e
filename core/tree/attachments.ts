/**
 * Files kept with an image besides its data: pre- and post-scripts (kind "script", item
 * "pre" or "post") and named BIOS settings (kind "bios", item = the settings name). Each
 * is a content-addressed object; `attach/<image>/<kind>/<item>` lists its versions
 * (compare-and-set, like image records), so GC keeps every version and an upload that
 * fails stores no version.
 */
import type { ChunkerParams } from '../chunker/fastcdc.ts';
import { ImageNotFoundError, RevisionRefusedError, StoreError } from '../store/errors.ts';
import type { ChunkWriter } from '../store/interfaces.ts';
import { getObject, putObject } from '../store/objects.ts';
import { assertName, getImage, type ImageStore, type VersionedRecord } from './images.ts';

export type AttachmentKind = 'script' | 'bios';
export const MAX_ATTACHMENT_BYTES = 1024 * 1024;

export class AttachmentNotFoundError extends StoreError {
  override readonly status = 404;
  override readonly code = 'ATTACHMENT_NOT_FOUND';
}

export class AttachmentInvalidError extends StoreError {
  override readonly code = 'ATTACHMENT_INVALID';
}

function keyOf(image: string, kind: AttachmentKind, item: string): string {
  assertName('image', image);
  if (kind === 'script' && item !== 'pre' && item !== 'post') throw new AttachmentInvalidError(`script type ${JSON.stringify(item)}`, 'use --type pre or --type post');
  if (kind === 'bios') assertName('BIOS settings', item);
  return `attach/${image}/${kind}/${item}`;
}

export async function putAttachment(store: ImageStore & Pick<ChunkWriter, 'put'>, chunker: ChunkerParams, image: string, kind: AttachmentKind, item: string, body: Uint8Array): Promise<number> {
  const key = keyOf(image, kind, item);
  if (body.length > MAX_ATTACHMENT_BYTES) throw new AttachmentInvalidError(`the ${kind} file is ${body.length} bytes, over ${MAX_ATTACHMENT_BYTES}`, 'scripts and BIOS settings are small text files; check the file name');
  if (!(await getImage(store, image))) throw new ImageNotFoundError(`no image named ${image}`, 'create it with new-image first');
  const id = await putObject(store, body, chunker);
  return store.withoutPrune(async () => {
    for (let attempt = 0; attempt < 100; attempt++) {
      const before = await store.getRef(key);
      const record: VersionedRecord = before ? JSON.parse(before) : { name: `${image}/${kind}/${item}`, versions: [] };
      const n = (record.versions.at(-1)?.n ?? 0) + 1;
      record.versions.push({ n, created: new Date().toISOString(), object: id });
      if (await store.casRef(key, before, JSON.stringify(record))) return n;
    }
    throw new RevisionRefusedError(`${kind} ${item} of ${image} is being updated by too many writers at once`, 'retry');
  });
}

export async function getAttachment(store: ImageStore, image: string, kind: AttachmentKind, item: string): Promise<{ version: number; body: Buffer }> {
  const raw = await store.getRef(keyOf(image, kind, item));
  const last = raw ? (JSON.parse(raw) as VersionedRecord).versions.at(-1) : undefined;
  if (!last) throw new AttachmentNotFoundError(`image ${image} has no ${kind === 'script' ? `${item}-script` : `BIOS settings ${item}`}`, kind === 'script' ? 'upload one with: cloner script --image IMAGE --type pre|post --set FILE' : 'upload them with: cloner biossettings-upload --image IMAGE --biossettings NAME --file FILE');
  return { version: last.n, body: await getObject(store, last.object) };
}

export async function listAttachments(store: ImageStore, image: string): Promise<Array<{ kind: AttachmentKind; item: string; versions: number; updated: string }>> {
  assertName('image', image);
  return (await store.listRefs(`attach/${image}/`)).map(([key, raw]) => {
    const [, , kind, item] = key.split('/');
    const record = JSON.parse(raw) as VersionedRecord;
    return { kind: kind as AttachmentKind, item, versions: record.versions.length, updated: record.versions.at(-1)?.created ?? '' };
  });
}
