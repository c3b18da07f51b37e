/**
 * Pack file format. A pack is an append-only file of ~32 MiB:
 *
 *   header   "CLNRPK01"                                   8 bytes
 *   record*  magic "CHNK" | codec u8 | 0 0 0 | rawLength u32le | storedLength u32le |
 *            id (32 bytes) | crc32 of the preceding 48 bytes u32le     = 52 bytes,
 *            then storedLength bytes of data
 *
 * Each record carries its id, codec and lengths, so the whole index can be rebuilt from
 * the packs alone (`scanPack`), and the header checksum tells a torn tail from data.
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

/**
 * Lists the records of a pack's bytes. Stops at the first torn or foreign record and
 * reports where, so a caller can tell a clean pack from a damaged one.
 */
export function scanPack(bytes: Buffer): { records: PackRecord[]; cleanEnd: boolean; stoppedAt: number } {
  const records: PackRecord[] = [];
  if (bytes.length < PACK_MAGIC.length || !bytes.subarray(0, PACK_MAGIC.length).equals(PACK_MAGIC)) {
    return { records, cleanEnd: false, stoppedAt: 0 };
  }
  let pos = PACK_MAGIC.length;
  while (pos + RECORD_HEADER_BYTES <= bytes.length) {
    const h = bytes.subarray(pos, pos + RECORD_HEADER_BYTES);
    if (h.readUInt32LE(0) !== RECORD_MAGIC || h.readUInt32LE(48) !== crc32(h.subarray(0, 48))) break;
    const codec = h.readUInt8(4) as Codec;
    const rawLength = h.readUInt32LE(8);
    const storedLength = h.readUInt32LE(12);
    if (rawLength > MAX_RAW_CHUNK || storedLength > MAX_RAW_CHUNK + 1024) break;
    const dataOffset = pos + RECORD_HEADER_BYTES;
    if (dataOffset + storedLength > bytes.length) break;
    records.push({ id: h.toString('hex', 16, 16 + CHUNK_ID_BYTES), codec, rawLength, storedLength, dataOffset });
    pos = dataOffset + storedLength;
  }
  return { records, cleanEnd: pos === bytes.length, stoppedAt: pos };
}
