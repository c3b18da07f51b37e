/**
 * Deploy tokens: what a node booting the installer uses instead of a server token. A token
 * is 32 random bytes (base64url); the store keeps only its SHA-256, as the ref
 * deploytoken/<sha256> -> {node, issued} (found in one lookup on every request that uses
 * it) plus deploy/<node> -> the current hash, so the node's next boot drops the old one.
 * A token reads like read.token, and acts for its own node only, until it expires
 * (DEPLOY_TOKEN_TTL_MS), is replaced, the node's deploy succeeds, or the node is removed.
 */
import { createHash, randomBytes } from 'node:crypto';
import { ClonerError } from '../errors.ts';
import type { RefStore } from '../store/interfaces.ts';

export const DEPLOY_TOKEN_TTL_MS = 24 * 3600_000;
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/**
 * The node a deploy token was issued to, or null (unknown, replaced or expired).
 * `now` (ms since the epoch) is the clock, for tests.
 */
export async function deployTokenNode(store: Pick<RefStore, 'getRef'>, token: string, now = Date.now()): Promise<string | null> {
  const raw = await store.getRef(`deploytoken/${sha256(token)}`);
  if (!raw) return null;
  const record = JSON.parse(raw) as { node: string; issued: string };
  return now - Date.parse(record.issued) < DEPLOY_TOKEN_TTL_MS ? record.node : null;
}

/** Ends a node's deploy token (its deploy succeeded, or the node is removed); no-op without one. */
export async function dropDeployToken(store: RefStore, node: string): Promise<void> {
  const key = `deploy/${node}`;
  const hash = await store.getRef(key);
  if (!hash) return;
  await store.casRef(`deploytoken/${hash}`, await store.getRef(`deploytoken/${hash}`), undefined);
  await store.casRef(key, hash, undefined);
}

/** Issues a fresh deploy token to a node, dropping the one its last boot got. */
export async function issueDeployToken(store: RefStore, node: string): Promise<string> {
  const token = randomBytes(32).toString('base64url');
  const hash = sha256(token);
  await store.casRef(`deploytoken/${hash}`, undefined, JSON.stringify({ node, issued: new Date().toISOString() }));
  const key = `deploy/${node}`;
  for (let attempt = 0; attempt < 100; attempt++) {
    const before = await store.getRef(key);
    if (await store.casRef(key, before, hash)) {
      if (before) await store.casRef(`deploytoken/${before}`, await store.getRef(`deploytoken/${before}`), undefined);
      return token;
    }
  }
  throw new ClonerError(`deploy token of ${node}: too many boots at once`, 'retry the boot');
}
