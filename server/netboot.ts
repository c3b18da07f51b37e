/**
 * The netboot endpoint iPXE chain-loads (`GET /boot.ipxe?mac=...`, no token: firmware has
 * none; without ?mac= it answers a script that chains back with `${net0/mac}`). By the
 * node's netboot state:
 *   local              -> `exit` (the firmware goes on to the next boot device: the disk)
 *   cloner[-multicast] -> the installer's kernel and initrd from /v1/boot/, with the server
 *                         URL, the node's name and a fresh deploy token on the kernel line
 *                         (core/nodes/deploy-tokens.ts)
 *   unknown MAC        -> recorded as discovered (core/nodes/discovered.ts: in memory, bounded,
 *                         rate-limited per source address, written once per period), boots local
 * Only names that passed the registry's rules (node names, URLs checked at start-up) reach
 * the script.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { createReadStream, existsSync } from 'node:fs';
import path from 'node:path';
import { API } from '../core/api/routes.ts';
import { UsageError } from '../core/errors.ts';
import { normalizeMac } from '../core/names.ts';
import { issueDeployToken } from '../core/nodes/deploy-tokens.ts';
import type { DiscoveredMacs } from '../core/nodes/discovered.ts';
import { nodeByMac } from '../core/nodes/registry.ts';
import type { RefStore } from '../core/store/interfaces.ts';
import { sendError, serve } from './route.ts';

/** The URL nodes reach this server at; a Host header that is not a plain host[:port] is refused. */
function baseUrl(req: FastifyRequest, publicUrl?: string): string {
  if (publicUrl) return publicUrl;
  if (!/^[A-Za-z0-9.-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$/.test(req.host)) throw new UsageError(`bad Host header ${JSON.stringify(req.host.slice(0, 100))}`, 'start the server with --public-url');
  return `${req.protocol}://${req.host}`;
}

export async function netbootRoutes(app: FastifyInstance, opts: { store: RefStore; bootDir: string; publicUrl?: string; discovered: DiscoveredMacs }): Promise<void> {
  const { store } = opts;
  const { discovered } = opts;

  serve(app, API.bootScript, async (req, reply) => {
    reply.type('text/plain; charset=utf-8');
    // Without ?mac= (the URL dnsmasq hands out), iPXE is told to come back with its MAC.
    if (req.query.mac === undefined) return `#!ipxe\nchain ${baseUrl(req, opts.publicUrl)}/boot.ipxe?mac=\${net0/mac}\n`;
    const mac = normalizeMac(req.query.mac);
    if (!mac) return reply.code(400).send('#!ipxe\necho cloner: no valid ?mac= given; booting from disk\nexit\n');
    const node = await nodeByMac(store, mac);
    if (!node) {
      const recorded = discovered.record(mac, req.ip) !== 'rate-limited';
      return `#!ipxe\necho cloner: ${mac} is not a registered node (${recorded ? 'recorded as discovered' : 'not recorded: too many new MACs from this address'}); booting from disk\nexit\n`;
    }
    if (node.netboot === 'local') return `#!ipxe\necho cloner: ${node.name} boots from disk\nexit\n`;
    const token = await issueDeployToken(store, node.name);
    const url = baseUrl(req, opts.publicUrl);
    const args = [`cloner.server=${url}`, `cloner.node=${node.name}`, `cloner.token=${token}`, `cloner.mode=${node.netboot === 'cloner-multicast' ? 'multicast' : 'unicast'}`, 'initrd=initrd.img', 'console=tty0', 'console=ttyS0,115200'];
    return `#!ipxe\necho cloner: ${node.name} boots the cloner installer\nkernel ${url}/v1/boot/vmlinuz ${args.join(' ')}\ninitrd ${url}/v1/boot/initrd.img\nboot\n`;
  });

  serve(app, API.bootFile, async (req, reply) => {
    const file = path.join(opts.bootDir, req.params.file);
    if (!existsSync(file)) return sendError(reply, 404, 'BOOT_FILE_MISSING', `the installer's ${req.params.file} is not on this server`, `put the installer's vmlinuz and initrd.img in ${opts.bootDir}`);
    return reply.type('application/octet-stream').send(createReadStream(file));
  });

  serve(app, API.discovered, async () => discovered.list());
}
