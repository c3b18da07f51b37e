/**
 * HttpStore: the client side of the cloner-server chunk protocol, implementing the same
 * ChunkReader + ChunkWriter interfaces as LocalStore (and passing the same conformance
 * suite), so capture uploads and restore fetches run unchanged against a server.
 *
 * Algorithm: `hasMany` asks /v1/chunks/missing in batches of 10,000 ids, merging the
 * questions asked while two such requests are out into one. `put` queues a copy of the
 * raw chunk; the queue goes up as one framed upload when it holds 8 MiB, on `flush`, or
 * 20 ms after the first put, and each put resolves when the server has checked and stored
 * its chunk. Before a batch goes up, one /missing query drops the chunks the server
 * already has (an unchanged directory manifest, a re-run after an interrupted upload), and
 * only the others are encoded (LZ4, straight into the upload's body, or first in the
 * codec's worker threads when there is a pool): what the server has is neither compressed nor sent. `getMany` fetches 256 ids per request, a few requests
 * at a time (p-limit) and at most one more batch than that ahead of the consumer (each with a
 * rejection handler from the start: a failed batch surfaces in order, never as an
 * unhandled rejection), and decodes and checks every chunk's BLAKE3 before yielding it
 * (in the codec's worker threads a batch at a time, in-thread each chunk as it is yielded,
 * so raw bytes are never held for the batches ahead); with `retry`, a
 * batch cut off by the network (or stalled) is fetched again with backoff. Errors become
 * ClonerErrors: an unreachable server, a refused token, a missing or corrupt chunk.
 * Uploads and JSON calls go over node:http, fetches of chunks over fetch (http-client.ts says why).
 */
import pLimit from 'p-limit';
import { API, routePath } from '../api/endpoints.ts';
import { assertChunkId, chunkIdOf, type ChunkId } from './chunk-id.ts';
import { decodeChunk, decodeTransient, inThreadCodec, type ChunkCodec, type EncodedChunk } from './codec.ts';
import { defaultCodec, ownedCopy } from './codec-pool.ts';
import { ChunkCorruptError, ChunkMissingError } from './errors.ts';
import type { ChunkReader, ChunkWriter, GetManyOptions } from './interfaces.ts';
import { CHUNKS_MEDIA_TYPE, encodeFramesFrom, FrameSlabs, readFrames } from './wire.ts';
import { ServerError, watchStall, withRetry } from './http-retry.ts';
import { ServerClient } from './http-client.ts';

export { isTransient, ServerError, ServerUnreachableError, withRetry } from './http-retry.ts';

export interface HttpStoreOptions {
  url: string;
  token?: string;
  uploadBatchBytes?: number;
  /** Chunks per fetch request (default 128: 256 held ~40-65 MB more of a deploying agent at the same speed, bench:peers --scale 8). */
  fetchBatch?: number;
  fetchConcurrency?: number;
  /**
   * Fetches that fail for a reason that may pass (the server unreachable, a 5xx, a cut
   * connection, no bytes for `stallMs`) are retried with backoff until `deadlineMs` has
   * passed since the first failure. Off (one try) when absent.
   */
  retry?: { deadlineMs: number; stallMs: number; onRetry?: (err: Error, attempt: number, delayMs: number) => void };
  /** Where chunks are encoded and decoded: default the process's codec (codec-pool.ts: worker threads from 4 cores up, in-thread below). */
  codec?: ChunkCodec;
}

interface Pending {
  id: ChunkId;
  /** The raw bytes of a `put` (encoded once the server is known to lack it), or none for `putEncoded`. */
  raw?: Buffer;
  chunk?: EncodedChunk;
  resolve: (id: ChunkId) => void;
  reject: (err: unknown) => void;
}

/** One fetched batch of getMany, in the order asked: its chunks as sent, and decoded already when the worker pool did it. */
interface FetchedBatch {
  encoded: EncodedChunk[];
  raw?: Buffer[];
  /** Where the frames of a transient getMany's batch were carved (given back once it is yielded). */
  lease?: ReturnType<FrameSlabs['lease']>;
}

/** /missing requests on the wire at once; more questions wait and are merged into the next. */
const MISSING_IN_FLIGHT = 2;

