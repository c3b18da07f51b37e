/**
 * Receiver-side bookkeeping: which chunks this node still lacks, the pieces and parity
 * rows of each that have come in, and the counters of what was ignored. A datagram is kept
 * only when its key names exactly one chunk this node asked for, its lengths agree with
 * the first datagram seen of that chunk, and a data piece sits on the session's cut
 * (offset a multiple of `payload`, length `payload` or the chunk's remainder). A parity
 * group (wire.ts groupsOf) holding as many rows as it lacks pieces is rebuilt (rs.ts).
 * A chunk complete in bytes is decoded and BLAKE3-checked (decodeChunk) and handed out
 * only if it matches its id, else dropped whole and counted as corrupt (it is then still
 * missing, and is asked for again in the next round).
 */
import { decodeChunk, type Codec, type EncodedChunk } from '../store/codec.ts';
import type { ChunkId } from '../store/chunk-id.ts';
import { recover } from './rs.ts';
import { decodeFrame, groupsOf, keyOf, piecesOf, type ChunkKey, type Frame, type Rejection } from './wire.ts';

interface Partial {
  codec: Codec;
  rawLength: number;
  data: Buffer;
  /** Piece i received (or rebuilt). */
  have: Uint8Array;
  haveCount: number;
  groups: Array<[number, number]>;
  /** Parity rows held, by group index then row. */
  rows: Array<Map<number, Buffer>>;
}

export interface ReceiveCounters {
  datagrams: number;
  /** Ignored datagrams by reason (forged, truncated, another session's, not asked for...). */
  ignored: Record<Rejection | 'unwanted' | 'mismatch' | 'duplicate' | 'cut' | 'ambiguous', number>;
  /** Chunks whose reassembled bytes did not hash to their id (dropped, asked for again). */
  corrupt: number;
  chunks: number;
  /** Encoded bytes accepted into chunks (data pieces). */
  bytes: number;
  parity: number;
  /** Pieces rebuilt from parity. */
  rebuilt: number;
}

export class Reassembler {
  readonly session: string;
  /** Payload bytes per piece (the session's cut). */
  readonly payload: number;
  /** Chunks still lacked. */
  readonly missing: Set<ChunkId>;
  readonly counters: ReceiveCounters = {
    datagrams: 0,
    ignored: { short: 0, magic: 0, version: 0, type: 0, crc: 0, session: 0, bounds: 0, unwanted: 0, mismatch: 0, duplicate: 0, cut: 0, ambiguous: 0 },
    corrupt: 0,
    chunks: 0,
    bytes: 0,
    parity: 0,
    rebuilt: 0,
  };
  private readonly byKey = new Map<ChunkKey, ChunkId | null>();
  private readonly partial = new Map<ChunkId, Partial>();
  /** Completed, not yet verified (take -> verify). */
  private readonly pending = new Set<ChunkId>();

  constructor(session: string, lacking: Iterable<ChunkId>, payload: number) {
    this.session = session;
    this.payload = payload;
    this.missing = new Set(lacking);
    // A key two of our chunks share names neither (null): both come over unicast.
    for (const id of this.missing) this.byKey.set(keyOf(id), this.byKey.has(keyOf(id)) ? null : id);
  }

  /** Takes one datagram; returns a chunk it completed and verified ([id, raw bytes]), else null. */
  accept(datagram: Buffer): [ChunkId, Buffer] | null {
    const done = this.take(datagram);
    return done && this.verify(done);
  }

  /**
   * Takes one datagram; returns a chunk it completed, NOT yet verified: `verify` it before
   * use. Until then its datagrams count as duplicates. (The receiver verifies at the pace
   * its consumer takes chunks, so the socket's handler only copies bytes.)
   */
  take(datagram: Buffer): (EncodedChunk & { id: ChunkId }) | null {
    this.counters.datagrams++;
    const frame = decodeFrame(datagram, this.session);
    if (typeof frame === 'string') {
      this.counters.ignored[frame]++;
      return null;
    }
    return this.place(frame);
  }

  /** Decodes a completed chunk and checks its BLAKE3: [id, raw bytes], or null (corrupt: lacked again). */
  verify(c: EncodedChunk & { id: ChunkId }): [ChunkId, Buffer] | null {
    this.pending.delete(c.id);
    let raw: Buffer;
    try {
      raw = decodeChunk(c);
    } catch {
      this.counters.corrupt++;
      return null;
    }
    this.missing.delete(c.id);
    this.counters.chunks++;
    return [c.id, raw];
  }

