/**
 * The multicast receiver: a UDP socket on the session's port, joined to its group on
 * every IPv4 interface of this machine, feeding a Reassembler (reassembly.ts). Verified
 * chunks wait in a queue that `chunks()` drains; nothing unverified ever leaves it.
 */
import dgram from 'node:dgram';
import { readFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import type { ChunkId } from '../store/chunk-id.ts';
import type { EncodedChunk } from '../store/codec.ts';
import { Reassembler } from './reassembly.ts';

export interface ReceiverOptions {
  group: string;
  port: number;
  session: string;
  /** Payload bytes per piece (the session's cut: Assignment.session.payload). */
  payload: number;
  lacking: Iterable<ChunkId>;
  /** Join on these addresses only (default: every non-internal IPv4 address). */
  interfaceAddresses?: string[];
  /**
   * Tests only: drop this fraction of incoming datagrams at random, before anything looks
   * at them (a lossy link where the kernel has no netem: sch_netem is not everywhere).
   */
  simulatedLoss?: number;
}

/** Receive buffer asked for: ~100 ms at 300 Mbit/s, so a pause of the event loop (a disk write) loses nothing. Capped by net.core.rmem_max. */
const RECV_BUFFER = 8 * 1024 * 1024;

export class MulticastReceiver {
  readonly reassembler: Reassembler;
  private readonly socket: dgram.Socket;
  /** Completed chunks, verified as `chunks()` hands them out. */
  private readonly queue: Array<EncodedChunk & { id: ChunkId }> = [];
  private wake: (() => void) | null = null;
  private closed = false;

  /** Datagrams dropped by `simulatedLoss`. */
  simulatedDrops = 0;
  /** Datagrams read from the socket. */
  private read = 0;
  /** The kernel's count of datagrams dropped for full receive buffers when the socket opened. */
  private readonly kernelDrops0 = rcvbufErrors();

  private constructor(socket: dgram.Socket, reassembler: Reassembler, loss: number) {
    this.socket = socket;
    this.reassembler = reassembler;
    socket.on('message', (msg) => {
      this.read++;
      if (loss > 0 && Math.random() < loss) {
        this.simulatedDrops++;
        return;
      }
      const done = this.reassembler.take(msg);
      if (done) {
        this.queue.push(done);
        this.wake?.();
      }
    });
    socket.on('error', () => {});
  }

  static async open(o: ReceiverOptions): Promise<MulticastReceiver> {
    const socket = dgram.createSocket({ type: 'udp4', reuseAddr: true });
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(o.port, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    try {
      socket.setRecvBufferSize(RECV_BUFFER);
    } catch {
      // capped by net.core.rmem_max
    }
    const addresses = o.interfaceAddresses ?? Object.values(networkInterfaces()).flatMap((list) => (list ?? []).filter((a) => a.family === 'IPv4' && !a.internal).map((a) => a.address));
    let joined = 0;
    for (const address of addresses) {
      try {
        socket.addMembership(o.group, address);
        joined++;
      } catch {
        // an interface that cannot join (down, no multicast): the others may
      }
    }
    if (!joined) {
      socket.close();
      throw new Error(`could not join multicast group ${o.group} on any interface (${addresses.join(', ') || 'none'})`);
    }
    return new MulticastReceiver(socket, new Reassembler(o.session, o.lacking, o.payload), Math.min(1, Math.max(0, o.simulatedLoss ?? 0)));
  }

  /** Verified chunks as they complete, until `stop()` resolves or the receiver closes. */
  async *chunks(stop: Promise<unknown>): AsyncGenerator<[ChunkId, Buffer]> {
    let stopped = false;
    void stop.then(() => {
      stopped = true;
      this.wake?.();
    });
    for (;;) {
      while (this.queue.length) {
        const verified = this.reassembler.verify(this.queue.shift()!);
        if (verified) yield verified;
        // Let the socket be read between chunks (a window's chunks complete together).
        else await new Promise((r) => setImmediate(r));
      }
      if (stopped || this.closed || this.reassembler.missing.size === 0) return;
      await new Promise<void>((r) => (this.wake = r));
      this.wake = null;
    }
  }

  /**
   * Resolves once no datagram has been read for `quietMs`, or after `maxMs`: at a round's
   * end the socket may still hold a backlog (a busy node reads late: up to the 4 MiB
   * receive buffer), which a NACK sent at once would report lost and have sent again.
   * Each check yields to the event loop's poll phase (setImmediate) so that a backlog
   * is read before its silence is believed.
   */
  async settled(quietMs = 200, maxMs = 5000): Promise<void> {
    const until = performance.now() + maxMs;
    let seen = this.read;
    let quietSince = performance.now();
    while (performance.now() < until && !this.closed) {
      await new Promise((r) => setTimeout(r, 50));
      await new Promise((r) => setImmediate(r));
      if (this.read !== seen) {
        seen = this.read;
        quietSince = performance.now();
      } else if (performance.now() - quietSince >= quietMs) return;
    }
  }

  /**
   * Datagrams of the group that reached this node so far, and of them those lost here: dropped
   * by the kernel for a full receive buffer (Udp RcvbufErrors since the socket opened: this
   * machine's, the agent being its only UDP receiver) or by `simulatedLoss`. The server's
   * rate control takes the loss from the changes (rate.ts).
   */
  progress(): { datagrams: number; lost: number } {
    const kernel = Math.max(0, rcvbufErrors() - this.kernelDrops0);
    return { datagrams: this.read + kernel, lost: this.simulatedDrops + kernel };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.wake?.();
    this.socket.close();
  }
}

/** The kernel's Udp RcvbufErrors (this network namespace's), or 0 where /proc/net/snmp cannot say. */
function rcvbufErrors(): number {
  try {
    const udp = readFileSync('/proc/net/snmp', 'latin1').split('\n').filter((l) => l.startsWith('Udp: '));
    const n = Number(udp[1]?.split(' ')[udp[0].split(' ').indexOf('RcvbufErrors')]);
    return Number.isFinite(n) ? n : 0;
  } catch {
    return 0;
  }
}