export class HttpStore extends ServerClient implements ChunkReader, ChunkWriter {
  private readonly batchBytes: number;
  private readonly fetchBatch: number;
  private readonly fetchLimit: ReturnType<typeof pLimit>;
  private readonly retry: HttpStoreOptions['retry'];
  private readonly codec: ChunkCodec;
  /** Batches of one getMany fetched ahead of the one being yielded. */
  private readonly readAhead: number;
  private queue: Pending[] = [];
  private queueBytes = 0;
  /**
   * In-thread, the raw copies of the queue being filled are carved from reused slabs (a
   * codec pool takes buffers of their own), given back once its batch is framed; request
   * bodies come from slabs too, given back once the server has accepted them (wire.ts
   * FrameSlabs says why: 62 -> 9 full GCs of a capture of bench:peers' node tree). The
   * pools keep what a capture holds in flight (up to 32 MiB of raw copies, core/tree/
   * unflushed-writes.ts' window, and the bodies of the batches being sent): with glibc's mmap
   * threshold pinned (core/native/memory.c) a slab let go and made again is a fresh mmap,
   * and with 6 and 4 kept a capture of the node tree made 85 raw slabs and 17 bodies
   * (124k minor faults); with 16 and 8 kept it made 12 and 6 in all, and with 10 and 5
   * it took 54-58k faults (unpinned: 67-72k).
   */
  private readonly rawSlabs = new FrameSlabs(4 * 1024 * 1024, 10);
  private queueLease = this.rawSlabs.lease();
  private readonly bodySlabs: FrameSlabs;
  /** Frames of the batches a transient getMany has fetched ahead (a batch of 128 chunks is ~4 MB). */
  private readonly fetchSlabs = new FrameSlabs(4 * 1024 * 1024, 12);
  private timer: NodeJS.Timeout | null = null;
  private inFlight = new Set<Promise<void>>();
  /** hasMany questions waiting for a /missing request, and how many such requests are out. */
  private asked: Array<{ ids: readonly ChunkId[]; resolve: (present: boolean[]) => void; reject: (err: unknown) => void }> = [];
  private missingInFlight = 0;
  /** Bytes of chunk frames the server has accepted (what uploads cost on the wire). */
  uploadedBytes = 0;
  /** Raw bytes of the chunks those frames carried (what `alreadyStoredBytes` compares with). */
  uploadedRawBytes = 0;
  /** Raw bytes of chunks not sent because the server already had them (a `put`'s is never compressed; a `putEncoded`'s counts its raw length). */
  alreadyStoredBytes = 0;

  constructor(options: HttpStoreOptions) {
    super(options.url, options.token);
    this.batchBytes = options.uploadBatchBytes ?? 8 * 1024 * 1024;
    this.fetchBatch = options.fetchBatch ?? 128;
    this.fetchLimit = pLimit(options.fetchConcurrency ?? 4);
    this.readAhead = (options.fetchConcurrency ?? 4) + 1;
    this.retry = options.retry;
    this.codec = options.codec ?? defaultCodec();
    // A body holds a batch and the chunk that filled it (headers included). Only what a
    // capture has in flight is kept: what is kept counts in the peak RSS (bench:peers --scale 8).
    this.bodySlabs = new FrameSlabs(this.batchBytes + 1024 * 1024, 5, this.batchBytes + 1024 * 1024);
  }

  async has(id: ChunkId): Promise<boolean> {
    return (await this.hasMany([id]))[0];
  }

  /**
   * Which of `ids` the server holds. Questions asked while MISSING_IN_FLIGHT others are
   * on the wire wait and then go up together (unique ids, 10,000 per request): a capture
   * asks once per directory, and one round trip per directory was most of a no-op
   * update's time against a server.
   */
  async hasMany(ids: readonly ChunkId[]): Promise<boolean[]> {
    ids.forEach((id) => assertChunkId(id));
    if (!ids.length) return [];
    return new Promise((resolve, reject) => {
      this.asked.push({ ids, resolve, reject });
      this.askMissing();
    });
  }

  private askMissing(): void {
    if (this.missingInFlight >= MISSING_IN_FLIGHT || !this.asked.length) return;
    const waiting = this.asked;
    this.asked = [];
    this.missingInFlight++;
    void (async () => {
      try {
        const unique = [...new Set(waiting.flatMap((w) => w.ids))];
        const absent = new Set<string>();
        for (let i = 0; i < unique.length; i += 10_000) {
          const { missing } = await this.requestJson<{ missing: string[] }>(API.chunksMissing.url, 'POST', { ids: unique.slice(i, i + 10_000) });
          for (const id of missing) absent.add(id);
        }
        for (const w of waiting) w.resolve(w.ids.map((id) => !absent.has(id)));
      } catch (err) {
        for (const w of waiting) w.reject(err);
      } finally {
        this.missingInFlight--;
        this.askMissing();
      }
    })();
  }

