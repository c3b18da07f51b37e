/**
 * Deploy tokens: what a node booting the installer uses instead of a server token.
 *
 * /boot.ipxe answers anyone on the provisioning network who names a MAC, so a token is
 * handed out under these rules:
 *   - only while the node is armed: an admin set its netboot to cloner or cloner-multicast
 *     (`armDeploy`, called by the registry on that change). Arming again starts a new arm;
 *     netboot back to local, a successful deploy or removing the node ends it;
 *   - one token per arm: the first /boot.ipxe of an armed node gets it; a second request
 *     while that token lives is refused and logged by the caller (`TokenHeldError` says who
 *     holds it), never silently replacing the first boot's token. A node that must boot the
 *     installer again is re-armed (`cloner netboot --set cloner`);
 *   - bound to the source address the request came from: presented from another address,
 *     it is unknown (401);
 *   - the node's SSH host keys are handed out to one token per arm (`claimHostKeys`): the
 *     boot that fetched them first may fetch them again (a retried deploy), no other.
 * A token is 32 random bytes (base64url); the store keeps only its SHA-256, as the ref
 * deploytoken/<sha256> -> {node, issued, ip} (one lookup per request that uses it), and
 * deploy/<node> -> {armed, hash?, ip?, issued?, hostKeys?}, the arm. A token reads like
 * read.token and acts for its own node only, until it expires (DEPLOY_TOKEN_TTL_MS) or the
 * arm ends.
 */
import { createHash } from 'node:crypto';
import { ClonerError } from '../errors.ts';
import { newToken } from '../secret.ts';
import type { RefStore } from '../store/interfaces.ts';

export const DEPLOY_TOKEN_TTL_MS = 24 * 3600_000;
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

interface Arm {
  armed: string;
  hash?: string;
  ip?: string;
  issued?: string;
  /** When the host keys went out, and the SHA-256 of the token they went to (older arms: the time only). */
  hostKeys?: string | { at: string; hash: string };
}

interface TokenRecord {
  node: string;
  issued: string;
  ip?: string;
}

/** A second /boot.ipxe for a node whose token of this arm is still held. */
export class TokenHeldError extends ClonerError {
  override readonly code = 'DEPLOY_TOKEN_HELD';
  override readonly status = 409;
}

/** The node is not armed (netboot is local), or its host keys were handed out already this arm. */
export class NotArmedError extends ClonerError {
  override readonly code = 'DEPLOY_NOT_ARMED';
  override readonly status = 403;
}

const armKey = (node: string) => `deploy/${node}`;

async function readArm(store: Pick<RefStore, 'getRef'>, node: string): Promise<{ raw: string | undefined; arm: Arm | null }> {
  const raw = await store.getRef(armKey(node));
  if (!raw) return { raw, arm: null };
  // Before arms, the ref held the bare hash of the last token: treat it as an arm with that token.
  if (!raw.startsWith('{')) return { raw, arm: { armed: new Date(0).toISOString(), hash: raw } };
  return { raw, arm: JSON.parse(raw) as Arm };
}

async function dropTokenHash(store: RefStore, hash: string | undefined): Promise<void> {
  if (!hash) return;
  const ref = `deploytoken/${hash}`;
  await store.casRef(ref, await store.getRef(ref), undefined);
}

/** Replaces a node's arm (read-modify-CAS); `next` undefined ends it. Drops a token the change leaves behind. */
async function changeArm(store: RefStore, node: string, change: (arm: Arm | null) => Arm | undefined): Promise<Arm | undefined> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const { raw, arm } = await readArm(store, node);
    const next = change(arm);
    if (await store.casRef(armKey(node), raw, next ? JSON.stringify(next) : undefined)) {
      if (arm?.hash && arm.hash !== next?.hash) await dropTokenHash(store, arm.hash);
      return next;
    }
  }
  throw new ClonerError(`deploy token of ${node}: too many changes at once`, 'retry');
}

/** Arms a node for one installer boot (its netboot was set to cloner); any earlier token ends. */
export async function armDeploy(store: RefStore, node: string): Promise<void> {
  await changeArm(store, node, () => ({ armed: new Date().toISOString() }));
}

