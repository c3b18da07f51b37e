/**
 * One change applied to several nodes, as `cloner nodes set --nodes SEL`, `cloner netboot`,
 * `cloner nodes group` and `cloner power` do node by node: each node goes through the
 * registry's changeNode (every setting checked, compare-and-set), addToGroup /
 * removeFromGroup (core/nodes/groups.ts) or powerNode (its BMC, from the server), and
 * each node's outcome is reported on its own: one node's bad BMC does not hide that the
 * others were powered. Power runs a few BMCs at once (POWER_CONCURRENCY).
 */
import pLimit from 'p-limit';
import { ClonerError } from '../errors.ts';
import { addToGroup, assertGroupName, removeFromGroup } from '../nodes/groups.ts';
import { powerNode, type PowerAction } from '../nodes/power.ts';
import { changeNode } from '../nodes/registry.ts';
import type { RefStore } from '../store/interfaces.ts';

/** BMCs asked at once: ipmitool's retries take seconds each, so a rack is powered in a few rounds. */
export const POWER_CONCURRENCY = 8;

export interface Outcome {
  node: string;
  ok: boolean;
  /** What happened (the power state after, or the error and its hint). */
  message: string;
}

function failure(node: string, err: unknown): Outcome {
  if (err instanceof ClonerError) return { node, ok: false, message: `${err.message}${err.hint ? ` (${err.hint})` : ''}` };
  throw err;
}

/** Applies `key=value` settings to each named node (which must exist). */
export async function setOnNodes(store: RefStore, names: string[], settings: string[]): Promise<Outcome[]> {
  const out: Outcome[] = [];
  for (const name of names) {
    try {
      await changeNode(store, name, settings, false);
      out.push({ node: name, ok: true, message: settings.join(' ') });
    } catch (err) {
      out.push(failure(name, err));
    }
  }
  return out;
}

/** Puts each named node in `group` (addToGroup: its other groups kept), or takes it out. */
export async function groupNodes(store: RefStore, names: string[], group: string, remove = false): Promise<Outcome[]> {
  assertGroupName(group);
  const out: Outcome[] = [];
  for (const name of names) {
    try {
      const node = await (remove ? removeFromGroup : addToGroup)(store, name, group);
      out.push({ node: name, ok: true, message: `${remove ? 'out of' : 'in'} group ${group}: groups=${node.groups.join(',')}` });
    } catch (err) {
      out.push(failure(name, err));
    }
  }
  return out;
}

/** Powers each named node through its BMC. */
export async function powerNodes(store: RefStore, names: string[], action: PowerAction): Promise<Outcome[]> {
  const limit = pLimit(POWER_CONCURRENCY);
  return Promise.all(
    names.map((name) =>
      limit(async () => {
        try {
          const r = await powerNode(store, name, action);
          return { node: name, ok: true, message: `power ${action}${r.state ? `: ${r.state}` : ''}` };
        } catch (err) {
          return failure(name, err);
        }
      }),
    ),
  );
}
