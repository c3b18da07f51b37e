/**
 * The checker: re-reads every indexed chunk, pack by pack, and checks its BLAKE3.
 *
 * For each pack the index refers to, the whole file is read once. An indexed chunk is
 * missing when its pack is gone or ends before the chunk does, corrupt when its data
 * does not decode to its id.
 */
import * as fs from 'node:fs/promises';
import type { ChunkId } from './chunk-id.ts';
import { decodeChunk } from './codec.ts';
import { ChunkCorruptError } from './errors.ts';
import type { LocationIndex } from './location-index.ts';
import { packPath } from './store-dir.ts';

export interface VerifyReport {
  /** Indexed chunks checked. */
  checked: number;
  missing: ChunkId[];
  corrupt: ChunkId[];
}

/**
 * Checks every chunk `index` lists against the packs under `dir` (see the module
 * comment). `onProgress` is called with the running count of checked chunks after each
 * pack. Reads one pack (up to ~32 MiB) into memory at a time. Throws only on I/O errors
 * other than a missing pack.
 */
export async function verifyStore(dir: string, index: LocationIndex, onProgress?: (checked: number) => void): Promise<VerifyReport> {
  const report: VerifyReport = { checked: 0, missing: [], corrupt: [] };
  for (const [pack, entries] of await index.byPack()) {
    let bytes: Buffer | null = null;
    try {
      bytes = await fs.readFile(packPath(dir, pack));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    for (const { id, loc } of entries) {
      report.checked++;
      if (!bytes || loc.offset + loc.storedLength > bytes.length) {
        report.missing.push(id);
        continue;
      }
      try {
        decodeChunk({ id, codec: loc.codec, rawLength: loc.rawLength, data: bytes.subarray(loc.offset, loc.offset + loc.storedLength) });
      } catch (err) {
        if (!(err instanceof ChunkCorruptError)) throw err;
        report.corrupt.push(id);
      }
    }
    onProgress?.(report.checked);
  }
  return report;
}