  async get(id: ChunkId): Promise<Buffer> {
    assertChunkId(id);
    let response: Response;
    try {
      response = await this.request(routePath(API.chunk, { id }));
    } catch (err) {
      if (err instanceof ServerError && err.status === 404) throw new ChunkMissingError(id);
      throw err;
    }
    for await (const chunk of readFrames(response.body as unknown as AsyncIterable<Uint8Array>)) {
      if (chunk.id !== id) throw new ChunkCorruptError(id, `the server sent chunk ${chunk.id}`);
      return decodeChunk(chunk);
    }
    throw new ChunkCorruptError(id, 'the server sent no chunk');
  }

  async *getMany(ids: Iterable<ChunkId>, opts: GetManyOptions = {}): AsyncIterable<[ChunkId, Buffer]> {
    // Transient and in-thread: each batch's frames are carved from reused slabs, given back
    // once the batch is yielded, and each chunk is decoded into one reused buffer.
    const transient = opts.transient === true && this.codec === inThreadCodec;
    const wanted = [...new Set(ids)];
    wanted.forEach((id) => assertChunkId(id));
    const batches: ChunkId[][] = [];
    for (let i = 0; i < wanted.length; i += this.fetchBatch) batches.push(wanted.slice(i, i + this.fetchBatch));
    // Fetched a few batches ahead (at most `readAhead` started and not yet yielded),
    // yielded in order. A batch that fails before its turn must not become an unhandled
    // rejection (which kills Node before the caller can report it): each promise gets a
    // handler when it is started, and its error is thrown when its turn comes, so the
    // first failure in order is the one the caller sees. Batches not started when the
    // caller stops (an error, a break) are never fetched.
    const ahead: Array<Promise<FetchedBatch>> = [];
    let next = 0;
    const startMore = () => {
      while (next < batches.length && ahead.length < this.readAhead) {
        const batch = batches[next++];
        const pending = this.fetchLimit(() => this.fetchBatchOf(batch, transient));
        pending.catch(() => undefined);
        ahead.push(pending);
      }
    };
    startMore();
    while (ahead.length) {
      const { encoded, raw, lease } = await ahead.shift()!;
      startMore();
      // In-thread, each chunk is decoded (and checked) as its turn comes: only the encoded
      // batches ahead are held, not their raw bytes too (5 batches of 256 decoded chunks
      // were ~80 MB of an image-export's peak).
      try {
        for (let i = 0; i < encoded.length; i++) yield [encoded[i].id, raw ? raw[i] : transient ? decodeTransient(encoded[i]) : decodeChunk(encoded[i])];
      } finally {
        // The caller is done with the batch (or stops): nothing refers to its frames now.
        lease?.release();
      }
    }
  }

  private fetchBatchOf(batch: ChunkId[], transient = false): Promise<FetchedBatch> {
    return withRetry(this.retry, async () => {
      const lease = transient ? this.fetchSlabs.lease() : undefined;
      try {
        return { ...(await this.fetchBatchOnce(batch, lease?.alloc)), lease };
      } catch (err) {
        lease?.release(); // a failed attempt's frames are dropped
        throw err;
      }
    });
  }

  private async fetchBatchOnce(batch: ChunkId[], alloc?: (n: number) => Buffer): Promise<FetchedBatch> {
    let response: Response;
    const controller = new AbortController();
    // A connect that hangs counts as a stall too.
    const connectTimer = this.retry ? setTimeout(() => controller.abort(new DOMException('no answer from the server', 'TimeoutError')), this.retry.stallMs) : undefined;
    try {
      response = await this.request(API.chunksFetch.url, { method: 'POST', body: JSON.stringify({ ids: batch }), headers: { 'content-type': 'application/json' }, signal: controller.signal });
    } catch (err) {
      clearTimeout(connectTimer);
      if (err instanceof ServerError && err.code === 'CHUNK_MISSING') {
        const present = await this.hasMany(batch);
        throw new ChunkMissingError(batch[present.indexOf(false)] ?? batch[0]);
      }
      throw err;
    }
    clearTimeout(connectTimer);
    const encoded: EncodedChunk[] = [];
    const body = response.body as unknown as AsyncIterable<Uint8Array>;
    for await (const chunk of readFrames(this.retry ? watchStall(body, controller, this.retry.stallMs) : body, { alloc })) {
      const expected = batch[encoded.length];
      if (chunk.id !== expected) throw new ChunkCorruptError(expected ?? chunk.id, `the server sent chunk ${chunk.id} in its place`);
      encoded.push(chunk);
    }
    if (encoded.length !== batch.length) throw new ChunkCorruptError(batch[encoded.length], `the server sent ${encoded.length} of ${batch.length} chunks`);
    // The worker pool decodes a whole batch at once, off this thread; in-thread, getMany decodes each as it yields it.
    return { encoded, raw: this.codec === inThreadCodec ? undefined : await this.codec.decodeMany(encoded) };
  }

