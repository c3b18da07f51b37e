/**
 * Where each partition of a layout disk goes on a node's disk, in sectors.
 *
 * Algorithm: first place the layout as written (partitions.ts: exact starts and sizes
 * where the layout has them, the next 1 MiB boundary where it has none, "grow" taking
 * the rest). When that does not fit, scale: partitions that hold a filesystem and have a
 * minimum (capture records one: the data the filesystem holds and a quarter more, never
 * under what its mkfs accepts; swap may always shrink to 16 MiB) give up space in
 * proportion to how far they are above it, starts are re-aligned to 1 MiB (it is new
 * space now), and every change is reported as a note. Only a disk that cannot hold every
 * partition at its minimum is refused, with the need and the size.
 */
import { LayoutError, MIB, formatSize, parseSize, type DiskSpec } from './model.ts';
import { isExtended } from './partitions.ts';

export class LayoutTooSmallError extends LayoutError {
  override readonly code = 'LAYOUT_TOO_SMALL';
}

/** A partition the table cannot hold where the layout puts it (a start off the sector, past what MBR addresses). */
export class LayoutUnplaceableError extends LayoutError {
  override readonly code = 'LAYOUT_UNPLACEABLE';
}

/** An MBR entry holds 32-bit sector numbers: nothing of a dos partition lies past 2^32 sectors. */
const DOS_LIMIT = 2 ** 32;

export interface Placed {
  start: number;
  size: number;
}

export interface Geometry {
  path: string;
  size: number;
  sector: number;
}

export interface Placement {
  placed: Placed[];
  /** What was changed to fit a smaller disk, one line per partition. */
  notes: string[];
}

/** Smallest swap a scaled layout makes (mkswap takes 40 KiB; 16 MiB keeps it useful). */
const SWAP_MINIMUM = 16 * MIB;

class NoFit extends Error {}

/** Places `sizes` (sectors; 'grow' takes the rest) on the disk; exact keeps the layout's starts. */
function placeSizes(disk: DiskSpec, geo: Geometry, sizes: Array<number | 'grow'>, exact: boolean): Placed[] {
  const sector = geo.sector;
  const align = MIB / sector;
  const total = Math.floor(geo.size / sector);
  // A dos table on a disk over 2 TiB (512-byte sectors) uses what MBR addresses; a "grow" partition stops there.
  const endUsable = disk.table === 'gpt' ? total - 33 : Math.min(total, DOS_LIMIT);
  const up = (s: number) => Math.ceil(s / align) * align;
  const parts = disk.partitions;
  const minOf = (i: number): number => (sizes[i] === 'grow' ? Math.ceil(parseSize(parts[i].minSize ?? MIB) / sector) : (sizes[i] as number));
  const logicalNeed = (from: number) => parts.slice(from).reduce((s, p, k) => (p.logical ? s + align + up(minOf(from + k)) : s), 0);
  // Sectors the later partitions of the same level need, so a grow partition leaves them room.
  const need = (i: number): number => {
    let sum = 0;
    for (let j = i + 1; j < parts.length; j++) {
      if (!!parts[j].logical !== !!parts[i].logical) continue;
      sum += isExtended(parts[j]) && (sizes[j] === 'grow' || !exact) ? logicalNeed(j + 1) : up(minOf(j));
    }
    return sum;
  };
  const startOf = (i: number, cursor: number): number => {
    const p = parts[i];
    if (exact && p.start !== undefined) {
      if (p.start % sector !== 0) throw new LayoutUnplaceableError(`partition ${p.id} starts at byte ${p.start}, not on a ${sector}-byte sector of ${geo.path}`, 'change the start to a multiple of the sector size');
      return p.start / sector;
    }
    return up(p.logical ? cursor + 1 : Math.max(cursor, align));
  };
  const placed: Placed[] = [];
  let cursor = 0;
  let ext: { index: number; start: number; end: number } | null = null;
  let logicalCursor = 0;
  parts.forEach((p, i) => {
    if (p.logical) {
      const start = startOf(i, logicalCursor);
      const limit = ext!.end;
      const size = sizes[i] === 'grow' ? Math.floor((limit - start - need(i)) / align) * align : (sizes[i] as number);
      if (size < minOf(i) || start + size > limit) throw new NoFit(p.id);
      placed.push({ start, size });
      logicalCursor = start + size;
      // A fixed extended partition shrinks with its logical partitions when scaling.
      if (!exact && parts[ext!.index].size !== 'grow' && !parts.slice(i + 1).some((q) => q.logical)) {
        placed[ext!.index].size = logicalCursor - placed[ext!.index].start;
        cursor = logicalCursor;
      }
      return;
    }
    const start = startOf(i, cursor);
    let size: number;
    if (sizes[i] === 'grow' || (isExtended(p) && !exact)) {
      size = Math.floor((endUsable - start - need(i)) / align) * align;
      if (isExtended(p) && sizes[i] !== 'grow') size = Math.min(size, logicalNeed(i + 1) + align);
      if (size < (isExtended(p) ? logicalNeed(i + 1) : minOf(i))) throw new NoFit(p.id);
    } else {
      size = sizes[i] as number;
    }
    if (start + size > endUsable) throw new NoFit(p.id);
    placed.push({ start, size });
    cursor = start + size;
    if (isExtended(p)) {
      ext = { index: i, start, end: start + size };
      logicalCursor = start;
    }
  });
  return placed;
}

