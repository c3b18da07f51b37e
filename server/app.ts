/**
 * The cloner server's HTTP API (fastify), over an embedded LocalStore. The routes are the
 * table of core/api/routes.ts, served by the plugins chunks.ts, images.ts, nodes.ts,
 * deploy.ts, multicast.ts and netboot.ts; the rules behind them live in core/.
 *
 * Auth is the route's `access` ('public' | 'read' | 'node' | 'write') checked in an
 * onRequest hook against the admin and read tokens (server/auth.ts) and deploy tokens
 * (core/nodes/deploy-tokens.ts). Every error is JSON {error: CODE, message, hint}: a
 * ClonerError answers with its own status and code (core/errors.ts), a schema failure is
 * 400, anything else 500 (logged). Unknown fields are refused, types never coerced, and
 * bodies are limited per route (1 MiB unless the route says otherwise).
 */
import Fastify, { LogController, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { API, JSON_BODY_LIMIT, type Access } from '../core/api/routes.ts';
import { ClonerError } from '../core/errors.ts';
import { LiveDeploys } from '../core/nodes/deploy.ts';
import { deployTokenNode } from '../core/nodes/deploy-tokens.ts';
import { DiscoveredMacs, type DiscoveredLimits } from '../core/nodes/discovered.ts';
import type { LocalStore } from '../core/store/local.ts';
import { MulticastHub, type HubLimits } from '../core/multicast/hub.ts';
import type { TokenAuth } from './auth.ts';
import { chunkRoutes } from './chunks.ts';
import { deployRoutes } from './deploy.ts';
import { imageRoutes } from './images.ts';
import { multicastRoutes } from './multicast.ts';
import { netbootRoutes } from './netboot.ts';
import { nodeRoutes } from './nodes.ts';
import { sendError, serve } from './route.ts';
import type { SessionLimits } from './ui/sessions.ts';
import { uiRoutes } from './ui/plugin.ts';
import { SERVER_VERSION } from './version.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    access?: Access;
  }
  interface FastifyRequest {
    /** The node a deploy token was issued to (null for the admin and read tokens). */
    deployNode: string | null;
  }
}

export interface ServerOptions {
  store: LocalStore;
  auth: TokenAuth;
  logger?: boolean | Record<string, unknown>;
  /** How long chunks of uploads not yet committed are kept from GC (one to two periods). */
  uploadGraceMs?: number;
  /** Where the installer's vmlinuz and initrd.img are (served at /v1/boot/). */
  bootDir?: string;
  /** The URL nodes reach the server at (default: from the request's Host). */
  publicUrl?: string;
  /** PEM certificate and key: serve HTTPS. */
  tls?: { cert: Buffer; key: Buffer };
  /** The web interface under /ui/ (server/ui): its session limits, or false for none. */
  ui?: { sessions?: SessionLimits } | false;
  /** Bounds of the discovered-MAC list (tests shrink them). */
  discovered?: Partial<DiscoveredLimits>;
  /** Multicast session limits (core/multicast/hub.ts DEFAULT_LIMITS). */
  multicast?: Partial<HubLimits>;
}

/** Checks a request's token against the route's access level; answers 401/403 itself. */
function authHook(store: LocalStore, auth: TokenAuth) {
  return async (req: FastifyRequest, reply: FastifyReply) => {
    const access = req.routeOptions.config?.access ?? 'write';
    if (access === 'public') return;
    const m = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
    if (!m) return sendError(reply, 401, 'UNAUTHORIZED', 'no token given', 'pass the server token: --token-file, CLONER_TOKEN or the client config');
    // A deploy token (issued by /boot.ipxe to a node booting the installer) reads like
    // read.token and may act for its own node.
    let role = auth.roleOf(m[1]);
    if (!role) {
      req.deployNode = await deployTokenNode(store, m[1], { ip: req.ip });
      if (req.deployNode) role = 'read';
    }
    if (!role) return sendError(reply, 401, 'UNAUTHORIZED', 'the token is not valid for this server', 'use the token in the server\'s data directory (admin.token, or read.token for read-only clients)');
    if (access === 'node' && role !== 'admin' && req.deployNode !== (req.params as { name?: string }).name) {
      return sendError(reply, 403, 'FORBIDDEN', 'this token may not act for this node', 'use the deploy token the node booted with, or the admin token');
    }
    if (access === 'write' && role !== 'admin') return sendError(reply, 403, 'FORBIDDEN', 'this token may only read', 'writes need the admin token');
  };
}

/** Deepest nesting of arrays and objects a JSON body may have (a layout needs about 6). */
const MAX_JSON_DEPTH = 64;

class BadBodyError extends ClonerError {
  override readonly code = 'BAD_REQUEST';
}

