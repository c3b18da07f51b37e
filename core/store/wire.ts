/**
 * The chunk wire format of uploads and fetches (media type application/x-cloner-chunks):
 * a stream of frames, each
 *
 *   id (32 bytes BLAKE3) | codec (u8) | raw length (u32 BE) | data length (u32 BE) | data
 *
 * `readFrames` parses a byte stream incrementally and yields EncodedChunks; lengths are
 * checked against MAX_RAW_CHUNK before anything is allocated from them, and a stream that
 * ends inside a frame is an error. The receiver still decodes and hashes every chunk
 * (putEncoded / decodeChunk): the id in a frame is a claim, never trusted.
 */
import type { ChunkId } from './chunk-id.ts';
import { CODEC_LZ4, CODEC_RAW, lz4Budget, MAX_RAW_CHUNK, type Codec, type EncodedChunk } from './codec.ts';
import { fsxCodec } from '../native/codec.ts';
import { StoreError } from './errors.ts';

export const CHUNKS_MEDIA_TYPE = 'application/x-cloner-chunks';
const HEADER_BYTES = 32 + 1 + 4 + 4;
/** LZ4's worst case for a MAX_RAW_CHUNK input, plus its size prefix. */
const MAX_DATA = MAX_RAW_CHUNK + Math.ceil(MAX_RAW_CHUNK / 255) + 16 + 4;

export function encodeFrame(chunk: EncodedChunk): Buffer {
  return encodeFrames([chunk]);
}

/** Frames of `chunks`, in order, in one buffer (from `alloc`: one allocation, one copy of each chunk's data). */
export function encodeFrames(chunks: readonly EncodedChunk[], alloc: (n: number) => Buffer = Buffer.allocUnsafe): Buffer {
  const out = alloc(chunks.reduce((sum, c) => sum + HEADER_BYTES + c.data.length, 0));
  let at = 0;
  for (const chunk of chunks) {
    out.write(chunk.id, at, 32, 'hex');
    out.writeUInt8(chunk.codec, at + 32);
    out.writeUInt32BE(chunk.rawLength, at + 33);
    out.writeUInt32BE(chunk.data.length, at + 37);
    chunk.data.copy(out, at + HEADER_BYTES);
    at += HEADER_BYTES + chunk.data.length;
  }
  return out;
}

/**
 * Frames of `items`, in order, in one buffer: an encoded chunk is copied in; a raw one is
 * LZ4-compressed straight into its frame by codec.ts's rule (kept raw when LZ4 would not
 * save MIN_SAVING), so its bytes are written once. encodeChunk + encodeFrames wrote each
 * compressed chunk three times (scratch, a buffer of its own, the body). The buffer is
 * sized for every raw chunk kept raw (LZ4's output is never let past that budget), and
 * the body is a view of what was written (the buffer from `alloc`). `rawBytes`: the
 * items' raw lengths, summed.
 */
export function encodeFramesFrom(items: ReadonlyArray<{ id: ChunkId; raw?: Uint8Array; chunk?: EncodedChunk }>, alloc: (n: number) => Buffer = Buffer.allocUnsafe): { body: Buffer; rawBytes: number } {
  const out = alloc(items.reduce((sum, p) => sum + HEADER_BYTES + (p.chunk?.data.length ?? p.raw!.length), 0));
  const { lz4Compress } = fsxCodec();
  let at = 0;
  let rawBytes = 0;
  for (const p of items) {
    const data = at + HEADER_BYTES;
    let codec: number;
    let rawLength: number;
    let length: number;
    if (p.chunk) {
      ({ codec, rawLength } = p.chunk);
      length = p.chunk.data.copy(out, data);
    } else {
      const raw = p.raw!;
      rawLength = raw.length;
      length = raw.length > 0 ? lz4Compress(raw, out.subarray(data, data + lz4Budget(raw.length))) : 0;
      codec = CODEC_LZ4;
      if (length === 0) {
        codec = CODEC_RAW;
        out.set(raw, data);
        length = raw.length;
      }
    }
    out.write(p.id, at, 32, 'hex');
    out.writeUInt8(codec, at + 32);
    out.writeUInt32BE(rawLength, at + 33);
    out.writeUInt32BE(length, at + 37);
    at = data + length;
    rawBytes += rawLength;
  }
  return { body: out.subarray(0, at), rawBytes };
}

export class FrameError extends StoreError {
  override readonly code = 'FRAME_INVALID';
}

/**
 * The bytes received and not parsed yet, as the pieces they came in. `take` copies a
 * frame's bytes once, straight from the pieces into a buffer of their own (a frame's data
 * is kept in a pack until it is sealed; it must not pin, or be changed with, the pieces).
 */
class Pending {
  private pieces: Buffer[] = [];
  /** Bytes of pieces[0] already taken. */
  private head = 0;
  bytes = 0;

  push(piece: Buffer): void {
    if (piece.length === 0) return;
    this.pieces.push(piece);
    this.bytes += piece.length;
  }

  /** The next `n` bytes (n <= bytes), copied into a buffer of their own (from `alloc`). */
  take(n: number, alloc: (n: number) => Buffer = Buffer.allocUnsafe): Buffer {
    const out = alloc(n);
    this.into(out, n);
    return out;
  }

