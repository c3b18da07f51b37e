/**
 * The rules of a deploy, below any transport (the server's routes and `--store` call
 * these): what a node is to get (its plan), what a reported result changes, and the live
 * status of deploys in progress.
 *
 * - Plan: the node's image, its revision (pinned by cloner_revision, else the latest),
 *   its layout (cloner_layout, else the revision's) and the store's chunker parameters.
 * - Result: written into the node record with compare-and-set (lastDeploy, with the time)
 *   and appended to the node's history (core/nodes/history.ts, the last 50).
 *   A success also sets netboot to `local` in the same write, so the node boots its new
 *   system next, and ends its deploy token; a failure leaves netboot alone, so the node
 *   tries again at its next boot.
 * - Live status: kept in memory by whoever runs the routes (LiveDeploys); a restarted
 *   server shows each node's last result only. Listeners (`subscribe`) hear every report
 *   and end as it is kept, so a web page can be pushed updates instead of polling.
 */
import type { ChunkerParams } from '../chunker/fastcdc.ts';
import { loadLayout, type StoredLayout } from '../layout/store.ts';
import { ImageNotFoundError } from '../store/errors.ts';
import type { RefStore } from '../store/interfaces.ts';
import { getImage, type ImageStore, type Revision } from '../tree/images.ts';
import type { DeployResult, DeployStatus } from './deploy-state.ts';
import { dropDeployToken } from './deploy-tokens.ts';
import { historyEntry, recordDeploy } from './history.ts';
import { getNode, listNodes, NodeError, NodeNotFoundError, publicView, updateNode, type NodeRecord } from './registry.ts';

export interface DeployPlan {
  /** The node as clients see it (no BMC password). */
  node: NodeRecord;
  image: string;
  revision: Revision;
  layout: StoredLayout | null;
  chunker: ChunkerParams;
}

/** One node's deploy as `cloner status` shows it. */
export interface DeployRow {
  node: string;
  netboot: string;
  image: string | null;
  /** The live status (null when none reported since the server started). */
  status: DeployStatus | null;
  lastDeploy: NodeRecord['lastDeploy'] | null;
}

async function nodeOrThrow(store: Pick<RefStore, 'getRef'>, name: string): Promise<NodeRecord> {
  const node = await getNode(store, name);
  if (!node) throw new NodeNotFoundError(`no node named ${name}`, 'add it with: cloner nodes add NAME');
  return node;
}

/**
 * What node `name` is to get. Throws NodeNotFoundError, NodeError (no image assigned),
 * ImageNotFoundError (the image or the pinned revision is gone), LayoutNotFoundError.
 */
export async function deployPlan(store: ImageStore, chunker: ChunkerParams, name: string): Promise<DeployPlan> {
  const node = await nodeOrThrow(store, name);
  if (!node.cloner_image) throw new NodeError(`node ${node.name} has no image assigned`, `assign one: cloner nodes set --nodes ${node.name} cloner_image=IMAGE`);
  const image = await getImage(store, node.cloner_image);
  if (!image) throw new ImageNotFoundError(`image ${node.cloner_image} (assigned to ${node.name}) does not exist`, 'list images with: cloner image-list');
  const revision = node.cloner_revision ? image.revisions.find((r) => r.n === node.cloner_revision) : image.revisions.at(-1);
  if (!revision) throw new ImageNotFoundError(`image ${image.name} has no revision ${node.cloner_revision ?? ''}`.trim(), `see: cloner image-details --image ${image.name}`);
  const layoutName = node.cloner_layout ?? revision.layout;
  const layout = layoutName ? await loadLayout(store, layoutName) : null;
  return { node: publicView(node), image: image.name, revision, layout, chunker };
}

/** Told of a node's new live status after a report or the end of its deploy (`node` is set after an end). */
export type DeployListener = (name: string, status: DeployStatus, node?: NodeRecord) => void;

/** Live deploy status, in memory: one entry per node that reported since this process started. */
export class LiveDeploys {
  private readonly live = new Map<string, DeployStatus>();
  private readonly listeners = new Set<DeployListener>();

  /** Calls `listener` after every report and end; returns the function that stops it. */
  subscribe(listener: DeployListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The live status of every node that reported since this process started. */
  snapshot(): ReadonlyMap<string, DeployStatus> {
    return this.live;
  }

  private emit(name: string, status: DeployStatus, node?: NodeRecord): void {
    // A listener's failure is its own: it must not fail the node's report.
    for (const listener of this.listeners) {
      try {
        listener(name, status, node);
      } catch {
        /* ignored */
      }
    }
  }

  /** A phase report of node `name` (which must exist). */
  async report(store: Pick<RefStore, 'getRef'>, name: string, status: DeployStatus): Promise<void> {
    await nodeOrThrow(store, name);
    const kept = { ...status, updated: new Date().toISOString() };
    this.live.set(name, kept);
    this.emit(name, kept);
  }

  /**
   * The end of node `name`'s deploy: kept as its lastDeploy; a success sets netboot to
   * local in the same write and ends the node's deploy token. Returns the node as clients
   * see it.
   */
  async finish(store: RefStore, name: string, result: DeployResult): Promise<NodeRecord> {
    const at = new Date().toISOString();
    const node = await updateNode(store, name, (current) => {
      if (!current) throw new NodeNotFoundError(`no node named ${name}`, 'add it with: cloner nodes add NAME');
      return { ...current, netboot: result.ok ? 'local' : current.netboot, lastDeploy: { ...result, at } };
    });
    await recordDeploy(store, name, historyEntry(result, at));
    const before = this.live.get(name);
    const kept: DeployStatus = { ...before, phase: result.ok ? 'done' : 'failed', message: result.message, updated: new Date().toISOString() };
    this.live.set(name, kept);
    if (result.ok) await dropDeployToken(store, name);
    this.emit(name, kept, publicView(node!));
    return publicView(node!);
  }

  /** Every node's deploy: netboot, live status and last result. */
  async rows(store: Pick<RefStore, 'listRefs'>): Promise<DeployRow[]> {
    return (await listNodes(store)).map((n) => ({ node: n.name, netboot: n.netboot, image: n.cloner_image ?? null, status: this.live.get(n.name) ?? null, lastDeploy: n.lastDeploy ?? null }));
  }
}

