/**
 * The multicast sender: one UDP socket bound to the interface facing the nodes (TTL 1 by
 * default, loopback off), and `sendRound`, which reads each chunk in its stored, compressed
 * form (getEncoded: no decode or re-encode on the server), packs chunks in the order given
 * into objects of up to OBJECT_PIECES pieces (wire.ts; it remembers which chunks each
 * object holds, so a later round can send it again or repair it) and sends them as MTU-sized
 * datagrams paced by a token bucket (pacer.ts), BATCH at a time, on a socket connected to
 * the group. The hub may change the rate while a round runs (rate.ts).
 *
 * Repairs: given each receiver's lost piece offsets of an object, 'resend' sends the union
 * of them again; 'parity' sends, per parity group, as many new Reed-Solomon rows (rs.ts)
 * as the receiver that lost most in that group lacks, so one datagram repairs a different
 * loss at every receiver: with 8 receivers losing 1% each, the union costs ~1-0.99^8 =
 * 7.7% of the data, the rows ~the worst receiver's share. Rows already sent to a group are
 * never sent again (receivers keep the rows they got); a group out of rows is resent.
 * The datagrams of a window of objects are interleaved (DEFAULT_WINDOW).
 */
import dgram from 'node:dgram';
import type { ChunkId } from '../store/chunk-id.ts';
import type { EncodedChunkReader } from '../store/interfaces.ts';
import { TokenBucket } from './pacer.ts';
import { MAX_ROWS } from './rs.ts';
import { COUNT_BYTES, DATA_HEADER_BYTES, dataFrame, encodeObject, ENTRY_BYTES, type Entry, groupsOf, IP_UDP_BYTES, MAX_MULTICAST_CHUNK, maxEntries, OBJECT_PIECES, PARITY_HEADER_BYTES, parityFrame, payloadBytes, piecesOf } from './wire.ts';

/** An object sent (wire.ts): its first chunk's id (its name), its chunks, its length in bytes. */
export interface SentObject {
  first: ChunkId;
  members: ChunkId[];
  length: number;
}

/** A datagram to send: its bytes, whether it is parity, and its bytes that are not chunk bytes. */
type Planned = [Buffer, boolean, number];

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

export type RepairMode = 'parity' | 'resend';

export interface SenderOptions {
  group: string;
  port: number;
  /** IPv4 address of the interface to send from. */
  interfaceAddress: string;
  ttl?: number;
  /** Bytes per second on the wire (datagram bytes plus IP/UDP headers). */
  rate: number;
  mtu?: number;
  /** How lost pieces are repaired (default parity). */
  repair?: RepairMode;
  /** Encoded bytes of chunks whose datagrams are interleaved (default DEFAULT_WINDOW). */
  windowBytes?: number;
}

/**
 * Datagrams are sent interleaved across a window of chunks this large: a receiver that
 * stops reading for a while (a busy node's full receive buffer) then loses a few pieces
 * of many chunks, which parity repairs for every receiver at once, instead of whole
 * chunks, which must be sent whole again; receivers' bursts in one window cost the worst
 * burst, not their sum. bench/multicast.ts, 8 nodes on 2 busy cores: round 2 sent 65% of
 * the union again without it (different whole chunks per node). Memory: one window on the
 * sender, up to one of partial chunks on a receiver.
 */
export const DEFAULT_WINDOW = 32 * 1024 * 1024;

export interface RoundResult {
  /** Chunks sent whole or repaired (each object's, every time it was made). */
  chunks: number;
  datagrams: number;
  /** Datagram bytes sent (UDP payloads). */
  bytes: number;
  /** Of which the datagrams' headers and the objects' directories (wire.ts), and the parity datagrams. */
  headerBytes: number;
  parityBytes: number;
  /** Chunks the store could not give (gone since the session began). */
  unreadable: ChunkId[];
}

/** Datagrams queued in Node (the kernel's send buffer full) before sending pauses: bounds the sender's memory. */
const MAX_QUEUED = 64;
/**
 * Datagrams paced and sent together: one token-bucket wait per batch, and each send on the
 * socket connected to the group, without an address or a callback (Node then hands the
 * datagram to the kernel at once). In a netns here: 8-9 us of CPU per datagram instead of
 * 12-17 us, which sent 1.4 Gbit/s instead of 0.5 unpaced (/tmp micro-measure, loaded machine).
 */
const BATCH = 16;

export class MulticastSender {
  readonly o: SenderOptions;
  private readonly socket: dgram.Socket;
  private readonly bucket: TokenBucket;
  private readonly payload: number;
  /** Bytes handed to the kernel so far, with IP/UDP headers (what the rate counts). */
  wireBytes = 0;
  /** Parity rows used so far, by object (its first chunk's id) and group index. */
  private readonly rowsUsed = new Map<string, number>();
  /** The objects sent, by their first chunk's id, and each chunk's object. */
  private readonly objects = new Map<ChunkId, SentObject>();
  private readonly firstOf = new Map<ChunkId, ChunkId>();

  private constructor(o: SenderOptions, socket: dgram.Socket) {
    this.o = o;
    this.socket = socket;
    this.bucket = new TokenBucket(o.rate);
    this.payload = payloadBytes(o.mtu ?? 1500);
  }

