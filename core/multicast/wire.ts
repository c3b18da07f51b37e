/**
 * The multicast datagram: one piece of one stored (encoded) chunk, or one Reed-Solomon
 * parity row over a group of its pieces (rs.ts), named by its session, its chunk key and
 * its byte offset, so a datagram can only ever land where it belongs whatever order,
 * round or session it arrives in.
 *
 * Layout (version 2, big-endian), 36 bytes of header then the payload:
 *    0  magic "CM" (u16)    2  version (2)    3  type (1 data, 2 parity)
 *    4  codec (0 raw, 1 LZ4)                  5  parity row (data: 0)
 *    6  parity group size k in pieces (data: 0)
 *    7  session id (8 bytes)
 *   15  chunk key (8 bytes: the first 8 bytes of the chunk's BLAKE3 id)
 *   23  encoded length (u24)   26  raw length (u24)
 *   29  offset in the encoded chunk (u24; parity: the group's first piece)
 *   32  CRC-32 of bytes 0..32 and the payload (u32)
 * The payload's length is the datagram's; a chunk is cut into pieces of `payload` bytes
 * (payloadBytes: the MTU less IP/UDP and this header; the session says it), the last one
 * shorter. Version 1 carried the whole 32-byte id, a 2-byte length and 32-bit lengths in
 * a 66-byte header: 24 of its 1472 bytes were the id (bench/multicast.ts: 1.184x the union).
 *
 * The key is a name, not a proof: a receiver maps it to the full id of a chunk it lacks,
 * and every chunk, once reassembled (or rebuilt from parity), is decoded and its BLAKE3
 * checked against that id (core/store/codec.ts decodeChunk) before anything is written. A
 * key shared by two chunks of one session's union is never sent (hub.ts: those chunks go
 * over unicast); a receiver ignores a key two of its own chunks share. The CRC only weeds
 * out truncated and damaged datagrams early; it is no authentication.
 */
import { crc32 } from 'node:zlib';
import { CODEC_LZ4, CODEC_RAW, type Codec } from '../store/codec.ts';
import type { ChunkId } from '../store/chunk-id.ts';
import { MAX_GROUP, MAX_ROWS, parityRow } from './rs.ts';

export const MAGIC = 0x434d; // "CM"
export const VERSION = 2;
export const TYPE_DATA = 1;
export const TYPE_PARITY = 2;
export const HEADER_BYTES = 36;
const CRC_AT = 32;
/** IPv4 (20) and UDP (8) headers: what an MTU leaves for the datagram. */
export const IP_UDP_BYTES = 28;
/** Session ids are 8 random bytes, written as 16 hex digits. */
export const SESSION_ID_BYTES = 8;
/** Chunk keys: the first 8 bytes of the id (16 hex digits). */
export const KEY_BYTES = 8;
/**
 * Largest encoded chunk a receiver reassembles: bounds the buffer an untrusted header can
 * make it allocate (the chunker's maxSize is 256 KiB; LZ4 never grows one by more than ~0.4%).
 */
export const MAX_MULTICAST_CHUNK = 4 * 1024 * 1024;

export type ChunkKey = string;
export const keyOf = (id: ChunkId): ChunkKey => id.slice(0, 2 * KEY_BYTES);

export interface Frame {
  type: 'data' | 'parity';
  session: string;
  key: ChunkKey;
  codec: Codec;
  encodedLength: number;
  rawLength: number;
  /** Data: the piece's offset. Parity: its group's first piece's offset. */
  offset: number;
  /** Parity only: the row index and the group's size in pieces. */
  row: number;
  k: number;
  payload: Buffer;
}

/** Why a datagram was ignored (each counted by the receiver). */
export type Rejection = 'short' | 'magic' | 'version' | 'type' | 'crc' | 'session' | 'bounds';

/** The payload bytes one datagram carries for a path MTU (1500 -> 1436). */
export function payloadBytes(mtu: number): number {
  const bytes = mtu - IP_UDP_BYTES - HEADER_BYTES;
  if (!Number.isInteger(mtu) || bytes < 64 || mtu > 65535) throw new RangeError(`MTU ${mtu} is out of range (${IP_UDP_BYTES + HEADER_BYTES + 64} to 65535)`);
  return bytes;
}

/**
 * The parity groups of a chunk of `pieces` pieces: runs of consecutive pieces, at most
 * MAX_GROUP each, as even as can be; [first piece, count] each. Sender and receiver both
 * compute them from the encoded length, so a parity datagram needs only its group's start.
 */
export function groupsOf(pieces: number): Array<[number, number]> {
  const g = Math.max(1, Math.ceil(pieces / MAX_GROUP));
  const out: Array<[number, number]> = [];
  for (let b = 0; b < g; b++) {
    const first = Math.floor((b * pieces) / g);
    out.push([first, Math.floor(((b + 1) * pieces) / g) - first]);
  }
  return out;
}

