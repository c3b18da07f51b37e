/**
 * The cloner server's HTTP API (fastify), over an embedded LocalStore.
 *
 * Chunk routes (v1), each with a JSON schema; bodies of chunk streams use the wire format
 * of core/store/wire.ts:
 *   POST /v1/chunks/missing  {ids}        -> {missing}      which of a batch the store lacks (read)
 *   POST /v1/chunks          frame stream -> {stored, ids}  upload; every chunk is decoded and its
 *                                                          BLAKE3 checked before it is indexed (write)
 *   POST /v1/chunks/fetch    {ids}        -> frame stream   many chunks in one response (read)
 *   GET  /v1/chunks/:id                   -> one frame      immutable, ETag = id, cacheable (read)
 *   GET  /v1/health                       -> {ok, version}  (public)
 *
 * Auth is a route-level `access` ('public' | 'read' | 'write') checked in an onRequest hook
 * (server/auth.ts). Every error is JSON {error: CODE, message, hint} with a 4xx status for
 * bad input: a ClonerError maps by its code, schema failures are 400. An upload that fails
 * midway keeps the chunks already checked and stored (they are idempotent and GC takes
 * them if no revision ever refers to them) and stores nothing of the bad frame.
 */
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { Readable } from 'node:stream';
import { ClonerError } from '../core/errors.ts';
import { isChunkId } from '../core/store/chunk-id.ts';
import type { LocalStore } from '../core/store/local.ts';
import { CHUNKS_MEDIA_TYPE, encodeFrame, readFrames } from '../core/store/wire.ts';
import type { Access, TokenAuth } from './auth.ts';
import { imageRoutes } from './images.ts';
import { nodeRoutes } from './nodes.ts';
import { deployRoutes } from './deploy.ts';
import { deployTokenNode, netbootRoutes } from './netboot.ts';
import { tmpdir } from 'node:os';
import path from 'node:path';
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
  /** Most ids in one missing/fetch request. */
  maxBatch?: number;
  /** How long chunks of uploads not yet committed are kept from GC (one to two periods). */
  uploadGraceMs?: number;
  /** Where the installer's vmlinuz and initrd.img are (served at /v1/boot/). */
  bootDir?: string;
  /** The URL nodes reach the server at (default: from the request's Host). */
  publicUrl?: string;
  /** PEM certificate and key: serve HTTPS. */
  tls?: { cert: Buffer; key: Buffer };
}


const STATUS_BY_CODE: Record<string, number> = {
  CHUNK_MISSING: 404,
  IMAGE_NOT_FOUND: 404,
  LAYOUT_NOT_FOUND: 404,
  CHUNK_CORRUPT: 400,
  CHUNK_INVALID: 400,
  FRAME_INVALID: 400,
  NAME_INVALID: 400,
  LAYOUT_INVALID: 400,
  REVISION_REFUSED: 409,
  STORE_ERROR: 400,
  ATTACHMENT_NOT_FOUND: 404,
  ATTACHMENT_INVALID: 400,
  NODE_INVALID: 400,
  NODE_NOT_FOUND: 404,
  POWER_FAILED: 502,
  SELECTOR_INVALID: 400,
  HOSTKEYS_EXIST: 409,
};

const chunkIdSchema = { type: 'string', pattern: '^[0-9a-f]{64}$' } as const;
const errorSchema = {
  type: 'object',
  properties: { error: { type: 'string' }, message: { type: 'string' }, hint: { type: 'string' } },
} as const;

function sendError(reply: FastifyReply, status: number, error: string, message: string, hint = ''): FastifyReply {
  return reply.code(status).type('application/json').send({ error, message, hint });
}

