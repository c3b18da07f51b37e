/**
 * Chunk routes (a fastify plugin); bodies of chunk streams use the wire format of
 * core/store/wire.ts:
 *   POST /v1/chunks/missing  {ids}        -> {missing}      which of a batch the store lacks (read)
 *   POST /v1/chunks          frame stream -> {stored, ids}  upload; every chunk is decoded and its
 *                                                          BLAKE3 checked before it is indexed (write)
 *   POST /v1/chunks/fetch    {ids}        -> frame stream   many chunks in one response, in the order
 *                                                          asked, streamed a few MiB at a time (read)
 *   GET  /v1/chunks/:id                   -> one frame      immutable, ETag = id, cacheable (read)
 * An upload that fails midway keeps the chunks already checked and stored (they are
 * idempotent, and GC takes them if no revision ever refers to them) and stores nothing of
 * the bad frame. Every id uploaded or asked about is held from GC by the upload grace.
 */
import type { FastifyInstance } from 'fastify';
import { Readable } from 'node:stream';
import { API } from '../core/api/routes.ts';
import type { ChunkReader, ChunkWriter } from '../core/store/interfaces.ts';
import type { LocalStore } from '../core/store/local.ts';
import { CHUNKS_MEDIA_TYPE, encodeFrames, FrameSlabs, readFrames } from '../core/store/wire.ts';
import { sendError, serve } from './route.ts';

/** What the chunk routes use of the store. */
export type ChunkRouteStore = Pick<ChunkReader, 'hasMany'> & Pick<ChunkWriter, 'putEncoded'> & Pick<LocalStore, 'getEncodedInOrder'>;

/** Bytes of uploaded chunks one request may have waiting at once (bounds its memory). */
const UPLOAD_WINDOW_BYTES = 32 * 1024 * 1024;

export async function chunkRoutes(app: FastifyInstance, opts: { store: ChunkRouteStore }): Promise<void> {
  const { store } = opts;
  const slabs = new FrameSlabs(4 * 1024 * 1024, 2);
  // A fetch's frames (windows of ~1 MiB, 4 requests at once per deploying node).
  const fetchSlabs = new FrameSlabs(4 * 1024 * 1024, 2, 2 * 1024 * 1024);
  // Chunk streams reach the handler as the raw request stream, never buffered whole.
  app.addContentTypeParser(CHUNKS_MEDIA_TYPE, (_req, payload, done) => done(null, payload));

  serve(app, API.chunksMissing, async (req) => {
    const present = await store.hasMany(req.body.ids);
    return { missing: req.body.ids.filter((_, i) => !present[i]) };
  });

  serve(app, API.chunksUpload, async (req, reply) => {
    if (req.headers['content-type'] !== CHUNKS_MEDIA_TYPE) return sendError(reply, 415, 'UNSUPPORTED_MEDIA_TYPE', `upload chunks as ${CHUNKS_MEDIA_TYPE}`, 'frames as core/store/wire.ts writes them');
    // putEncoded decodes and hashes each chunk (a frame whose bytes do not match its id
    // throws) and resolves once the chunk is durable. Puts run side by side so they share
    // pack commits; at most UPLOAD_WINDOW_BYTES of them wait at once.
    const puts: Promise<string>[] = [];
    let window: Promise<string>[] = [];
    let windowBytes = 0;
    // The frames' memory is the lease's until every put below has settled.
    const lease = slabs.lease();
    let cutShort: { err: unknown } | undefined;
    try {
      for await (const chunk of readFrames(req.body as AsyncIterable<Uint8Array>, { maxFrames: 100_000, alloc: lease.alloc })) {
        const put = store.putEncoded(chunk);
        put.catch(() => {}); // settled below; a failure must not become an unhandled rejection first
        puts.push(put);
        window.push(put);
        windowBytes += chunk.data.length;
        if (windowBytes >= UPLOAD_WINDOW_BYTES) {
          await Promise.allSettled(window);
          window = [];
          windowBytes = 0;
        }
      }
    } catch (err) {
      cutShort = { err };
    }
    // Every put is settled before the answer, so what the answer reports stored is durable.
    const results = await Promise.allSettled(puts);
    lease.release();
    if (cutShort) throw cutShort.err;
    const failed = results.find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;
    const ids = results.map((r) => (r as PromiseFulfilledResult<string>).value);
    return { stored: ids.length, ids };
  });

  serve(app, API.chunksFetch, async (req, reply) => {
    const ids = req.body.ids;
    // One batched lookup answers both the 404 and where to read. Reads do not touch: only an
    // uploader's /missing question holds chunks for its commit.
    const { missing, batches } = await store.getEncodedInOrder(ids);
    if (missing.length) return sendError(reply, 404, 'CHUNK_MISSING', `${missing.length} of ${ids.length} chunks are not stored (first: ${missing[0]})`, 'ask /v1/chunks/missing first; a revision never refers to a missing chunk');
    // The frames' memory is the lease's until the response is closed: finished (every byte
    // handed to the socket) or cut off (its writes dropped).
    const lease = fetchSlabs.lease();
    reply.raw.once('close', lease.release);
    async function* frames() {
      // encodeFrames copies: a batch's data are only valid until the next batch is asked for.
      for await (const batch of batches()) yield encodeFrames(batch, lease.alloc);
    }
    // Bytes, not objects: the stream holds about one batch (~1 MiB) ahead of the socket.
    return reply.type(CHUNKS_MEDIA_TYPE).send(Readable.from(frames(), { objectMode: false }));
  });

  serve(app, API.chunk, async (req, reply) => {
    const { id } = req.params;
    const etag = `"${id}"`;
    if (req.headers['if-none-match'] === etag) return reply.code(304).header('ETag', etag).send();
    const { missing, batches } = await store.getEncodedInOrder([id]);
    if (missing.length) return sendError(reply, 404, 'CHUNK_MISSING', `chunk ${id} is not stored`, 'ask /v1/chunks/missing');
    const frames: Buffer[] = [];
    for await (const batch of batches()) frames.push(encodeFrames(batch));
    return reply.type(CHUNKS_MEDIA_TYPE).header('Cache-Control', 'public, max-age=31536000, immutable').header('ETag', etag).send(frames[0]);
  });
}