  /** Reads a frame header's fields from the next HEADER_BYTES bytes (a view when they lie in one piece). */
  header(): Buffer {
    const first = this.pieces[0];
    if (first.length - this.head >= HEADER_BYTES) {
      const view = first.subarray(this.head, this.head + HEADER_BYTES);
      this.skip(HEADER_BYTES);
      return view;
    }
    return this.take(HEADER_BYTES);
  }

  private into(out: Buffer, n: number): void {
    let at = 0;
    while (at < n) {
      const first = this.pieces[0];
      const count = Math.min(n - at, first.length - this.head);
      first.copy(out, at, this.head, this.head + count);
      at += count;
      this.skip(count);
    }
  }

  private skip(n: number): void {
    this.head += n;
    this.bytes -= n;
    if (this.head === this.pieces[0].length) {
      this.pieces.shift();
      this.head = 0;
    }
  }
}

/** Frames from a byte stream; throws FrameError on a malformed or truncated stream. */
export async function* readFrames(source: AsyncIterable<Uint8Array>, limits: { maxFrames?: number; alloc?: (n: number) => Buffer } = {}): AsyncGenerator<EncodedChunk> {
  const pending = new Pending();
  let frames = 0;
  let header: { id: string; codec: Codec; rawLength: number; dataLength: number } | null = null;
  for await (const piece of source) {
    pending.push(Buffer.isBuffer(piece) ? piece : Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength));
    for (;;) {
      if (!header) {
        if (pending.bytes < HEADER_BYTES) break;
        const h = pending.header();
        const codec = h.readUInt8(32);
        const rawLength = h.readUInt32BE(33);
        const dataLength = h.readUInt32BE(37);
        if (codec !== CODEC_RAW && codec !== CODEC_LZ4) throw new FrameError(`frame ${frames + 1}: unknown codec ${codec}`, 'send frames as cloner writes them (codec 0 raw or 1 LZ4)');
        if (rawLength > MAX_RAW_CHUNK || dataLength > MAX_DATA || (codec === CODEC_RAW && dataLength !== rawLength)) {
          throw new FrameError(`frame ${frames + 1}: lengths out of range (raw ${rawLength}, data ${dataLength})`, `a chunk is at most ${MAX_RAW_CHUNK} bytes`);
        }
        if (limits.maxFrames !== undefined && frames >= limits.maxFrames) throw new FrameError(`more than ${limits.maxFrames} frames in one request`, 'split the upload into several requests');
        header = { id: h.toString('hex', 0, 32), codec: codec as Codec, rawLength, dataLength };
      }
      if (pending.bytes < header.dataLength) break;
      const data = pending.take(header.dataLength, limits.alloc);
      frames++;
      yield { id: header.id, codec: header.codec, rawLength: header.rawLength, data };
      header = null;
    }
  }
  if (header || pending.bytes > 0) throw new FrameError(`the stream ends inside frame ${frames + 1}`, 'the upload was cut off; send it again (stored chunks are skipped)');
}

/**
 * Reused memory for chunks in transit. An upload's frames were each a buffer of their own,
 * ~530 MB for bench:peers' capture: V8 counts such buffers as external memory and starts a
 * full GC each time some tens of MB more are held, so the server ran 33 of them for one
 * capture (54 before verifyChunk), on a heap of ~18 MB; the uploading CLI ran 62 (raw
 * copies of every chunk, then request bodies). A lease carves buffers out of slabs of
 * `slabBytes`; `release`, called once nothing holds those buffers any more (the server:
 * every put of the request settled, since a put resolves once its chunk is written and
 * nothing keeps a chunk's bytes after that), gives the slabs back for the next leases,
 * keeping at most `keep`. A buffer over `maxCarve` bytes (default: a quarter of a slab)
 * is one of its own.
 */
export class FrameSlabs {
  private free: Buffer[] = [];
  private readonly slabBytes: number;
  private readonly keep: number;
  private readonly maxCarve: number;
  constructor(slabBytes = 4 * 1024 * 1024, keep = 4, maxCarve = slabBytes / 4) {
    this.slabBytes = slabBytes;
    this.keep = keep;
    this.maxCarve = Math.min(maxCarve, slabBytes);
  }

  lease(): { alloc: (n: number) => Buffer; release: () => void } {
    const held: Buffer[] = [];
    let slab: Buffer | undefined;
    let used = 0;
    let released = false;
    return {
      alloc: (n) => {
        // After release (a request cut off while its answer was being made): memory of its own.
        if (released) return Buffer.allocUnsafe(n);
        if (n > this.maxCarve) return Buffer.allocUnsafe(n);
        if (!slab || used + n > slab.length) {
          slab = this.free.pop() ?? Buffer.allocUnsafeSlow(this.slabBytes);
          held.push(slab);
          used = 0;
        }
        used += n;
        return slab.subarray(used - n, used);
      },
      release: () => {
        if (released) return;
        released = true;
        for (const s of held) if (this.free.length < this.keep) this.free.push(s);
        held.length = 0;
      },
    };
  }
}
