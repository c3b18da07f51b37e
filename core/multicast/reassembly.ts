/**
 * Receiver-side bookkeeping: which chunks this node still lacks, the objects (wire.ts) in
 * the making with their pieces and parity rows, and the counters of what was ignored.
 *
 * A datagram is kept only when its lengths agree with the first datagram seen of that
 * object and a data piece sits on the session's cut (length `payload`, or the object's
 * remainder for its last piece); a parity row must start a group (wire.ts groupsOf). A
 * group holding as many rows as it lacks pieces is rebuilt (rs.ts). Once piece 0 is here
 * the object's directory says which chunks it holds: one holding none this node lacks is
 * dropped, and its later datagrams are counted unwanted. An object whole in bytes has each
 * chunk this node lacks decoded and BLAKE3-checked (decodeChunk) as `verify` hands it out;
 * one that fails is dropped and counted as corrupt (it is then still missing, and asked
 * for again in the next round). Objects whose directory is not in yet are held up to
 * MAX_UNKNOWN bytes (past it, new ones are ignored as unwanted: a forger cannot make this
 * node hold more).
 */
import { decodeChunk, type EncodedChunk } from '../store/codec.ts';
import type { ChunkId } from '../store/chunk-id.ts';
import { recover } from './rs.ts';
import { COUNT_BYTES, decodeFrame, ENTRY_BYTES, groupsOf, piecesOf, readDirectory, type Entry, type Frame, type Rejection } from './wire.ts';

interface Partial {
  data: Buffer;
  /** Piece i received (or rebuilt). */
  have: Uint8Array;
  haveCount: number;
  groups: Array<[number, number]>;
  /** Parity rows held, by group index then row. */
  rows: Array<Map<number, Buffer>>;
  /** Read from piece 0 (null until then). */
  entries: Entry[] | null;
}

export interface ReceiveCounters {
  datagrams: number;
  /** Ignored datagrams by reason (forged, truncated, another session's, not asked for...). */
  ignored: Record<Rejection | 'unwanted' | 'mismatch' | 'duplicate' | 'cut' | 'directory' | 'full', number>;
  /** Chunks whose reassembled bytes did not hash to their id (dropped, asked for again). */
  corrupt: number;
  chunks: number;
  /** Payload bytes accepted into objects (data pieces). */
  bytes: number;
  parity: number;
  /** Pieces rebuilt from parity. */
  rebuilt: number;
}

/** A whole object, not yet verified: its chunks this node lacks. */
export interface Complete {
  object: number;
  chunks: Array<EncodedChunk & { id: ChunkId }>;
}

/** Bytes of objects held before their directory is known (piece 0 lost so far). */
const MAX_UNKNOWN = 64 * 1024 * 1024;
/**
 * Bytes of objects in the making held at most. At 1% loss ~72% of 128-piece objects lack a
 * piece after round 1 and wait here for round 2's repair (~19% of 21-piece chunks sent alone):
 * past this, a new object is refused ('full'), and its chunks are asked for whole again.
 */
export const MAX_HELD = 1024 * 1024 * 1024;

export class Reassembler {
  readonly session: string;
  /** Payload bytes per piece (the session's cut). */
  readonly payload: number;
  /** Chunks still lacked. */
  readonly missing: Set<ChunkId>;
  readonly counters: ReceiveCounters = {
    datagrams: 0,
    ignored: { short: 0, magic: 0, version: 0, type: 0, crc: 0, session: 0, bounds: 0, unwanted: 0, mismatch: 0, duplicate: 0, cut: 0, directory: 0, full: 0 },
    corrupt: 0,
    chunks: 0,
    bytes: 0,
    parity: 0,
    rebuilt: 0,
  };
  /** The revision's canonical chunk list (sorted: summary.ts), which object names and entries index. */
  private readonly list: readonly ChunkId[];
  private readonly partial = new Map<number, Partial>();
  /** Objects done with: complete, or holding nothing this node lacks. */
  private readonly finished = new Set<number>();
  private unknownBytes = 0;
  private heldBytes = 0;
  private readonly maxHeld: number;
  /** Complete, not yet verified (take -> verify), by the chunks they hold. */
  private readonly pending = new Set<ChunkId>();

  constructor(session: string, lacking: Iterable<ChunkId>, payload: number, list: readonly ChunkId[], maxHeld = MAX_HELD) {
    this.maxHeld = maxHeld;
    this.session = session;
    this.payload = payload;
    this.missing = new Set(lacking);
    this.list = list;
  }

  /** Takes one datagram; returns the chunks it completed and verified ([id, raw bytes]). */
  accept(datagram: Buffer): Array<[ChunkId, Buffer]> {
    const done = this.take(datagram);
    return done ? this.verify(done) : [];
  }

  /**
   * Takes one datagram; returns an object it completed, NOT yet verified: `verify` it before
   * use. (The receiver verifies at the pace its consumer takes chunks, so the socket's
   * handler only copies bytes.)
   */
  take(datagram: Buffer): Complete | null {
    this.counters.datagrams++;
    const frame = decodeFrame(datagram, this.session);
    if (typeof frame === 'string') {
      this.counters.ignored[frame]++;
      return null;
    }
    return this.place(frame);
  }

