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
import { CODEC_LZ4, CODEC_RAW, MAX_RAW_CHUNK, type Codec, type EncodedChunk } from './codec.ts';
import { StoreError } from './errors.ts';

export const CHUNKS_MEDIA_TYPE = 'application/x-cloner-chunks';
const HEADER_BYTES = 32 + 1 + 4 + 4;
/** LZ4's worst case for a MAX_RAW_CHUNK input, plus its size prefix. */
const MAX_DATA = MAX_RAW_CHUNK + Math.ceil(MAX_RAW_CHUNK / 255) + 16 + 4;

export function encodeFrame(chunk: EncodedChunk): Buffer {
  return encodeFrames([chunk]);
}

/** Frames of `chunks`, in order, in one buffer (one allocation, one copy of each chunk's data). */
export function encodeFrames(chunks: readonly EncodedChunk[]): Buffer {
  const out = Buffer.allocUnsafe(chunks.reduce((sum, c) => sum + HEADER_BYTES + c.data.length, 0));
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

export class FrameError extends StoreError {
  override readonly code = 'FRAME_INVALID';
}

/** Frames from a byte stream; throws FrameError on a malformed or truncated stream. */
export async function* readFrames(source: AsyncIterable<Uint8Array>, limits: { maxFrames?: number } = {}): AsyncGenerator<EncodedChunk> {
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let frames = 0;
  const take = (n: number): Buffer => {
    const all = pending.length === 1 ? pending[0] : Buffer.concat(pending, pendingBytes);
    const out = all.subarray(0, n);
    const rest = all.subarray(n);
    pending = rest.length ? [rest] : [];
    pendingBytes = rest.length;
    return out;
  };
  let header: { id: string; codec: Codec; rawLength: number; dataLength: number } | null = null;
  for await (const piece of source) {
    pending.push(Buffer.isBuffer(piece) ? piece : Buffer.from(piece));
    pendingBytes += piece.length;
    for (;;) {
      if (!header) {
        if (pendingBytes < HEADER_BYTES) break;
        const h = take(HEADER_BYTES);
        const codec = h.readUInt8(32);
        const rawLength = h.readUInt32BE(33);
        const dataLength = h.readUInt32BE(37);
        if (codec !== CODEC_RAW && codec !== CODEC_LZ4) throw new FrameError(`frame ${frames + 1}: unknown codec ${codec}`, 'send frames as cloner writes them (codec 0 raw or 1 LZ4)');
        if (rawLength > MAX_RAW_CHUNK || dataLength > MAX_DATA || (codec === CODEC_RAW && dataLength !== rawLength)) {
          throw new FrameError(`frame ${frames + 1}: lengths out of range (raw ${rawLength}, data ${dataLength})`, `a chunk is at most ${MAX_RAW_CHUNK} bytes`);
        }
        if (limits.maxFrames !== undefined && frames >= limits.maxFrames) throw new FrameError(`more than ${limits.maxFrames} frames in one request`, 'split the upload into several requests');
        header = { id: h.subarray(0, 32).toString('hex'), codec: codec as Codec, rawLength, dataLength };
      }
      if (pendingBytes < header.dataLength) break;
      const data = Buffer.from(take(header.dataLength)); // a copy: `pending` views are reused
      frames++;
      yield { id: header.id, codec: header.codec, rawLength: header.rawLength, data };
      header = null;
    }
  }
  if (header || pendingBytes > 0) throw new FrameError(`the stream ends inside frame ${frames + 1}`, 'the upload was cut off; send it again (stored chunks are skipped)');
}
