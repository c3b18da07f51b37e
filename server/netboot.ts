/**
 * The netboot endpoint iPXE chain-loads (`GET /boot.ipxe?mac=...`, no token: firmware has
 * none; without ?mac= it answers a script that chains back with `${net0/mac}`). By the
 * node's netboot state:
 *   local              -> `exit` (the firmware goes on to the next boot device: the disk)
 *   cloner[-multicast] -> the installer for the kernel its image's golden node ran (else the
 *                         newest, with a warning; core/installer/store.ts) from
 *                         /v1/boot/<version>/, with the server URL, the node's name and the
 *                         deploy token of this arm on the kernel line, and BOOTIF= (iPXE
 *                         fills in the MAC it booted from: the installer's DHCP tries it first)
 *                         (core/nodes/deploy-tokens.ts: one token per arm, bound to the
 *                         asking address; a second ask is logged and boots from disk);
 *                         a failed fetch of the installer is tried again every
 *                         FETCH_RETRY_S seconds by the script itself, with the same token
 *   no installer       -> `exit`, logged with the hint `cloner make-installer`
 *   unknown MAC        -> recorded as discovered (core/nodes/discovered.ts: in memory, bounded,
 *                         rate-limited per source address, written once per period), boots local
 * Every value written into a script passes `ipxeWord` (no blanks, `$`, `{`, `#`, `;`, `|`,
 * quotes or line breaks), so no name can add an iPXE command; node names and versions
 * already passed their own rules, URLs are checked at start-up or from the Host header.
 * Installer uploads (make-installer) land here too: streamed, size-limited, committed whole.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { createReadStream, existsSync } from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { API } from '../core/api/routes.ts';
import { ClonerError, UsageError } from '../core/errors.ts';
import { commitInstaller, installerFile, listInstallers, pickInstaller, receiveInstallerFile } from '../core/installer/store.ts';
import { normalizeMac } from '../core/names.ts';
import { issueDeployToken } from '../core/nodes/deploy-tokens.ts';
import type { DiscoveredMacs } from '../core/nodes/discovered.ts';
import { nodeByMac, type NodeRecord } from '../core/nodes/registry.ts';
import type { RefStore } from '../core/store/interfaces.ts';
import { getImage } from '../core/tree/images.ts';
import { sendError, serve } from './route.ts';

/** Seconds between a failed fetch of the installer and the next try, in the iPXE script. */
const FETCH_RETRY_S = 10;

