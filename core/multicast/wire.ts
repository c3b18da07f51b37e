/**
 * The multicast wire (version 3): objects cut into datagrams, each named by its session,
 * its object and its piece, so a datagram can only ever land where it belongs whatever
 * order, round or session it arrives in.
 *
 * An object is one or more whole chunks of the session's union, packed by the sender
 * (sender.ts) up to OBJECT_PIECES pieces, so that small chunks share datagrams and parity
 * groups (rs.ts) instead of each costing a short datagram and a repair of its own:
 *    u16 count n, then n entries of
 *      u24 index of the chunk in the revision's canonical chunk list (summary.ts: both
 *          sides hold that sorted list), u8 codec, u24 raw length, u24 encoded length,
 *    then the n encoded chunks, concatenated.
 * The directory (2 + 10n bytes) always fits in piece 0 (n <= maxEntries(payload)).
 * An object is named by the index of its first chunk: each chunk of a session belongs to
 * one object only, so names are unique in a session.
 *
 * Datagram header (big-endian), 18 bytes (parity 19), then the payload:
 *    0  magic "C" (0x43)    1  version (3) << 4 | type (1 data, 2 parity)
 *    2  session tag (the session id's first 4 bytes)
 *    6  object: its first chunk's index (u24)    9  object length (u24)
 *   12  piece (u16; parity: its group's first piece)    [parity: 14 row (u8)]
 *   then CRC-32 (u32) of the full 8-byte session id, the header before it and the payload.
 * The CRC covers the whole session id, so another session's datagram whose tag collides
 * still fails (as 'crc'). Pieces are `payload` bytes (payloadBytes: the MTU less IP/UDP and
 * this header), the last one of an object shorter. Version 2 carried an 8-byte session id,
 * an 8-byte chunk key and three 24-bit lengths per datagram, 36 bytes (2.8% of the union at
 * 1500 MTU, bench/multicast.ts); the lengths and codec now travel once per chunk.
 *
 * Nothing here is trusted: every chunk, once its object is whole (or rebuilt from parity),
 * is decoded and its BLAKE3 checked against the id the index names (core/store/codec.ts
 * decodeChunk) before anything is written. The CRC only weeds out truncated and damaged
 * datagrams early; it is no authentication.
 */
import { crc32 } from 'node:zlib';
import { CODEC_LZ4, CODEC_RAW, type Codec } from '../store/codec.ts';
import { MAX_GROUP, MAX_ROWS, parityRow } from './rs.ts';

export const MAGIC = 0x43; // "C"
export const VERSION = 3;
export const TYPE_DATA = 1;
export const TYPE_PARITY = 2;
export const DATA_HEADER_BYTES = 18;
export const PARITY_HEADER_BYTES = 19;
/** IPv4 (20) and UDP (8) headers: what an MTU leaves for the datagram. */
export const IP_UDP_BYTES = 28;
/** Session ids are 8 random bytes, written as 16 hex digits; datagrams carry the first 4. */
export const SESSION_ID_BYTES = 8;
export const SESSION_TAG_BYTES = 4;
/** Smallest payload (a 576-byte MTU leaves 529): keeps an object's pieces within u16. */
export const MIN_PAYLOAD = 512;
/**
 * Largest encoded chunk a receiver reassembles: bounds the buffer an untrusted header can
 * make it allocate (the chunker's maxSize is 256 KiB; LZ4 never grows one by more than ~0.4%).
 */
export const MAX_MULTICAST_CHUNK = 4 * 1024 * 1024;
/** Bytes of a directory entry, and before the entries. */
export const ENTRY_BYTES = 10;
export const COUNT_BYTES = 2;
/** Largest object: one largest chunk and its directory. */
export const MAX_OBJECT = MAX_MULTICAST_CHUNK + COUNT_BYTES + ENTRY_BYTES;
/**
 * Pieces an object of several chunks reaches at most (a chunk larger than that is an object
 * alone): one full parity group (rs.ts MAX_GROUP). Bigger groups need fewer repair rows for
 * the worst of many receivers: at 1% loss and 8 receivers, ~3 rows per 128 pieces (2.4%),
 * ~1 per 21 (4.6%, the average chunk here alone), ~0.08 per single-piece chunk (7.7%).
 */