  /** Decodes each chunk of a complete object and checks its BLAKE3: the good ones; a bad one stays lacked. */
  verify(c: Complete): Array<[ChunkId, Buffer]> {
    const out: Array<[ChunkId, Buffer]> = [];
    for (const chunk of c.chunks) {
      this.pending.delete(chunk.id);
      if (!this.missing.has(chunk.id)) continue;
      let raw: Buffer;
      try {
        raw = decodeChunk(chunk);
      } catch {
        // Bad bytes (forged pieces with valid CRCs): take the object again when it is resent.
        this.counters.corrupt++;
        this.finished.delete(c.object);
        continue;
      }
      this.missing.delete(chunk.id);
      this.counters.chunks++;
      out.push([chunk.id, raw]);
    }
    return out;
  }

  private place(f: Frame): Complete | null {
    if (this.finished.has(f.object)) {
      this.counters.ignored.unwanted++;
      return null;
    }
    // The piece must lie on the session's cut of an object this long (checked before anything is held).
    const pieces = piecesOf(f.length, this.payload);
    const index = f.piece;
    const size = f.type === 'data' ? Math.min(this.payload, f.length - index * this.payload) : this.payload;
    if (index >= pieces || f.payload.length !== size) {
      this.counters.ignored.cut++;
      return null;
    }
    let p = this.partial.get(f.object);
    if (!p) {
      if (f.object >= this.list.length) {
        this.counters.ignored.bounds++;
        return null;
      }
      // Held until its directory says whether it is wanted; objects named by a chunk we lack are.
      if (!this.missing.has(this.list[f.object]) && this.unknownBytes + f.length > MAX_UNKNOWN) {
        this.counters.ignored.unwanted++;
        return null;
      }
      if (this.heldBytes + f.length > this.maxHeld) {
        this.counters.ignored.full++;
        return null;
      }
      const groups = groupsOf(pieces);
      p = { data: Buffer.alloc(f.length), have: new Uint8Array(pieces), haveCount: 0, groups, rows: groups.map(() => new Map()), entries: null };
      this.partial.set(f.object, p);
      this.unknownBytes += f.length;
      this.heldBytes += f.length;
    } else if (p.data.length !== f.length) {
      this.counters.ignored.mismatch++;
      return null;
    }
    if (f.type === 'data') {
      if (p.have[index]) {
        this.counters.ignored.duplicate++;
        return null;
      }
      f.payload.copy(p.data, index * this.payload);
      p.have[index] = 1;
      p.haveCount++;
      this.counters.bytes += f.payload.length;
    } else {
      const b = p.groups.findIndex(([first]) => first === index);
      if (b < 0) {
        this.counters.ignored.cut++;
        return null;
      }
      // A group never needs more rows than it has pieces: more is a forger's (bounds the memory).
      if (p.rows[b].has(f.row) || p.rows[b].size >= p.groups[b][1]) {
        this.counters.ignored.duplicate++;
        return null;
      }
      p.rows[b].set(f.row, Buffer.from(f.payload));
      this.counters.parity++;
    }
    const b = p.groups.findIndex(([first, k]) => index >= first && index < first + k);
    this.rebuild(p, b);
    if (!p.entries && p.have[0]) {
      p.entries = readDirectory(p.data, f.object, this.list.length, Math.min(this.payload, p.data.length));
      this.unknownBytes -= p.data.length;
      if (!p.entries) {
        // A forged piece 0 (a valid CRC, a bad directory): drop the object; the true one comes again.
        this.counters.ignored.directory++;
        this.release(f.object, p);
        return null;
      }
      if (!p.entries.some((e) => this.missing.has(this.list[e.index]))) {
        this.release(f.object, p);
        this.finished.add(f.object);
        return null;
      }
    }
    if (p.haveCount < p.have.length) return null;
    this.release(f.object, p);
    this.finished.add(f.object);
    const chunks: Complete['chunks'] = [];
    let at = COUNT_BYTES + ENTRY_BYTES * p.entries!.length;
    for (const e of p.entries!) {
      const id = this.list[e.index];
      if (this.missing.has(id) && !this.pending.has(id)) {
        chunks.push({ id, codec: e.codec, rawLength: e.rawLength, data: p.data.subarray(at, at + e.encodedLength) });
        this.pending.add(id);
      }
      at += e.encodedLength;
    }
    return { object: f.object, chunks };
  }

  private release(name: number, p: Partial): void {
    this.partial.delete(name);
    this.heldBytes -= p.data.length;
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
   * What to ask for again: chunks lacked that no object here holds yet (`missing`), and for
   * objects partly here, named by their first chunk, the offsets of pieces still lacking,
   * less as many per group as parity rows it holds (they count towards rebuilding it), so a
   * repair round resends, or sends parity for, only what was lost. An object whose
   * directory is not here yet is asked for too (the server knows whether this node needs it).
   */
  nack(): { missing: ChunkId[]; gaps: Array<[ChunkId, number[]]> } {
    const held = new Set<ChunkId>();
    const gaps: Array<[ChunkId, number[]]> = [];
    for (const [name, p] of this.partial) {
      for (const e of p.entries ?? []) held.add(this.list[e.index]);
      const lacking: number[] = [];
      p.groups.forEach(([first, k], b) => {
        let spare = p.rows[b].size;
        for (let i = first; i < first + k; i++) if (!p.have[i] && spare-- <= 0) lacking.push(i * this.payload);
      });
      if (lacking.length) gaps.push([this.list[name], lacking]);
    }
    const missing = [...this.missing].filter((id) => !held.has(id) && !this.pending.has(id));
    return { missing, gaps };
  }
}
