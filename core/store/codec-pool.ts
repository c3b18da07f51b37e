/**
 * The chunk codec's CPU work (LZ4 compression; LZ4 decompression + BLAKE3 check) on every
 * core: a small pool of worker threads, one per available core, behind the same
 * `ChunkCodec` shape as the in-thread codec (codec.ts), so a store takes either.
 *
 * Algorithm: `encodeMany` / `decodeMany` calls made in the same turn of the event loop are
 * gathered into jobs of up to JOB_BYTES, and each job goes to the worker with the fewest
 * bytes in flight; answers come back per job and every caller gets its results in the
 * order it asked. Raw chunks to encode that own their memory (their own ArrayBuffer) are
 * transferred to the worker, not copied; what comes back is transferred too. The workers do the byte
 * work only: which codec to keep and every integrity check (lengths, the id) are decided
 * here with codec.ts's rules, so a chunk decoded in a worker is checked exactly as one
 * decoded in-thread (ChunkCorruptError, same messages). An idle pool is unref'd: a
 * process whose work is done exits without closing it.
 *
 * The workers' code is the self-contained `workerMain` below, started with `eval`: there is
 * no worker file to find, so it runs the same from the sources, the dist/ bundle and the
 * installer's one-file agent bundle. It loads the two native addons from the paths this
 * module resolves (beside the bundle, as codec.ts and chunk-id.ts load them): the fsx
 * addon's liblz4 (compressing into a per-thread scratch buffer capped at what is worth
 * keeping, then one copy of exactly the result; decoding into a buffer of the raw length)
 * and BLAKE3.
 *
 * Bench (bench/peers.ts tree, 2 cores shared with other work): LZ4 compression was ~3.3 s
 * of a 21 s main-thread profile of a capture to a server, BLAKE3 ~0.5 s (kept in-thread:
 * the id must be known before the store's dedup check decides whether the chunk is
 * compressed at all). With the pool the capture's main thread uses 5.3-6.1 s of CPU instead
 * of 7.5-8.3 s (the process total is unchanged, ~14 s) for +40-80 MB of peak RSS; the
 * agent's restore phase took 13.5 s instead of 20.0 s, image-export 20.9 s instead of 39.6 s.
 * CLONER_CODEC_THREADS=0 turns it off.
 *
 * Quiet 2-core host, bench:peers --cloner-only, pool against in-thread: capture to a server
 * 13.60 and 11.34 s against 12.78 s, the blank deploy 29.85 and 29.54 s against 29.74 s,
 * image-export 9.61 and 20.45 s against 12.24 s; peak RSS +100-125 MB (capture 565/546 MB
 * against 441, agent 480/516 against 392). There the main thread, the workers and the
 * server share two cores, so the pool won no time and cost memory: it is the default from
 * POOL_MIN_CORES cores up (a golden node or a server has many), and in-thread below.
 */
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { isMarkedAsUntransferable, Worker } from 'node:worker_threads';
import { ClonerError } from '../errors.ts';
import type { ChunkId } from './chunk-id.ts';
import { FSX_ADDON_PATH } from '../native/codec.ts';
import { checkDecoded, checkEncodedHeader, CODEC_LZ4, CODEC_RAW, inThreadCodec, LZ4_CORRUPT, MIN_SAVING, type ChunkCodec, type EncodedChunk, type RawChunk } from './codec.ts';

/** A job is sent once it holds this many bytes (or at the end of the turn): big enough that a message's cost (~30 µs) is noise, small enough to spread a window over both workers. */
const JOB_BYTES = 1024 * 1024;

export class CodecPoolError extends ClonerError {
  override readonly code = 'CODEC_POOL_FAILED';
}

interface Job {
  op: 'encode' | 'decode';
  items: Array<{ data: Uint8Array; codec?: number; rawLength?: number }>;
  bytes: number;
  resolve: (out: WorkerAnswer[]) => void;
  reject: (err: Error) => void;
}
type WorkerAnswer = { codec: number; data: Uint8Array } | { raw: Uint8Array; id: string } | { error: string };

