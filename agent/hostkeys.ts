/**
 * The node's SSH host keys: those the server keeps (made by its first deploy), or new ones
 * made with ssh-keygen -A (their comment root@NODE) and kept there (a PUT the server accepts
 * once; if another deploy of the node stored keys first, those are used).
 *
 * Started with the deploy (`HostKeys.start`, after the plan): the server is asked then, and
 * when it keeps none the keys are made in the deploy's work directory while the layout and
 * restore phases run (ssh-keygen -A's RSA key alone took 0.3-1 s of the identity phase).
 * The identity phase takes them (`keys`): only then, and only when the image has /etc/ssh,
 * are new keys stored on the server, as before; keys made for an image without SSH are
 * dropped with the work directory. An error (server, ssh-keygen) is thrown by `keys`, in
 * the identity phase, where it was thrown before.
 */
import * as fs from 'node:fs';
import path from 'node:path';
import { API } from '../core/api/endpoints.ts';
import { haveTool, run } from '../core/tools.ts';
import type { AgentClient } from './client.ts';

type KeyFiles = Record<string, string>;

const decode = (files: KeyFiles) => Object.fromEntries(Object.entries(files).map(([name, b64]) => [name, Buffer.from(b64, 'base64')]));

/** Makes a full set of host keys under `workDir` for `node`: file name -> base64 bytes. */
async function makeKeys(workDir: string, node: string): Promise<KeyFiles> {
  const prefix = path.join(workDir, 'hostkeys');
  const dir = path.join(prefix, 'etc/ssh');
  fs.mkdirSync(dir, { recursive: true });
  await run(['ssh-keygen', '-A', '-f', prefix]);
  // ssh-keygen -A names the machine that made them (root@<boot environment>): the keys are the node's.
  const names = fs.readdirSync(dir).filter((name) => /^ssh_host_[a-z0-9]+_key$/.test(name));
  await Promise.all(names.map((name) => run(['ssh-keygen', '-q', '-c', '-C', `root@${node}`, '-P', '', '-f', path.join(dir, name)])));
  const files: KeyFiles = {};
  for (const name of fs.readdirSync(dir).sort()) if (/^ssh_host_[a-z0-9]+_key(\.pub)?$/.test(name)) files[name] = fs.readFileSync(path.join(dir, name)).toString('base64');
  return files;
}

/** The node's SSH host keys, asked for (and made, if the server keeps none) ahead of the identity phase. */
export class HostKeys {
  private readonly client: AgentClient;
  private readonly node: string;
  /** What the server keeps (null: none). */
  private readonly kept: Promise<KeyFiles | null>;
  /** Keys made here when the server keeps none (null: it keeps some, or no ssh-keygen). */
  private readonly made: Promise<KeyFiles | null>;

  private constructor(client: AgentClient, node: string, kept: Promise<KeyFiles | null>, made: Promise<KeyFiles | null>) {
    this.client = client;
    this.node = node;
    this.kept = kept;
    this.made = made;
  }

  /** Asks the server and, when it keeps none, starts making keys in `workDir` (removed by the caller after `settle`). */
  static start(client: AgentClient, node: string, workDir: string): HostKeys {
    const kept = client.api.callOrNull(API.getHostKeys, { params: { name: node } }).then((k) => k?.files ?? null);
    const made = kept.then((k) => (k || !haveTool('ssh-keygen') ? null : makeKeys(workDir, node)));
    // Thrown by keys(), in the identity phase; a deploy that fails before it never asks.
    made.catch(() => {});
    return new HostKeys(client, node, kept, made);
  }

  /** The keys the node is to have: the server's, or those made here, stored there now (first PUT wins). */
  async keys(warn: (m: string) => void): Promise<Record<string, Buffer> | null> {
    const kept = await this.kept;
    if (kept) return decode(kept);
    const files = await this.made;
    if (!files) {
      warn('ssh-keygen is not on this node: no SSH host keys made');
      return null;
    }
    try {
      await this.client.api.call(API.putHostKeys, { params: { name: this.node }, body: { files } });
      return decode(files);
    } catch (err) {
      // Another deploy of this node stored its keys first: use those.
      const again = await this.client.api.callOrNull(API.getHostKeys, { params: { name: this.node } });
      if (again) return decode(again.files);
      throw err;
    }
  }

  /** Waits for ssh-keygen to be done (before the work directory is removed); never throws. */
  async settle(): Promise<void> {
    await this.made.catch(() => {});
  }
}
