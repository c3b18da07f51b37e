/**
 * One deploy in progress (agent/deploy.ts runs its phases): the options, the server client,
 * the log and warnings, the phase reports (a lost report does not fail the deploy), the
 * mounts to undo and the writeback under way; and this machine's MACs, by which an unnamed
 * node finds itself.
 */
import * as fs from 'node:fs';
import { API } from '../core/api/endpoints.ts';
import type { DeployStatusBody } from '../core/api/schemas.ts';
import type { ApplyPlan } from '../core/layout/apply.ts';
import type { DeployPlan } from '../core/nodes/deploy.ts';
import type { DeployPhase } from '../core/nodes/deploy-state.ts';
import { AgentClient } from './client.ts';
import type { IdentityChange, IdentityReport } from './identity.ts';
import type { MulticastOptions } from './multicast.ts';
import { Writeback } from './writeback.ts';

export interface DeployOptions {
  server: string;
  token?: string;
  node?: string;
  /** Only these disks may be written (paths); others are never touched. */
  disks?: string[];
  target: string;
  /** Partition even outside the cloner boot environment (needed with --disks on a running system). */
  force?: boolean;
  /** Read every file already on the node instead of trusting size + mtime. */
  checksum?: boolean;
  retryDeadlineMs: number;
  stallMs: number;
  progressIntervalMs: number;
  /** Receive the chunks this node lacks from a multicast session (cloner-multicast). */
  multicast?: MulticastOptions;
  log: (line: string) => void;
}


/** This machine's MAC addresses (not loopback, not all-zero). */
export function localMacs(): string[] {
  const out: string[] = [];
  for (const name of fs.readdirSync('/sys/class/net').sort()) {
    try {
      const mac = fs.readFileSync(`/sys/class/net/${name}/address`, 'utf8').trim().toLowerCase();
      if (/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/.test(mac) && mac !== '00:00:00:00:00:00') out.push(mac);
    } catch {
      // an interface that went away
    }
  }
  return [...new Set(out)];
}

type Extra = Omit<DeployStatusBody, 'phase'>;

/** One deploy in progress: the client, the log, the warnings, and the phase reports. */
export class DeployRun {
  readonly o: DeployOptions;
  readonly client: AgentClient;
  readonly warnings: string[] = [];
  /** What the identity step changed on the node (file, what). */
  readonly changes: IdentityChange[] = [];
  /** What the identity step changed of the boot chain (agent/identity.ts): the initramfs is looked at, or made anew. */
  bootChain: Pick<IdentityReport, 'bootChainChanged' | 'replacedRefs' | 'bootChainFiles'> = { bootChainChanged: false, replacedRefs: [], bootChainFiles: [] };
  readonly started = performance.now();
  phase: DeployPhase = 'identify';
  node: string | null;
  plan: DeployPlan | null = null;
  attachments: Array<{ kind: string; item: string }> = [];
  /** File systems mounted under the target, unmounted whatever happens. */
  mounts: ApplyPlan['mounts'] = [];
  /** The target's writeback, started once the restore is done (agent/writeback.ts). */
  readonly writeback = new Writeback();
  private startedAt = new Date().toISOString();
  private status: Extra = {};

  constructor(o: DeployOptions) {
    this.o = o;
    this.node = o.node ?? null;
    this.client = new AgentClient({
      server: o.server,
      token: o.token,
      retryDeadlineMs: o.retryDeadlineMs,
      stallMs: o.stallMs,
      onRetry: (what, err, n, delay) => o.log(`retry ${n} of ${what} in ${(delay / 1000).toFixed(1)} s: ${err.message}`),
    });
  }

  log(line: string): void {
    this.o.log(line);
  }

  warn = (message: string): void => {
    this.warnings.push(message);
    this.o.log(`warning: ${message}`);
  };

  /** A phase report; a lost one is not worth failing the deploy for (the next carries the state). */
  async report(next: DeployPhase, extra: Extra = {}): Promise<void> {
    this.phase = next;
    this.status = { ...this.status, ...extra };
    if (!this.node) return;
    await this.client.once.call(API.deployStatus, { params: { name: this.node }, body: { phase: next, started: this.startedAt, ...this.status } }).catch((err: Error) => this.log(`(status report failed: ${err.message})`));
  }

  async enter(next: DeployPhase, message: string): Promise<void> {
    this.log(`[${next}] ${message}`);
    await this.report(next, { message });
  }

  /** Reports a failure with its phase (once, not retried) and rethrows nothing. */
  async fail(err: unknown): Promise<void> {
    const message = (err as Error).message;
    this.log(`[failed] in ${this.phase}: ${message}`);
    if (!this.node) return;
    await this.client.once
      .call(API.deployResult, { params: { name: this.node }, body: { ok: false, phase: this.phase, message: message.slice(0, 2000), image: this.plan?.image, revision: this.plan?.revision.n } })
      .catch((e: Error) => this.log(`(could not report the failure: ${e.message})`));
  }

  async attachment(kind: 'script' | 'bios', item: string): Promise<Buffer | null> {
    return this.client.api.bytesOrNull(API.getAttachment, { params: { name: this.plan!.image, kind, item } });
  }

  hasAttachment(kind: string, item?: string): boolean {
    return this.attachments.some((a) => a.kind === kind && (item === undefined || a.item === item));
  }
}