interface Thread {
  worker: Worker;
  jobs: Map<number, Job>;
  bytes: number;
}

/**
 * The worker's whole program, run through `eval` (so it must not refer to anything outside
 * itself). Answers each job with one message: per item the encoded form, or the decoded
 * bytes with their BLAKE3 id, or the error text of an item that does not decompress.
 */
function workerMain(load: (id: string) => any): void {
  const { parentPort, workerData } = load('node:worker_threads');
  const fsx = load(workerData.fsx);
  const blake = load(workerData.blake);
  // Compression's output area, reused; what is kept is copied once into an ArrayBuffer of
  // its own (transferable, exactly its size; a memcpy, ~1% of the LZ4 work).
  let scratch = Buffer.alloc(0);
  // Every chunk leaves garbage in this thread held outside the JS heap (the buffers that
  // came in, the decoded ones sent back), which V8 collects only past its external-memory limit
  // (~64 MiB a thread): RSS +100 MB with one worker on the bench tree. A minor GC after
  // each job (~0.1 ms, a young heap of a few objects) frees them as they come.
  load('node:v8').setFlagsFromString('--expose-gc');
  const gc = load('node:vm').runInNewContext('gc') as ((o: { type: string }) => void) | undefined;
  parentPort.on('message', (job: { seq: number; op: string; items: Array<{ data: Uint8Array; codec?: number; rawLength?: number }>; maxRatio: number }) => {
    const out: unknown[] = [];
    const transfer: ArrayBufferLike[] = [];
    try {
      for (const item of job.items) {
        const data = Buffer.from(item.data.buffer, item.data.byteOffset, item.data.byteLength);
        if (job.op === 'encode') {
          const budget = Math.floor(data.length * job.maxRatio);
          if (scratch.length < budget) scratch = Buffer.allocUnsafeSlow(Math.max(budget, 256 * 1024));
          const n = fsx.lz4Compress(data, scratch.subarray(0, budget));
          const kept = n > 0 ? new Uint8Array(scratch.subarray(0, n)) : item.data;
          out.push({ codec: kept === item.data ? 0 : 1, data: kept });
          transfer.push(kept.buffer);
          continue;
        }
        const raw = item.codec === 1 ? Buffer.allocUnsafeSlow(item.rawLength ?? 0) : data;
        if (item.codec === 1 && fsx.lz4Decompress(data, raw) !== raw.length) {
          out.push({ error: workerData.lz4Corrupt });
          continue;
        }
        out.push({ raw, id: blake.blake3(raw).toString('hex') });
        transfer.push(raw.buffer);
      }
    } catch (err) {
      parentPort.postMessage({ seq: job.seq, error: (err as Error).message });
      return;
    }
    try {
      parentPort.postMessage({ seq: job.seq, out }, [...new Set(transfer)]);
    } catch (err) {
      parentPort.postMessage({ seq: job.seq, error: (err as Error).message });
    }
    gc?.({ type: 'minor' });
  });
}

export interface CodecPoolOptions {
  /** Worker threads; default os.availableParallelism(). */
  threads?: number;
}

export class CodecPool implements ChunkCodec {
  readonly size: number;
  private readonly threads: Thread[] = [];
  private readonly addons: { fsx: string; blake: string; lz4Corrupt: string };
  private seq = 0;
  private gathering: Job | null = null;
  private closed = false;

  constructor(opts: CodecPoolOptions = {}) {
    this.size = Math.max(1, opts.threads ?? availableParallelism());
    const req = createRequire(import.meta.url);
    this.addons = { fsx: FSX_ADDON_PATH, blake: req.resolve('@napi-rs/blake-hash'), lz4Corrupt: LZ4_CORRUPT };
  }

