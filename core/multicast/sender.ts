/**
 * The multicast sender: one UDP socket bound to the interface facing the nodes (TTL 1 by
 * default, loopback off), and `sendRound`, which reads each chunk once in its stored,
 * compressed form (getEncoded: no decode or re-encode on the server) and sends it as
 * MTU-sized datagrams (wire.ts) paced by a token bucket (pacer.ts).
 */
import dgram from 'node:dgram';
import type { ChunkId } from '../store/chunk-id.ts';
import type { EncodedChunkReader } from '../store/interfaces.ts';
import { TokenBucket } from './pacer.ts';
import { chunkFrames, payloadBytes } from './wire.ts';

export interface SenderOptions {
  group: string;
  port: number;
  /** IPv4 address of the interface to send from. */
  interfaceAddress: string;
  ttl?: number;
  /** Bytes per second on the wire (datagram bytes plus IP/UDP headers). */
  rate: number;
  mtu?: number;
}

export interface RoundResult {
  chunks: number;
  datagrams: number;
  /** Datagram bytes sent (UDP payloads). */
  bytes: number;
  /** Chunks the store could not give (gone since the session began). */
  unreadable: ChunkId[];
}

/** Datagrams handed to the kernel but not yet sent, at most: bounds the sender's memory. */
const MAX_IN_FLIGHT = 256;

export class MulticastSender {
  readonly o: SenderOptions;
  private readonly socket: dgram.Socket;
  private readonly bucket: TokenBucket;
  private readonly payload: number;

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
    try {
      socket.setSendBufferSize(4 * 1024 * 1024);
    } catch {
      // capped by net.core.wmem_max: the default will do, with pacing
    }
    socket.on('error', () => {});
    return new MulticastSender(o, socket);
  }

  /** Payload bytes per datagram (receivers name lost pieces by offsets this far apart). */
  get payloadBytes(): number {
    return this.payload;
  }

  /**
   * Sends every chunk of `ids` once; of a chunk in `gaps` only the datagrams at those
   * offsets (a repair). Stops early when `signal` aborts.
   */
  async sendRound(store: EncodedChunkReader, session: string, ids: Iterable<ChunkId>, gaps?: Map<ChunkId, Set<number>>, signal?: AbortSignal): Promise<RoundResult> {
    const result: RoundResult = { chunks: 0, datagrams: 0, bytes: 0, unreadable: [] };
    let inFlight = 0;
    let drained: (() => void) | null = null;
    const sent = () => {
      inFlight--;
      if (drained && inFlight < MAX_IN_FLIGHT / 2) {
        drained();
        drained = null;
      }
    };
    for (const id of ids) {
      if (signal?.aborted) break;
      let chunk;
      try {
        chunk = await store.getEncoded(id);
      } catch {
        result.unreadable.push(id);
        continue;
      }
      const only = gaps?.get(id);
      let offset = -this.payload;
      for (const frame of chunkFrames(session, id, chunk.codec, chunk.rawLength, chunk.data, this.payload)) {
        offset += this.payload;
        if (only && !only.has(offset)) continue;
        await this.bucket.take(frame.length + 28);
        if (inFlight >= MAX_IN_FLIGHT) await new Promise<void>((r) => (drained = r));
        inFlight++;
        this.socket.send(frame, this.o.port, this.o.group, sent);
        result.datagrams++;
        result.bytes += frame.length;
      }
      result.chunks++;
    }
    while (inFlight > 0) await new Promise<void>((r) => (drained = r)).then(() => undefined, () => undefined);
    return result;
  }

  /** Sends one raw datagram to the group (tests: forged input). */
  sendRaw(datagram: Buffer): Promise<void> {
    return new Promise((resolve) => this.socket.send(datagram, this.o.port, this.o.group, () => resolve()));
  }

  close(): void {
    this.socket.close();
  }
}
