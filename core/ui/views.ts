/**
 * What the web interface's pages show, computed from the same records the API serves (no
 * rule of its own): a node's state (its netboot, or deploying / failed from its live
 * status and last result), the nodes table (a CLI selector, a text filter, a state
 * filter and a sort), one deploy's progress (phase, percent, bytes, rate, the error and
 * the phase of a failure) and the overview's counts. Pure functions over records, plus
 * `overview` (with the last verify and gc), `imageSummaries` and `storeUsage`, which read the store.
 */
import type { DeployRow } from '../nodes/deploy.ts';
import type { DeployStatus } from '../nodes/deploy-state.ts';
import type { Discovered } from '../nodes/discovered.ts';
import { listNodes, NETBOOT_STATES, publicView, type NodeRecord } from '../nodes/registry.ts';
import { selectNodes } from '../nodes/selector.ts';
import type { RefStore } from '../store/interfaces.ts';
import { listImages, type ImageRecord } from '../tree/images.ts';
import { lastMaintenance, type MaintenanceState } from '../tree/maintenance.ts';

export type NodeState = 'local' | 'cloner' | 'cloner-multicast' | 'deploying' | 'failed';
export const NODE_STATES: readonly NodeState[] = [...NETBOOT_STATES, 'deploying', 'failed'];

/** Whether a live status is a deploy still under way (not done, not failed). */
export function isRunning(status: DeployStatus | null | undefined): boolean {
  return !!status && status.phase !== 'done' && status.phase !== 'failed';
}

/** deploying while a deploy runs; failed when the last one failed; else its netboot state. */
export function nodeState(node: Pick<NodeRecord, 'netboot' | 'lastDeploy'>, live: DeployStatus | null | undefined): NodeState {
  if (isRunning(live)) return 'deploying';
  if (live?.phase === 'failed' || (!live && node.lastDeploy && !node.lastDeploy.ok)) return 'failed';
  return node.netboot;
}

/** One deploy as the deploys page shows it; numbers in bytes, bytes per second and percent. */
export interface DeployView {
  node: string;
  netboot: string;
  /** The image assigned, or the one the deploy reported. */
  image: string | null;
  revision: number | null;
  phase: string;
  state: 'idle' | 'running' | 'done' | 'failed';
  percent: number | null;
  bytes: number | null;
  totalBytes: number | null;
  fetchedBytes: number | null;
  rate: number | null;
  /** ISO time of the last report or result. */
  updated: string | null;
  /** The phase a failed deploy failed in, and its error. */
  failedIn: string | null;
  error: string | null;
  message: string | null;
  seconds: number | null;
}

export function deployView(row: DeployRow): DeployView {
  const s = row.status;
  const last = row.lastDeploy;
  const failed = s ? s.phase === 'failed' : !!last && !last.ok;
  const state = failed ? 'failed' : isRunning(s) ? 'running' : s?.phase === 'done' || last?.ok ? 'done' : 'idle';
  const percent = s?.totalBytes ? Math.min(100, Math.floor((100 * (s.bytes ?? 0)) / s.totalBytes)) : state === 'done' ? 100 : null;
  return {
    node: row.node,
    netboot: row.netboot,
    image: s?.image ?? last?.image ?? row.image,
    revision: s?.revision ?? last?.revision ?? null,
    phase: s?.phase ?? (last ? (last.ok ? 'done' : 'failed') : '-'),
    state,
    percent,
    bytes: s?.bytes ?? null,
    totalBytes: s?.totalBytes ?? null,
    fetchedBytes: s?.fetchedBytes ?? last?.fetchedBytes ?? null,
    rate: state === 'running' ? (s?.rate ?? null) : null,
    updated: s?.updated ?? last?.at ?? null,
    // The result names the phase it failed in; the live status then says only "failed".
    failedIn: failed ? (last && !last.ok ? last.phase : (s?.phase ?? null)) : null,
    error: failed ? (last && !last.ok ? (last.message ?? null) : (s?.message ?? null)) : null,
    message: s?.message ?? null,
    seconds: state === 'done' ? (last?.seconds ?? null) : null,
  };
}

export const NODE_SORT_KEYS = ['name', 'hostname', 'image', 'netboot', 'state', 'groups', 'deployed'] as const;
export type NodeSortKey = (typeof NODE_SORT_KEYS)[number];

export interface NodeQuery {
  /** A CLI selector: node01,node02, node[01-64], @group. */
  sel?: string;
  /** Text that the name, hostname, image, groups, a MAC or an address must contain. */
  q?: string;
  state?: NodeState;
  sort?: NodeSortKey;
  desc?: boolean;
}

export interface NodeRow {
  /** The node as clients see it (no BMC password). */
  node: NodeRecord;
  state: NodeState;
  live: DeployStatus | null;
}

const collator = new Intl.Collator('en', { numeric: true });

function sortValue(row: NodeRow, key: NodeSortKey): string {
  const n = row.node;
  switch (key) {
    case 'name': return n.name;
    case 'hostname': return n.hostname ?? '';
    case 'image': return `${n.cloner_image ?? ''}@${n.cloner_revision ?? ''}`;
    case 'netboot': return n.netboot;
    case 'state': return row.state;
    case 'groups': return n.groups.join(',');
    case 'deployed': return n.lastDeploy?.at ?? '';
  }
}

