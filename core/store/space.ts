/**
 * Free space of a store's filesystem, and the two guards that keep a full disk from
 * losing data or locking the store up:
 *
 * - Headroom: a pack is written only when the filesystem keeps HEADROOM free after it
 *   (1% of the filesystem, 8 MiB to 256 MiB), so the LevelDB index always has room for
 *   its log, its tables and compactions. A LevelDB write that meets ENOSPC puts the
 *   database into an error state until it is reopened, so pack data must never be what
 *   fills the disk to the last byte.
 * - Reserve: DIR/reserve is a file of RESERVE_BYTES of zeros, written when there is room.
 *   When the disk filled up anyway (other files on it), opening LevelDB fails (it writes
 *   a table and a manifest to open); the store then deletes the reserve and opens in the
 *   room it gave back, so the server starts and `cloner gc` can free space. The reserve is
 *   written again at the next open or gc with room for it.
 * (CockroachDB keeps an "emergency ballast" file for the same reason.)
 */
import * as fs from 'node:fs/promises';
import path from 'node:path';
import { StoreFullError } from './errors.ts';

/** Size of DIR/reserve: room for LevelDB to replay a full 4 MiB write buffer into a table and write a manifest. */
export const RESERVE_BYTES = 8 * 1024 * 1024;

const MIB = 1024 * 1024;

/** Free space a repack leaves for the index batch that follows it (a few KiB per pack). */
export const REPACK_MARGIN = 1024 * 1024;
export const mib = (bytes: number) => `${(bytes / MIB).toFixed(1)} MiB`;

export interface Space {
  /** Bytes an unprivileged writer may still use. */
  free: number;
  /** Size of the filesystem. */
  total: number;
}

export async function spaceOf(dir: string): Promise<Space> {
  const s = await fs.statfs(dir);
  return { free: s.bavail * s.bsize, total: s.blocks * s.bsize };
}

/** Bytes kept free for the index beyond every pack write: 1% of the filesystem, within [8 MiB, 256 MiB]. */
export function headroomOf(space: Space): number {
  return Math.min(256 * MIB, Math.max(8 * MIB, Math.floor(space.total / 100)));
}

/** The error of a write of `need` bytes that does not fit in the store at `dir`. */
export function storeFull(dir: string, free: number, need: number, cause?: unknown): StoreFullError {
  return new StoreFullError(
    `no space for the store in ${dir}: ${mib(free)} free, ${mib(need)} needed (the write plus room kept for the index)`,
    'free space on that filesystem (cloner image-delete unused images, then cloner gc) or move the data directory to a larger disk; nothing acknowledged was lost, re-run the upload once there is room',
    { cause },
  );
}

/**
 * Throws StoreFullError unless `bytes` fit in `dir` with the index headroom left over, and
 * room to write the reserve again when it was used (its space is not for pack data). A
 * repack, which frees more than it writes as soon as its old pack is deleted, passes a
 * small `margin` instead (REPACK_MARGIN), so gc can work on a full disk.
 */
export async function ensureRoom(dir: string, bytes: number, margin?: number): Promise<void> {
  const space = await spaceOf(dir);
  const need = bytes + (margin ?? headroomOf(space) + ((await hasReserve(dir)) ? 0 : RESERVE_BYTES));
  if (space.free < need) throw storeFull(dir, space.free, need);
}

/** True for the fs errors of a full filesystem or quota. */
export function isNoSpace(err: unknown): boolean {
  const e = err as { code?: string; message?: string; cause?: { message?: string } };
  return e?.code === 'ENOSPC' || e?.code === 'EDQUOT' || /No space left on device|Disk quota exceeded/i.test(`${e?.message ?? ''} ${e?.cause?.message ?? ''}`);
}

export const reservePath = (dir: string) => path.join(dir, 'reserve');

async function hasReserve(dir: string): Promise<boolean> {
  try {
    return (await fs.stat(reservePath(dir))).size === RESERVE_BYTES;
  } catch {
    return false;
  }
}

/** Writes DIR/reserve when it is missing and the filesystem keeps its headroom after it. */
export async function ensureReserve(dir: string): Promise<void> {
  const file = reservePath(dir);
  if (await hasReserve(dir)) return;
  const space = await spaceOf(dir);
  if (space.free < RESERVE_BYTES + headroomOf(space)) return;
  try {
    // Real zeros, not a sparse file: the blocks must be allocated to be given back.
    await fs.writeFile(file, Buffer.alloc(RESERVE_BYTES), { mode: 0o600, flush: true });
  } catch (err) {
    await fs.rm(file, { force: true });
    if (!isNoSpace(err)) throw err;
  }
}

/** Deletes DIR/reserve; true when there was one (its space is free now). */
export async function dropReserve(dir: string): Promise<boolean> {
  try {
    await fs.unlink(reservePath(dir));
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}
