/**
 * Sync check: does a node's disks already carry a layout? A re-deploy that finds the same
 * partitioning, arrays, volume groups and filesystems keeps them and copies only what
 * changed in the tree, instead of wiping and reformatting.
 *
 * Algorithm: match the layout's disks to the node's (as apply does, but busy disks are
 * fine: a check writes nothing); read each disk's partition table and compare table type,
 * partition count, numbers, types, names, exact starts and sizes (fixed sizes within 1 MiB,
 * or between the minimum and the size where the layout allows scaling; "grow" at least its
 * minimum); a whole-disk filesystem's disk has no table; then the md arrays (level, member count), the LVs (present; fixed sizes within
 * one 4 MiB extent) and the filesystems (type and label, by lsblk; a btrfs's subvolumes
 * through a read-only mount of its top level). Every difference is a
 * line of the report; none means in sync. The devices found are returned so the caller
 * can mount them (mountSteps) and write fstab from their UUIDs.
 */
import { existsSync, lstatSync } from 'node:fs';
import { mkdtemp, rmdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { MIB, formatSize, parseSize, partitionTypeCode, type Layout } from './model.ts';
import { matchDisks, type MatchOptions } from './apply.ts';
import { isExtended, partitionNumbers } from './partitions.ts';
import { lsblk, lvmReport, mdadmDetail, readPartitionTable, run, walk } from './probe.ts';

export interface SyncReport {
  inSync: boolean;
  differences: string[];
  /** Layout id -> device path, for what was found. */
  devices: Record<string, string>;
  /** Layout device id -> the UUID of the filesystem found on it. */
  uuids: Record<string, string>;
}

/** The subvolume paths a btrfs lacks, seen through a read-only mount of its top level (a check writes nothing). */
async function missingSubvolumes(device: string, paths: string[]): Promise<string[]> {
  const top = await mkdtemp(path.join(tmpdir(), 'cloner-check-'));
  try {
    await run(['mount', '-t', 'btrfs', '-o', 'ro,subvolid=5', device, top]);
  } catch {
    await rmdir(top).catch(() => {});
    return paths;
  }
  try {
    // Every subvolume's top directory is inode 256 (BTRFS_FIRST_FREE_OBJECTID); a plain directory is not.
    return paths.filter((p) => {
      try {
        return lstatSync(path.join(top, p)).ino !== 256;
      } catch {
        return true;
      }
    });
  } finally {
    await run(['umount', top]).catch(() => {});
    await rmdir(top).catch(() => {});
  }
}

export async function checkLayoutSync(layout: Layout, options: MatchOptions = {}): Promise<SyncReport> {
  const differences: string[] = [];
  const devices: Record<string, string> = {};
  const uuids: Record<string, string> = {};
  let assignment;
  try {
    assignment = await matchDisks(layout, options);
  } catch (err) {
    return { inSync: false, differences: [(err as Error).message], devices, uuids };
  }
  for (const disk of layout.disks) {
    const node = assignment.get(disk.id)!;
    const table = await readPartitionTable(node.path);
    if (disk.table === 'none') {
      devices[disk.id] = node.path;
      if (table) differences.push(`${disk.id} (${node.path}): a ${table.label} partition table, the layout has a filesystem on the whole disk`);
      continue;
    }
    if (!table) {
      differences.push(`${disk.id} (${node.path}): no partition table`);
      continue;
    }
    if (table.label !== disk.table) differences.push(`${disk.id} (${node.path}): a ${table.label} table, the layout has ${disk.table}`);
    if (table.partitions.length !== disk.partitions.length) {
      differences.push(`${disk.id} (${node.path}): ${table.partitions.length} partitions, the layout has ${disk.partitions.length}`);
      continue;
    }
    const sector = table.sectorsize ?? 512;
    const numbers = partitionNumbers(disk);
    const byNumber = new Map(table.partitions.map((p) => [Number(/(\d+)$/.exec(p.node)?.[1]), p]));
    disk.partitions.forEach((spec, i) => {
      const found = byNumber.get(numbers[i]);
      if (!found) {
        differences.push(`${disk.id} partition ${numbers[i]} (${spec.id}) is missing`);
        return;
      }
      devices[spec.id] = found.node;
      const at = `${disk.id} partition ${numbers[i]} (${found.node})`;
      const code = partitionTypeCode(disk.table, spec.type).toUpperCase();
      if (found.type.toUpperCase() !== code && !(isExtended(spec) && isExtended({ type: found.type }))) differences.push(`${at}: type ${found.type}, the layout has ${spec.type}`);
      if ((spec.name ?? '') !== (found.name ?? '') && disk.table === 'gpt') differences.push(`${at}: name "${found.name ?? ''}", the layout has "${spec.name ?? ''}"`);
      if (spec.start !== undefined && found.start * sector !== spec.start) differences.push(`${at}: starts at byte ${found.start * sector}, the layout has ${spec.start}`);
      if (isExtended(spec)) return;
      const bytes = found.size * sector;
      // A fixed partition scaled down for a smaller disk (down to its minimum) is still in sync.
      const min = parseSize(spec.minSize ?? (spec.size === 'grow' ? MIB : spec.size));
      if (spec.size === 'grow' || spec.minSize !== undefined) {
        if (bytes < min - MIB) differences.push(`${at}: ${formatSize(bytes)}, under the layout's minimum ${formatSize(min)}`);
        if (spec.size !== 'grow' && bytes >= parseSize(spec.size) + MIB) differences.push(`${at}: ${formatSize(bytes)}, the layout has ${formatSize(parseSize(spec.size))}`);
      } else if (Math.abs(bytes - parseSize(spec.size)) >= MIB) {
        differences.push(`${at}: ${formatSize(bytes)}, the layout has ${formatSize(parseSize(spec.size))}`);
      }
    });
  }
  for (const raid of layout.raids ?? []) {
    const device = `/dev/md/${raid.name ?? raid.id}`;
    devices[raid.id] = device;
    if (!existsSync(device)) {
      differences.push(`RAID ${raid.id}: ${device} is not assembled`);
      continue;
    }
    const detail = await mdadmDetail(device).catch(() => ({}) as Record<string, string>);
    if (detail.MD_LEVEL !== `raid${raid.level}`) differences.push(`RAID ${raid.id}: level ${detail.MD_LEVEL ?? 'unknown'}, the layout has raid${raid.level}`);
    if (Number(detail.MD_DEVICES) !== raid.members.length) differences.push(`RAID ${raid.id}: ${detail.MD_DEVICES ?? '?'} devices, the layout has ${raid.members.length}`);
  }
  if ((layout.volumeGroups ?? []).length) {
    const lvm = await lvmReport();
    for (const vg of layout.volumeGroups ?? []) {
      for (const lv of vg.lvs) {
        const found = lvm.lvs.find((l) => l.vg_name === vg.name && l.lv_name === lv.name);
        const id = `${vg.name}/${lv.name}`;
        if (!found) {
          differences.push(`logical volume ${id} is missing`);
          continue;
        }
        devices[id] = found.lv_path;
        if (lv.size !== 'grow' && Math.abs(Number(found.lv_size) - parseSize(lv.size)) >= 4 * MIB) differences.push(`logical volume ${id}: ${formatSize(Number(found.lv_size))}, the layout has ${formatSize(parseSize(lv.size))}`);
      }
    }
  }
  const present = Object.values(devices).filter((d) => existsSync(d));
  const nodes = present.length ? [...walk(await lsblk(present))] : [];
  for (const fs of layout.filesystems ?? []) {
    const device = devices[fs.device];
    if (!device) continue; // its disk, array or VG already differs
    const node = device ? nodes.find((n) => n.path === device || `/dev/${n.name}` === device) ?? (await lsblk([device]).catch(() => []))[0] : undefined;
    if (!node) {
      differences.push(`filesystem on ${fs.device}: the device is missing`);
      continue;
    }
    if (node.fstype !== fs.type) differences.push(`filesystem on ${fs.device} (${device}): ${node.fstype ?? 'none'}, the layout has ${fs.type}`);
    else if (fs.label !== undefined && node.label !== fs.label) differences.push(`filesystem on ${fs.device} (${device}): label "${node.label ?? ''}", the layout has "${fs.label}"`);
    if (node.uuid) uuids[fs.device] = node.uuid;
    if (node.fstype === 'btrfs' && fs.subvolumes?.length) differences.push(...(await missingSubvolumes(device, fs.subvolumes.map((sv) => sv.path))).map((p) => `filesystem on ${fs.device} (${device}): no subvolume ${p}`));
  }
  return { inSync: differences.length === 0, differences, devices, uuids };
}
