/**
 * Multicast sessions, server side: the nodes waiting in cloner-multicast mode (each
 * registered with its image, revision and the chunks it lacks), and the sessions that
 * image them. The routes (server/multicast.ts) only call in here.
 *
 * A session, in phases:
 *   gathering   selected waiting nodes of the session's image and revision are given the
 *               session at their next poll, join the group and say they are ready; it
 *               starts when --min-receivers (default: every selected node) are ready, or
 *               after --max-wait with whoever is (none: it fails).
 *               Selected nodes that did not get ready in time are told to go unicast.
 *   sending     round r sends the union of what the active receivers lack (round 1:
 *               what they registered; later rounds: what they reported missing, down to
 *               single lost datagrams), each chunk once, packed into objects (sender.ts,
 *               wire.ts: a chunk lacked whole later is sent in its object again; a gap in
 *               an object is repaired), paced at --rate.
 *   collecting  each active receiver reports what it still lacks (a NACK over HTTP);
 *               one that stays silent past REPORT_TIMEOUT (or, polling, does not report
 *               within REPORT_WAITS of them), misses more than MAX_LOSS of
 *               what it was sent in a round (slow or lossy), or still lacks data after
 *               MAX_ROUNDS, is dropped and finishes over unicast, so it never holds the
 *               others back. A receiver lacking nothing is done.
 * The rate: receivers in a session poll by POSTing the datagrams they read and lost so far;
 * while a round is sent, and after each round's reports, the sender's rate follows the
 * loss they report (rate.ts: AIMD on the upper median, never above --rate); each change
 * is logged and shown by multicast-status.
 * A node that registers again while its session sends (it restarted) rejoins it: the
 * next round carries what it lacks; once the session has ended it finishes over unicast.
 * Every wait is bounded, so a session always ends.
 */
import { randomBytes } from 'node:crypto';
import type { ChunkId } from '../store/chunk-id.ts';
import type { EncodedChunkReader } from '../store/interfaces.ts';
import { ClonerError } from '../errors.ts';
import { RateControl, TICK_MS } from './rate.ts';
import { MulticastSender, type RoundResult } from './sender.ts';
import { DEFAULT_LIMITS, REPORT_WAITS, type Assignment, type HubLimits, type MulticastStart, type MulticastStatus, type Receiver, type SessionConfig, type SessionView, type Waiting } from './types.ts';
import { indexIn } from './summary.ts';
import { payloadBytes } from './wire.ts';

export class MulticastError extends ClonerError {
  override readonly code: string = 'MULTICAST';
}

export class NotInSessionError extends MulticastError {
  override readonly code = 'NOT_IN_SESSION';
  override readonly status: number = 404;
}

export type { Assignment, HubLimits, MulticastStart, MulticastStatus, Receiver, ReceiverState, SessionConfig, SessionPhase, SessionView, Waiting } from './types.ts';
export { DEFAULT_LIMITS } from './types.ts';

const KEEP_FINISHED = 20;

interface RunReceiver extends Receiver {
  lacking: Set<ChunkId>;
  /** Everything it lacked when it joined: a gap it reports must be in an object holding one of these. */
  needs: Set<ChunkId>;
  /** Lost piece offsets, by object (its first chunk's id: wire.ts). */
  gaps: Map<ChunkId, Set<number>>;
  roundBytes: number;
  report: { round: number; missing: ChunkId[]; gaps: Array<[ChunkId, number[]]> } | null;
  /** It said it was ready (it was in the session, not only selected). */
  joined?: boolean;
  /** Its last progress counts taken for a loss (datagrams read and lost so far). */
  heard?: { datagrams: number; lost: number };
}

/** Datagrams a progress report must cover before its loss counts. */
const MIN_HEARD = 200;

interface Session extends Omit<SessionView, 'receivers' | 'rate' | 'maxRate' | 'rateChanges' | 'group' | 'port' | 'image' | 'revision'> {
  config: SessionConfig;
  control: RateControl;
  receivers: Map<string, RunReceiver>;
  sizes: Map<ChunkId, number>;
  /** The revision's canonical chunk list (sorted: summary.ts), which the wire indexes (wire.ts). */
  list: readonly ChunkId[];
  payload: number;
}

type Store = EncodedChunkReader & { storedSizes(ids: readonly ChunkId[]): Promise<Map<ChunkId, number>> };

