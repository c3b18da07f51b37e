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
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { API, JSON_BODY_LIMIT, type Access } from '../core/api/routes.ts';
import { ClonerError } from '../core/errors.ts';
import { LiveDeploys } from '../core/nodes/deploy.ts';
import { deployTokenNode } from '../core/nodes/deploy-tokens.ts';
import type { LocalStore } from '../core/store/local.ts';
import type { HubLimits } from '../core/multicast/hub.ts';
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
      req.deployNode = await deployTokenNode(store, m[1]);
      if (req.deployNode) role = 'read';
    }
    if (!role) return sendError(reply, 401, 'UNAUTHORIZED', 'the token is not valid for this server', 'use the token in the server\'s data directory (admin.token, or read.token for read-only clients)');
    if (access === 'node' && role !== 'admin' && req.deployNode !== (req.params as { name?: string }).name) {
      return sendError(reply, 403, 'FORBIDDEN', 'this token may not act for this node', 'use the deploy token the node booted with, or the admin token');
    }
    if (access === 'write' && role !== 'admin') return sendError(reply, 403, 'FORBIDDEN', 'this token may only read', 'writes need the admin token');
  };
}

export async function buildServer(opts: ServerOptions): Promise<FastifyInstance> {
  const { store, auth } = opts;
  const app = Fastify({
    logger: opts.logger ?? false,
    bodyLimit: JSON_BODY_LIMIT,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false } },
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
  await app.register(deployRoutes, { store, chunker: store.config.chunker, live });
  await app.register(multicastRoutes, { store, limits: opts.multicast });
  await app.register(netbootRoutes, { store, bootDir: opts.bootDir ?? path.join(tmpdir(), 'cloner-no-boot-dir'), publicUrl: opts.publicUrl });
  if (opts.ui !== false) await app.register(uiRoutes, { prefix: '/ui', store, auth, live, secure: !!opts.tls, sessions: opts.ui?.sessions });
  return app;
}