  static async open(o: SenderOptions): Promise<MulticastSender> {
    const socket = dgram.createSocket({ type: 'udp4' });
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind({ address: o.interfaceAddress, port: 0 }, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    socket.setMulticastInterface(o.interfaceAddress);
    socket.setMulticastTTL(o.ttl ?? 1);
    socket.setMulticastLoopback(false);
    // Connected after IP_MULTICAST_IF is set: Linux picks the route (the interface) at connect.
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.connect(o.port, o.group, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    try {
      socket.setSendBufferSize(4 * 1024 * 1024);
    } catch {
      // capped by net.core.wmem_max: the default will do, with pacing
    }
    socket.on('error', () => {});
    return new MulticastSender(o, socket);
  }

  /** Bytes per second now (pacer.ts). */
  get rate(): number {
    return this.bucket.rate;
  }

  /** Paces at `rate` bytes per second from now on (rate.ts adapts it). */
  setRate(rate: number): void {
    this.bucket.setRate(rate);
  }

  /** Payload bytes per datagram (receivers name lost pieces by offsets this far apart). */
  get payloadBytes(): number {
    return this.payload;
  }

  /** The object (wire.ts) a chunk was sent in, by its first chunk's id; undefined before it was sent. */
  objectOf(id: ChunkId): SentObject | undefined {
    const first = this.firstOf.get(id);
    return first === undefined ? undefined : this.objects.get(first);
  }

  /**
   * Sends, once each: the chunks of `whole` (a chunk sent before: its whole object again;
   * the others packed into new objects, in order: wire.ts) and, of the objects in `gaps`
   * (by their first chunk, each receiver's lost piece offsets), only a repair: those
   * pieces again, or parity rows. `indexOf` gives a chunk's index in the revision's
   * canonical list (object names and directories use it). Stops early when `signal` aborts.
   */
  async sendRound(store: EncodedChunkReader, session: string, indexOf: (id: ChunkId) => number, whole: Iterable<ChunkId>, gaps?: Map<ChunkId, number[][]>, signal?: AbortSignal): Promise<RoundResult> {
    const result: RoundResult = { chunks: 0, datagrams: 0, bytes: 0, headerBytes: 0, parityBytes: 0, unreadable: [] };
    const batch: Buffer[] = [];
    let batchBytes = 0;
    const sendBatch = async () => {
      await this.bucket.take(batchBytes);
      for (const frame of batch) this.socket.send(frame);
      this.wireBytes += batchBytes;
      batch.length = 0;
      batchBytes = 0;
      while (this.socket.getSendQueueCount() > MAX_QUEUED) await new Promise((r) => setTimeout(r, 1));
    };
    // Datagram bytes that are not chunk bytes: each header, and each object's directory (in its piece 0).
    const send = async ([frame, parity, overhead]: Planned) => {
      batch.push(frame);
      batchBytes += frame.length + IP_UDP_BYTES;
      result.datagrams++;
      result.bytes += frame.length;
      result.headerBytes += overhead;
      if (parity) result.parityBytes += frame.length;
      if (batch.length >= BATCH) await sendBatch();
    };
    // The window's datagrams, interleaved: the i-th of every object, then the (i+1)-th...
    let window: Planned[][] = [];
    let windowBytes = 0;
    const flush = async () => {
      for (const planned of interleave(window)) if (!signal?.aborted) await send(planned);
      if (batch.length) await sendBatch();
      window = [];
      windowBytes = 0;
    };
    const add = async (frames: Planned[], bytes: number) => {
      window.push(frames);
      windowBytes += bytes;
      if (windowBytes >= (this.o.windowBytes ?? DEFAULT_WINDOW)) await flush();
    };
    const dataFrames = (name: number, object: Buffer, pieces: Iterable<number>): Planned[] => {
      const dir = COUNT_BYTES + ENTRY_BYTES * object.readUInt16BE(0);
      return [...pieces].map((piece) => [dataFrame(session, name, object, this.payload, piece), false, DATA_HEADER_BYTES + (piece === 0 ? dir : 0)]);
    };
    const read = async (id: ChunkId) => {
      try {
        const chunk = await store.getEncoded(id);
        // Too large for the wire (receivers refuse it, wire.ts): it goes over unicast.
        return chunk.data.length > MAX_MULTICAST_CHUNK || chunk.rawLength > MAX_MULTICAST_CHUNK ? null : chunk;
      } catch {
        return null;
      }
    };
    // New objects: chunks packed in order while they fit OBJECT_PIECES pieces and a piece-0 directory.
    let packing: Array<Entry & { data: Buffer; id: ChunkId }> = [];
    let packed = COUNT_BYTES;
    const seal = async () => {
      if (!packing.length) return;
      const object = encodeObject(packing);
      const sent: SentObject = { first: packing[0].id, members: packing.map((c) => c.id), length: object.length };
      this.objects.set(sent.first, sent);
      for (const id of sent.members) this.firstOf.set(id, sent.first);
      result.chunks += packing.length;
      packing = [];
      packed = COUNT_BYTES;
      await add(dataFrames(indexOf(sent.first), object, range(piecesOf(object.length, this.payload))), object.length);
    };
    const limit = OBJECT_PIECES * this.payload;
    const entries = maxEntries(this.payload);
    const done = new Set<ChunkId>();
    for (const id of whole) {
      if (signal?.aborted) break;
      const known = this.objectOf(id);
      if (known) {
        if (done.has(known.first)) continue;
        done.add(known.first);
        const object = await this.rebuild(store, indexOf, known, result);
        if (object) await add(dataFrames(indexOf(known.first), object, range(piecesOf(object.length, this.payload))), object.length);
        continue;
      }
      const chunk = await read(id);
      if (!chunk) {
        result.unreadable.push(id);
        continue;
      }
      if (packing.length && (packed + ENTRY_BYTES + chunk.data.length > limit || packing.length >= entries)) await seal();
      packing.push({ id, index: indexOf(id), codec: chunk.codec, rawLength: chunk.rawLength, encodedLength: chunk.data.length, data: chunk.data });
      packed += ENTRY_BYTES + chunk.data.length;
    }
    await seal();
    for (const [first, lost] of gaps ?? []) {
      if (signal?.aborted) break;
      const known = this.objects.get(first);
      if (!known || done.has(first)) continue;
      done.add(first);
      const object = await this.rebuild(store, indexOf, known, result);
      if (!object) continue;
      const name = indexOf(first);
      const repair = planRepair(first, object.length, this.payload, lost, this.rowsUsed, this.o.repair ?? 'parity');
      // A repair makes only the datagrams it resends (in a repair round most objects have a gap somewhere).
      const frames = dataFrames(name, object, [...repair.resend].sort((a, b) => a - b).map((o) => o / this.payload));
      for (const [f, k, row] of repair.rows) frames.push([parityFrame(session, name, object, this.payload, f, k, row), true, PARITY_HEADER_BYTES]);
      await add(frames, frames.length * this.payload);
    }
    await flush();
    while (this.socket.getSendQueueCount() > 0) await new Promise((r) => setTimeout(r, 1));
    return result;
  }

  /** An object sent before, made again from the store; null (its chunks unreadable: left to unicast) if a chunk is gone. */
  private async rebuild(store: EncodedChunkReader, indexOf: (id: ChunkId) => number, o: SentObject, result: RoundResult): Promise<Buffer | null> {
    const chunks = [];
    for (const id of o.members) {
      let chunk;
      try {
        chunk = await store.getEncoded(id);
      } catch {
        chunk = null;
      }
      if (!chunk) {
        result.unreadable.push(...o.members);
        this.objects.delete(o.first);
        for (const m of o.members) this.firstOf.delete(m);
        return null;
      }
      chunks.push({ index: indexOf(id), codec: chunk.codec, rawLength: chunk.rawLength, encodedLength: chunk.data.length, data: chunk.data });
    }
    result.chunks += chunks.length;
    return encodeObject(chunks);
  }

  /** Sends one raw datagram to the group (tests: forged input). */
  sendRaw(datagram: Buffer): Promise<void> {
    return new Promise((resolve) => this.socket.send(datagram, () => resolve()));
  }

  close(): void {
    this.socket.close();
  }
}

/**
 * What repairs a chunk of `encodedLength` bytes cut in `payload`-byte pieces whose
 * receivers lost the pieces at `lost` (offsets, one list per receiver): the pieces to
 * resend, and parity rows to send as [first piece, k, row]. `used` (by "id:group") counts
 * the rows a group has had, and is updated. With 'parity', a group gets as many new rows
 * as its worst receiver lacks there, unless that is no fewer than the pieces lost in it
 * altogether (one receiver lost them: resend) or the group is out of rows.
 */
export function planRepair(id: ChunkId, encodedLength: number, payload: number, lost: number[][], used: Map<string, number>, mode: RepairMode): { resend: Set<number>; rows: Array<[number, number, number]> } {
  const resend = new Set<number>();
  const rows: Array<[number, number, number]> = [];
  if (mode === 'resend') {
    for (const list of lost) for (const o of list) resend.add(o);
    return { resend, rows };
  }
  groupsOf(piecesOf(encodedLength, payload)).forEach(([first, k], b) => {
    const inGroup = (o: number) => o / payload >= first && o / payload < first + k;
    const need = Math.max(0, ...lost.map((list) => list.filter(inGroup).length));
    if (need === 0) return;
    const union = new Set(lost.flatMap((list) => list.filter(inGroup)));
    const tag = `${id}:${b}`;
    const had = used.get(tag) ?? 0;
    if (had + need > MAX_ROWS || need >= union.size) {
      for (const o of union) resend.add(o);
      return;
    }
    for (let j = 0; j < need; j++) rows.push([first, k, had + j]);
    used.set(tag, had + need);
  });
  return { resend, rows };
}

/** The items of `lists` interleaved: the first of each list, then the second of each... */
export function* interleave<T>(lists: T[][]): Generator<T> {
  for (let i = 0; lists.some((l) => i < l.length); i++) for (const l of lists) if (i < l.length) yield l[i];
}
