/**
 * Partition-table rules shared by the layout check, capture, apply and the sync check.
 *
 * A disk's `partitions` are listed in disk order. On a dos table at most four are primary;
 * one of them may be an extended partition (type "extended", 5, f or 85) and the logical
 * partitions (`logical: true`) follow it in the list, inside it, numbered 5, 6, 7... in
 * order. Partition numbers default to one more than the previous primary's (1 for the
 * first), so a layout names a number only where the golden disk had a gap or another order.
 *
 * Placement: a partition with a `start` sits exactly there (byte offset; the golden disk's
 * sector 63 or a start right after an odd-sized neighbour is kept as it was); one without
 * starts at the next 1 MiB boundary after the one before it (a logical one leaves room for
 * its extended boot record first). Sizes are exact (rounded up to whole sectors). Alignment
 * is the rule for new space only: nothing is refused for being unaligned, only for
 * overlapping, leaving the extended partition or the disk.
 */
import { MIB, parseSize, type DiskSpec, type PartitionSpec } from './model.ts';

export const EXTENDED_TYPES = new Set(['extended', '5', '05', 'f', '0f', '85', '0x5', '0x05', '0xf', '0x0f', '0x85']);

export function isExtended(part: Pick<PartitionSpec, 'type'>): boolean {
  return EXTENDED_TYPES.has(part.type.toLowerCase());
}

/** The partition number of each partition of a disk, in list order. */
export function partitionNumbers(disk: Pick<DiskSpec, 'partitions'>): number[] {
  let primary = 0;
  let logical = 4;
  return disk.partitions.map((p) => {
    if (p.logical) return p.number ?? ++logical;
    primary = p.number ?? primary + 1;
    return primary;
  });
}

/** The first sector a partition may use: after the MBR, or after the GPT header and entries. */
export function firstUsableByte(table: DiskSpec['table']): number {
  return table === 'gpt' ? 34 * 512 : 512;
}

type Fail = (at: string, message: string) => never;

/**
 * Checks one disk's partitions: counts, the extended/logical structure, numbers, "grow"
 * rules and exact placement (no overlap, nothing outside its extended partition).
 */
export function checkPartitions(disk: DiskSpec, at: string, fail: Fail): void {
  const parts = disk.partitions;
  if (disk.table === 'none') {
    if (parts.length) fail(`${at}.partitions`, 'a disk with table "none" holds one filesystem on the whole disk and no partitions');
    return;
  }
  const primaries = parts.filter((p) => !p.logical);
  const extended = parts.filter(isExtended);
  if (disk.table === 'dos') {
    if (primaries.length > 4) fail(`${at}.partitions`, `a dos table holds 4 primary partitions, this disk has ${primaries.length} (put the others in an extended partition as logical ones)`);
    if (extended.length > 1) fail(`${at}.partitions`, `a dos table holds one extended partition, this disk has ${extended.length}`);
  }
  const numbers = partitionNumbers(disk);
  const seen = new Map<number, number>();
  let extIndex = -1;
  let cursor = firstUsableByte(disk.table); // byte after the previous top-level partition
  let extStart = 0;
  let extEnd = Infinity;
  let logicalCursor = 0;
  const grows = { top: 0, logical: 0 };
  parts.forEach((part, p) => {
    const pat = `${at}.partitions[${p}]`;
    const n = numbers[p];
    if (disk.table === 'gpt' && (part.logical || isExtended(part))) fail(`${pat}`, 'extended and logical partitions exist only on dos tables');
    if (seen.has(n)) fail(`${pat}.number`, `partition number ${n} is also used by partitions[${seen.get(n)}]`);
    seen.set(n, p);
    const max = disk.table === 'gpt' ? 128 : part.logical ? 4 + parts.filter((q) => q.logical).length : 4;
    if (part.logical) {
      if (extIndex < 0) fail(`${pat}.logical`, 'a logical partition must follow an extended partition in the list');
      if (p !== extIndex + 1 && !parts[p - 1].logical) fail(`${pat}.logical`, 'logical partitions follow their extended partition directly, in disk order');
      const expected = 5 + parts.slice(0, p).filter((q) => q.logical).length;
      if (n !== expected) fail(`${pat}.number`, `logical partitions are numbered 5, 6, 7... in disk order; this one is number ${expected}`);
    } else if (n < 1 || n > max) {
      fail(`${pat}.number`, `a ${disk.table} ${disk.table === 'dos' ? 'primary ' : ''}partition number is 1 to ${max}, not ${n}`);
    }
    if (part.size === 'grow') grows[part.logical ? 'logical' : 'top']++;
    if (part.minSize !== undefined && part.size !== 'grow' && parseSize(part.minSize) > parseSize(part.size)) fail(`${pat}.minSize`, 'the minimum is larger than the size');
    const size = part.size === 'grow' ? parseSize(part.minSize ?? MIB) : Math.ceil(parseSize(part.size) / 512) * 512;
    if (part.start !== undefined && part.start % 512 !== 0) fail(`${pat}.start`, 'a start must be a multiple of 512 bytes (a sector)');
    const later = parts.slice(p + 1).filter((q) => !!q.logical === !!part.logical);
    if (part.size === 'grow' && later.some((q) => q.start !== undefined)) fail(`${pat}.size`, 'a "grow" partition cannot be followed by a partition with a fixed start');
    if (part.logical) {
      const start = part.start ?? alignUp(logicalCursor + 512);
      if (start <= logicalCursor) fail(`${pat}.start`, `logical partition overlaps the one before it or its boot record (starts at ${start}, the space before it ends at ${logicalCursor})`);
      if (start + size > extEnd) fail(`${pat}`, `logical partition ends at ${start + size}, beyond its extended partition (ends at ${extEnd})`);
      logicalCursor = start + size;
      return;
    }
    const start = part.start ?? alignUp(cursor);
    if (start < cursor) fail(`${pat}.start`, `partition overlaps the one before it (starts at ${start}, the previous one ends at ${cursor})`);
    cursor = start + size;
    if (isExtended(part)) {
      extIndex = p;
      extStart = start;
      extEnd = part.size === 'grow' ? Infinity : start + size;
      logicalCursor = extStart;
      if (part.size === 'grow') cursor = start + parts.filter((q) => q.logical).reduce((s, q) => s + MIB + (q.size === 'grow' ? parseSize(q.minSize ?? MIB) : parseSize(q.size)), 0);
    }
  });
  if (grows.top > 1) fail(`${at}.partitions`, `only one partition per disk may "grow", this disk has ${grows.top}`);
  if (grows.logical > 1) fail(`${at}.partitions`, `only one logical partition may "grow", this disk has ${grows.logical}`);
}

export function alignUp(bytes: number): number {
  return Math.ceil(bytes / MIB) * MIB;
}

/** Bytes the partitions of a disk need at their smallest (grow at its minimum), with the table areas. */
export function fixedBytes(disk: DiskSpec): number {
  let end = MIB;
  let logicalEnd = 0;
  for (const part of disk.partitions) {
    const size = part.size === 'grow' ? parseSize(part.minSize ?? MIB) : parseSize(part.size);
    if (part.logical) {
      logicalEnd = (part.start ?? alignUp(logicalEnd + 512)) + size;
      end = Math.max(end, logicalEnd);
      continue;
    }
    const start = part.start ?? alignUp(end);
    end = start + size;
    if (isExtended(part)) {
      logicalEnd = start;
      if (part.size === 'grow') end = start;
    }
  }
  return end + (disk.table === 'gpt' ? MIB : 0);
}