/**
 * The nodes table: the registry's nodes narrowed by a selector (its order and errors are
 * the CLI's: an unknown name or group is a SelectorError), a text filter and a state, and
 * sorted (names in numeric order: node2 before node10).
 */
export function nodeTable(nodes: NodeRecord[], live: ReadonlyMap<string, DeployStatus>, query: NodeQuery): NodeRow[] {
  let picked = nodes;
  if (query.sel?.trim()) {
    const byName = new Map(nodes.map((n) => [n.name, n]));
    picked = selectNodes(query.sel, nodes).map((name) => byName.get(name)!);
  }
  let rows = picked.map((n) => ({ node: publicView(n), live: live.get(n.name) ?? null, state: nodeState(n, live.get(n.name)) }));
  const text = query.q?.trim().toLowerCase();
  if (text) {
    rows = rows.filter(({ node: n }) =>
      [n.name, n.hostname ?? '', n.cloner_image ?? '', n.netboot, ...n.groups, ...n.interfaces.flatMap((i) => [i.mac, i.ip ?? ''])].some((v) => v.toLowerCase().includes(text)),
    );
  }
  if (query.state) rows = rows.filter((r) => r.state === query.state);
  if (query.sort || !query.sel) {
    const key = query.sort ?? 'name';
    const sign = query.desc ? -1 : 1;
    rows.sort((a, b) => sign * (collator.compare(sortValue(a, key), sortValue(b, key)) || collator.compare(a.node.name, b.node.name)));
  }
  return rows;
}

/** An image as the lists show it: its latest revision's size, files and layout. */
export interface ImageSummary {
  name: string;
  revisions: number;
  created: string;
  updated: string;
  /** Logical bytes and files of the latest revision. */
  bytes: number;
  files: number;
  layout: string | null;
  /** The golden node's kernel version recorded with the latest revision (`uname -r`). */
  kernel: string | null;
  note: string;
}

export function imageSummary(image: ImageRecord): ImageSummary {
  const last = image.revisions.at(-1);
  return { name: image.name, revisions: image.revisions.length, created: image.created, updated: last?.created ?? image.created, bytes: last?.stats.bytes ?? 0, files: last?.stats.files ?? 0, layout: last?.layout ?? null, kernel: last?.kernel ?? null, note: last?.note ?? '' };
}

export async function imageSummaries(store: RefStore): Promise<ImageSummary[]> {
  return (await listImages(store)).map(imageSummary).sort((a, b) => collator.compare(a.name, b.name));
}

export interface Overview {
  images: ImageSummary[];
  nodes: number;
  states: Record<NodeState, number>;
  running: DeployView[];
  failed: DeployView[];
  discovered: Discovered[];
  /** When verify and gc last ran on the store, and what they found. */
  maintenance: MaintenanceState;
}

/** The overview page: images, nodes by state, deploys under way and failed, discovered MACs. */
export async function overview(store: RefStore, live: ReadonlyMap<string, DeployStatus>, discovered: Discovered[]): Promise<Overview> {
  const nodes = await listNodes(store);
  const states = Object.fromEntries(NODE_STATES.map((s) => [s, 0])) as Record<NodeState, number>;
  const running: DeployView[] = [];
  const failed: DeployView[] = [];
  for (const n of nodes) {
    const status = live.get(n.name) ?? null;
    const state = nodeState(n, status);
    states[state]++;
    if (state === 'deploying' || state === 'failed') {
      const view = deployView({ node: n.name, netboot: n.netboot, image: n.cloner_image ?? null, status, lastDeploy: n.lastDeploy ?? null });
      (state === 'failed' ? failed : running).push(view);
    }
  }
  return { images: await imageSummaries(store), nodes: nodes.length, states, running, failed, discovered: waitingMacs(discovered, nodes), maintenance: await lastMaintenance(store) };
}

/** Discovered MACs that no node has yet (one that became a node since is left out), newest first. */
export function waitingMacs(discovered: Discovered[], nodes: NodeRecord[]): Discovered[] {
  const known = new Set(nodes.flatMap((n) => n.interfaces.map((i) => i.mac)));
  return discovered.filter((d) => !known.has(d.mac)).sort((a, b) => b.last.localeCompare(a.last));
}

export interface StoreUsage {
  chunks: number;
  packs: number;
  /** Bytes of pack files on disk (compressed). */
  packBytes: number;
  /** Bytes of the distinct chunks stored, before compression. */
  rawBytes: number;
  /** Bytes of every revision of every image, as captured (before dedup and compression). */
  logicalBytes: number;
  /** logicalBytes / rawBytes: what content-defined chunking saved. */
  dedupRatio: number | null;
  /** rawBytes / packBytes: what LZ4 saved. */
  compressionRatio: number | null;
}

/** Store usage: `stats` walks the chunk index, so the page loads it apart from the rest. */
export async function storeUsage(store: RefStore & { stats(): Promise<{ chunks: number; packs: number; packBytes: number; rawBytes: number }> }): Promise<StoreUsage> {
  const stats = await store.stats();
  let logicalBytes = 0;
  for (const image of await listImages(store)) for (const r of image.revisions) logicalBytes += r.stats.bytes;
  return { ...stats, logicalBytes, dedupRatio: stats.rawBytes ? logicalBytes / stats.rawBytes : null, compressionRatio: stats.packBytes ? stats.rawBytes / stats.packBytes : null };
}
