/**
 * SSH host keys kept per node (ref hostkeys/<node> -> {files: {name: base64}, created}),
 * so a re-imaged node keeps its identity. They are made by the node's first deploy
 * (ssh-keygen in the agent) and stored once: a second store for the same node is refused,
 * so a second agent or a replayed request cannot swap them. Never part of a node view.
 */
import { ConflictError, NotFoundError } from '../errors.ts';
import type { RefStore } from '../store/interfaces.ts';

export type HostKeyFiles = Record<string, string>;

export class HostKeysExistError extends ConflictError {
  override readonly code = 'HOSTKEYS_EXIST';
}

export class HostKeysNotFoundError extends NotFoundError {
  override readonly code = 'HOSTKEYS_NOT_FOUND';
}

const key = (node: string) => `hostkeys/${node}`;

/** The node's kept keys; HostKeysNotFoundError when it has none yet. */
export async function getHostKeys(store: Pick<RefStore, 'getRef'>, node: string): Promise<{ files: HostKeyFiles }> {
  const raw = await store.getRef(key(node));
  if (!raw) throw new HostKeysNotFoundError(`no SSH host keys are kept for ${node}`, 'the first deploy makes them');
  return { files: (JSON.parse(raw) as { files: HostKeyFiles }).files };
}

/** Keeps a node's keys; HostKeysExistError when it already has some. Returns how many files. */
export async function putHostKeys(store: RefStore, node: string, files: HostKeyFiles): Promise<number> {
  if (!(await store.casRef(key(node), undefined, JSON.stringify({ files, created: new Date().toISOString() })))) {
    throw new HostKeysExistError(`${node} already has SSH host keys`, 'the agent fetches the kept ones; remove the node to forget them');
  }
  return Object.keys(files).length;
}

/** Forgets a node's keys (the node is removed). */
export async function dropHostKeys(store: RefStore, node: string): Promise<void> {
  await store.casRef(key(node), await store.getRef(key(node)), undefined);
}