const now = () => new Date().toISOString();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const sum = (ids: Iterable<ChunkId>, sizes: Map<ChunkId, number>) => {
  let n = 0;
  for (const id of ids) n += sizes.get(id) ?? 0;
  return n;
};

export class MulticastHub {
  private readonly store: Store;
  private readonly limits: HubLimits;
  private readonly waiting = new Map<string, Waiting>();
  private readonly sessions: Session[] = [];
  private readonly stopping = new AbortController();
  private nextPort = 0;
  /** Where rate changes are told (the server: its log). */
  log: (message: string, fields: Record<string, unknown>) => void = () => {};

  constructor(store: Store, limits: Partial<HubLimits> = {}) {
    this.store = store;
    this.limits = { ...DEFAULT_LIMITS, ...limits };
  }

  /** A node in cloner-multicast mode says what it lacks; it leaves any session it was in. */
  async register(node: string, body: { image: string; revision: number; lacking: ChunkId[]; list: readonly ChunkId[]; linkMbps?: number }, localAddress?: string): Promise<Assignment> {
    const sizes = await this.store.storedSizes(body.lacking);
    // A node that was in a session of this revision and registers again restarted: it
    // rejoins the session while rounds are left, or (ended lately) finishes over unicast.
    let rejoin: Session | undefined;
    let ended: Session | undefined;
    for (const s of this.sessions) {
      const r = s.receivers.get(node);
      if (!r || r.state === 'done') continue;
      if (r.state !== 'unicast') Object.assign(r, { state: 'unicast', reason: 'registered again (rebooted?)' });
      if (!r.joined || s.config.image !== body.image || s.config.revision !== body.revision) continue;
      if (s.phase === 'sending' || s.phase === 'collecting') rejoin = s;
      else if (s.ended && Date.now() - Date.parse(s.ended) < this.limits.waitingTtlMs) ended = s;
    }
    if (!rejoin && ended) return { state: 'unicast', message: `its multicast session ${ended.id} ended while it restarted` };
    const lacking = [...new Set(body.lacking)];
    if (rejoin) {
      // A node that restarted mid-session rejoins it: the next round carries what it lacks.
      this.admit(rejoin, lacking, sizes);
      rejoin.receivers.set(node, { node, state: 'joining', lackingBytes: sum(lacking, sizes), missingBytes: sum(lacking, sizes), lastSeen: now(), lacking: new Set(lacking), needs: new Set(lacking), gaps: new Map(), roundBytes: 0, report: null });
      this.waiting.delete(node);
      return this.poll(node);
    }
    this.waiting.set(node, { node, image: body.image, revision: body.revision, lacking, list: body.list, lackingBytes: sum(lacking, sizes), linkMbps: body.linkMbps, since: now(), lastSeen: now(), localAddress });
    return this.poll(node);
  }

  poll(node: string): Assignment {
    this.expire();
    const w = this.waiting.get(node);
    if (w) {
      w.lastSeen = now();
      const s = this.sessions.find((x) => x.phase === 'gathering' && x.config.nodes.includes(node) && x.config.image === w.image && x.config.revision === w.revision);
      if (!s) return { state: 'waiting' };
      this.waiting.delete(node);
      s.receivers.set(node, { node, state: 'joining', lackingBytes: w.lackingBytes, missingBytes: w.lackingBytes, lastSeen: now(), lacking: new Set(w.lacking), needs: new Set(w.lacking), gaps: new Map(), roundBytes: 0, report: null });
      if (!s.list.length) s.list = w.list;
      s.config.interfaceAddress ??= w.localAddress;
    }
    for (let i = this.sessions.length - 1; i >= 0; i--) {
      const s = this.sessions[i];
      const r = s.receivers.get(node);
      if (!r) continue;
      r.lastSeen = now();
      return { state: r.state, message: r.reason, session: { id: s.id, group: s.config.group, port: s.config.port, payload: s.payload, round: s.round, sending: s.phase === 'sending' || s.phase === 'gathering' } };
    }
    return { state: 'unknown' };
  }

  private receiver(node: string, session: string): RunReceiver {
    const r = this.sessions.find((s) => s.id === session)?.receivers.get(node);
    if (!r) throw new NotInSessionError(`${node} is not in multicast session ${session}`, 'register again');
    return r;
  }

  ready(node: string, session: string): Assignment {
    const r = this.receiver(node, session);
    if (r.state === 'joining') Object.assign(r, { state: 'ready', joined: true });
    return this.poll(node);
  }