export const OBJECT_PIECES = MAX_GROUP;

export interface Entry {
  index: number;
  codec: Codec;
  rawLength: number;
  encodedLength: number;
}

export interface Frame {
  type: 'data' | 'parity';
  /** The object: its first chunk's index, and its length in bytes. */
  object: number;
  length: number;
  /** Data: the piece's index. Parity: its group's first piece. */
  piece: number;
  /** Parity only: the row index. */
  row: number;
  payload: Buffer;
}

/** Why a datagram was ignored (each counted by the receiver). */
export type Rejection = 'short' | 'magic' | 'version' | 'type' | 'crc' | 'session' | 'bounds';

/** The payload bytes one datagram carries for a path MTU (1500 -> 1453). */
export function payloadBytes(mtu: number): number {
  const bytes = mtu - IP_UDP_BYTES - PARITY_HEADER_BYTES;
  if (!Number.isInteger(mtu) || bytes < MIN_PAYLOAD || mtu > 65535) throw new RangeError(`MTU ${mtu} is out of range (${IP_UDP_BYTES + PARITY_HEADER_BYTES + MIN_PAYLOAD} to 65535)`);
  return bytes;
}

/** Most chunks in one object: its directory fits in piece 0. */
export const maxEntries = (payload: number) => Math.floor((payload - COUNT_BYTES) / ENTRY_BYTES);

/**
 * The parity groups of an object of `pieces` pieces: runs of consecutive pieces, at most
 * MAX_GROUP each, as even as can be; [first piece, count] each. Sender and receiver both
 * compute them from the object's length, so a parity datagram needs only its group's start.
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

export const piecesOf = (length: number, payload: number) => Math.max(1, Math.ceil(length / payload));

/** An object's bytes: its directory, then the chunks' encoded bytes. */
export function encodeObject(chunks: Array<Entry & { data: Buffer }>): Buffer {
  const head = Buffer.allocUnsafe(COUNT_BYTES + ENTRY_BYTES * chunks.length);
  head.writeUInt16BE(chunks.length, 0);
  chunks.forEach((c, i) => {
    const at = COUNT_BYTES + ENTRY_BYTES * i;
    head.writeUIntBE(c.index, at, 3);
    head[at + 3] = c.codec;
    head.writeUIntBE(c.rawLength, at + 4, 3);
    head.writeUIntBE(c.encodedLength, at + 7, 3);
  });
  return Buffer.concat([head, ...chunks.map((c) => c.data)]);
}

/**
 * An object's directory, read from its first `available` bytes (piece 0 holds it): the
 * entries, or null when they do not agree with the object's length and name, or name a
 * chunk past `chunks` (the canonical list's length), or a chunk too large.
 */
export function readDirectory(object: Buffer, name: number, chunks: number, available = object.length): Entry[] | null {
  if (available < COUNT_BYTES) return null;
  const n = object.readUInt16BE(0);
  const end = COUNT_BYTES + ENTRY_BYTES * n;
  if (n < 1 || end > available) return null;
  const out: Entry[] = [];
  let total = end;
  for (let i = 0; i < n; i++) {
    const at = COUNT_BYTES + ENTRY_BYTES * i;
    const e: Entry = { index: object.readUIntBE(at, 3), codec: object[at + 3] as Codec, rawLength: object.readUIntBE(at + 4, 3), encodedLength: object.readUIntBE(at + 7, 3) };
    if (e.index >= chunks || (e.codec !== CODEC_RAW && e.codec !== CODEC_LZ4) || e.rawLength > MAX_MULTICAST_CHUNK || e.encodedLength > MAX_MULTICAST_CHUNK) return null;
    total += e.encodedLength;
    out.push(e);
  }
  return out[0].index === name && total === object.length ? out : null;
}