export async function buildServer(opts: ServerOptions): Promise<FastifyInstance> {
  const { store, auth } = opts;
  const maxBatch = opts.maxBatch ?? 20_000;
  // Input is untrusted: unknown fields are refused (not silently dropped), types not coerced.
  const app = Fastify({
    logger: opts.logger ?? false,
    bodyLimit: 64 * 1024 * 1024,
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

  // Chunk streams reach the handler as the raw request stream, never buffered whole.
  app.addContentTypeParser(CHUNKS_MEDIA_TYPE, (_req, payload, done) => done(null, payload));

  app.decorateRequest('deployNode', null);
  app.addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
    const access = req.routeOptions.config?.access ?? 'write';
    if (access === 'public') return;
    const header = req.headers.authorization ?? '';
    const m = /^Bearer\s+(\S+)$/i.exec(header);
    if (!m) return sendError(reply, 401, 'UNAUTHORIZED', 'no token given', 'pass the server token: --token-file, CLONER_TOKEN or the client config');
    // A deploy token (issued by /boot.ipxe to a node booting the installer) reads like
    // read.token and may report its own node's deploy.
    let role = auth.roleOf(m[1]);
    if (!role) {
      req.deployNode = await deployTokenNode(store, m[1]);
      if (req.deployNode) role = 'read';
    }
    if (!role) return sendError(reply, 401, 'UNAUTHORIZED', 'the token is not valid for this server', 'use the token in the server\'s data directory (admin.token, or read.token for nodes)');
    if (access === 'node' && role !== 'admin' && req.deployNode !== (req.params as { name?: string }).name) {
      return sendError(reply, 403, 'FORBIDDEN', 'this token may not act for this node', 'use the deploy token the node booted with, or the admin token');
    }
    if (access === 'write' && role !== 'admin') return sendError(reply, 403, 'FORBIDDEN', 'this token may only read', 'writes need the admin token');
  });

  app.setErrorHandler((err: Error & { validation?: unknown; statusCode?: number; code?: string }, _req, reply) => {
    if (err instanceof ClonerError) return sendError(reply, STATUS_BY_CODE[err.code] ?? 400, err.code, err.message, err.hint);
    if (err.validation) return sendError(reply, 400, 'BAD_REQUEST', err.message, 'see the route\'s JSON schema');
    if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) return sendError(reply, err.statusCode, err.code ?? 'BAD_REQUEST', err.message);
    reply.log.error(err);
    return sendError(reply, 500, 'INTERNAL', 'internal server error', 'see the server log');
  });
  app.setNotFoundHandler((req, reply) => sendError(reply, 404, 'NOT_FOUND', `no route ${req.method} ${req.url}`, 'check the server URL and version'));

  app.get('/v1/health', { config: { access: 'public' } }, async () => ({ ok: true, version: SERVER_VERSION }));

  const idsBody = {
    type: 'object',
    required: ['ids'],
    additionalProperties: false,
    properties: { ids: { type: 'array', maxItems: maxBatch, items: chunkIdSchema } },
  } as const;

  app.post<{ Body: { ids: string[] } }>(
    '/v1/chunks/missing',
    { config: { access: 'read' }, schema: { body: idsBody, response: { 200: { type: 'object', properties: { missing: { type: 'array', items: { type: 'string' } } } }, '4xx': errorSchema } } },
    async (req) => {
      const present = await store.hasMany(req.body.ids);
      return { missing: req.body.ids.filter((_, i) => !present[i]) };
    },
  );

  app.post(
    '/v1/chunks',
    { config: { access: 'write' }, schema: { response: { 200: { type: 'object', properties: { stored: { type: 'integer' }, ids: { type: 'array', items: { type: 'string' } } } }, '4xx': errorSchema } } },
    async (req, reply) => {
      if (req.headers['content-type'] !== CHUNKS_MEDIA_TYPE) return sendError(reply, 415, 'UNSUPPORTED_MEDIA_TYPE', `upload chunks as ${CHUNKS_MEDIA_TYPE}`, 'frames as core/store/wire.ts writes them');
      // putEncoded decodes and hashes each chunk (a frame whose bytes do not match its id
      // throws) and resolves once the chunk is durable. Puts run side by side so they share
      // pack commits; at most 32 MiB of them wait at once, bounding a request's memory.
      const puts: Promise<string>[] = [];
      let window: Promise<string>[] = [];
      let windowBytes = 0;
      // Every put is settled before the answer, so what the answer reports stored is durable.
      const settleAll = async () => {
        const results = await Promise.allSettled(puts);
        const failed = results.find((r) => r.status === 'rejected');
        if (failed) throw failed.reason;
        return results.map((r) => (r as PromiseFulfilledResult<string>).value);
      };
      try {
        for await (const chunk of readFrames(req.body as AsyncIterable<Uint8Array>, { maxFrames: 100_000 })) {
          const put = store.putEncoded(chunk);
          put.catch(() => {}); // settled below; a failure must not become an unhandled rejection first
          puts.push(put);
          window.push(put);
          windowBytes += chunk.data.length;
          if (windowBytes >= 32 * 1024 * 1024) {
            await Promise.allSettled(window);
            window = [];
            windowBytes = 0;
          }
        }
      } catch (err) {
        await Promise.allSettled(puts);
        throw err;
      }
      const ids = await settleAll();
      return { stored: ids.length, ids };
    },
  );

  app.post<{ Body: { ids: string[] } }>('/v1/chunks/fetch', { config: { access: 'read' }, schema: { body: idsBody, response: { '4xx': errorSchema } } }, async (req, reply) => {
    const ids = req.body.ids;
    const present = await store.hasMany(ids);
    const absent = ids.filter((_, i) => !present[i]);
    if (absent.length) return sendError(reply, 404, 'CHUNK_MISSING', `${absent.length} of ${ids.length} chunks are not stored (first: ${absent[0]})`, 'ask /v1/chunks/missing first; a revision never refers to a missing chunk');
    async function* frames() {
      for (const id of ids) yield encodeFrame(await store.getEncoded(id));
    }
    return reply.type(CHUNKS_MEDIA_TYPE).send(Readable.from(frames()));
  });

  app.get<{ Params: { id: string } }>(
    '/v1/chunks/:id',
    { config: { access: 'read' }, schema: { params: { type: 'object', properties: { id: chunkIdSchema }, required: ['id'] }, response: { '4xx': errorSchema } } },
    async (req, reply) => {
      const { id } = req.params;
      if (!isChunkId(id)) return sendError(reply, 400, 'BAD_REQUEST', `bad chunk id ${id}`);
      const etag = `"${id}"`;
      if (req.headers['if-none-match'] === etag) return reply.code(304).header('ETag', etag).send();
      if (!(await store.has(id))) return sendError(reply, 404, 'CHUNK_MISSING', `chunk ${id} is not stored`, 'ask /v1/chunks/missing');
      const frame = encodeFrame(await store.getEncoded(id));
      return reply.type(CHUNKS_MEDIA_TYPE).header('Cache-Control', 'public, max-age=31536000, immutable').header('ETag', etag).send(frame);
    },
  );

  await app.register(imageRoutes, { store, uploadGraceMs: opts.uploadGraceMs });
  await app.register(nodeRoutes, { store });
  await app.register(deployRoutes, { store });
  await app.register(netbootRoutes, { store, bootDir: opts.bootDir ?? path.join(tmpdir(), 'cloner-no-boot-dir'), publicUrl: opts.publicUrl });
  return app;
}
