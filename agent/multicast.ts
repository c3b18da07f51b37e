/**
 * The agent's multicast mode: a chunk reader for sync (core/tree/sync.ts) that receives
 * the chunks this node lacks from a multicast session instead of fetching them, so the
 * scan, the seeds from the node's disks, the staging and the writes are exactly those of
 * a unicast deploy, and so are the phases after it.
 *
 * Sync asks its reader for everything it still needs in one `getMany` call of its data
 * phase (after it has scanned the disks): that list is what the node lacks. The reader
 *   1. registers it with the server and polls every --poll-s until a session includes it
 *      (bounded by --multicast-wait-s, then unicast);
 *   2. joins the session's group, says it is ready, and hands sync each chunk as it is
 *      reassembled and BLAKE3-checked (nothing unverified is written);
 *   3. polls the session every SESSION_POLL_MS; after each round it reports what it still
 *      lacks (whole chunks, and lost datagram offsets of chunks partly here);
 *   4. when the server drops it (slow, lossy, silent) or the session ends or the server is
 *      lost, fetches whatever is still missing over unicast HTTP (the ordinary path).
 * Directory objects (loaded before the data phase) always come over unicast.
 */
import { API } from '../core/api/endpoints.ts';
import type { Assignment } from '../core/multicast/hub.ts';
import { MulticastReceiver } from '../core/multicast/receiver.ts';
import { canonicalChunks, encodeLacking } from '../core/multicast/summary.ts';
import type { ChunkId } from '../core/store/chunk-id.ts';
import type { ChunkReader } from '../core/store/interfaces.ts';
import type { SyncProgress } from '../core/tree/sync.ts';
import type { AgentClient } from './client.ts';

/** How often a receiver asks how the session goes (round ends, drops). */
const SESSION_POLL_MS = 250;
/** After a round's last datagram, the NACK waits until none has been read for this long (MulticastReceiver.settled). */
const ROUND_GRACE_MS = 200;
/** Polls in a row that may fail before the session is given up for unicast. */
const MAX_POLL_FAILURES = 40;

export interface MulticastOptions {
  /** Between polls while waiting for a session (the spec: 30 s). */
  pollMs: number;
  /** Give up waiting for a session after this long and deploy over unicast. */
  maxWaitMs: number;
}