function frame(session: string, type: number, object: number, length: number, piece: number, row: number, payload: Uint8Array): Buffer {
  const h = type === TYPE_DATA ? DATA_HEADER_BYTES : PARITY_HEADER_BYTES;
  const out = Buffer.allocUnsafe(h + payload.length);
  out[0] = MAGIC;
  out[1] = (VERSION << 4) | type;
  out.write(session, 2, SESSION_TAG_BYTES, 'hex');
  out.writeUIntBE(object, 6, 3);
  out.writeUIntBE(length, 9, 3);
  out.writeUInt16BE(piece, 12);
  if (type === TYPE_PARITY) out[14] = row;
  out.set(payload, h);
  out.writeUInt32BE(checksum(session, out, h), h - 4);
  return out;
}

/** Per session: the CRC-32 of its 8-byte id (every datagram's CRC starts from it) and its tag, as numbers (hot path). */
const sessionCodes = new Map<string, { crc: number; tag: number }>();
function codes(session: string): { crc: number; tag: number } {
  let c = sessionCodes.get(session);
  if (!c) {
    if (sessionCodes.size > 64) sessionCodes.clear();
    const id = Buffer.from(session, 'hex');
    sessionCodes.set(session, (c = { crc: crc32(id), tag: id.readUInt32BE(0) }));
  }
  return c;
}
function checksum(session: string, datagram: Buffer, header: number): number {
  return crc32(datagram.subarray(header), crc32(datagram.subarray(0, header - 4), codes(session).crc));
}

/** The data datagram of piece `piece` of an object named `name`. */
export function dataFrame(session: string, name: number, object: Buffer, payload: number, piece: number): Buffer {
  return frame(session, TYPE_DATA, name, object.length, piece, 0, object.subarray(piece * payload, (piece + 1) * payload));
}

/** Every data datagram of an object, in order. */
export function* objectFrames(session: string, name: number, object: Buffer, payload: number): Generator<Buffer> {
  for (let piece = 0; piece < piecesOf(object.length, payload); piece++) yield dataFrame(session, name, object, payload, piece);
}

/** Parity row `row` over pieces first..first+k-1 of an object, as a datagram. */
export function parityFrame(session: string, name: number, object: Buffer, payload: number, first: number, k: number, row: number): Buffer {
  const pieces = Array.from({ length: k }, (_, j) => object.subarray((first + j) * payload, (first + j + 1) * payload));
  return frame(session, TYPE_PARITY, name, object.length, first, row, parityRow(pieces, row, payload));
}

/** A datagram from its fields (tests and the forger: any values). */
export function encodeFrame(session: string, f: Frame): Buffer {
  return frame(session, f.type === 'data' ? TYPE_DATA : TYPE_PARITY, f.object, f.length, f.piece, f.row, f.payload);
}

/**
 * Parses a datagram for `session`: the frame, or why it is ignored. Everything is checked
 * before a byte is trusted: size, magic, version, type, session tag, CRC (with the whole
 * session id), and that the object is no larger than MAX_OBJECT and its piece inside it
 * (a parity row: below MAX_ROWS). That a piece's size fits the session's cut and that a
 * parity piece starts a group is the reassembler's check (it knows the payload size).
 */
export function decodeFrame(buf: Buffer, session: string): Frame | Rejection {
  if (buf.length < DATA_HEADER_BYTES) return 'short';
  if (buf[0] !== MAGIC) return 'magic';
  if (buf[1] >> 4 !== VERSION) return 'version';
  const type = buf[1] & 15;
  if (type !== TYPE_DATA && type !== TYPE_PARITY) return 'type';
  const h = type === TYPE_DATA ? DATA_HEADER_BYTES : PARITY_HEADER_BYTES;
  if (buf.length < h) return 'short';
  if (buf.readUInt32BE(2) !== codes(session).tag) return 'session';
  if (checksum(session, buf, h) !== buf.readUInt32BE(h - 4)) return 'crc';
  const length = buf.readUIntBE(9, 3);
  const piece = buf.readUInt16BE(12);
  const row = type === TYPE_PARITY ? buf[14] : 0;
  if (length > MAX_OBJECT || length < COUNT_BYTES + ENTRY_BYTES || buf.length === h || row >= MAX_ROWS) return 'bounds';
  return { type: type === TYPE_DATA ? 'data' : 'parity', object: buf.readUIntBE(6, 3), length, piece, row, payload: buf.subarray(h) };
}
