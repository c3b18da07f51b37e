/**
 * Receiver-side bookkeeping: which chunks this node still lacks, the pieces of each that
 * have come in, and the counters of what was ignored. A piece is kept only when its
 * chunk is one this node asked for and its lengths agree with the first piece seen of
 * that chunk; a chunk complete in bytes is decoded and BLAKE3-checked (decodeChunk) and
 * handed out only if it matches its id, else dropped whole and counted as corrupt (it is
 * then still missing, and is asked for again in the next round).
 */
import type { Codec } from '../store/codec.ts';
import { decodeChunk } from '../store/codec.ts';
import type { ChunkId } from '../store/chunk-id.ts';
import { decodeFrame, type DataFrame, type Rejection } from './wire.ts';

interface Partial {
  codec: Codec;
  rawLength: number;
  data: Buffer;
  /** Offsets received, with their lengths. */
  pieces: Map<number, number>;
  have: number;
}

export interface ReceiveCounters {
  datagrams: number;
  /** Ignored datagrams by reason (forged, truncated, another session's, not asked for...). */
  ignored: Record<Rejection | 'unwanted' | 'mismatch' | 'duplicate', number>;
  /** Chunks whose reassembled bytes did not hash to their id (dropped, asked for again). */
  corrupt: number;
  chunks: number;
  /** Encoded bytes accepted into chunks. */
  bytes: number;
}

export class Reassembler {
  readonly session: string;
  /** Chunks still lacked. */
  readonly missing: Set<ChunkId>;
  readonly counters: ReceiveCounters = {
    datagrams: 0,
    ignored: { short: 0, magic: 0, version: 0, type: 0, length: 0, crc: 0, session: 0, bounds: 0, unwanted: 0, mismatch: 0, duplicate: 0 },
    corrupt: 0,
    chunks: 0,
    bytes: 0,
  };
  private readonly partial = new Map<ChunkId, Partial>();

  constructor(session: string, lacking: Iterable<ChunkId>) {
    this.session = session;
    this.missing = new Set(lacking);
  }

  /** Takes one datagram; returns a chunk it completed and verified ([id, raw bytes]), else null. */
  accept(datagram: Buffer): [ChunkId, Buffer] | null {
    this.counters.datagrams++;
    const frame = decodeFrame(datagram, this.session);
    if (typeof frame === 'string') {
      this.counters.ignored[frame]++;
      return null;
    }
    return this.take(frame);
  }

  private take(f: DataFrame): [ChunkId, Buffer] | null {
    if (!this.missing.has(f.id)) {
      this.counters.ignored.unwanted++;
      return null;
    }
    let p = this.partial.get(f.id);
    if (!p) {
      p = { codec: f.codec, rawLength: f.rawLength, data: Buffer.alloc(f.encodedLength), pieces: new Map(), have: 0 };
      this.partial.set(f.id, p);
    } else if (p.codec !== f.codec || p.rawLength !== f.rawLength || p.data.length !== f.encodedLength) {
      this.counters.ignored.mismatch++;
      return null;
    }
    if (p.pieces.has(f.offset)) {
      this.counters.ignored.duplicate++;
      return null;
    }
    f.payload.copy(p.data, f.offset);
    p.pieces.set(f.offset, f.payload.length);
    p.have += f.payload.length;
    this.counters.bytes += f.payload.length;
    if (p.have < p.data.length || (p.have > p.data.length && !this.covered(p))) return null;
    this.partial.delete(f.id);
    let raw: Buffer;
    try {
      raw = decodeChunk({ id: f.id, codec: p.codec, rawLength: p.rawLength, data: p.data });
    } catch {
      this.counters.corrupt++;
      return null;
    }
    this.missing.delete(f.id);
    this.counters.chunks++;
    return [f.id, raw];
  }

  /** Overlapping pieces (a forger's odd offsets): complete only if every byte is covered. */
  private covered(p: Partial): boolean {
    let end = 0;
    for (const [offset, length] of [...p.pieces].sort((a, b) => a[0] - b[0])) {
      if (offset > end) return false;
      end = Math.max(end, offset + length);
    }
    return end >= p.data.length;
  }

  /**
   * What to ask for again: chunks with no piece yet, and for chunks partly here the
   * offsets still lacking (`payload` bytes apart, as the sender cut them), so a repair
   * round resends only lost datagrams, not whole chunks.
   */
  nack(payload: number): { missing: ChunkId[]; gaps: Array<[ChunkId, number[]]> } {
    const missing: ChunkId[] = [];
    const gaps: Array<[ChunkId, number[]]> = [];
    for (const id of this.missing) {
      const p = this.partial.get(id);
      if (!p) {
        missing.push(id);
        continue;
      }
      const lacking: number[] = [];
      for (let offset = 0; offset < p.data.length; offset += payload) if (!p.pieces.has(offset)) lacking.push(offset);
      // Pieces at other offsets (forged) or a corrupt whole: start the chunk again.
      if (!lacking.length) {
        this.partial.delete(id);
        missing.push(id);
      } else gaps.push([id, lacking]);
    }
    return { missing, gaps };
  }

  /** Forgets the pieces of chunks not completed (between rounds: a chunk is resent whole). */
  dropPartial(): void {
    this.partial.clear();
  }
}
