/**
 * Captures the disk layout of a running (golden) node, or of disks mounted under a
 * directory, into a layout document.
 *
 * Algorithm: from the lsblk tree, take every block filesystem mounted at or under `root`
 * (and, when root is "/", the active swap) and walk up through LVs, md arrays and
 * partitions to the whole disks that back it; leave out `excludeDevices`. Each of those
 * disks is described whole: its partition table (sfdisk --json: type GUIDs, names, GPT
 * attributes, boot flags, sizes; a last partition that reaches the end of the disk
 * becomes "grow" with a minimum that still holds its data), the md arrays built on its
 * partitions (mdadm --detail), the volume groups on those (LVM reports; a last LV that
 * fills its VG becomes "grow"), and every filesystem found with its label, UUID, mount
 * point (relative to root) and the mount options of root's /etc/fstab; a btrfs mounted by
 * subvolume (mountinfo's root, e.g. subvol=@ at /) lists those subvolumes with theirs.
 */
import { realpath, readFile } from 'node:fs/promises';
import path from 'node:path';
import {
  FILESYSTEM_TYPES, FS_MINIMUM, LAYOUT_FORMAT, LayoutError, MIB, PARTITION_TYPES, compactSize, parseLayout,
  type DiskSpec, type FilesystemSpec, type FilesystemType, type Layout, type PartitionSpec, type RaidSpec, type VolumeGroupSpec,
} from './model.ts';
import { isExtended } from './partitions.ts';
import { activeSwaps, lsblk, mountinfoRoots, lvmReport, mdadmDetail, readPartitionTable, transportOf, walk, type BlockNode, type SfdiskTable } from './probe.ts';

export interface CaptureLayoutOptions {
  /** The tree being cloned: "/" on a golden node, or where its disks are mounted. */
  root?: string;
  /** Disks to leave out (sdb, /dev/sdb). */
  excludeDevices?: string[];
}

export interface CapturedLayout {
  layout: Layout;
  /** The disks it describes (/dev/...), in layout order. */
  disks: string[];
  warnings: string[];
}


export class LayoutCaptureError extends LayoutError {
  override readonly code = 'LAYOUT_CAPTURE_FAILED';
}

