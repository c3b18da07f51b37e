/**
 * Group membership one node at a time, for bulk actions (the web interface's "add to
 * group", `cloner nodes group`): adds or removes one group in a node's list with
 * compare-and-set (the node's other groups and any concurrent change are kept, where
 * `groups=a,b` would replace the list). The group name is checked like every name
 * (applySettings' rule); a node already in (or not in) the group is left unchanged.
 */
import type { RefStore } from '../store/interfaces.ts';
import { NAME_PATTERN, NAME_RULE } from '../names.ts';
import { applySettings, NodeError, NodeNotFoundError, publicView, updateNode, type NodeRecord } from './registry.ts';

/** A group name, checked on its own (a comma would make it two). */
export function assertGroupName(group: string): string {
  if (!NAME_PATTERN.test(group)) throw new NodeError(`invalid group ${JSON.stringify(group)}`, `use ${NAME_RULE}`);
  return group;
}

async function changeGroups(store: RefStore, name: string, group: string, change: (groups: string[]) => string[]): Promise<NodeRecord> {
  assertGroupName(group);
  const node = await updateNode(store, name, (current) => {
    if (!current) throw new NodeNotFoundError(`no node named ${name}`, 'list nodes with: cloner nodes list');
    return applySettings(current, [`groups=${change(current.groups).join(',')}`]);
  });
  return publicView(node!);
}

/** Puts node `name` in `group` (kept after its other groups). Returns the node as clients see it. */
export function addToGroup(store: RefStore, name: string, group: string): Promise<NodeRecord> {
  return changeGroups(store, name, group, (groups) => (groups.includes(group) ? groups : [...groups, group]));
}

/** Takes node `name` out of `group`. */
export function removeFromGroup(store: RefStore, name: string, group: string): Promise<NodeRecord> {
  return changeGroups(store, name, group, (groups) => groups.filter((g) => g !== group));
}