  report(node: string, session: string, body: { round: number; missing: ChunkId[]; gaps: Array<[ChunkId, number[]]> }): Assignment {
    const r = this.receiver(node, session);
    r.report = body;
    // A receiver lacking nothing is done at once: no round waits for it.
    if (!body.missing.length && !body.gaps.length && (r.state === 'ready' || r.state === 'receiving')) Object.assign(r, { state: 'done', missingBytes: 0 });
    return this.poll(node);
  }

  /**
   * A receiver's poll in a session, with the session's datagrams it has read and lost so
   * far (cumulative counts): the loss since its last counted report goes to the rate control.
   */
  progress(node: string, session: string, body: { datagrams: number; lost: number }): Assignment {
    const r = this.receiver(node, session);
    const s = this.sessions.find((x) => x.id === session)!;
    const last = r.heard ?? { datagrams: 0, lost: 0 };
    const seen = body.datagrams - last.datagrams;
    if (body.datagrams < last.datagrams || body.lost < last.lost) r.heard = { datagrams: body.datagrams, lost: body.lost }; // it restarted counting
    else if (seen >= MIN_HEARD && r.state === 'receiving') {
      s.control.observe(node, Math.min(1, (body.lost - last.lost) / seen));
      r.heard = { datagrams: body.datagrams, lost: body.lost };
    }
    return this.poll(node);
  }

  /** Waiting nodes of `image` among `nodes` (all when omitted). */
  waitingFor(image?: string, nodes?: string[]): Waiting[] {
    this.expire();
    return [...this.waiting.values()].filter((w) => (!image || w.image === image) && (!nodes || nodes.includes(w.node)));
  }

  /** Starts a session (it runs in the background); its view. */
  start(config: Omit<SessionConfig, 'port'> & { port?: number }): SessionView {
    if (this.stopping.signal.aborted) throw new MulticastError('the server is stopping', '');
    const port = config.port ?? 9740 + (this.nextPort++ % 200);
    const s: Session = {
      id: randomBytes(8).toString('hex'),
      config: { ...config, port },
      control: new RateControl(config.rate),
      phase: 'gathering',
      round: 0,
      created: now(),
      sent: { bytes: 0, datagrams: 0, chunks: 0, headerBytes: 0, parityBytes: 0 },
      rounds: [],
      repair: config.repair ?? 'parity',
      skipped: 0,
      unionBytes: 0,
      receivers: new Map(),
      sizes: new Map(),
      list: [],
      payload: payloadBytes(config.mtu),
    };
    this.sessions.push(s);
    this.run(s).catch((err: Error) => this.finish(s, 'failed', `session failed: ${err.message}`));
    return this.view(s);
  }

  /** What a session for `image` would hold now. */
  async plan(image: string, revision: number, nodes: string[]): Promise<Omit<MulticastStart, 'session'>> {
    const waiting = this.waitingFor(image, nodes).filter((w) => w.revision === revision);
    const union = new Set(waiting.flatMap((w) => w.lacking));
    const sizes = await this.store.storedSizes([...union]);
    const names = new Set(waiting.map((w) => w.node));
    return { image, revision, waiting: [...names], notWaiting: nodes.filter((n) => !names.has(n)), unionBytes: sum(union, sizes), lackingBytes: waiting.reduce((n, w) => n + w.lackingBytes, 0) };
  }

  status(): MulticastStatus {
    this.expire();
    return { waiting: [...this.waiting.values()].map(({ lacking, list: _list, ...w }) => ({ ...w, lackingChunks: lacking.length })), sessions: this.sessions.map((s) => this.view(s)) };
  }

  /** Ends every session (server shutdown): receivers are told to go unicast. */
  close(): void {
    this.stopping.abort();
    for (const s of this.sessions) if (s.phase !== 'done' && s.phase !== 'failed') this.finish(s, 'failed', 'the server stopped');
  }

  private view(s: Session): SessionView {
    const { config, control, receivers, sizes: _sizes, list: _list, payload: _payload, ...rest } = s;
    const shown = [...receivers.values()].map(({ lacking: _l, needs: _n, gaps: _g, report: _r, roundBytes: _b, joined: _j, heard: _h, ...r }) => r);
    return { ...rest, image: config.image, revision: config.revision, group: config.group, port: config.port, rate: Math.round(control.rate), maxRate: config.rate, rateChanges: [...control.changes], receivers: shown };
  }

