/**
 * The shapes of multicast sessions (core/multicast/hub.ts runs them): waiting nodes,
 * receivers, a session's configuration and public view, what a polling node is told, and
 * the hub's limits. Units: bytes, milliseconds, bytes per second (`rate`).
 */
import type { ChunkId } from '../store/chunk-id.ts';
import type { RateChange } from './rate.ts';
import type { RepairMode } from './sender.ts';

/** Most distinct chunks of a revision a summary covers (a 1 MiB bitmap; ~500 GiB of 64 KiB chunks). */
export const MAX_SUMMARY_CHUNKS = 8 * 1024 * 1024;
/** Longest base64 summary the server reads: a 1 MiB bitmap deflated (stored blocks add <0.1%) in base64. */
export const MAX_SUMMARY_BASE64 = 1_500_000;

/** A node waiting for a session. */
export interface Waiting {
  node: string;
  image: string;
  revision: number;
  lacking: ChunkId[];
  /** The revision's canonical chunk list (summary.ts), shared with the server's cache. */
  list: readonly ChunkId[];
  lackingBytes: number;
  linkMbps?: number;
  since: string;
  lastSeen: string;
  /** The server address the node reached us at: the interface that faces it. */
  localAddress?: string;
}

export type ReceiverState = 'joining' | 'ready' | 'receiving' | 'done' | 'unicast';

export interface Receiver {
  node: string;
  state: ReceiverState;
  lackingBytes: number;
  /** Stored bytes still lacked, as last known. */
  missingBytes: number;
  reason?: string;
  lastSeen: string;
}

export interface SessionConfig {
  image: string;
  revision: number;
  nodes: string[];
  /** Start as soon as this many are ready (at most nodes.length). */
  minReceivers: number;
  maxWaitMs: number;
  /** Bytes per second. */
  rate: number;
  group: string;
  port: number;
  /** IPv4 address to send from (default: the one the first receiver registered through). */
  interfaceAddress?: string;
  ttl: number;
  mtu: number;
  /** How lost datagrams are repaired (sender.ts; default parity). */
  repair?: RepairMode;
}

export type SessionPhase = 'gathering' | 'sending' | 'collecting' | 'done' | 'failed';

export interface SessionView {
  id: string;
  image: string;
  revision: number;
  group: string;
  port: number;
  /** The sender's rate now, bytes per second (adapted to the receivers' loss: rate.ts). */
  rate: number;
  /** The --rate: the most it may send at. */
  maxRate: number;
  /** The last changes of `rate`, oldest first. */
  rateChanges: RateChange[];
  phase: SessionPhase;
  round: number;
  created: string;
  ended?: string;
  message?: string;
  /** Datagram bytes (UDP payloads): of which headers and object directories (wire.ts), and parity rows. */
  sent: { bytes: number; datagrams: number; chunks: number; headerBytes: number; parityBytes: number };
  /** Each round: what it sent (round 1 the union, later ones repairs). */
  rounds: Array<{ round: number; bytes: number; datagrams: number; chunks: number; headerBytes: number; parityBytes: number; seconds: number }>;
  repair: RepairMode;
  /** Chunks of the union left to unicast: unreadable, too large for the wire, or not in the revision's list (wire.ts). */
  skipped: number;
  /** Stored bytes of the union of what the receivers lacked at the start. */
  unionBytes: number;
  receivers: Receiver[];
}

export interface MulticastStatus {
  waiting: Array<Omit<Waiting, 'lacking' | 'list'> & { lackingChunks: number }>;
  sessions: SessionView[];
}

/** What multicast-image is answered: who is in, and the session (none with dryRun). */
export interface MulticastStart {
  image: string;
  revision: number;
  /** Selected nodes waiting for this image and revision. */
  waiting: string[];
  /** Selected nodes not (yet) waiting, or waiting for something else. */
  notWaiting: string[];
  /** Stored bytes of the union of what the waiting ones lack. */
  unionBytes: number;
  /** What unicast would send them: the sum of what each lacks. */
  lackingBytes: number;
  session: SessionView | null;
}

/** What a polling node is told. */
export interface Assignment {
  state: 'unknown' | 'waiting' | ReceiverState;
  message?: string;
  session?: { id: string; group: string; port: number; payload: number; round: number; sending: boolean };
}

export interface HubLimits {
  /**
   * A round's report is awaited while its receiver is heard from (polls) at least this
   * often, and at most REPORT_WAITS times this long after the round's last datagram.
   */
  reportTimeoutMs: number;
  /** A receiver that missed more than this fraction of a round's bytes is dropped to unicast. */
  maxLoss: number;
  maxRounds: number;
  /** A waiting node not seen for this long is forgotten. */
  waitingTtlMs: number;
}

// maxLoss: a receiver on a busy node (8 agents on 2 cores, bench/multicast.ts) loses up to
// ~20% of a round to its full receive buffer and catches up in the next; one on a link 10x
// slower than --rate misses ~90% (test/multicast/netns-multicast.test.ts).
/**
 * A busy node (8 agents writing ~7,800 files each on 2 shared cores at load 13-22,
 * bench/multicast.ts) went silent for over 10 s after a round (it settles its socket, then
 * reports): 5-7 of 8 were dropped with a 10 s wait. It is waited for while it polls, up to
 * REPORT_WAITS x reportTimeoutMs.
 */
export const REPORT_WAITS = 4;
export const DEFAULT_LIMITS: HubLimits = { reportTimeoutMs: 30_000, maxLoss: 0.5, maxRounds: 8, waitingTtlMs: 10 * 60_000 };