export interface MulticastTally {
  multicastBytes: number;
  unicastChunks: number;
  ignored: number;
  corrupt: number;
  fellBack?: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class MulticastReader implements Pick<ChunkReader, 'get' | 'getMany'> {
  readonly tally: MulticastTally = { multicastBytes: 0, unicastChunks: 0, ignored: 0, corrupt: 0 };
  private readonly client: AgentClient;
  private readonly o: MulticastOptions & { node: string; image: string; revision: number; tree: ChunkId; progress: SyncProgress; log: (line: string) => void; status: (message: string) => void };
  /** The objects sync loaded before its data phase (the directory objects): the registration walks them again. */
  private seen: Map<ChunkId, Buffer> | null = new Map();

  constructor(client: AgentClient, o: MulticastReader['o']) {
    this.client = client;
    this.o = o;
  }

  async get(id: ChunkId): Promise<Buffer> {
    const data = this.seen?.get(id) ?? (await this.client.store.get(id));
    if (this.o.progress.phase !== 'data') this.seen?.set(id, data);
    return data;
  }

  async *getMany(ids: Iterable<ChunkId>): AsyncIterable<[ChunkId, Buffer]> {
    if (this.o.progress.phase !== 'data') {
      for await (const [id, data] of this.client.store.getMany(ids)) {
        this.seen?.set(id, data);
        yield [id, data];
      }
      return;
    }
    const remaining = new Set(ids);
    if (remaining.size) {
      try {
        for await (const [id, data] of this.receive([...remaining])) {
          if (!remaining.delete(id)) continue;
          yield [id, data];
        }
      } catch (err) {
        this.tally.fellBack = `multicast failed: ${(err as Error).message}`;
      }
    }
    if (remaining.size) {
      this.o.log(`multicast: ${this.tally.fellBack ?? 'left'}; fetching the ${remaining.size} chunks still missing over unicast`);
      this.o.status(`unicast: ${remaining.size} chunks (${this.tally.fellBack ?? ''})`.slice(0, 2000));
      this.tally.unicastChunks = remaining.size;
      yield* this.client.store.getMany(remaining);
    }
  }

  /** Registers, waits for a session, and yields the verified chunks it receives. */
  private async *receive(asked: ChunkId[]): AsyncGenerator<[ChunkId, Buffer]> {
    const { node } = this.o;
    // The compact summary: a bitmap over the revision's sorted chunk ids (core/multicast/summary.ts),
    // from the directory objects sync loaded (a miss is fetched). An id outside the list stays for unicast.
    const seen = this.seen ?? new Map<ChunkId, Buffer>();
    this.seen = null;
    const all = await canonicalChunks({ get: async (id) => seen.get(id) ?? this.client.store.get(id), getMany: (ids) => this.client.store.getMany(ids) }, this.o.tree);
    const inList = new Set(all);
    const lacking = asked.filter((id) => inList.has(id));
    const summary = encodeLacking(all, lacking);
    const register = () => this.client.api.call(API.multicastRegister, { params: { name: node }, body: { image: this.o.image, revision: this.o.revision, ...summary } });
    let a: Assignment = await register();
    this.o.log(`multicast: registered, lacking ${lacking.length} of ${all.length} chunks (summary ${summary.lacking.length} bytes); waiting for a session (polling every ${this.o.pollMs / 1000} s)`);
    this.o.status(`multicast: waiting for a session (lacking ${lacking.length} chunks)`);
    const waitUntil = Date.now() + this.o.maxWaitMs;
    while (a.state === 'waiting' || a.state === 'unknown') {
      if (Date.now() >= waitUntil) {
        this.tally.fellBack = `no session within ${this.o.maxWaitMs / 1000} s`;
        return;
      }
      await sleep(Math.min(this.o.pollMs, Math.max(0, waitUntil - Date.now())));
      a = await this.client.api.call(API.multicastPoll, { params: { name: node } });
      if (a.state === 'unknown') a = await register(); // the server restarted
    }
    if (a.state !== 'joining' || !a.session) {
      this.tally.fellBack = `told ${a.state}${a.message ? `: ${a.message}` : ''}`;
      return;
    }
    const session = a.session;
    // CLONER_MULTICAST_TEST_LOSS: tests on kernels without netem simulate a lossy link.
    const receiver = await MulticastReceiver.open({ group: session.group, port: session.port, session: session.id, payload: session.payload, lacking, list: all, simulatedLoss: Number(process.env.CLONER_MULTICAST_TEST_LOSS) || 0 });
    let stop: () => void = () => {};
    const stopped = new Promise<void>((r) => (stop = r));
    let ending = false;
    try {
      await this.client.api.call(API.multicastReady, { params: { name: node }, body: { session: session.id } });
      this.o.log(`multicast: in session ${session.id} (${session.group}:${session.port})`);
      this.o.status(`multicast: session ${session.id}`);
      const watcher = this.watch(session, receiver, () => ending).finally(stop);
      for await (const chunk of receiver.chunks(stopped)) {
        this.tally.multicastBytes += chunk[1].length;
        yield chunk;
      }
      ending = true;
      stop();
      await watcher;
      if (receiver.reassembler.missing.size === 0) {
        // Done: say so now rather than at the round's end, so the session need not wait for us.
        const now = await this.client.once.call(API.multicastPoll, { params: { name: node } }).catch(() => null);
        if (now?.session?.id === session.id && now.state !== 'done' && now.state !== 'unicast') {
          await this.client.once.call(API.multicastReport, { params: { name: node }, body: { session: session.id, round: Math.max(1, now.session.round), missing: [], gaps: [] } }).catch(() => null);
        }
      }
    } finally {
      ending = true;
      const c = receiver.reassembler.counters;
      this.tally.ignored = Object.values(c.ignored).reduce((x, y) => x + y, 0);
      this.tally.corrupt = c.corrupt;
      this.o.log(`multicast: ${c.chunks} chunks received (${c.datagrams} datagrams${receiver.simulatedDrops ? `, ${receiver.simulatedDrops} dropped by CLONER_MULTICAST_TEST_LOSS` : ''}; ignored ${JSON.stringify(Object.fromEntries(Object.entries(c.ignored).filter(([, n]) => n > 0)))}, ${c.corrupt} corrupt chunks dropped)`);
      receiver.close();
    }
  }

  /** Follows the session: a NACK after each round; resolves when done, dropped or lost. */
  private async watch(session: NonNullable<Assignment['session']>, receiver: MulticastReceiver, ending: () => boolean): Promise<void> {
    const { node } = this.o;
    let reported = 0;
    let failures = 0;
    while (!ending()) {
      await sleep(SESSION_POLL_MS);
      let a: Assignment;
      try {
        // The poll carries what this node read and lost, which the sender's rate follows.
        a = await this.client.once.call(API.multicastProgress, { params: { name: node }, body: { session: session.id, ...receiver.progress() } });
        failures = 0;
      } catch (err) {
        if ((err as { code?: string }).code === 'NOT_IN_SESSION') {
          this.tally.fellBack = `dropped from the session: ${(err as Error).message}`;
          return;
        }
        if (++failures >= MAX_POLL_FAILURES) {
          this.tally.fellBack = `lost the server: ${(err as Error).message}`;
          return;
        }
        continue;
      }
      if (a.state === 'unicast' || a.state === 'unknown' || a.session?.id !== session.id) {
        this.tally.fellBack = `dropped from the session: ${a.message ?? a.state}`;
        return;
      }
      if (receiver.reassembler.missing.size === 0) return;
      if (a.state === 'done') {
        // The session sent all it would (a chunk it left to unicast: see hub.ts admit).
        this.tally.fellBack = `the session left ${receiver.reassembler.missing.size} chunks to unicast`;
        return;
      }
      const s = a.session;
      if (s.sending || s.round <= reported) continue;
      await receiver.settled(ROUND_GRACE_MS);
      const nack = receiver.reassembler.nack();
      await this.client.api.call(API.multicastReport, { params: { name: node }, body: { session: session.id, round: s.round, ...nack } });
      reported = s.round;
      if (!nack.missing.length && !nack.gaps.length) return;
    }
  }
}