/** Sector placement of a layout disk on a node disk, scaled down when it has to be. */
export function placePartitions(disk: DiskSpec, geo: Geometry, minimums: Map<string, number>): Placement {
  const sector = geo.sector;
  const parts = disk.partitions;
  const sizes = parts.map((p) => (p.size === 'grow' ? ('grow' as const) : Math.ceil(parseSize(p.size) / sector)));
  try {
    return { placed: placeSizes(disk, geo, sizes, true), notes: [] };
  } catch (err) {
    if (!(err instanceof NoFit)) throw err;
  }
  // Scale: what can each fixed partition give up?
  const align = MIB / sector;
  const floors = parts.map((p, i) => {
    const min = minimums.get(p.id);
    if (sizes[i] === 'grow' || min === undefined || isExtended(p)) return sizes[i] === 'grow' ? 0 : (sizes[i] as number);
    return Math.min(sizes[i] as number, Math.ceil(min / sector / align) * align);
  });
  const slack = parts.map((p, i) => (sizes[i] === 'grow' || isExtended(p) ? 0 : (sizes[i] as number) - floors[i]));
  const totalSlack = slack.reduce((a, b) => a + b, 0);
  const smallest = parts.map((p, i) => (sizes[i] === 'grow' || isExtended(p) ? sizes[i] : floors[i]));
  const tooSmall = () => {
    const needed = neededSectors(disk, geo, smallest);
    const fixedOnes = parts.filter((p, i) => sizes[i] !== 'grow' && !isExtended(p) && slack[i] === 0 && !minimums.has(p.id)).map((p) => p.id);
    return new LayoutTooSmallError(
      `disk ${disk.id} (${geo.path}, ${formatSize(geo.size)}) is too small for the layout: it needs ${formatSize(needed * sector)} with every partition at its smallest (${parts.map((p, i) => `${p.id} ${isExtended(p) ? 'extended' : formatSize((smallest[i] === 'grow' ? parseSize(p.minSize ?? MIB) / sector : (smallest[i] as number)) * sector)}`).join(', ')})${fixedOnes.length ? `; ${fixedOnes.join(', ')} cannot shrink (no filesystem the layout knows the data of)` : ''}`,
      'use a larger disk, or make the layout\'s partitions smaller',
    );
  };
  let over = neededSectors(disk, geo, sizes) - usableSectors(disk, geo);
  for (let attempt = 0; attempt < 8; attempt++) {
    if (over > totalSlack) throw tooSmall();
    const scaled = sizes.map((s, i) => (s === 'grow' || slack[i] === 0 || over <= 0 ? s : s - Math.min(slack[i], Math.ceil((over * slack[i]) / totalSlack / align) * align)));
    try {
      const placed = placeSizes(disk, geo, scaled, false);
      const notes = parts.flatMap((p, i) => {
        if (sizes[i] === 'grow' || isExtended(p)) return [];
        if (scaled[i] !== sizes[i]) return [`${p.id}: ${formatSize((sizes[i] as number) * sector)} scaled down to ${formatSize(placed[i].size * sector)} (its minimum is ${formatSize(floors[i] * sector)})`];
        if (p.start !== undefined && placed[i].start * sector !== p.start) return [`${p.id}: moved from byte ${p.start} to ${placed[i].start * sector}`];
        return [];
      });
      return { placed, notes: [`disk ${disk.id} (${geo.path}, ${formatSize(geo.size)}) is smaller than the layout needs: scaled`, ...notes] };
    } catch (err) {
      if (!(err instanceof NoFit)) throw err;
      over = Math.max(over, 0) + align;
    }
  }
  throw tooSmall();
}

function usableSectors(disk: DiskSpec, geo: Geometry): number {
  const total = Math.floor(geo.size / geo.sector);
  return disk.table === 'gpt' ? total - 33 : total;
}

/** Sectors up to the end of the last partition, placed aligned with grow ones at their minimum. */
function neededSectors(disk: DiskSpec, geo: Geometry, sizes: Array<number | 'grow'>): number {
  const align = MIB / geo.sector;
  const up = (s: number) => Math.ceil(s / align) * align;
  let end = align;
  for (const [i, p] of disk.partitions.entries()) {
    const size = sizes[i] === 'grow' ? Math.ceil(parseSize(p.minSize ?? MIB) / geo.sector) : (sizes[i] as number);
    if (isExtended(p)) continue; // its logical partitions count
    end = up(p.logical ? end + 1 : end) + size;
  }
  return end;
}

/** The smallest partitions may be scaled to: swap to 16 MiB, a filesystem to its recorded minimum. */
export function scalableMinimums(disk: DiskSpec, filesystems: Array<{ device: string; type: string }>): Map<string, number> {
  const out = new Map<string, number>();
  for (const p of disk.partitions) {
    const fs = filesystems.find((f) => f.device === p.id);
    if (!fs || p.size === 'grow') continue;
    if (p.minSize !== undefined) out.set(p.id, parseSize(p.minSize));
    else if (fs.type === 'swap') out.set(p.id, SWAP_MINIMUM);
  }
  return out;
}
