/**
 * Pack file format. A pack is an append-only file of ~32 MiB:
 *
 *   header   "CLNRPK01"                                   8 bytes
 *   record*  magic "CHNK" | codec u8 | 0 0 0 | rawLength u32le | storedLength u32le |
 *            id (32 bytes) | crc32 of the preceding 48 bytes u32le     = 52 bytes,
 *            then storedLength bytes of data
 *
 * Each record carries its id, codec and lengths, so the whole index can be rebuilt from
 * the packs alone (`scanPack`), and the header checksum tells a torn tail or a damaged
 * record from data.
 */
import { crc32 } from 'node:zlib';
import { CHUNK_ID_BYTES, type ChunkId } from './chunk-id.ts';
import { MAX_RAW_CHUNK, type Codec, type EncodedChunk } from './codec.ts';

export const PACK_MAGIC = Buffer.from('CLNRPK01', 'latin1');
export const RECORD_MAGIC = 0x4b4e4843; // "CHNK" little-endian
export const RECORD_HEADER_BYTES = 52;

export function recordHeader(chunk: EncodedChunk): Buffer {
  const h = Buffer.alloc(RECORD_HEADER_BYTES);
  h.writeUInt32LE(RECORD_MAGIC, 0);
  h.writeUInt8(chunk.codec, 4);
  h.writeUInt32LE(chunk.rawLength, 8);
  h.writeUInt32LE(chunk.data.length, 12);
  h.write(chunk.id, 16, CHUNK_ID_BYTES, 'hex');
  h.writeUInt32LE(crc32(h.subarray(0, 48)), 48);
  return h;
}

export interface PackRecord {
  id: ChunkId;
  codec: Codec;
  rawLength: number;
  storedLength: number;
  /** Offset of the data (just after the record header) in the pack file. */
  dataOffset: number;
}

const RECORD_MAGIC_BYTES = Buffer.from('CHNK', 'latin1');

/** The record whose header starts at `pos`, or null when no intact header starts there. */
function recordAt(bytes: Buffer, pos: number): PackRecord | null {
  if (pos + RECORD_HEADER_BYTES > bytes.length) return null;
  const h = bytes.subarray(pos, pos + RECORD_HEADER_BYTES);
  if (h.readUInt32LE(0) !== RECORD_MAGIC || h.readUInt32LE(48) !== crc32(h.subarray(0, 48))) return null;
  const codec = h.readUInt8(4) as Codec;
  const rawLength = h.readUInt32LE(8);
  const storedLength = h.readUInt32LE(12);
  if (rawLength > MAX_RAW_CHUNK || storedLength > MAX_RAW_CHUNK + 1024) return null;
  const dataOffset = pos + RECORD_HEADER_BYTES;
  if (dataOffset + storedLength > bytes.length) return null;
  return { id: h.toString('hex', 16, 16 + CHUNK_ID_BYTES), codec, rawLength, storedLength, dataOffset };
}

export interface PackScan {
  /** Every record with an intact header, in file order. */
  records: PackRecord[];
  /** False when the file does not start with PACK_MAGIC (then `records` is empty). */
  magicOk: boolean;
  /** True when the records cover the file exactly: no damaged region, no torn tail. */
  cleanEnd: boolean;
  /** Bytes skipped over: damaged records and a torn tail. */
  skippedBytes: number;
}

/**
 * Lists the records of a pack's bytes. At a damaged or torn record it skips ahead to
 * the next "CHNK" whose header checksum holds, so one flipped byte costs one record, not
 * the rest of the pack. A header found that way inside another record's data (a chunk
 * that is itself a pack) is harmless: callers index a record only after its data hashes
 * to its id. Only record headers are checked here, not the data.
 */
export function scanPack(bytes: Buffer): PackScan {
  const records: PackRecord[] = [];
  if (bytes.length < PACK_MAGIC.length || !bytes.subarray(0, PACK_MAGIC.length).equals(PACK_MAGIC)) {
    return { records, magicOk: false, cleanEnd: false, skippedBytes: bytes.length };
  }
  let pos = PACK_MAGIC.length;
  let skippedBytes = 0;
  while (pos < bytes.length) {
    const record = recordAt(bytes, pos);
    if (record) {
      records.push(record);
      pos = record.dataOffset + record.storedLength;
      continue;
    }
    let next = bytes.indexOf(RECORD_MAGIC_BYTES, pos + 1);
    while (next !== -1 && !recordAt(bytes, next)) next = bytes.indexOf(RECORD_MAGIC_BYTES, next + 1);
    const resume = next === -1 ? bytes.length : next;
    skippedBytes += resume - pos;
    pos = resume;
  }
  return { records, magicOk: true, cleanEnd: skippedBytes === 0, skippedBytes };
}