/** The URL nodes reach this server at; a Host header that is not a plain host[:port] is refused. */
function baseUrl(req: FastifyRequest, publicUrl?: string): string {
  if (publicUrl) return publicUrl;
  if (!/^[A-Za-z0-9.-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$/.test(req.host)) throw new UsageError(`bad Host header ${JSON.stringify(req.host.slice(0, 100))}`, 'start the server with --public-url');
  return `${req.protocol}://${req.host}`;
}

/** A value safe as one word of an iPXE script line; anything else is refused. */
export function ipxeWord(value: string): string {
  if (!/^[A-Za-z0-9._~:/?=&%+@,[\]-]{1,2048}$/.test(value)) throw new UsageError(`refusing to put ${JSON.stringify(value.slice(0, 80))} into an iPXE script`, 'names, versions and URLs reaching /boot.ipxe must be plain words');
  return value;
}

const script = (...lines: string[]) => `#!ipxe\n${lines.join('\n')}\n`;

/** The kernel version the node's image (its pinned revision, else the latest) was captured from. */
async function goldenKernel(store: RefStore, node: NodeRecord): Promise<string | null> {
  if (!node.cloner_image) return null;
  const image = await getImage(store, node.cloner_image);
  const revision = node.cloner_revision ? image?.revisions.find((r) => r.n === node.cloner_revision) : image?.revisions.at(-1);
  return revision?.kernel ?? null;
}

export async function netbootRoutes(app: FastifyInstance, opts: { store: RefStore; bootDir: string; publicUrl?: string; discovered: DiscoveredMacs }): Promise<void> {
  const { store, bootDir, discovered } = opts;
  // Installer files arrive as a stream, written to disk as they come (this plugin's scope only).
  app.addContentTypeParser('application/octet-stream', (_req, payload, done) => done(null, payload));

  serve(app, API.bootScript, async (req, reply) => {
    reply.type('text/plain; charset=utf-8');
    // Without ?mac= (the URL dnsmasq hands out), iPXE is told to come back with its MAC.
    if (req.query.mac === undefined) return script(`chain ${ipxeWord(`${baseUrl(req, opts.publicUrl)}/boot.ipxe`)}?mac=\${net0/mac}`);
    const mac = normalizeMac(req.query.mac);
    if (!mac) return reply.code(400).send(script('echo cloner: no valid ?mac= given; booting from disk', 'exit'));
    const node = await nodeByMac(store, mac);
    if (!node) {
      const recorded = discovered.record(mac, req.ip) !== 'rate-limited';
      return script(`echo cloner: ${ipxeWord(mac)} is not a registered node (${recorded ? 'recorded as discovered' : 'not recorded: too many new MACs from this address'}); booting from disk`, 'exit');
    }
    const name = ipxeWord(node.name);
    if (node.netboot === 'local') return script(`echo cloner: ${name} boots from disk`, 'exit');
    const wanted = await goldenKernel(store, node);
    const choice = pickInstaller((await listInstallers(bootDir)).map((i) => i.version), wanted);
    if (!choice) {
      req.log.warn({ node: node.name, kernel: wanted }, 'a node set to cloner asked for the installer, but this server has none: run cloner make-installer on the golden node');
      return script(`echo cloner: ${name} is set to cloner, but the server has no installer (run cloner make-installer); booting from disk`, 'exit');
    }
    if (choice.warning) req.log.warn({ node: node.name }, choice.warning);
    // Everything the script names is checked before the arm's one token is spent.
    const url = ipxeWord(baseUrl(req, opts.publicUrl));
    const version = ipxeWord(choice.version);
    let token: string;
    try {
      token = await issueDeployToken(store, node.name, req.ip);
    } catch (err) {
      if (!(err instanceof ClonerError) || err.status >= 500) throw err;
      req.log.warn({ node: node.name, mac, from: req.ip, code: err.code }, err.message);
      return script(`echo cloner: ${name} gets no deploy token from this request (see the server log); booting from disk`, 'exit');
    }
    const args = [`cloner.server=${url}`, `cloner.node=${name}`, `cloner.token=${ipxeWord(token)}`, `cloner.mode=${node.netboot === 'cloner-multicast' ? 'multicast' : 'unicast'}`, 'boot=cloner', 'initrd=initrd.img', 'console=tty0', 'console=ttyS0,115200', 'BOOTIF=01-${netX/mac:hexhyp}'];
    // A failed fetch (the server restarting, a cut connection) is tried again with the same
    // token: this boot holds the arm's only one, and asking /boot.ipxe again would get none.
    return script(
      `echo cloner: ${name} boots the cloner installer ${version}`,
      ':cloner_fetch',
      `kernel ${url}/v1/boot/${version}/vmlinuz ${args.join(' ')} || goto cloner_retry`,
      `initrd ${url}/v1/boot/${version}/initrd.img || goto cloner_retry`,
      'boot || goto cloner_retry',
      ':cloner_retry',
      'imgfree',
      `echo cloner: ${name} could not fetch or boot the installer; trying again in ${FETCH_RETRY_S} s`,
      `sleep ${FETCH_RETRY_S}`,
      'goto cloner_fetch',
    );
  });

  serve(app, API.installerBootFile, async (req, reply) => {
    return reply.type('application/octet-stream').send(createReadStream(installerFile(bootDir, req.params.version, req.params.file)));
  });

  // The single unversioned installer of earlier servers (DATA/boot/vmlinuz, initrd.img), still served.
  serve(app, API.bootFile, async (req, reply) => {
    const file = path.join(bootDir, req.params.file);
    if (!existsSync(file)) return sendError(reply, 404, 'BOOT_FILE_MISSING', `the installer's ${req.params.file} is not on this server`, 'build and upload one: cloner make-installer (on the golden node)');
    return reply.type('application/octet-stream').send(createReadStream(file));
  });

  serve(app, API.discovered, async () => discovered.list());
  serve(app, API.listInstallers, async () => listInstallers(bootDir));
  serve(app, API.putInstallerFile, async (req, reply) => {
    const body = req.body as unknown as Readable | undefined;
    if (!body || typeof (body as Readable).pipe !== 'function') return sendError(reply, 415, 'UNSUPPORTED_MEDIA_TYPE', 'send the file as application/octet-stream', 'cloner make-installer uploads it');
    return { bytes: await receiveInstallerFile(bootDir, req.params.version, req.params.file, body) };
  });
  serve(app, API.commitInstaller, async (req) => commitInstaller(bootDir, req.params.version, req.body));
}
