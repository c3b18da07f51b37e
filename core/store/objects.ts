/**
 * Objects (tree manifests, layouts, options) stored as content-addressed chunks.
 *
 * An object's id is the id of its root chunk. The root chunk's first byte says what follows:
 *   0x01  the object's bytes, inline (objects up to one maximum chunk)
 *   0x02  the ids (32 bytes each) of the chunks that hold the object, in order; larger
 *         objects are cut with the store's FastCDC parameters, so an edit to a big
 *         manifest stores only the chunks around the edit.
 */
import { FastCdcChunker, type ChunkerParams } from '../chunker/fastcdc.ts';
import { CHUNK_ID_BYTES, type ChunkId } from './chunk-id.ts';
import { ObjectInvalidError } from './errors.ts';
import type { ChunkReader, ChunkWriter } from './interfaces.ts';

const INLINE = 0x01;
const INDIRECT = 0x02;
/** Refuse to assemble objects bigger than this from untrusted chunk lists. */
export const MAX_OBJECT_BYTES = 1024 * 1024 * 1024;

export async function putObject(writer: Pick<ChunkWriter, 'put'>, body: Uint8Array, params: ChunkerParams): Promise<ChunkId> {
  if (body.length <= params.maxSize) {
    return writer.put(Buffer.concat([Buffer.of(INLINE), body]));
  }
  const chunker = new FastCdcChunker(params);
  const ids: Promise<ChunkId>[] = [];
  let pos = 0;
  while (pos < body.length) {
    const cut = chunker.nextSplitPoint(body.subarray(pos));
    const len = cut < 0 ? body.length - pos : cut;
    ids.push(writer.put(body.subarray(pos, pos + len)));
    pos += len;
  }
  const list = Buffer.concat([Buffer.of(INDIRECT), ...(await Promise.all(ids)).map((id) => Buffer.from(id, 'hex'))]);
  return writer.put(list);
}

/** The chunk ids an object's body lives in (not including the root chunk). */
export function objectPartIds(root: Buffer, id: ChunkId): ChunkId[] {
  if (root.length === 0) throw new ObjectInvalidError(`object ${id} is empty`);
  if (root[0] === INLINE) return [];
  if (root[0] === INDIRECT && (root.length - 1) % CHUNK_ID_BYTES === 0) {
    const ids: ChunkId[] = [];
    for (let p = 1; p < root.length; p += CHUNK_ID_BYTES) ids.push(root.toString('hex', p, p + CHUNK_ID_BYTES));
    return ids;
  }
  throw new ObjectInvalidError(`object ${id} has an unknown header byte ${root[0]}`);
}

export async function getObject(reader: Pick<ChunkReader, 'get' | 'getMany'>, id: ChunkId): Promise<Buffer> {
  const root = await reader.get(id);
  const parts = objectPartIds(root, id);
  if (root[0] === INLINE) return root.subarray(1);
  const byId = new Map<ChunkId, Buffer>();
  let total = 0;
  for await (const [partId, data] of reader.getMany(parts)) {
    byId.set(partId, data);
    total += data.length;
    if (total > MAX_OBJECT_BYTES) throw new ObjectInvalidError(`object ${id} is larger than ${MAX_OBJECT_BYTES} bytes`);
  }
  return Buffer.concat(parts.map((p) => byId.get(p)!));
}

export async function putJsonObject(writer: Pick<ChunkWriter, 'put'>, value: unknown, params: ChunkerParams): Promise<ChunkId> {
  return putObject(writer, Buffer.from(JSON.stringify(value)), params);
}

export async function getJsonObject(reader: Pick<ChunkReader, 'get' | 'getMany'>, id: ChunkId): Promise<unknown> {
  const bytes = await getObject(reader, id);
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new ObjectInvalidError(`object ${id} is not valid JSON`);
  }
}