export async function captureLayout(options: CaptureLayoutOptions = {}): Promise<CapturedLayout> {
  const root = await realpath(options.root ?? '/');
  const warnings: string[] = [];
  const tree = await lsblk();
  const parents = new Map<string, Set<BlockNode>>();
  const byName = new Map<string, BlockNode>();
  const link = (nodes: BlockNode[], parent: BlockNode | null) => {
    for (const node of nodes) {
      byName.set(node.name, node);
      if (parent) (parents.get(node.name) ?? parents.set(node.name, new Set()).get(node.name)!).add(parent);
      link(node.children ?? [], node);
    }
  };
  link(tree, null);
  const relMount = (mount: string): string | null => {
    if (root === '/') return mount;
    if (mount === root) return '/';
    return mount.startsWith(`${root}/`) ? mount.slice(root.length) : null;
  };
  const swaps = new Set(root === '/' ? await activeSwaps() : []);
  const cloned = [...walk(tree)].filter((n) => n.mountpoints.some((m) => relMount(m) !== null) || swaps.has(n.path));
  if (!cloned.some((n) => n.mountpoints.some((m) => relMount(m) === '/'))) {
    throw new LayoutCaptureError(`no block-device filesystem is mounted at ${root}`, 'mount the golden disks under the root given (or capture a running node with root /)');
  }
  const disksOf = (node: BlockNode, into = new Set<string>()): Set<string> => {
    if (node.type === 'disk' || node.type === 'loop') into.add(node.name);
    for (const parent of parents.get(node.name) ?? []) disksOf(parent, into);
    return into;
  };
  const excluded = new Set((options.excludeDevices ?? []).map((d) => path.basename(d)));
  const diskNames = new Set<string>();
  for (const node of cloned) {
    const backing = [...disksOf(node)];
    const out = backing.filter((d) => excluded.has(d));
    if (out.length && out.length < backing.length) {
      throw new LayoutCaptureError(`${node.path} spans excluded and included disks (${backing.join(', ')})`, 'exclude all of its disks or none');
    }
    if (out.length) {
      if (node.mountpoints.some((m) => relMount(m) === '/')) throw new LayoutCaptureError(`the root filesystem ${node.path} is on an excluded disk (${out.join(', ')})`, 'do not exclude the disk that holds /');
      warnings.push(`${node.path} (${node.mountpoints.join(', ') || 'swap'}) is on an excluded disk and is left out`);
      continue;
    }
    for (const d of backing) diskNames.add(d);
  }
  const fstab = await readFstab(path.join(root, 'etc/fstab'));
  const lvm = await lvmReport();
  const mountRoots = await mountinfoRoots();
  const ids = new Map<string, string>(); // kernel name -> layout id
  const disks: DiskSpec[] = [];
  const sortedDisks = [...diskNames].sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  for (const [i, name] of sortedDisks.entries()) {
    const node = byName.get(name)!;
    const diskId = `disk${i}`;
    const table = await readPartitionTable(node.path);
    const captured = { name: node.name, model: node.model?.trim() || null, serial: node.serial?.trim() || null, size: node.size };
    const match = { transport: transportOf(node), rotational: node.rota };
    if (!table) {
      if (!node.fstype || !FILESYSTEM_TYPES.includes(node.fstype as FilesystemType)) {
        throw new LayoutCaptureError(`${node.path} has no partition table and ${node.fstype ? `holds ${node.fstype} on the whole disk` : 'no filesystem Cloner makes'}`, 'Cloner captures partitioned disks and whole-disk ext2/3/4, xfs, btrfs, vfat and swap; --exclude-devices it');
      }
      ids.set(node.name, diskId);
      disks.push({ id: diskId, match, table: 'none', partitions: [], captured });
      continue;
    }
    disks.push({ id: diskId, match, table: table.label, partitions: describePartitions(table, node, diskId, ids), captured });
  }
  const onCapturedDisks = (node: BlockNode) => [...disksOf(node)].every((d) => diskNames.has(d)) && disksOf(node).size > 0;
  const raids: RaidSpec[] = [];
  for (const node of walk(tree)) {
    if (!node.type.startsWith('raid') || ids.has(node.name) || !onCapturedDisks(node)) continue;
    const detail = await mdadmDetail(node.path);
    const level = Number((detail.MD_LEVEL ?? '').replace('raid', ''));
    const name = (detail.MD_NAME ?? node.name).split(':').pop()!.replace(/[^A-Za-z0-9_-]/g, '') || node.name;
    const id = uniqueId(`md-${name}`, ids);
    ids.set(node.name, id);
    const members = [...(parents.get(node.name) ?? [])].map((p) => ids.get(p.name)).filter((m): m is string => !!m).sort();
    const metadata = detail.MD_METADATA as RaidSpec['metadata'];
    raids.push({ id, name, level: level as RaidSpec['level'], members, ...(metadata ? { metadata } : {}) });
  }
  const volumeGroups: VolumeGroupSpec[] = [];
  const pvPaths = new Map<string, string>(); // realpath of a PV -> layout id
  for (const node of walk(tree)) {
    const id = ids.get(node.name);
    if (id && node.fstype === 'LVM2_member') pvPaths.set(await realpath(node.path), id);
  }
  const vgNames = [...new Set(lvm.pvs.map((pv) => pv.vg_name).filter(Boolean))];
  for (const vg of vgNames) {
    const pvIds = await Promise.all(lvm.pvs.filter((pv) => pv.vg_name === vg).map(async (pv) => pvPaths.get(await realpath(pv.pv_name).catch(() => pv.pv_name))));
    if (pvIds.every((p) => !p)) continue;
    if (pvIds.some((p) => !p)) throw new LayoutCaptureError(`volume group ${vg} has physical volumes outside the captured disks`, 'exclude none of its disks');
    const lvs = lvm.lvs.filter((lv) => lv.vg_name === vg);
    const vgFree = lvm.vgFree[vg] ?? 0;
    volumeGroups.push({
      name: vg,
      pvs: pvIds as string[],
      lvs: lvs.map((lv, i) => ({ name: lv.lv_name, size: i === lvs.length - 1 && vgFree < 16 * MIB ? 'grow' : compactSize(Number(lv.lv_size)) })),
    });
    for (const node of walk(tree)) {
      const lv = lvs.find((l) => l.lv_dm_path === node.path || l.lv_path === node.path);
      if (lv && node.type === 'lvm') ids.set(node.name, `${vg}/${lv.lv_name}`);
    }
  }
  const filesystems: FilesystemSpec[] = [];
  const seen = new Set<string>();
  for (const node of walk(tree)) {
    const id = ids.get(node.name);
    if (!id || seen.has(id) || !node.fstype || !FILESYSTEM_TYPES.includes(node.fstype as FilesystemType)) continue;
    seen.add(id);
    const fs: FilesystemSpec = { device: id, type: node.fstype as FilesystemType };
    if (node.label) fs.label = node.label;
    if (node.uuid) fs.uuid = node.uuid;
    if (node.fstype === 'vfat' && node.fsver === 'FAT32') fs.mkfsOptions = ['-F', '32'];
    // A btrfs mounted by subvolume (subvol=@ at /, @home at /home) lists them; its top level keeps "mount".
    const mounted = node.mountpoints.map((m) => ({ rel: relMount(m), subvol: node.fstype === 'btrfs' ? (mountRoots.get(m) ?? '/').replace(/^\/+/, '') : '' })).filter((m): m is { rel: string; subvol: string } => m.rel !== null);
    const subvolumes = mounted.filter((m) => m.subvol).sort((a, b) => a.rel.split('/').length - b.rel.split('/').length || a.rel.localeCompare(b.rel));
    if (subvolumes.length) {
      fs.subvolumes = subvolumes.map((m) => {
        const options = withoutSubvol(fstab.find((e) => e.mount === m.rel)?.options ?? '');
        return { path: m.subvol, mount: m.rel, ...(options ? { mountOptions: options } : {}) };
      });
    }
    const mount = mounted.find((m) => !m.subvol)?.rel;
    if (mount && node.fstype !== 'swap') {
      fs.mount = mount;
      const entry = fstab.find((e) => e.mount === mount) ?? (subvolumes.length ? undefined : fstab.find((e) => e.spec === `UUID=${node.uuid}` || (node.label && e.spec === `LABEL=${node.label}`)));
      const options = withoutSubvol(entry?.options ?? '');
      if (options) fs.mountOptions = options;
      if (entry) {
        fs.dump = entry.dump === 1 ? 1 : 0;
        fs.pass = ([0, 1, 2] as const).find((p) => p === entry.pass) ?? 0;
      }
    }
    filesystems.push(fs);
  }
  const layout: Layout = { format: LAYOUT_FORMAT, disks, raids, volumeGroups, filesystems };
  return { layout: parseLayout(layout), disks: sortedDisks.map((n) => byName.get(n)!.path), warnings };
}

