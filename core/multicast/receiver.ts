/**
 * The multicast receiver: a UDP socket on the session's port, joined to its group on
 * every IPv4 interface of this machine, feeding a Reassembler (reassembly.ts). Verified
 * chunks wait in a queue that `chunks()` drains; nothing unverified ever leaves it.
 *
 * The socket lives in a worker thread (RECEIVE_WORKER) that only reads it and passes the
 * datagrams on in batches (one transferred buffer per BATCH datagrams or BATCH_MS), so the
 * kernel's receive buffer is drained even while this thread decodes, hashes and writes
 * chunks: with the socket here, every such pause of the event loop past what the buffer
 * holds (~100 ms at 400 Mbit/s; net.core.rmem_max caps it) lost datagrams. Reading is
 * also most of the CPU a datagram costs (~6 us of Node's ~9 us here, bench/multicast.ts),
 * and now runs beside the reassembly on a second core. What the worker holds that this
 * thread has not taken yet is bounded (MAX_BACKLOG; past it datagrams are dropped, counted).
 */
import { readFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { ChunkId } from '../store/chunk-id.ts';
import { Reassembler, type Complete } from './reassembly.ts';

export interface ReceiverOptions {
  group: string;
  port: number;
  session: string;
  /** Payload bytes per piece (the session's cut: Assignment.session.payload). */
  payload: number;
  lacking: Iterable<ChunkId>;
  /** The revision's canonical chunk list (summary.ts): the wire names chunks by their place in it. */
  list: readonly ChunkId[];
  /** Join on these addresses only (default: every non-internal IPv4 address). */
  interfaceAddresses?: string[];
  /**
   * Tests only: drop this fraction of incoming datagrams at random, before anything looks
   * at them (a lossy link where the kernel has no netem: sch_netem is not everywhere).
   */
  simulatedLoss?: number;
}

/** Receive buffer asked for: ~100 ms at 300 Mbit/s. Capped by net.core.rmem_max (the kernel doubles what it grants). */
const RECV_BUFFER = 8 * 1024 * 1024;
/** Bytes of datagrams the worker holds for this thread at most (~1.3 s at 400 Mbit/s). */
const MAX_BACKLOG = 64 * 1024 * 1024;

/**
 * The worker (plain JavaScript run with `eval`, so the agent's one-file bundle carries it):
 * binds, joins, and posts {batch, length} buffers of [u32 length][datagram]..., and its
 * counts (read, simulated drops, backlog drops) with each batch and every 100 ms.
 */
const RECEIVE_WORKER = `
const { parentPort, workerData: o } = require('node:worker_threads');
const dgram = require('node:dgram');
const BATCH = 64, BATCH_MS = 2, SIZE = 1 << 18;
const socket = dgram.createSocket({ type: 'udp4', reuseAddr: true });
let buf = Buffer.allocUnsafe(SIZE), at = 0, count = 0, timer = null;
let read = 0, dropped = 0, overflow = 0, backlog = 0, told = -1;
const counts = () => ({ read, dropped, overflow });
const flush = () => {
  if (timer) { clearTimeout(timer); timer = null; }
  if (!count) return;
  // The batch's own memory moves to the main thread (a buffer this large is never pooled: byteOffset 0), uncopied.
  const out = buf.buffer;
  parentPort.postMessage({ batch: out, length: at, ...counts() }, [out]);
  backlog += at; told = read;
  buf = Buffer.allocUnsafe(SIZE); at = 0; count = 0;
};
socket.on('message', (m) => {
  read++;
  if (o.loss > 0 && Math.random() < o.loss) { dropped++; return; }
  if (backlog + at > o.maxBacklog) { overflow++; return; }
  if (at + 4 + m.length > SIZE) flush();
  buf.writeUInt32LE(m.length, at);
  m.copy(buf, at + 4);
  at += 4 + m.length; count++;
  if (count >= BATCH) flush(); else if (!timer) timer = setTimeout(flush, BATCH_MS);
});
socket.on('error', () => {});
setInterval(() => { if (read !== told) { told = read; parentPort.postMessage(counts()); } }, 100).unref();
parentPort.on('message', (m) => { if (m.taken) backlog -= m.taken; });
socket.bind(o.port, () => {
  try { socket.setRecvBufferSize(o.recvBuffer); } catch {}
  let joined = 0;
  for (const address of o.addresses) { try { socket.addMembership(o.group, address); joined++; } catch {} }
  parentPort.postMessage({ joined });
});
`;

export class MulticastReceiver {
  readonly reassembler: Reassembler;
  private readonly worker: Worker;
  /** Completed objects, their chunks verified as `chunks()` hands them out. */
  private readonly queue: Complete[] = [];
  private wake: (() => void) | null = null;
  private closed = false;

  /** Datagrams dropped by `simulatedLoss`. */
  simulatedDrops = 0;
  /** Datagrams dropped because this thread fell MAX_BACKLOG behind the worker. */
  backlogDrops = 0;
  /** Datagrams read from the socket. */
  private read = 0;
  /** The kernel's count of datagrams dropped for full receive buffers when the socket opened. */
  private readonly kernelDrops0 = rcvbufErrors();

  private constructor(worker: Worker, reassembler: Reassembler) {
    this.worker = worker;
    this.reassembler = reassembler;
    worker.on('message', (m: { batch?: ArrayBuffer; length?: number; read?: number; dropped?: number; overflow?: number }) => {
      if (m.read !== undefined) [this.read, this.simulatedDrops, this.backlogDrops] = [m.read, m.dropped!, m.overflow!];
      if (!m.batch || this.closed) return;
      const batch = Buffer.from(m.batch, 0, m.length);
      for (let at = 0; at + 4 <= batch.length; ) {
        const length = batch.readUInt32LE(at);
        const done = this.reassembler.take(batch.subarray(at + 4, at + 4 + length));
        at += 4 + length;
        if (done?.chunks.length) {
          this.queue.push(done);
          this.wake?.();
        }
      }
      worker.postMessage({ taken: batch.length });
    });
    worker.on('error', () => this.close());
  }

  static async open(o: ReceiverOptions): Promise<MulticastReceiver> {
    const addresses = o.interfaceAddresses ?? Object.values(networkInterfaces()).flatMap((list) => (list ?? []).filter((a) => a.family === 'IPv4' && !a.internal).map((a) => a.address));
    const loss = Math.min(1, Math.max(0, o.simulatedLoss ?? 0));
    const worker = new Worker(RECEIVE_WORKER, { eval: true, workerData: { port: o.port, group: o.group, addresses, loss, recvBuffer: RECV_BUFFER, maxBacklog: MAX_BACKLOG } });
    let joined: number;
    let failed = (_err: Error) => {};
    const exited = (code: number) => failed(new Error(`the receiving thread ended (${code})`));
    try {
      joined = await new Promise<number>((resolve, reject) => {
        failed = reject;
        worker.once('error', reject);
        worker.once('exit', exited);
        worker.once('message', (m: { joined: number }) => resolve(m.joined));
      });
    } catch (err) {
      void worker.terminate();
      throw new Error(`could not receive on port ${o.port}: ${(err as Error).message}`);
    }
    // Only ours: the Worker keeps listeners of its own.
    worker.off('error', failed);
    worker.off('exit', exited);
    if (!joined) {
      void worker.terminate();
      throw new Error(`could not join multicast group ${o.group} on any interface (${addresses.join(', ') || 'none'})`);
    }
    return new MulticastReceiver(worker, new Reassembler(o.session, o.lacking, o.payload, o.list));
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
        for (const chunk of verified) yield chunk;
        // Let the worker's batches in between objects (a window's objects complete together).
        if (!verified.length) await new Promise((r) => setImmediate(r));
      }
      if (stopped || this.closed || this.reassembler.missing.size === 0) return;
      await new Promise<void>((r) => (this.wake = r));
      this.wake = null;
    }
  }

  /**
   * Resolves once no datagram has been read for `quietMs`, or after `maxMs`: at a round's
   * end the socket may still hold a backlog (a busy node reads late: up to the 8 MiB
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
    return { datagrams: this.read + kernel, lost: this.simulatedDrops + this.backlogDrops + kernel };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.wake?.();
    void this.worker.terminate();
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