/** The deepest nesting of [ and { outside strings in `text` (one pass, no recursion). */
function jsonDepth(text: string): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) max = Math.max(max, ++depth);
    else if (c === 0x5d || c === 0x7d) depth--;
  }
  return max;
}

export async function buildServer(opts: ServerOptions): Promise<FastifyInstance> {
  const { store, auth } = opts;
  const app = Fastify({
    logger: opts.logger ?? false,
    // One line per request only at debug (the onResponse hook below): at info an hour of
    // ordinary use logged ~40k lines; info is for what an admin wants to read.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: JSON_BODY_LIMIT,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false } },
    // The router's own refusals (a URL that does not decode, a path parameter over 100
    // characters) answer with the same JSON error body as every other 4xx.
    frameworkErrors: (err: Error & { statusCode?: number; code?: string }, _req, reply) =>
      sendError(reply, err.statusCode ?? 400, err.code === 'FST_ERR_MAX_PARAM_LENGTH' ? 'URL_TOO_LONG' : 'BAD_URL', err.message.slice(0, 200), 'check the name or id in the URL'),
    ...(opts.tls ? { https: { cert: opts.tls.cert, key: opts.tls.key } } : {}),
  });

  // Graceful stop: close() lets requests in flight finish; their answers then close the
  // connection, and idle keep-alive connections are closed, so the process can exit.
  let closing = false;
  let idleSweep: NodeJS.Timeout | undefined;
  app.addHook('preClose', async () => {
    closing = true;
    idleSweep = setInterval(() => app.server.closeIdleConnections?.(), 100);
    idleSweep.unref();
  });
  app.addHook('onClose', async () => clearInterval(idleSweep));
  app.addHook('onSend', async (_req, reply, payload) => {
    if (closing) reply.header('connection', 'close');
    return payload;
  });

  // JSON bodies: the default parser (prototype keys refused) behind a nesting check, so a
  // 1 MiB body of brackets cannot exhaust the stack of whatever walks the value later.
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (req, body, done) => {
    if (jsonDepth(body as string) > MAX_JSON_DEPTH) return done(new BadBodyError(`the JSON body nests deeper than ${MAX_JSON_DEPTH} levels`, 'no request of the protocol needs that'), undefined);
    parseJson(req, body as string, done);
  });

  app.addHook('onResponse', async (req, reply) => {
    req.log.debug({ method: req.method, url: req.url, status: reply.statusCode, ms: Math.round(reply.elapsedTime) }, 'request');
  });

  app.decorateRequest('deployNode', null);
  app.addHook('onRequest', authHook(store, auth));

  app.setErrorHandler((err: Error & { validation?: unknown; statusCode?: number; code?: string }, req, reply) => {
    if (err instanceof ClonerError) {
      if (err.status >= 500) req.log.error({ err }, err.message);
      return sendError(reply, err.status, err.code, err.message, err.hint);
    }
    if (err.validation) return sendError(reply, 400, 'BAD_REQUEST', err.message, 'the message names the field and the rule it broke');
    if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) return sendError(reply, err.statusCode, err.code ?? 'BAD_REQUEST', err.message, '');
    req.log.error(err);
    return sendError(reply, 500, 'INTERNAL', 'internal server error', 'see the server log');
  });
  app.setNotFoundHandler((req, reply) => sendError(reply, 404, 'NOT_FOUND', `no route ${req.method} ${req.url}`, 'check the server URL and version'));

  serve(app, API.health, async () => ({ ok: true, version: SERVER_VERSION }));
  await app.register(chunkRoutes, { store });
  await app.register(imageRoutes, { store, uploadGraceMs: opts.uploadGraceMs });
  await app.register(nodeRoutes, { store });
  const live = new LiveDeploys();
  // Unknown MACs /boot.ipxe sees, in memory (bounded, written now and then): netboot records, the UI lists.
  const discovered = new DiscoveredMacs(store, opts.discovered);
  await discovered.start();
  app.addHook('onClose', async () => discovered.stop());
  await app.register(deployRoutes, { store, chunker: store.config.chunker, live });
  const hub = new MulticastHub(store, opts.multicast);
  await app.register(multicastRoutes, { store, hub });
  await app.register(netbootRoutes, { store, bootDir: opts.bootDir ?? path.join(tmpdir(), 'cloner-no-boot-dir'), publicUrl: opts.publicUrl, discovered });
  if (opts.ui !== false) await app.register(uiRoutes, { prefix: '/ui', store, auth, live, discovered, multicast: hub, secure: !!opts.tls, sessions: opts.ui?.sessions });
  // What opening the store found (e.g. a full disk that needed its reserve file).
  for (const notice of store.notices) app.log.warn(notice);
  return app;
}
