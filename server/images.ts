/**
 * Image, layout and attachment routes of the cloner server (a fastify plugin over the
 * store; the route table and schemas are core/api/routes.ts):
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
 *   GET    /v1/images/:name/diff?from=N&to=M[&limit=K] -> what changed (core/tree/diff.ts) (read)
 *   POST   /v1/gc, POST /v1/verify       -> reports, recorded (core/tree/maintenance.ts) (write)
 *   GET    /v1/maintenance               -> when gc and verify last ran    (read)
 * A revision is committed by commitRevision, which refuses one whose tree refers to any
 * chunk the store lacks: a failed or cut-off upload never becomes a visible revision.
 * GC spares chunks of uploads not yet committed (core/store/upload-grace.ts).
 */
import type { FastifyInstance } from 'fastify';
import { API } from '../core/api/routes.ts';
import type { ChunkerParams } from '../core/chunker/fastcdc.ts';
import { deleteLayoutVersion, listLayouts, loadLayout, rollbackLayout, saveLayout, type LayoutStore } from '../core/layout/store.ts';
import { ImageNotFoundError } from '../core/store/errors.ts';
import type { LocalStore } from '../core/store/local.ts';
import { startUploadGrace } from '../core/store/upload-grace.ts';
import { getAttachment, listAttachments, MAX_ATTACHMENT_BYTES, putAttachment } from '../core/tree/attachments.ts';
import { lastMaintenance, runGc, runVerify } from '../core/tree/maintenance.ts';
import { DIFF_LIST_LIMIT, revisionDiff } from '../core/tree/diff.ts';
import { collectGarbage, commitRevision, deleteImage, getImage, imageUsage, listImages, verifyImages } from '../core/tree/images.ts';
import { sendError, serve } from './route.ts';
import { SERVER_VERSION } from './version.ts';

/**
 * What these routes use of the store: images, layouts and attachments (LayoutStore), and
 * for usage, gc and verify the store itself (they walk every pack).
 */
export type ImageRouteStore = LayoutStore & Parameters<typeof collectGarbage>[0] & Parameters<typeof verifyImages>[0] & { config: { chunker: ChunkerParams }; guard: LocalStore['guard']; flush: LocalStore['flush'] };

export async function imageRoutes(app: FastifyInstance, opts: { store: ImageRouteStore; uploadGraceMs?: number }): Promise<void> {
  const { store } = opts;
  const grace = startUploadGrace(store, opts.uploadGraceMs);
  app.addHook('onClose', async () => grace.stop());

  serve(app, API.config, async () => ({ version: SERVER_VERSION, chunker: store.config.chunker }));
  serve(app, API.listImages, async () => listImages(store));
  serve(app, API.usage, async () => imageUsage(store));
  serve(app, API.getImage, async (req) => {
    const image = await getImage(store, req.params.name);
    if (!image) throw new ImageNotFoundError(`no image named ${req.params.name}`, 'list images with: cloner image-list');
    return image;
  });
  serve(app, API.imageDiff, async (req) => {
    const image = await getImage(store, req.params.name);
    if (!image) throw new ImageNotFoundError(`no image named ${req.params.name}`, 'list images with: cloner image-list');
    const limit = req.query.limit === undefined ? DIFF_LIST_LIMIT : Math.min(DIFF_LIST_LIMIT, Number(req.query.limit));
    return revisionDiff(store, image, Number(req.query.from), Number(req.query.to), limit);
  });
  serve(app, API.commitRevision, async (req) => {
    const { create, ...input } = req.body;
    const revision = await commitRevision(store, req.params.name, input, { create: !!create, onCommitted: (ids) => grace.settle(ids) });
    // A commit ends the pack its upload has been filling (pack-writer.ts): a pack then holds
    // one upload's chunks, so deleting an image frees whole packs, also on a full disk where
    // gc cannot repack.
    await store.flush();
    return revision;
  });
  serve(app, API.deleteImage, async (req) => {
    await deleteImage(store, req.params.name);
    return { deleted: req.params.name };
  });

  serve(app, API.listLayouts, async () => listLayouts(store));
  serve(app, API.getLayout, async (req) => loadLayout(store, req.params.name, req.query.version === undefined ? undefined : Number(req.query.version)));
  serve(app, API.saveLayout, async (req) => saveLayout(store, req.params.name, req.body));
  serve(app, API.deleteLayoutVersion, async (req) => deleteLayoutVersion(store, req.params.name, Number(req.params.version)));
  serve(app, API.rollbackLayout, async (req) => rollbackLayout(store, req.params.name, req.body.version));

  app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer', bodyLimit: MAX_ATTACHMENT_BYTES }, (_req, body, done) => done(null, body));
  serve(app, API.putAttachment, async (req, reply) => {
    if (!Buffer.isBuffer(req.body)) return sendError(reply, 415, 'UNSUPPORTED_MEDIA_TYPE', 'send the file as application/octet-stream', 'e.g. curl --data-binary @FILE -H content-type:application/octet-stream');
    return { version: await putAttachment(store, store.config.chunker, req.params.name, req.params.kind, req.params.item, req.body) };
  });
  serve(app, API.getAttachment, async (req, reply) => {
    const { version, body } = await getAttachment(store, req.params.name, req.params.kind, req.params.item);
    return reply.type('application/octet-stream').header('x-cloner-version', String(version)).send(body);
  });
  serve(app, API.listAttachments, async (req) => listAttachments(store, req.params.name));

  serve(app, API.gc, async () => runGc(store));
  serve(app, API.verify, async () => runVerify(store));
  serve(app, API.maintenance, async () => lastMaintenance(store));
}