  private place(f: Frame): (EncodedChunk & { id: ChunkId }) | null {
    const id = this.byKey.get(f.key);
    if (id === null) {
      this.counters.ignored.ambiguous++;
      return null;
    }
    if (id === undefined || !this.missing.has(id)) {
      this.counters.ignored.unwanted++;
      return null;
    }
    if (this.pending.has(id)) {
      this.counters.ignored.duplicate++;
      return null;
    }
    let p = this.partial.get(id);
    if (!p) {
      const pieces = piecesOf(f.encodedLength, this.payload);
      const groups = groupsOf(pieces);
      p = { codec: f.codec, rawLength: f.rawLength, data: Buffer.alloc(f.encodedLength), have: new Uint8Array(pieces), haveCount: 0, groups, rows: groups.map(() => new Map()) };
      this.partial.set(id, p);
    } else if (p.codec !== f.codec || p.rawLength !== f.rawLength || p.data.length !== f.encodedLength) {
      this.counters.ignored.mismatch++;
      return null;
    }
    const index = f.offset / this.payload;
    if (!Number.isInteger(index)) {
      this.counters.ignored.cut++;
      return null;
    }
    if (f.type === 'data') {
      if (f.payload.length !== Math.min(this.payload, p.data.length - f.offset) && p.data.length !== 0) {
        this.counters.ignored.cut++;
        return null;
      }
      if (p.have[index]) {
        this.counters.ignored.duplicate++;
        return null;
      }
      f.payload.copy(p.data, f.offset);
      p.have[index] = 1;
      p.haveCount++;
      this.counters.bytes += f.payload.length;
    } else {
      const b = p.groups.findIndex(([first]) => first === index);
      if (b < 0 || p.groups[b][1] !== f.k || f.payload.length !== this.payload) {
        this.counters.ignored.cut++;
        return null;
      }
      // A group never needs more rows than it has pieces: more is a forger's (bounds the memory).
      if (p.rows[b].has(f.row) || p.rows[b].size >= f.k) {
        this.counters.ignored.duplicate++;
        return null;
      }
      p.rows[b].set(f.row, Buffer.from(f.payload));
      this.counters.parity++;
    }
    const b = p.groups.findIndex(([first, k]) => index >= first && index < first + k);
    this.rebuild(p, b);
    if (p.haveCount < p.have.length) return null;
    this.partial.delete(id);
    this.pending.add(id);
    return { id, codec: p.codec, rawLength: p.rawLength, data: p.data };
  }

  /** Rebuilds group b's lost pieces once it holds as many parity rows as it lacks pieces. */
  private rebuild(p: Partial, b: number): void {
    const [first, k] = p.groups[b];
    let lost = 0;
    for (let i = first; i < first + k; i++) if (!p.have[i]) lost++;
    if (lost === 0 || lost > p.rows[b].size) return;
    const P = this.payload;
    const pieces = Array.from({ length: k }, (_, j) => (p.have[first + j] ? p.data.subarray((first + j) * P, (first + j + 1) * P) : null));
    for (const [j, piece] of recover(pieces, p.rows[b], P)) {
      const at = (first + j) * P;
      piece.copy(p.data, at, 0, Math.min(P, p.data.length - at));
      p.have[first + j] = 1;
      p.haveCount++;
      this.counters.rebuilt++;
    }
    p.rows[b].clear();
  }

  /**
   * What to ask for again: chunks with nothing here yet, and for chunks partly here the
   * offsets of pieces still lacking, less as many per group as parity rows it holds (they
   * count towards rebuilding it), so a repair round resends, or sends parity for, only
   * what was lost.
   */
  nack(): { missing: ChunkId[]; gaps: Array<[ChunkId, number[]]> } {
    const missing: ChunkId[] = [];
    const gaps: Array<[ChunkId, number[]]> = [];
    for (const id of this.missing) {
      if (this.pending.has(id)) continue; // complete: verified soon (if corrupt, asked for next round)
      const p = this.partial.get(id);
      if (!p) {
        missing.push(id);
        continue;
      }
      const lacking: number[] = [];
      p.groups.forEach(([first, k], b) => {
        let spare = p.rows[b].size;
        for (let i = first; i < first + k; i++) if (!p.have[i] && spare-- <= 0) lacking.push(i * this.payload);
      });
      // Every piece here and still incomplete: it was corrupt (forged pieces); start again.
      if (!lacking.length) {
        this.partial.delete(id);
        missing.push(id);
      } else gaps.push([id, lacking]);
    }
    return { missing, gaps };
  }
}
