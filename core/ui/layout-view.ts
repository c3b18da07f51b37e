/**
 * A disk layout (core/layout/model.ts) arranged for drawing, as the web interface shows
 * it: disks -> partitions -> RAID arrays / LVM volume groups -> filesystems. Each
 * partition gets a share of its disk's bar (percent of the disk, from the captured disk
 * size when the layout has it; a `grow` partition takes the rest, or, without a known
 * disk size, at least its minimum; none narrower than MIN_SHARE) and says what uses it: the
 * array or volume group it belongs to, or the filesystem on it.
 */
import { parseSize, type FilesystemSpec, type Layout } from '../layout/model.ts';

export interface UseOf {
  kind: 'raid' | 'lvm' | 'fs' | 'none';
  /** The array id, the volume group name, or the filesystem's type. */
  name: string;
  fs: FilesystemSpec | null;
}

export interface PartitionView {
  id: string;
  type: string;
  name: string | null;
  /** Bytes, when fixed or known from the captured disk; null for a grow of unknown size. */
  bytes: number | null;
  grow: boolean;
  minBytes: number | null;
  /** Position and width in percent of the disk's bar. */
  x: number;
  width: number;
  use: UseOf;
}

export interface DiskView {
  id: string;
  table: string;
  /** How the disk is found (its selector), as text. */
  match: string;
  /** The disk it was captured from: name, model, serial. */
  captured: string;
  sizeBytes: number | null;
  partitions: PartitionView[];
}

export interface LayoutView {
  disks: DiskView[];
  raids: Array<{ id: string; name: string | null; level: number; members: string[]; use: UseOf }>;
  volumeGroups: Array<{ name: string; pvs: string[]; lvs: Array<{ name: string; bytes: number | null; grow: boolean; use: UseOf }> }>;
  filesystems: FilesystemSpec[];
}

/** The narrowest a partition is drawn, in percent of its disk's bar. */
export const MIN_SHARE = 12;

function size(value: string | number | undefined): number | null {
  if (value === undefined || value === 'grow') return null;
  try {
    return parseSize(value);
  } catch {
    return null;
  }
}

export function layoutView(layout: Layout): LayoutView {
  const filesystems = layout.filesystems ?? [];
  const raids = layout.raids ?? [];
  const vgs = layout.volumeGroups ?? [];
  const fsOn = new Map(filesystems.map((f) => [f.device, f]));
  const useOf = (device: string): UseOf => {
    const raid = raids.find((r) => r.members.includes(device));
    if (raid) return { kind: 'raid', name: raid.id, fs: null };
    const vg = vgs.find((v) => v.pvs.includes(device));
    if (vg) return { kind: 'lvm', name: vg.name, fs: null };
    const fs = fsOn.get(device);
    return fs ? { kind: 'fs', name: fs.type, fs } : { kind: 'none', name: '', fs: null };
  };

  const disks = layout.disks.map((disk): DiskView => {
    const fixed = disk.partitions.reduce((sum, p) => sum + (size(p.size) ?? 0), 0);
    const sizeBytes = disk.captured?.size ?? null;
    const grows = disk.partitions.filter((p) => p.size === 'grow');
    const growBytes = (p: (typeof disk.partitions)[number]) => (sizeBytes !== null ? Math.max(0, sizeBytes - fixed) / grows.length : Math.max(size(p.minSize) ?? 0, fixed / 3 || 1));
    const barBytes = sizeBytes ?? fixed + grows.reduce((sum, p) => sum + growBytes(p), 0);
    // Drawn to scale, except that no partition is drawn narrower than MIN_SHARE percent
    // (a 512 MiB ESP on a 4 TB disk would be invisible), the rest shrinking to make room.
    const exact = disk.partitions.map((p) => (barBytes ? (100 * (p.size === 'grow' ? growBytes(p) : (size(p.size) ?? 0))) / barBytes : 100 / disk.partitions.length));
    const floor = Math.min(MIN_SHARE, 100 / Math.max(1, disk.partitions.length));
    const raised = exact.map((w) => Math.max(w, floor));
    const over = raised.reduce((a, b) => a + b, 0) - 100;
    const shrinkable = raised.reduce((sum, w) => sum + (w > floor ? w - floor : 0), 0);
    const widths = raised.map((w) => (over > 0 && shrinkable > 0 && w > floor ? w - (over * (w - floor)) / shrinkable : w));
    let x = 0;
    const partitions = disk.partitions.map((p, i): PartitionView => {
      const grow = p.size === 'grow';
      const width = widths[i];
      const view = { id: p.id, type: p.type, name: p.name ?? null, bytes: grow ? (sizeBytes !== null ? growBytes(p) : null) : size(p.size), grow, minBytes: size(p.minSize), x, width, use: useOf(p.id) };
      x += width;
      return view;
    });
    const m = disk.match ?? {};
    const match = Object.entries(m).map(([k, v]) => `${k}=${v}`).join(' ') || 'any disk';
    const c = disk.captured;
    const captured = c ? [c.name, c.model, c.serial].filter(Boolean).join(' ') : '';
    return { id: disk.id, table: disk.table, match, captured, sizeBytes, partitions };
  });

  return {
    disks,
    raids: raids.map((r) => ({ id: r.id, name: r.name ?? null, level: r.level, members: r.members, use: useOf(r.id) })),
    volumeGroups: vgs.map((v) => ({ name: v.name, pvs: v.pvs, lvs: v.lvs.map((lv) => ({ name: lv.name, bytes: size(lv.size), grow: lv.size === 'grow', use: useOf(`${v.name}/${lv.name}`) })) })),
    filesystems,
  };
}