  /** LZ4 per chunk in a worker, raw kept when it saves less than codec.ts's MIN_SAVING; the raw buffers may be transferred (detached) when they own their memory. */
  async encodeMany(chunks: readonly RawChunk[]): Promise<EncodedChunk[]> {
    const lengths = chunks.map((c) => c.raw.byteLength); // before the buffers are transferred
    const answers = await this.submit('encode', chunks.map((c) => ({ data: c.raw })));
    return answers.map((a, i) => {
      if (!('codec' in a)) throw new CodecPoolError(`a codec worker gave no encoding for chunk ${chunks[i].id}`, 'report this error');
      const body = Buffer.from(a.data.buffer, a.data.byteOffset, a.data.byteLength);
      return { id: chunks[i].id, codec: a.codec === CODEC_RAW ? CODEC_RAW : CODEC_LZ4, rawLength: lengths[i], data: body };
    });
  }

  /** Decodes and checks each chunk (ChunkCorruptError as codec.ts's decodeChunk); results in order. The chunks' bytes are copied, never taken. */
  async decodeMany(chunks: readonly EncodedChunk[]): Promise<Buffer[]> {
    for (const c of chunks) checkEncodedHeader(c);
    const answers = await this.submit('decode', chunks.map((c) => ({ data: c.data, codec: c.codec, rawLength: c.rawLength })));
    return answers.map((a, i) => {
      if ('error' in a) return checkDecoded(chunks[i], undefined, undefined, a.error);
      const { raw, id } = a as { raw: Uint8Array; id: ChunkId };
      return checkDecoded(chunks[i], Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength), id);
    });
  }

  /** Ends the workers; jobs still out reject with CodecPoolError. Idempotent. */
  async close(): Promise<void> {
    this.closed = true;
    const threads = this.threads.splice(0);
    for (const t of threads) this.fail(t, new CodecPoolError('the codec pool was closed while a job was out', 'a store was closed before its chunks were encoded'));
    await Promise.all(threads.map((t) => t.worker.terminate()));
  }

  private submit(op: Job['op'], items: Job['items']): Promise<WorkerAnswer[]> {
    if (this.closed) return Promise.reject(new CodecPoolError('the codec pool is closed', 'open the store again'));
    // Each item sent owns its whole ArrayBuffer: a view would clone (or detach) all of the
    // buffer it is part of (a read window, a network read, Node's small-buffer slab). Raw
    // chunks to encode are taken over when they own theirs; encoded chunks to decode are
    // always copied (a caller such as putEncoded still stores their bytes).
    const slots = items.map((item) => {
      const data = op === 'encode' && item.data.byteOffset === 0 && item.data.byteLength === item.data.buffer.byteLength && item.data.buffer instanceof ArrayBuffer && !isMarkedAsUntransferable(item.data.buffer) ? item.data : new Uint8Array(item.data);
      const job = this.gatheringFor(op);
      const index = job.items.push({ ...item, data }) - 1;
      job.bytes += data.byteLength;
      if (job.bytes >= JOB_BYTES) this.dispatch();
      return job.answered.then((answers) => answers[index]);
    });
    return Promise.all(slots);
  }

  private gatheringFor(op: Job['op']): Job & { answered: Promise<WorkerAnswer[]> } {
    const open = this.gathering as (Job & { answered: Promise<WorkerAnswer[]> }) | null;
    if (open && open.op === op) return open;
    if (open) this.dispatch();
    let resolve!: Job['resolve'];
    let reject!: Job['reject'];
    const answered = new Promise<WorkerAnswer[]>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    answered.catch(() => undefined); // reported through each caller's promise
    const job = { op, items: [], bytes: 0, resolve, reject, answered };
    this.gathering = job;
    setImmediate(() => this.gathering === job && this.dispatch());
    return job;
  }

  private dispatch(): void {
    const job = this.gathering;
    this.gathering = null;
    if (!job) return;
    if (this.closed) return job.reject(new CodecPoolError('the codec pool is closed', 'open the store again'));
    const t = this.leastBusy();
    const seq = ++this.seq;
    t.jobs.set(seq, job);
    t.bytes += job.bytes;
    t.worker.ref();
    const transfer = new Set(job.items.map((item) => item.data.buffer as ArrayBuffer));
    t.worker.postMessage({ seq, op: job.op, items: job.items, maxRatio: 1 - MIN_SAVING }, [...transfer]);
  }

  private leastBusy(): Thread {
    if (this.threads.length < this.size) {
      const hasIdle = this.threads.find((t) => t.jobs.size === 0);
      if (!hasIdle) return this.spawn();
    }
    return this.threads.reduce((a, b) => (b.bytes < a.bytes ? b : a));
  }

  private spawn(): Thread {
    // The loader is handed in, not `require`: eval'd code is a CommonJS script, or an ES
    // module (no require) when the process runs with --input-type=module, which workers
    // inherit; and a bundler may rewrite the name `require` in workerMain's text.
    const code = `(${workerMain.toString()})(process.getBuiltinModule('node:module').createRequire(${JSON.stringify(this.addons.blake)}))`;
    const worker = new Worker(code, { eval: true, workerData: this.addons, name: 'cloner-codec' });
    const t: Thread = { worker, jobs: new Map(), bytes: 0 };
    worker.on('message', (m: { seq: number; out?: WorkerAnswer[]; error?: string }) => {
      const job = t.jobs.get(m.seq);
      if (!job) return;
      t.jobs.delete(m.seq);
      t.bytes -= job.bytes;
      if (!t.jobs.size) worker.unref();
      if (m.error !== undefined) job.reject(new CodecPoolError(`a codec worker failed: ${m.error}`, 'run again; if it persists, set CLONER_CODEC_THREADS=0 to encode in-thread and report the error'));
      else job.resolve(m.out!);
    });
    const lost = (why: string) => {
      const i = this.threads.indexOf(t);
      if (i >= 0) this.threads.splice(i, 1);
      this.fail(t, new CodecPoolError(`a codec worker stopped: ${why}`, 'run again; if it persists, set CLONER_CODEC_THREADS=0 to encode in-thread'));
    };
    worker.on('error', (err) => lost(err.message || String(err)));
    worker.on('exit', (code) => lost(`exit code ${code}`));
    worker.unref();
    this.threads.push(t);
    return t;
  }

  private fail(t: Thread, err: Error): void {
    for (const job of t.jobs.values()) job.reject(err);
    t.jobs.clear();
    t.bytes = 0;
  }
}

/** A copy of `data` in an ArrayBuffer of its own (never Node's small-buffer slab), so it can be transferred to a worker. */
export function ownedCopy(data: Uint8Array): Buffer {
  const copy = Buffer.allocUnsafeSlow(data.byteLength);
  copy.set(data);
  return copy;
}

let shared: ChunkCodec | undefined;

/** Fewest cores on which the pool is the default: on 2 cores it won no time and cost ~100 MB (header). */
const POOL_MIN_CORES = 4;

/**
 * The process's codec: a CodecPool of os.availableParallelism() workers when there are
 * POOL_MIN_CORES cores or more, else the in-thread codec. CLONER_CODEC_THREADS=N sets the
 * worker count (0: in-thread). Created on first use; its workers do not keep the process alive.
 */
export function defaultCodec(): ChunkCodec {
  if (shared) return shared;
  const env = process.env.CLONER_CODEC_THREADS;
  const cores = availableParallelism();
  const threads = env !== undefined && /^\d+$/.test(env) ? Number(env) : cores >= POOL_MIN_CORES ? cores : 0;
  shared = threads >= 2 || (env !== undefined && threads >= 1) ? new CodecPool({ threads }) : inThreadCodec;
  return shared;
}
