/**
 * Test helpers for the multicast wire (core/multicast/wire.ts): chunks packed into one
 * object as the sender packs them, named by their places in a sorted chunk list that
 * stands for the revision's canonical list, and the object's data datagrams.
 */
import { encodeChunk, type EncodedChunk } from '../../core/store/codec.ts';
import type { ChunkId } from '../../core/store/chunk-id.ts';
import { encodeObject, objectFrames } from '../../core/multicast/wire.ts';

export interface TestObject {
  /** The object's name: its first chunk's index in `list`. */
  name: number;
  bytes: Buffer;
  /** Its data datagrams, piece by piece. */
  frames: Buffer[];
}

/** A sorted list holding `ids` and `extra` more made-up ids. */
export function listOf(ids: ChunkId[], extra = 3): ChunkId[] {
  const more = Array.from({ length: extra }, (_, i) => String(i).padStart(2, '0').repeat(32));
  return [...new Set([...ids, ...more])].sort();
}

/** The object holding `chunks` (in this order), for `session`. */
export function objectOf(session: string, chunks: EncodedChunk[], list: readonly ChunkId[], payload: number): TestObject {
  const bytes = encodeObject(chunks.map((c) => ({ index: list.indexOf(c.id), codec: c.codec, rawLength: c.rawLength, encodedLength: c.data.length, data: c.data })));
  const name = list.indexOf(chunks[0].id);
  return { name, bytes, frames: [...objectFrames(session, name, bytes, payload)] };
}

export const encoded = (raw: Buffer) => encodeChunk(raw);