/**
 * A partition table as layout partitions, in disk order: exact starts where the default
 * placement (partitions.ts) would put them elsewhere, numbers where they are not the
 * default, logical partitions marked, the last partition of each level that reaches the end
 * of its space as "grow", and a minimum on each filesystem's partition (the data it holds)
 * so a smaller disk can take a scaled copy.
 */
function describePartitions(table: SfdiskTable, node: BlockNode, diskId: string, ids: Map<string, string>): PartitionSpec[] {
  const sector = table.sectorsize ?? 512;
  const align = MIB / sector;
  const up = (s: number) => Math.ceil(s / align) * align;
  const totalSectors = node.size / sector;
  const endUsable = table.label === 'gpt' ? totalSectors - 33 : totalSectors;
  const partNodes = new Map((node.children ?? []).filter((c) => c.type === 'part').map((c) => [c.path, c]));
  const parts = [...table.partitions].map((p) => ({ ...p, number: Number(/(\d+)$/.exec(p.node)?.[1] ?? 0) })).sort((a, b) => a.start - b.start);
  // Logical partitions go right after their extended partition, in number order (their chain order).
  const isLogical = (p: { number: number }) => table.label === 'dos' && p.number >= 5;
  const top = parts.filter((p) => !isLogical(p));
  const logicals = parts.filter(isLogical).sort((a, b) => a.number - b.number);
  const extIndex = top.findIndex((p) => isExtended({ type: typeName('dos', p.type) }));
  const ordered = extIndex < 0 ? top : [...top.slice(0, extIndex + 1), ...logicals, ...top.slice(extIndex + 1)];
  const ext = extIndex < 0 ? null : top[extIndex];
  let cursor = 0;
  let logicalCursor = 0;
  let previousNumber = 0;
  return ordered.map((p, n) => {
    const child = partNodes.get(p.node);
    const partId = `${diskId}p${p.number || n + 1}`;
    if (child) ids.set(child.name, partId);
    const logical = isLogical(p);
    const spec: PartitionSpec = { id: partId, size: compactSize(p.size * sector), type: typeName(table.label, p.type) };
    if (logical) spec.logical = true;
    else if (p.number !== previousNumber + 1) spec.number = p.number;
    if (!logical) previousNumber = p.number;
    const expectedStart = logical ? up(logicalCursor + 1) : up(Math.max(cursor, align));
    if (p.start !== expectedStart) spec.start = p.start * sector;
    const sameLevel = ordered.slice(n + 1).filter((q) => isLogical(q) === logical);
    const spaceEnd = logical ? ext!.start + ext!.size : endUsable;
    if (!sameLevel.length && p.start + p.size >= spaceEnd - align) {
      spec.size = 'grow';
      spec.minSize = compactSize(isExtended(spec) ? MIB : growMinimum(child, p.size * sector));
      if (isExtended(spec)) delete spec.minSize;
    } else if (child?.fstype && FILESYSTEM_TYPES.includes(child.fstype as FilesystemType)) {
      const min = growMinimum(child, p.size * sector);
      if (min < p.size * sector) spec.minSize = compactSize(min);
    }
    if (p.name) spec.name = p.name;
    if (p.attrs) spec.flags = p.attrs.split(/\s+/).filter(Boolean);
    if (p.bootable) spec.bootable = true;
    if (logical) logicalCursor = p.start + p.size;
    else cursor = p.start + p.size;
    if (p === ext) logicalCursor = p.start;
    return spec;
  });
}