  private expire(): void {
    const cutoff = Date.now() - this.limits.waitingTtlMs;
    for (const [node, w] of this.waiting) if (Date.parse(w.lastSeen) < cutoff) this.waiting.delete(node);
    while (this.sessions.length > KEEP_FINISHED && (this.sessions[0].phase === 'done' || this.sessions[0].phase === 'failed')) this.sessions.shift();
  }

  private finish(s: Session, phase: 'done' | 'failed', message?: string): void {
    s.phase = phase;
    s.ended = now();
    s.message = message;
    for (const r of s.receivers.values()) if (r.state !== 'done' && r.state !== 'unicast') Object.assign(r, { state: 'unicast', reason: message ?? 'the session ended' });
  }

  /** Takes `ids` into a session's union: those the store has and the revision's list holds (the wire names chunks by their place in it). */
  private admit(s: Session, ids: Iterable<ChunkId>, sizes: Map<ChunkId, number>): void {
    for (const id of ids) {
      if (s.sizes.has(id) || !sizes.has(id)) continue;
      if (indexIn(s.list, id) < 0) {
        s.skipped++;
        continue;
      }
      s.sizes.set(id, sizes.get(id)!);
      s.unionBytes += sizes.get(id)!;
    }
  }

  private tally(s: Session, round: number, sent: RoundResult, seconds: number): void {
    for (const k of ['bytes', 'datagrams', 'chunks', 'headerBytes', 'parityBytes'] as const) s.sent[k] += sent[k];
    s.rounds.push({ round, bytes: sent.bytes, datagrams: sent.datagrams, chunks: sent.chunks, headerBytes: sent.headerBytes, parityBytes: sent.parityBytes, seconds: Math.round(seconds * 10) / 10 });
    // Unreadable chunks (gone from the store, too large for the wire) are left to unicast.
    for (const id of sent.unreadable) if (s.sizes.delete(id)) s.skipped++;
  }

  private drop(r: RunReceiver, reason: string): void {
    Object.assign(r, { state: 'unicast', reason });
  }

  /** Lets the rate control decide (rate.ts), and applies and logs a change. */
  private adapt(s: Session, sender: MulticastSender, when: string, since: { at: number; bytes: number }): void {
    for (const r of s.receivers.values()) if (r.state !== 'ready' && r.state !== 'receiving') s.control.forget(r.node);
    const now = performance.now();
    const achieved = now > since.at ? ((sender.wireBytes - since.bytes) * 1000) / (now - since.at) : undefined;
    Object.assign(since, { at: now, bytes: sender.wireBytes });
    const rate = s.control.tick(achieved);
    if (rate === null) return;
    sender.setRate(rate);
    const change = s.control.changes.at(-1)!;
    this.log(`multicast session ${s.id}: rate ${Math.round((rate * 8) / 1e6)} Mbit/s (${when}: ${(100 * change.loss).toFixed(1)}% lost, upper median of ${change.receivers})`, { session: s.id, rate: Math.round(rate * 8), loss: change.loss });
  }

