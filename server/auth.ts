/**
 * Bearer-token auth of the cloner server. Two tokens live in the data directory, each
 * created on first start with mode 0600: `admin.token` (every route, writes included; the
 * CLI reads it with --token-file or CLONER_TOKEN) and `read.token` (read-only routes: what
 * nodes use to fetch). Requests carry `Authorization: Bearer <token>`. Tokens are compared
 * as SHA-256 digests with timingSafeEqual. No token or a wrong one is 401; a read token on
 * a write route is 403.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { newToken } from '../core/secret.ts';

/** 'node': the admin token, or the deploy token of the node the route's :name names. */
export type Access = 'public' | 'read' | 'write' | 'node';
export type Role = 'admin' | 'read';

export interface TokenAuth {
  /** The role of a presented token, or null when it is unknown. */
  roleOf(token: string): Role | null;
}

const digest = (token: string) => createHash('sha256').update(token).digest();

async function loadOrCreate(file: string): Promise<string> {
  try {
    const text = (await readFile(file, 'utf8')).trim();
    if (text.length >= 16) return text;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const token = newToken();
  await writeFile(file, `${token}\n`, { mode: 0o600, flag: 'wx' }).catch(async (err) => {
    // Another server start won the race: use its token.
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  });
  return (await readFile(file, 'utf8')).trim();
}

/** Reads (or creates) DIR/admin.token and DIR/read.token. */
export async function loadTokens(dataDir: string): Promise<TokenAuth & { adminToken: string; readToken: string }> {
  const adminToken = await loadOrCreate(path.join(dataDir, 'admin.token'));
  const readToken = await loadOrCreate(path.join(dataDir, 'read.token'));
  const known: Array<[Buffer, Role]> = [
    [digest(adminToken), 'admin'],
    [digest(readToken), 'read'],
  ];
  return {
    adminToken,
    readToken,
    roleOf(token: string) {
      const d = digest(token);
      let role: Role | null = null;
      for (const [k, r] of known) if (timingSafeEqual(k, d)) role = r;
      return role;
    },
  };
}
