/**
 * The checker: re-reads every indexed chunk, pack by pack, and checks both the pack's
 * structure and the chunk itself.
 *
 * For each pack the index refers to, the whole file is read once and scanned
 * (pack.ts `scanPack`). An indexed chunk is
 *   missing  when its pack is gone or ends before the chunk does;
 *   corrupt  when the pack does not start with the pack magic, when no intact record
 *            header (checksum, id, codec, lengths as indexed) precedes its data, or when
 *            its data does not decode to its BLAKE3 id.
 * A chunk whose header is damaged may still read back today, but the index can no longer
 * be rebuilt from that pack (repair.ts), so it counts as corrupt. Packs with any damage,
 * including a torn tail or damaged records no index entry points at, are listed in
 * `damagedPacks`.
 */
import * as fs from 'node:fs/promises';
import type { ChunkId } from './chunk-id.ts';
import { verifyChunk } from './codec.ts';
import { ChunkCorruptError } from './errors.ts';
import type { Located, LocationIndex } from './location-index.ts';
import { RECORD_HEADER_BYTES, scanPack, type PackRecord } from './pack.ts';
import { packPath, type PackId } from './store-dir.ts';

export interface VerifyReport {
  /** Indexed chunks checked. */
  checked: number;
  missing: ChunkId[];
  corrupt: ChunkId[];
  /** Packs with a bad magic, damaged record headers or a torn tail, in pack order. */
  damagedPacks: PackId[];
}

/**
 * Checks every chunk `index` lists against the packs under `dir` (see the module
 * comment). `onProgress` is called with the running count of checked chunks after each
 * pack. Reads one pack (up to ~32 MiB) into memory at a time. Throws only on I/O errors
 * other than a missing pack.
 */
export async function verifyStore(dir: string, index: LocationIndex, onProgress?: (checked: number) => void): Promise<VerifyReport> {
  const report: VerifyReport = { checked: 0, missing: [], corrupt: [], damagedPacks: [] };
  for (const [pack, entries] of await index.byPack()) {
    let bytes: Buffer | null = null;
    try {
      bytes = await fs.readFile(packPath(dir, pack));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    const scan = bytes ? scanPack(bytes) : null;
    const recordAt = new Map<number, PackRecord>(scan?.records.map((r) => [r.dataOffset, r]));
    let damaged = scan !== null && !scan.cleanEnd;
    for (const entry of entries) {
      report.checked++;
      const verdict = bytes ? checkChunk(bytes, scan!.magicOk, recordAt, entry) : 'missing';
      if (verdict === 'missing') report.missing.push(entry.id);
      if (verdict === 'corrupt') {
        report.corrupt.push(entry.id);
        damaged = true;
      }
    }
    if (damaged) report.damagedPacks.push(pack);
    onProgress?.(report.checked);
  }
  return report;
}

function checkChunk(bytes: Buffer, magicOk: boolean, recordAt: Map<number, PackRecord>, { id, loc }: Located): 'ok' | 'missing' | 'corrupt' {
  if (loc.offset + loc.storedLength > bytes.length) return 'missing';
  if (!magicOk || loc.offset < RECORD_HEADER_BYTES) return 'corrupt';
  const record = recordAt.get(loc.offset);
  if (!record || record.id !== id || record.codec !== loc.codec || record.rawLength !== loc.rawLength || record.storedLength !== loc.storedLength) return 'corrupt';
  try {
    verifyChunk({ id, codec: loc.codec, rawLength: loc.rawLength, data: bytes.subarray(loc.offset, loc.offset + loc.storedLength) });
  } catch (err) {
    if (!(err instanceof ChunkCorruptError)) throw err;
    return 'corrupt';
  }
  return 'ok';
}
