/**
 * The netboot endpoint iPXE chain-loads (`GET /boot.ipxe?mac=...`, no token: firmware has
 * none; without ?mac= it answers a script that chains back with `${net0/mac}`). By the
 * node's netboot state:
 *   local            -> `exit` (the firmware goes on to the next boot device: the disk)
 *   cloner[-multicast] -> the installer's kernel and initrd from /v1/boot/, with the server
 *                       URL, the node's name and a fresh deploy token on the kernel line
 *   unknown MAC      -> recorded under discovered/<mac> (see GET /v1/discovered), boots local
 * A deploy token is 32 random bytes; the server keeps only its SHA-256, as the ref
 * deploytoken/<sha256> -> {node, issued} (found in one lookup on every request that uses
 * it) plus deploy/<node> -> the current hash, so the next boot of that node drops the old
 * one. It reads like a read token until it expires (24 h) or is replaced.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import path from 'node:path';
import type { LocalStore } from '../core/store/local.ts';
import { nodeByMac } from '../core/nodes/registry.ts';

export const DEPLOY_TOKEN_TTL_MS = 24 * 3600_000;
const MAC = /^[0-9A-Fa-f]{2}([:-][0-9A-Fa-f]{2}){5}$/;
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/** The node a deploy token was issued to, or null (unknown, replaced or expired). */
export async function deployTokenNode(store: LocalStore, token: string): Promise<string | null> {
  const raw = await store.getRef(`deploytoken/${sha256(token)}`);
  if (!raw) return null;
  const record = JSON.parse(raw) as { node: string; issued: string };
  return Date.now() - Date.parse(record.issued) < DEPLOY_TOKEN_TTL_MS ? record.node : null;
}

/** Ends a node's deploy token (its deploy succeeded, or the node is removed). */
export async function dropDeployToken(store: LocalStore, node: string): Promise<void> {
  const key = `deploy/${node}`;
  const hash = await store.getRef(key);
  if (!hash) return;
  await store.casRef(`deploytoken/${hash}`, await store.getRef(`deploytoken/${hash}`), undefined);
  await store.casRef(key, hash, undefined);
}

/** Issues a fresh deploy token to a node, dropping the one its last boot got. */
async function issueDeployToken(store: LocalStore, node: string): Promise<string> {
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
  throw new Error(`deploy token of ${node}: too many boots at once`);
}

function baseUrl(req: FastifyRequest, publicUrl?: string): string {
  return publicUrl ?? `${req.protocol}://${req.host}`;
}

export async function netbootRoutes(app: FastifyInstance, opts: { store: LocalStore; bootDir: string; publicUrl?: string }): Promise<void> {
  const { store } = opts;

  app.get<{ Querystring: { mac?: string } }>('/boot.ipxe', { config: { access: 'public' } }, async (req, reply) => {
    reply.type('text/plain; charset=utf-8');
    // Without ?mac= (the URL dnsmasq hands out), iPXE is told to come back with its MAC.
    if (req.query.mac === undefined) return `#!ipxe\nchain ${baseUrl(req, opts.publicUrl)}/boot.ipxe?mac=\${net0/mac}\n`;
    const mac = req.query.mac;
    if (!MAC.test(mac)) return reply.code(400).send('#!ipxe\necho cloner: no valid ?mac= given; booting from disk\nexit\n');
    const wanted = mac.toLowerCase().replace(/-/g, ':');
    const node = await nodeByMac(store, wanted);
    if (!node) {
      const key = `discovered/${wanted}`;
      const before = await store.getRef(key);
      const first = before ? (JSON.parse(before) as { first: string }).first : new Date().toISOString();
      await store.casRef(key, before, JSON.stringify({ mac: wanted, first, last: new Date().toISOString(), from: req.ip }));
      return `#!ipxe\necho cloner: ${wanted} is not a registered node (recorded as discovered); booting from disk\nexit\n`;
    }
    if (node.netboot === 'local') return `#!ipxe\necho cloner: ${node.name} boots from disk\nexit\n`;
    const token = await issueDeployToken(store, node.name);
    const url = baseUrl(req, opts.publicUrl);
    const args = [`cloner.server=${url}`, `cloner.node=${node.name}`, `cloner.token=${token}`, `cloner.mode=${node.netboot === 'cloner-multicast' ? 'multicast' : 'unicast'}`, 'initrd=initrd.img', 'console=tty0', 'console=ttyS0,115200'];
    return `#!ipxe\necho cloner: ${node.name} boots the cloner installer\nkernel ${url}/v1/boot/vmlinuz ${args.join(' ')}\ninitrd ${url}/v1/boot/initrd.img\nboot\n`;
  });

  app.get<{ Params: { file: string } }>('/v1/boot/:file', { config: { access: 'public' }, schema: { params: { type: 'object', required: ['file'], properties: { file: { enum: ['vmlinuz', 'initrd.img'] } } } } }, async (req, reply) => {
    const file = path.join(opts.bootDir, req.params.file);
    if (!existsSync(file)) return reply.code(404).send({ error: 'BOOT_FILE_MISSING', message: `the installer's ${req.params.file} is not on this server`, hint: 'build it with: cloner make-installer' });
    return reply.type('application/octet-stream').send(createReadStream(file));
  });

  app.get('/v1/discovered', { config: { access: 'read' } }, async () => (await store.listRefs('discovered/')).map(([, raw]) => JSON.parse(raw)));
}
