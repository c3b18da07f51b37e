/**
 * Image and layout routes of the cloner server (a fastify plugin over the same store):
 *   GET    /v1/config                    -> {chunker, version}            (read)
 *   GET    /v1/images                    -> [ImageRecord]                 (read)
 *   GET    /v1/usage                     -> [{name, uniqueBytes, totalBytes}] stored bytes per image (read)
 *   GET    /v1/images/:name              -> ImageRecord                   (read)
 *   POST   /v1/images/:name/revisions    {tree, layout, options, note, stats, create} -> Revision (write)
 *   DELETE /v1/images/:name                                              (write)
 *   GET    /v1/layouts                   -> [{name, versions, updated}]   (read)
 *   GET    /v1/layouts/:name[?version=N] -> {name, version, created, layout} (read)
 *   POST   /v1/layouts/:name             layout document -> {name, version} (write)
 *   PUT    /v1/images/:name/attachments/:kind/:item  bytes -> {version}   (write; script pre|post, bios NAME)
 *   GET    /v1/images/:name/attachments/:kind/:item  -> bytes             (read)
 *   GET    /v1/images/:name/attachments  -> [{kind, item, versions, updated}] (read)
 *   POST   /v1/gc, POST /v1/verify       -> reports                       (write)
 * A revision is committed by commitRevision, which refuses one whose tree refers to any
 * chunk the store lacks: a failed or cut-off upload never becomes a visible revision.
 * GC spares chunks uploaded in the last 30-60 minutes, so an upload still in progress (its
 * revision not committed yet) is not swept from under it; abandoned ones go at a later GC.
 */
import type { FastifyInstance } from 'fastify';
import { ImageNotFoundError } from '../core/store/errors.ts';
import type { LocalStore, TouchGuard } from '../core/store/local.ts';
import { collectGarbage, commitRevision, deleteImage, getImage, imageUsage, listImages, verifyImages } from '../core/tree/images.ts';
import { listLayouts, loadLayout, saveLayout } from '../core/layout/store.ts';
import { getAttachment, listAttachments, MAX_ATTACHMENT_BYTES, putAttachment, type AttachmentKind } from '../core/tree/attachments.ts';
import { SERVER_VERSION } from './version.ts';

const name = { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$' } as const;
const chunkId = { type: 'string', pattern: '^[0-9a-f]{64}$' } as const;
const nameParams = { type: 'object', required: ['name'], properties: { name } } as const;

interface RevisionBody {
  tree: string;
  layout?: string | null;
  options?: string | null;
  note?: string;
  stats: { files: number; bytes: number };
  create?: boolean;
}

export async function imageRoutes(app: FastifyInstance, opts: { store: LocalStore; uploadGraceMs?: number }): Promise<void> {
  const { store } = opts;
  // Chunks uploaded for a revision not yet committed must survive a GC in between. prune
  // never drops an id held by an open guard, and every id uploaded or asked about is added
  // to the open guards; two guards, rotated, keep such ids for one to two grace periods.
  const graceMs = opts.uploadGraceMs ?? 30 * 60_000;
  let recent = store.guard();
  let older: TouchGuard | null = null;
  const rotation = setInterval(() => {
    older?.release();
    older = recent;
    recent = store.guard();
  }, graceMs);
  rotation.unref();
  app.addHook('onClose', async () => {
    clearInterval(rotation);
    recent.release();
    older?.release();
  });

  app.get('/v1/config', { config: { access: 'read' } }, async () => ({ version: SERVER_VERSION, chunker: store.config.chunker }));

  app.get('/v1/images', { config: { access: 'read' } }, async () => listImages(store));
  app.get('/v1/usage', { config: { access: 'read' } }, async () => imageUsage(store));

  app.get<{ Params: { name: string } }>('/v1/images/:name', { config: { access: 'read' }, schema: { params: nameParams } }, async (req) => {
    const image = await getImage(store, req.params.name);
    if (!image) throw new ImageNotFoundError(`no image named ${req.params.name}`, 'list images with image-list');
    return image;
  });

  app.post<{ Params: { name: string }; Body: RevisionBody }>(
    '/v1/images/:name/revisions',
    {
      config: { access: 'write' },
      schema: {
        params: nameParams,
        body: {
          type: 'object',
          required: ['tree', 'stats'],
          additionalProperties: false,
          properties: {
            tree: chunkId,
            layout: { anyOf: [name, { type: 'null' }] },
            options: { anyOf: [chunkId, { type: 'null' }] },
            note: { type: 'string', maxLength: 1000 },
            stats: { type: 'object', required: ['files', 'bytes'], additionalProperties: false, properties: { files: { type: 'integer', minimum: 0 }, bytes: { type: 'integer', minimum: 0 } } },
            create: { type: 'boolean' },
          },
        },
      },
    },
    async (req, reply) => {
      const { create, ...input } = req.body;
      const revision = await commitRevision(store, req.params.name, input, { create: !!create });
      return reply.code(201).send(revision);
    },
  );

  app.delete<{ Params: { name: string } }>('/v1/images/:name', { config: { access: 'write' }, schema: { params: nameParams } }, async (req) => {
    await deleteImage(store, req.params.name);
    return { deleted: req.params.name };
  });

  app.get('/v1/layouts', { config: { access: 'read' } }, async () => listLayouts(store));

  app.get<{ Params: { name: string }; Querystring: { version?: number } }>(
    '/v1/layouts/:name',
    { config: { access: 'read' }, schema: { params: nameParams, querystring: { type: 'object', additionalProperties: false, properties: { version: { type: 'string', pattern: '^[1-9][0-9]{0,8}$' } } } } },
    async (req) => loadLayout(store, req.params.name, req.query.version === undefined ? undefined : Number(req.query.version)),
  );

  app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer', bodyLimit: MAX_ATTACHMENT_BYTES }, (_req, body, done) => done(null, body));
  const attachmentParams = {
    type: 'object',
    required: ['name', 'kind', 'item'],
    properties: { name, kind: { enum: ['script', 'bios'] }, item: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$' } },
  } as const;
  type AttachmentParams = { name: string; kind: AttachmentKind; item: string };

  app.put<{ Params: AttachmentParams; Body: Buffer }>('/v1/images/:name/attachments/:kind/:item', { config: { access: 'write' }, schema: { params: attachmentParams } }, async (req, reply) => {
    if (!Buffer.isBuffer(req.body)) return reply.code(415).send({ error: 'UNSUPPORTED_MEDIA_TYPE', message: 'send the file as application/octet-stream', hint: '' });
    const version = await putAttachment(store, store.config.chunker, req.params.name, req.params.kind, req.params.item, req.body);
    return { version };
  });

  app.get<{ Params: AttachmentParams }>('/v1/images/:name/attachments/:kind/:item', { config: { access: 'read' }, schema: { params: attachmentParams } }, async (req, reply) => {
    const { version, body } = await getAttachment(store, req.params.name, req.params.kind, req.params.item);
    return reply.type('application/octet-stream').header('x-cloner-version', String(version)).send(body);
  });

  app.get<{ Params: { name: string } }>('/v1/images/:name/attachments', { config: { access: 'read' }, schema: { params: nameParams } }, async (req) => listAttachments(store, req.params.name));

  app.post('/v1/gc', { config: { access: 'write' } }, async () => collectGarbage(store));
  app.post('/v1/verify', { config: { access: 'write' } }, async () => verifyImages(store));

  app.post<{ Params: { name: string } }>('/v1/layouts/:name', { config: { access: 'write' }, schema: { params: nameParams } }, async (req) => saveLayout(store, req.params.name, req.body));
}
