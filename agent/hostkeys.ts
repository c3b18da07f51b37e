/**
 * The node's SSH host keys: those the server keeps (made by its first deploy), or new ones
 * made now with ssh-keygen -A (their comment root@NODE) and kept there (a PUT the server accepts once; if another
 * deploy of the node stored keys first, those are used).
 */
import * as fs from 'node:fs';
import path from 'node:path';
import { API } from '../core/api/endpoints.ts';
import { haveTool, run } from '../core/tools.ts';
import type { AgentClient } from './client.ts';

/** The node's SSH host keys: those the server keeps, or new ones made now and kept there. */
export async function nodeHostKeys(client: AgentClient, node: string, workDir: string, warn: (m: string) => void): Promise<Record<string, Buffer> | null> {
  const decode = (files: Record<string, string>) => Object.fromEntries(Object.entries(files).map(([name, b64]) => [name, Buffer.from(b64, 'base64')]));
  const kept = await client.api.callOrNull(API.getHostKeys, { params: { name: node } });
  if (kept) return decode(kept.files);
  if (!haveTool('ssh-keygen')) {
    warn('ssh-keygen is not on this node: no SSH host keys made');
    return null;
  }
  const prefix = path.join(workDir, 'hostkeys');
  fs.mkdirSync(path.join(prefix, 'etc/ssh'), { recursive: true });
  await run(['ssh-keygen', '-A', '-f', prefix]);
  // ssh-keygen -A names the machine that made them (root@<boot environment>): the keys are the node's.
  for (const name of fs.readdirSync(path.join(prefix, 'etc/ssh'))) {
    if (/^ssh_host_[a-z0-9]+_key$/.test(name)) await run(['ssh-keygen', '-q', '-c', '-C', `root@${node}`, '-P', '', '-f', path.join(prefix, 'etc/ssh', name)]);
  }
  const files: Record<string, string> = {};
  for (const name of fs.readdirSync(path.join(prefix, 'etc/ssh'))) if (/^ssh_host_[a-z0-9]+_key(\.pub)?$/.test(name)) files[name] = fs.readFileSync(path.join(prefix, 'etc/ssh', name)).toString('base64');
  try {
    await client.api.call(API.putHostKeys, { params: { name: node }, body: { files } });
    return decode(files);
  } catch (err) {
    // Another deploy of this node stored its keys first: use those.
    const again = await client.api.callOrNull(API.getHostKeys, { params: { name: node } });
    if (again) return decode(again.files);
    throw err;
  }
}
