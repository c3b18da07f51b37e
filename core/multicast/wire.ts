/**
 * The multicast data datagram: one piece of one stored (encoded) chunk, named by its
 * session, its chunk id and its byte offset, so a datagram can only ever land where it
 * belongs whatever order, round or session it arrives in.
 *
 * Layout (big-endian), 66 bytes of header then the payload:
 *    0  magic "CLMC"            4  version (1)        5  type (1 = data)
 *    6  codec (0 raw, 1 LZ4)    7  reserved (0)
 *    8  session id (8 bytes)
 *   16  chunk id (32 bytes, BLAKE3 of the raw chunk)
 *   48  encoded length (u32)   52  raw length (u32)
 *   56  offset in the encoded chunk (u32)
 *   60  payload length (u16)
 *   62  CRC-32 of bytes 0..62 and the payload (u32)
 * The CRC only weeds out truncated and damaged datagrams early; it is no authentication.
 * What makes a write safe is that every chunk, once reassembled, is decoded and its BLAKE3
 * checked against its id (core/store/codec.ts decodeChunk) before anything is written.
 */
import { crc32 } from 'node:zlib';
import { CODEC_LZ4, CODEC_RAW, type Codec } from '../store/codec.ts';
import { CHUNK_ID_BYTES, type ChunkId } from '../store/chunk-id.ts';

export const MAGIC = 0x434c4d43; // "CLMC"
export const VERSION = 1;
export const TYPE_DATA = 1;
export const HEADER_BYTES = 66;
/** IPv4 (20) and UDP (8) headers: what an MTU leaves for the datagram. */
export const IP_UDP_BYTES = 28;
/** Session ids are 8 random bytes, written as 16 hex digits. */
export const SESSION_ID_BYTES = 8;
/**
 * Largest encoded chunk a receiver reassembles: bounds the buffer an untrusted header can
 * make it allocate (the chunker's maxSize is 256 KiB; LZ4 never grows one by more than ~0.4%).
 */
export const MAX_MULTICAST_CHUNK = 4 * 1024 * 1024;

export interface DataFrame {
  session: string;
  id: ChunkId;
  codec: Codec;
  encodedLength: number;
  rawLength: number;
  offset: number;
  payload: Buffer;
}

/** Why a datagram was ignored (each counted by the receiver). */
export type Rejection = 'short' | 'magic' | 'version' | 'type' | 'length' | 'crc' | 'session' | 'bounds';

/** The payload bytes one datagram carries for a path MTU (1500 -> 1406). */
export function payloadBytes(mtu: number): number {
  const bytes = mtu - IP_UDP_BYTES - HEADER_BYTES;
  if (!Number.isInteger(mtu) || bytes < 64 || mtu > 65535) throw new RangeError(`MTU ${mtu} is out of range (${IP_UDP_BYTES + HEADER_BYTES + 64} to 65535)`);
  return bytes;
}

export function encodeFrame(f: DataFrame): Buffer {
  const out = Buffer.allocUnsafe(HEADER_BYTES + f.payload.length);
  out.writeUInt32BE(MAGIC, 0);
  out[4] = VERSION;
  out[5] = TYPE_DATA;
  out[6] = f.codec;
  out[7] = 0;
  out.write(f.session, 8, SESSION_ID_BYTES, 'hex');
  out.write(f.id, 16, CHUNK_ID_BYTES, 'hex');
  out.writeUInt32BE(f.encodedLength, 48);
  out.writeUInt32BE(f.rawLength, 52);
  out.writeUInt32BE(f.offset, 56);
  out.writeUInt16BE(f.payload.length, 60);
  f.payload.copy(out, HEADER_BYTES);
  out.writeUInt32BE(crc32(out.subarray(HEADER_BYTES), crc32(out.subarray(0, 62))), 62);
  return out;
}

/** Every datagram of one encoded chunk, `payload` bytes each (the last one shorter). */
export function* chunkFrames(session: string, id: ChunkId, codec: Codec, rawLength: number, data: Buffer, payload: number): Generator<Buffer> {
  for (let offset = 0; offset < data.length || offset === 0; offset += payload) {
    yield encodeFrame({ session, id, codec, encodedLength: data.length, rawLength, offset, payload: data.subarray(offset, offset + payload) });
    if (data.length === 0) return;
  }
}

/**
 * Parses a datagram for `session`: the frame, or why it is ignored. Everything is checked
 * before a byte is trusted: size, magic, version, type, CRC, the session, and that the
 * payload lies inside a chunk no larger than MAX_MULTICAST_CHUNK.
 */
export function decodeFrame(buf: Buffer, session: string): DataFrame | Rejection {
  if (buf.length < HEADER_BYTES) return 'short';
  if (buf.readUInt32BE(0) !== MAGIC) return 'magic';
  if (buf[4] !== VERSION) return 'version';
  if (buf[5] !== TYPE_DATA || (buf[6] !== CODEC_RAW && buf[6] !== CODEC_LZ4)) return 'type';
  const length = buf.readUInt16BE(60);
  if (buf.length !== HEADER_BYTES + length) return 'length';
  if (crc32(buf.subarray(HEADER_BYTES), crc32(buf.subarray(0, 62))) !== buf.readUInt32BE(62)) return 'crc';
  if (buf.toString('hex', 8, 16) !== session) return 'session';
  const encodedLength = buf.readUInt32BE(48);
  const rawLength = buf.readUInt32BE(52);
  const offset = buf.readUInt32BE(56);
  if (encodedLength > MAX_MULTICAST_CHUNK || rawLength > MAX_MULTICAST_CHUNK || offset + length > encodedLength || (length === 0 && encodedLength !== 0)) return 'bounds';
  return { session, id: buf.toString('hex', 16, 48), codec: buf[6] as Codec, encodedLength, rawLength, offset, payload: buf.subarray(HEADER_BYTES) };
}