  private async run(s: Session): Promise<void> {
    const { config } = s;
    const active = () => [...s.receivers.values()].filter((r) => r.state === 'ready' || r.state === 'receiving');
    // Gathering: bounded by maxWait.
    for (;;) {
      const ready = [...s.receivers.values()].filter((r) => r.state === 'ready').length;
      if (ready >= Math.min(config.minReceivers, config.nodes.length)) break;
      if (Date.now() - Date.parse(s.created) >= config.maxWaitMs) {
        if (ready >= 1) break;
        for (const r of s.receivers.values()) this.drop(r, 'the session did not start');
        return this.finish(s, 'failed', `no receiver was ready after ${config.maxWaitMs / 1000} s`);
      }
      if (this.stopping.signal.aborted) return;
      await sleep(200);
    }
    for (const r of s.receivers.values()) if (r.state === 'joining') this.drop(r, 'did not join in time');
    if (!config.interfaceAddress) return this.finish(s, 'failed', 'no interface to send from (pass --interface)');
    const union = new Set<ChunkId>();
    for (const r of active()) for (const id of r.lacking) union.add(id);
    this.admit(s, [...union].sort(), await this.store.storedSizes([...union]));
    const sender = await MulticastSender.open({ group: config.group, port: config.port, interfaceAddress: config.interfaceAddress, ttl: config.ttl, rate: config.rate, mtu: config.mtu, repair: s.repair });
    try {
      for (let round = 1; round <= this.limits.maxRounds; round++) {
        const receivers = active();
        if (!receivers.length) break;
        const gaps = new Map<ChunkId, number[][]>();
        const whole = new Set<ChunkId>();
        for (const r of receivers) {
          for (const id of r.lacking) if (s.sizes.has(id)) whole.add(id);
          r.roundBytes = sum(r.lacking, s.sizes) + [...r.gaps.values()].reduce((n, g) => n + g.size * s.payload, 0);
        }
        // An object holding a chunk some receiver lacks whole is sent whole; else each receiver's gaps go to the sender's repair.
        const wholeObjects = new Set([...whole].map((id) => sender.objectOf(id)?.first));
        for (const r of receivers) {
          for (const [first, offsets] of r.gaps) {
            if (wholeObjects.has(first)) continue;
            let g = gaps.get(first);
            if (!g) gaps.set(first, (g = []));
            g.push([...offsets]);
          }
        }
        Object.assign(s, { round, phase: 'sending' });
        for (const r of receivers) Object.assign(r, { state: 'receiving', report: null });
        const began = performance.now();
        const since = { at: began, bytes: sender.wireBytes };
        const ticker = setInterval(() => this.adapt(s, sender, `round ${round}`, since), TICK_MS);
        let sent: RoundResult;
        try {
          sent = await sender.sendRound(this.store, s.id, (id) => indexIn(s.list, id), [...whole].sort(), gaps, this.stopping.signal);
        } finally {
          clearInterval(ticker);
        }
        const sendingMs = performance.now() - began;
        this.tally(s, round, sent, sendingMs / 1000);
        s.phase = 'collecting';
        // Reports are awaited from receivers still heard from (a busy node polls, and reports late), within a bound.
        const wait = this.limits.reportTimeoutMs;
        const roundEnd = Date.now();
        const deadline = roundEnd + REPORT_WAITS * wait;
        const silent = (r: RunReceiver) => Date.now() - Math.max(Date.parse(r.lastSeen), roundEnd) >= wait;
        while (Date.now() < deadline && receivers.some((r) => r.state === 'receiving' && r.report?.round !== round && !silent(r)) && !this.stopping.signal.aborted) await sleep(100);
        for (const r of receivers) {
          if (r.state !== 'receiving') continue;
          if (r.report?.round !== round) {
            this.drop(r, silent(r) ? `no report for round ${round}, silent for ${wait / 1000} s` : `no report for round ${round} within ${(REPORT_WAITS * wait) / 1000} s`);
            continue;
          }
          // A report is untrusted (it sizes the parity sent): gaps only of objects sent holding a chunk
          // the receiver needs, at offsets on the session's cut inside them.
          r.gaps = new Map();
          const covered = new Set<ChunkId>();
          for (const [first, offsets] of r.report.gaps) {
            const o = sender.objectOf(first);
            if (o?.first !== first || !o.members.some((id) => r.needs.has(id))) continue;
            const g = new Set(offsets.filter((x) => x % s.payload === 0 && x < o.length));
            if (!g.size) continue;
            r.gaps.set(first, g);
            for (const id of o.members) covered.add(id);
          }
          // What it lacks whole, less what its objects in the making hold (their repair brings it).
          r.lacking = new Set(r.report.missing.filter((id) => s.sizes.has(id) && !covered.has(id)));
          r.missingBytes = sum(r.lacking, s.sizes) + [...r.gaps.values()].reduce((n, g) => n + g.size * s.payload, 0);
          if (!r.lacking.size && !r.gaps.size) r.state = 'done';
          else if (round === this.limits.maxRounds) this.drop(r, `still lacked ${r.missingBytes} bytes after ${round} rounds`);
          else if (r.missingBytes > this.limits.maxLoss * r.roundBytes) this.drop(r, `missed ${Math.round((100 * r.missingBytes) / Math.max(1, r.roundBytes))}% of round ${round} (slow or lossy)`);
          else r.state = 'ready';
          if (r.state === 'ready') s.control.observe(r.node, r.missingBytes / Math.max(1, r.roundBytes));
        }
        // Achieved: the round's average rate.
        this.adapt(s, sender, `after round ${round}`, { at: performance.now() - sendingMs, bytes: sender.wireBytes - sent.bytes - 28 * sent.datagrams });
      }
    } finally {
      sender.close();
    }
    this.finish(s, 'done');
  }
}