  /** `knownId` as LocalStore.put's. The bytes are copied at once (the caller may reuse its buffer). */
  put(data: Uint8Array, knownId?: ChunkId): Promise<ChunkId> {
    let raw: Buffer;
    if (this.codec === inThreadCodec) {
      raw = this.queueLease.alloc(data.byteLength);
      raw.set(data);
    } else raw = ownedCopy(data);
    return this.enqueue({ id: knownId ?? chunkIdOf(data), raw });
  }

  async putEncoded(chunk: EncodedChunk): Promise<ChunkId> {
    decodeChunk(chunk); // refuse a false id here already; the server checks again
    return this.enqueue({ id: chunk.id, chunk });
  }

  private enqueue(item: Omit<Pending, 'resolve' | 'reject'>): Promise<ChunkId> {
    return new Promise((resolve, reject) => {
      this.queue.push({ ...item, resolve, reject });
      this.queueBytes += (item.chunk?.data.length ?? item.raw!.length) + 41;
      if (this.queueBytes >= this.batchBytes) this.send();
      else this.timer ??= setTimeout(() => this.send(), 20);
    });
  }

  private send(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    let batch = this.queue;
    if (!batch.length) return;
    this.queue = [];
    this.queueBytes = 0;
    const rawLease = this.queueLease;
    this.queueLease = this.rawSlabs.lease();
    const done = (async () => {
      const bodyLease = this.bodySlabs.lease();
      let accepted = false;
      try {
        const present = await this.hasMany(batch.map((p) => p.id));
        for (const [i, p] of batch.entries()) {
          if (!present[i]) continue;
          this.alreadyStoredBytes += p.chunk?.rawLength ?? p.raw!.length;
          p.resolve(p.id);
        }
        batch = batch.filter((_, i) => !present[i]);
        if (!batch.length) return;
        // In-thread, each raw chunk is compressed straight into the body; a codec pool encodes them first.
        if (this.codec !== inThreadCodec) {
          const toEncode = batch.filter((p) => !p.chunk);
          const encoded = await this.codec.encodeMany(toEncode.map((p) => ({ id: p.id, raw: p.raw! })));
          toEncode.forEach((p, i) => {
            p.chunk = encoded[i];
            p.raw = undefined;
          });
        }
        const { body, rawBytes } = encodeFramesFrom(batch, bodyLease.alloc);
        // The body holds the bytes now: the queued copies go (the id is all that is left to check).
        for (const p of batch) p.chunk = p.raw = undefined;
        rawLease.release();
        const { status, text } = await this.httpRequest(API.chunksUpload.url, 'POST', { 'content-type': CHUNKS_MEDIA_TYPE, 'content-length': body.length }, body);
        if (status < 200 || status > 299) throw this.refusal(status, text, 'POST', API.chunksUpload.url);
        // The server read the whole body before it answered 2xx; after a refusal the socket
        // may still be writing it, so that body is left to the GC.
        accepted = true;
        let ids: string[];
        try {
          ({ ids } = JSON.parse(text) as { ids: string[] });
          if (!Array.isArray(ids)) throw new TypeError('no ids');
        } catch {
          throw new ServerError(status, 'BAD_ANSWER', `POST ${API.chunksUpload.url}: the server's answer is not JSON`, 'check that --server names a cloner server');
        }
        this.uploadedBytes += body.length;
        this.uploadedRawBytes += rawBytes;
        batch.forEach((p, i) => (ids[i] === p.id ? p.resolve(p.id) : p.reject(new ChunkCorruptError(p.id, `the server stored ${ids[i]} instead`))));
      } catch (err) {
        for (const p of batch) p.reject(err);
      } finally {
        // Nothing reads a raw copy after the batch is framed or refused.
        for (const p of batch) p.raw = undefined;
        rawLease.release();
        if (accepted) bodyLease.release();
      }
    })();
    this.inFlight.add(done);
    void done.finally(() => this.inFlight.delete(done));
  }

  async flush(): Promise<void> {
    this.send();
    while (this.inFlight.size) await Promise.all([...this.inFlight]);
  }

  async close(): Promise<void> {
    await this.flush();
  }
}