/** Mount options as a layout keeps them: not "defaults", not subvol=/subvolid= (the layout says which subvolume), only portable characters. */
function withoutSubvol(options: string): string {
  const kept = options.split(',').filter((o) => o && o !== 'defaults' && !/^subvol(id)?=/.test(o)).join(',');
  return /^[A-Za-z0-9=,._:+-]+$/.test(kept) ? kept : '';
}

function typeName(table: 'gpt' | 'dos', code: string): string {
  for (const [name, t] of Object.entries(PARTITION_TYPES)) {
    if (table === 'gpt' ? t.gpt !== '' && t.gpt.toUpperCase() === code.toUpperCase() : t.dos !== '' && t.dos === code.toLowerCase()) return name;
  }
  return table === 'gpt' ? code.toUpperCase() : code.toLowerCase();
}

/** A grow partition's minimum: room for its data and a quarter more, never below what mkfs accepts. */
function growMinimum(node: BlockNode | undefined, size: number): number {
  const used = Number(node?.fsused ?? 0);
  const floor = FS_MINIMUM[(node?.fstype ?? '') as FilesystemType] ?? 16 * MIB;
  const want = Math.max(floor, Math.ceil((used * 1.25) / MIB) * MIB);
  return Math.min(want, Math.floor(size / MIB) * MIB);
}

function uniqueId(base: string, ids: Map<string, string>): string {
  const taken = new Set(ids.values());
  let id = base.replace(/^[^A-Za-z]+/, 'x').slice(0, 28);
  for (let n = 2; taken.has(id); n++) id = `${base.slice(0, 28)}-${n}`;
  return id;
}

interface FstabEntry {
  spec: string;
  mount: string;
  type: string;
  options: string;
  dump: number;
  pass: number;
}

async function readFstab(file: string): Promise<FstabEntry[]> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text
    .split('\n')
    .map((l) => l.replace(/#.*/, '').trim())
    .filter(Boolean)
    .map((l) => l.split(/\s+/))
    .filter((f) => f.length >= 3)
    .map(([spec, mount, type, options = 'defaults', dump = '0', pass = '0']) => ({ spec, mount, type, options, dump: Number(dump), pass: Number(pass) }));
}
