/**
 * Each node's past deploys: when, which image and revision, the result (the phase a
 * failure stopped in and its message), how long it took and what it fetched. Kept under
 * the store ref `history/<name>` (one JSON list, newest last, at most HISTORY_LIMIT
 * entries: the oldest fall off), apart from the node record so the nodes table, which
 * reads every record, does not grow with it. Appended with compare-and-set by
 * LiveDeploys.finish (core/nodes/deploy.ts) when a deploy ends; dropped with the node.
 */
import type { RefStore } from '../store/interfaces.ts';
import type { DeployResult } from './deploy-state.ts';
import { assertNodeName, NodeError } from './registry.ts';

/** Deploys kept per node. */
export const HISTORY_LIMIT = 50;
/** Characters of a result's message kept in the history. */
const MESSAGE_KEPT = 500;

export interface HistoryEntry {
  /** ISO time the deploy ended (the result came). */
  at: string;
  /** ISO time it started: `at` less its seconds, when the agent said how long it took. */
  started: string | null;
  image: string | null;
  revision: number | null;
  ok: boolean;
  /** The phase it ended in (a failure's phase). */
  phase: string;
  /** Seconds from start to the result, as the agent measured it. */
  seconds: number | null;
  fetchedBytes: number | null;
  warnings: number;
  message: string | null;
}

const key = (name: string) => `history/${assertNodeName(name)}`;

/** The history entry of a result that came at `at`. */
export function historyEntry(result: DeployResult, at: string): HistoryEntry {
  const seconds = typeof result.seconds === 'number' ? result.seconds : null;
  return {
    at,
    started: seconds !== null ? new Date(Date.parse(at) - seconds * 1000).toISOString() : null,
    image: result.image ?? null,
    revision: result.revision ?? null,
    ok: result.ok,
    phase: result.phase,
    seconds,
    fetchedBytes: result.fetchedBytes ?? null,
    warnings: result.warnings?.length ?? 0,
    message: result.message ? result.message.slice(0, MESSAGE_KEPT) : null,
  };
}

/** A node's past deploys, newest first (empty when it has none). */
export async function nodeHistory(store: Pick<RefStore, 'getRef'>, name: string): Promise<HistoryEntry[]> {
  const raw = await store.getRef(key(name));
  return raw ? (JSON.parse(raw) as HistoryEntry[]).reverse() : [];
}

/** Appends one entry, keeping the newest HISTORY_LIMIT. */
export async function recordDeploy(store: RefStore, name: string, entry: HistoryEntry, limit = HISTORY_LIMIT): Promise<void> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const before = await store.getRef(key(name));
    const list = before ? (JSON.parse(before) as HistoryEntry[]) : [];
    list.push(entry);
    if (await store.casRef(key(name), before, JSON.stringify(list.slice(-limit)))) return;
  }
  throw new NodeError(`the history of ${name} is being written by too many at once`, 'retry');
}

/** Forgets a node's history (the node is removed). */
export async function dropHistory(store: RefStore, name: string): Promise<void> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const before = await store.getRef(key(name));
    if (before === undefined || (await store.casRef(key(name), before, undefined))) return;
  }
}