export const piecesOf = (encodedLength: number, payload: number) => Math.max(1, Math.ceil(encodedLength / payload));

export function encodeFrame(f: Omit<Frame, 'key'> & { key?: ChunkKey; id?: ChunkId }): Buffer {
  const out = Buffer.allocUnsafe(HEADER_BYTES + f.payload.length);
  out.writeUInt16BE(MAGIC, 0);
  out[2] = VERSION;
  out[3] = f.type === 'data' ? TYPE_DATA : TYPE_PARITY;
  out[4] = f.codec;
  out[5] = f.row;
  out[6] = f.k;
  out.write(f.session, 7, SESSION_ID_BYTES, 'hex');
  out.write(f.key ?? keyOf(f.id!), 15, KEY_BYTES, 'hex');
  out.writeUIntBE(f.encodedLength, 23, 3);
  out.writeUIntBE(f.rawLength, 26, 3);
  out.writeUIntBE(f.offset, 29, 3);
  f.payload.copy(out, HEADER_BYTES);
  out.writeUInt32BE(crc32(out.subarray(HEADER_BYTES), crc32(out.subarray(0, CRC_AT))), CRC_AT);
  return out;
}

/** Every data datagram of one encoded chunk, `payload` bytes each (the last one shorter), with its offset. */
export function* chunkFrames(session: string, id: ChunkId, codec: Codec, rawLength: number, data: Buffer, payload: number): Generator<[number, Buffer]> {
  for (let offset = 0; offset < data.length || offset === 0; offset += payload) {
    yield [offset, dataFrame(session, id, codec, rawLength, data, payload, offset)];
    if (data.length === 0) return;
  }
}

/** The data datagram of the piece at `offset` (a multiple of `payload`) of an encoded chunk. */
export function dataFrame(session: string, id: ChunkId, codec: Codec, rawLength: number, data: Buffer, payload: number, offset: number): Buffer {
  return encodeFrame({ type: 'data', session, key: keyOf(id), codec, encodedLength: data.length, rawLength, offset, row: 0, k: 0, payload: data.subarray(offset, offset + payload) });
}

/** Parity row `row` over pieces first..first+k-1 of an encoded chunk, as a datagram. */
export function parityFrame(session: string, id: ChunkId, codec: Codec, rawLength: number, data: Buffer, payload: number, first: number, k: number, row: number): Buffer {
  const pieces = Array.from({ length: k }, (_, j) => data.subarray((first + j) * payload, (first + j + 1) * payload));
  return encodeFrame({ type: 'parity', session, key: keyOf(id), codec, encodedLength: data.length, rawLength, offset: first * payload, row, k, payload: parityRow(pieces, row, payload) });
}

/**
 * Parses a datagram for `session`: the frame, or why it is ignored. Everything is checked
 * before a byte is trusted: size, magic, version, type, CRC, the session, and that the
 * payload lies inside a chunk no larger than MAX_MULTICAST_CHUNK (a parity row: a group
 * within MAX_GROUP pieces, a row below MAX_ROWS). That a piece's size and offset fit the
 * session's cut is the reassembler's check (it knows the payload size).
 */
export function decodeFrame(buf: Buffer, session: string): Frame | Rejection {
  if (buf.length < HEADER_BYTES) return 'short';
  if (buf.readUInt16BE(0) !== MAGIC) return 'magic';
  if (buf[2] !== VERSION) return 'version';
  if ((buf[3] !== TYPE_DATA && buf[3] !== TYPE_PARITY) || (buf[4] !== CODEC_RAW && buf[4] !== CODEC_LZ4)) return 'type';
  if (crc32(buf.subarray(HEADER_BYTES), crc32(buf.subarray(0, CRC_AT))) !== buf.readUInt32BE(CRC_AT)) return 'crc';
  if (buf.toString('hex', 7, 15) !== session) return 'session';
  const type = buf[3] === TYPE_DATA ? 'data' : 'parity';
  const encodedLength = buf.readUIntBE(23, 3);
  const rawLength = buf.readUIntBE(26, 3);
  const offset = buf.readUIntBE(29, 3);
  const length = buf.length - HEADER_BYTES;
  if (encodedLength > MAX_MULTICAST_CHUNK || rawLength > MAX_MULTICAST_CHUNK || offset >= Math.max(1, encodedLength)) return 'bounds';
  if (type === 'data' ? offset + length > encodedLength || (length === 0 && encodedLength !== 0) || buf[5] !== 0 || buf[6] !== 0 : length === 0 || buf[6] < 1 || buf[6] > MAX_GROUP || buf[5] >= MAX_ROWS) return 'bounds';
  return { type, session, key: buf.toString('hex', 15, 23), codec: buf[4] as Codec, encodedLength, rawLength, offset, row: buf[5], k: buf[6], payload: buf.subarray(HEADER_BYTES) };
}
