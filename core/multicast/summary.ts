/**
 * The compact have/lack summary a node registers with: a bitmap over the revision's
 * distinct chunk ids in a canonical order both sides compute from the tree (every id
 * treeChunkIds finds, sorted), bit i set when the node lacks id i, deflated and base64'd.
 * A first deploy (all ones) or a re-deploy (mostly zeros) deflates to a few hundred bytes;
 * at worst it is N/8 bytes (a 500,000-chunk image: 61 KiB), where the list of ids was up to
 * 33 MB of JSON. The node also sends N and the BLAKE3 of the sorted ids, so a node and a
 * server that disagree on the list are told so (409) rather than mapping bits to wrong ids.
 *
 * Untrusted on the server: the base64 is bounded by the schema, the inflate by
 * maxOutputLength (no deflate bomb), the bitmap must be exactly ceil(N/8) bytes with no
 * bit set past N.
 */
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { ClonerError } from '../errors.ts';
import { chunkIdOf, type ChunkId } from '../store/chunk-id.ts';
import type { ChunkReader } from '../store/interfaces.ts';
import { treeChunkIds } from '../tree/images.ts';
export { MAX_SUMMARY_BASE64, MAX_SUMMARY_CHUNKS } from './types.ts';

export class LackingSummaryError extends ClonerError {
  override readonly code: string = 'BAD_LACKING_SUMMARY';
}

export class ChunkListMismatchError extends ClonerError {
  override readonly code = 'CHUNK_LIST_MISMATCH';
  override readonly status: number = 409;
}

export interface LackingSummary {
  /** How many distinct chunk ids the revision's tree references (the bitmap's bits). */
  chunks: number;
  /** BLAKE3 of the sorted ids (each 32 bytes, concatenated), hex. */
  digest: ChunkId;
  /** The bitmap, deflated (raw), base64. */
  lacking: string;
}

/** The revision's distinct chunk ids (directory objects, their parts, file chunks), sorted. */
export async function canonicalChunks(reader: Pick<ChunkReader, 'get' | 'getMany'>, tree: ChunkId): Promise<ChunkId[]> {
  return [...(await treeChunkIds(reader, tree))].sort();
}

export function listDigest(all: readonly ChunkId[]): ChunkId {
  return chunkIdOf(Buffer.from(all.join(''), 'hex'));
}

/** The summary of `lacking` over `all` (ids not in `all` are left out: the caller fetches them some other way). */
export function encodeLacking(all: readonly ChunkId[], lacking: Iterable<ChunkId>): LackingSummary {
  const index = new Map(all.map((id, i) => [id, i]));
  const bits = Buffer.alloc(Math.ceil(all.length / 8));
  for (const id of lacking) {
    const i = index.get(id);
    if (i !== undefined) bits[i >> 3] |= 0x80 >> (i & 7);
  }
  return { chunks: all.length, digest: listDigest(all), lacking: deflateRawSync(bits, { level: 9 }).toString('base64') };
}

/** Where `id` is in a sorted list (a canonical list: the wire's chunk index), or -1. */
export function indexIn(list: readonly ChunkId[], id: ChunkId): number {
  let lo = 0;
  let hi = list.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (list[mid] === id) return mid;
    if (list[mid] < id) lo = mid + 1;
    else hi = mid - 1;
  }
  return -1;
}

/** The ids a summary says are lacked; throws LackingSummaryError (400) or ChunkListMismatchError (409). */
export function decodeLacking(all: readonly ChunkId[], s: LackingSummary, digest = listDigest(all)): ChunkId[] {
  if (s.chunks !== all.length || s.digest !== digest) {
    throw new ChunkListMismatchError(`the node counts ${s.chunks} distinct chunks in this revision (list ${s.digest.slice(0, 16)}), the server ${all.length} (list ${digest.slice(0, 16)})`, 'the node and the server read different trees: start the deploy again');
  }
  const size = Math.ceil(all.length / 8);
  let bits: Buffer;
  try {
    bits = inflateRawSync(Buffer.from(s.lacking, 'base64'), { maxOutputLength: size + 1 });
  } catch (err) {
    throw new LackingSummaryError(`the lacking summary does not inflate: ${(err as Error).message}`, 'send the bitmap deflated (raw) and base64-encoded (core/multicast/summary.ts)');
  }
  if (bits.length !== size) throw new LackingSummaryError(`the lacking bitmap is ${bits.length} bytes, not ${size} (one bit per chunk of ${all.length})`, 'one bit per distinct chunk id of the revision, sorted');
  if (all.length % 8 && bits[size - 1] & (0xff >> (all.length % 8))) throw new LackingSummaryError('the lacking bitmap has bits set past its last chunk', 'pad the last byte with zero bits');
  const out: ChunkId[] = [];
  for (let i = 0; i < all.length; i++) if (bits[i >> 3] & (0x80 >> (i & 7))) out.push(all[i]);
  return out;
}

/** The canonical lists of the last few trees asked for (the nodes of a session register for one revision). */
export class ChunkListCache {
  private readonly lists = new Map<ChunkId, Promise<{ all: ChunkId[]; digest: ChunkId }>>();
  private readonly reader: Pick<ChunkReader, 'get' | 'getMany'>;
  private readonly keep: number;

  constructor(reader: Pick<ChunkReader, 'get' | 'getMany'>, keep = 4) {
    this.reader = reader;
    this.keep = keep;
  }

  of(tree: ChunkId): Promise<{ all: ChunkId[]; digest: ChunkId }> {
    let list = this.lists.get(tree);
    if (!list) {
      list = canonicalChunks(this.reader, tree).then((all) => ({ all, digest: listDigest(all) }));
      list.catch(() => this.lists.delete(tree));
      this.lists.set(tree, list);
      while (this.lists.size > this.keep) this.lists.delete(this.lists.keys().next().value!);
    }
    return list;
  }
}