/** Ends a node's arm and token (its deploy succeeded, netboot went back to local, or the node is removed). */
export async function dropDeployToken(store: RefStore, node: string): Promise<void> {
  await changeArm(store, node, () => undefined);
}

/**
 * Issues the token of a node's current arm to the boot asking from `ip`. NotArmedError when
 * the node is not armed; TokenHeldError when this arm's token was already issued and has not
 * expired (the message names the address and time, for the server log).
 */
export async function issueDeployToken(store: RefStore, node: string, ip: string, now = Date.now()): Promise<string> {
  const token = newToken();
  const hash = sha256(token);
  const issued = new Date(now).toISOString();
  await store.casRef(`deploytoken/${hash}`, undefined, JSON.stringify({ node, issued, ip } satisfies TokenRecord));
  try {
    await changeArm(store, node, (arm) => {
      if (!arm) throw new NotArmedError(`${node} is not armed for a deploy`, `cloner netboot --nodes ${node} --set cloner`);
      if (arm.hash && arm.issued && now - Date.parse(arm.issued) < DEPLOY_TOKEN_TTL_MS) {
        throw new TokenHeldError(`${node}: the deploy token of this arm was issued to ${arm.ip ?? 'another boot'} at ${arm.issued}; a second boot from ${ip} gets none`, `if ${node} must boot the installer again, re-arm it: cloner netboot --nodes ${node} --set cloner`);
      }
      // A host-key claim of this arm stays with the token it went to (claimHostKeys).
      return { armed: arm.armed, hash, ip, issued, ...(arm.hostKeys ? { hostKeys: arm.hostKeys } : {}) };
    });
  } catch (err) {
    await dropTokenHash(store, hash);
    throw err;
  }
  return token;
}

/**
 * The node a deploy token was issued to, or null (unknown, expired, its arm ended, or
 * presented from another address than the boot it was issued to). `now` is the clock, for tests.
 */
export async function deployTokenNode(store: Pick<RefStore, 'getRef'>, token: string, from: { ip?: string; now?: number } = {}): Promise<string | null> {
  const hash = sha256(token);
  const raw = await store.getRef(`deploytoken/${hash}`);
  if (!raw) return null;
  const record = JSON.parse(raw) as TokenRecord;
  if ((from.now ?? Date.now()) - Date.parse(record.issued) >= DEPLOY_TOKEN_TTL_MS) return null;
  if (record.ip !== undefined && from.ip !== undefined && sameAddress(record.ip) !== sameAddress(from.ip)) return null;
  const { arm } = await readArm(store, record.node);
  return arm?.hash === hash ? record.node : null;
}

/** `::ffff:198.18.0.5` and `198.18.0.5` are one address. */
function sameAddress(ip: string): string {
  return ip.replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/, '$1');
}

/**
 * Records that the node's deploy fetched its SSH host keys with `token` (the deploy token
 * of the request). The keys go to one token per arm: the first fetch binds them to its
 * token, and only that token (itself bound to the address it was issued to) fetches them
 * again, so a deploy retried within the same boot (the installer's back-off) gets them,
 * while any other token of this node (one issued after the first expired in the same arm)
 * gets NotArmedError, as does a node that is not armed.
 */
export async function claimHostKeys(store: RefStore, node: string, token: string): Promise<void> {
  const hash = sha256(token);
  await changeArm(store, node, (arm) => {
    if (!arm) throw new NotArmedError(`${node} is not armed for a deploy`, 'host keys go only to the installer of an armed node');
    const claimed = arm.hostKeys;
    if (claimed && (typeof claimed === 'string' || claimed.hash !== hash)) {
      throw new NotArmedError(`${node}'s SSH host keys were handed out already in this deploy, to another boot (${typeof claimed === 'string' ? claimed : claimed.at})`, `re-arm the node to deploy it again: cloner netboot --nodes ${node} --set cloner`);
    }
    return claimed ? arm : { ...arm, hostKeys: { at: new Date().toISOString(), hash } };
  });
}
