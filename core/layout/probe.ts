/**
 * Reads what a node's block devices are, from the standard tools: `lsblk -J -b -O` (the
 * device tree with sizes, types, filesystems, labels, UUIDs and mount points),
 * `sfdisk --json` (partition tables), `mdadm --detail --export` (arrays) and the LVM
 * JSON reports. Every command runs without a shell (argv only); a failure becomes a
 * ToolFailedError (core/tools.ts) carrying the tool's own message.
 */
import { haveTool, run, ToolFailedError, type CommandResult } from '../tools.ts';
import { readFile } from 'node:fs/promises';

export interface BlockNode {
  name: string;
  path: string;
  type: string;
  size: number;
  fstype: string | null;
  fsver: string | null;
  fsused: number | string | null;
  label: string | null;
  uuid: string | null;
  partuuid: string | null;
  parttype: string | null;
  partlabel: string | null;
  partflags: string | null;
  pttype: string | null;
  mountpoints: string[];
  model: string | null;
  serial: string | null;
  rota: boolean;
  tran: string | null;
  subsystems: string | null;
  ro: boolean;
  rm: boolean;
  'log-sec': number;
  children?: BlockNode[];
}

export { haveTool, run, ToolFailedError, type CommandResult };

/** The lsblk device tree of the given devices (all when none), with mount points as a plain list. */
export async function lsblk(devices: string[] = []): Promise<BlockNode[]> {
  const { stdout } = await run(['lsblk', '-J', '-b', '-O', ...devices]);
  const tidy = (node: BlockNode): BlockNode => {
    node.mountpoints = (node.mountpoints ?? []).filter((m): m is string => typeof m === 'string');
    node.children = (node.children ?? []).map(tidy);
    return node;
  };
  const nodes = (JSON.parse(stdout).blockdevices as BlockNode[]).map(tidy);
  // lsblk takes filesystem and partition-entry fields from udev's database; where udev
  // does not run (containers, early boot) they are empty, so probe the device itself.
  const probed = new Map<string, Promise<Record<string, string>>>();
  for (const node of walk(nodes)) {
    if (node.fstype || node.parttype || node.pttype || node.type === 'rom') continue;
    if (!probed.has(node.path)) probed.set(node.path, blkidProbe(node.path));
    const found = await probed.get(node.path)!;
    node.fstype ??= found.TYPE ?? null;
    node.label ??= found.LABEL ?? null;
    node.uuid ??= found.UUID ?? null;
    node.fsver ??= found.VERSION ?? null;
    node.pttype ??= found.PTTYPE ?? null;
    node.parttype ??= found.PART_ENTRY_TYPE ?? null;
    node.partlabel ??= found.PART_ENTRY_NAME ?? null;
    node.partuuid ??= found.PART_ENTRY_UUID ?? null;
  }
  return nodes;
}

/** `blkid -p -o export` of one device (low-level probe, no cache); {} when nothing is found. */
export async function blkidProbe(device: string): Promise<Record<string, string>> {
  return parseExport((await run(['blkid', '-p', '-o', 'export', device]).catch(() => ({ stdout: '' }))).stdout);
}

export function* walk(nodes: BlockNode[]): Generator<BlockNode> {
  for (const node of nodes) {
    yield node;
    yield* walk(node.children ?? []);
  }
}

export interface SfdiskPartition {
  node: string;
  start: number;
  size: number;
  type: string;
  uuid?: string;
  name?: string;
  attrs?: string;
  bootable?: boolean;
}

export interface SfdiskTable {
  label: 'gpt' | 'dos';
  device: string;
  sectorsize?: number;
  partitions: SfdiskPartition[];
}

/** The partition table of a disk, or null when it has none. */
export async function readPartitionTable(device: string): Promise<SfdiskTable | null> {
  try {
    const { stdout } = await run(['sfdisk', '--json', device]);
    return JSON.parse(stdout).partitiontable as SfdiskTable;
  } catch (err) {
    if (/does not contain a recognized partition table/.test((err as Error).message)) return null;
    throw err;
  }
}

/** KEY=VALUE lines (the `--export` output of blkid and mdadm) as an object. */
function parseExport(text: string): Record<string, string> {
  return Object.fromEntries(text.split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}

/** `mdadm --detail --export` as key/value pairs (MD_LEVEL, MD_METADATA, MD_NAME...). */
export async function mdadmDetail(device: string): Promise<Record<string, string>> {
  return parseExport((await run(['mdadm', '--detail', '--export', device])).stdout);
}

export interface LvmReport {
  pvs: Array<{ pv_name: string; vg_name: string }>;
  lvs: Array<{ lv_name: string; vg_name: string; lv_size: string; lv_path: string; lv_dm_path?: string }>;
  /** Free bytes per volume group. */
  vgFree: Record<string, number>;
}

/** PVs and LVs from the LVM JSON reports; empty where lvm2 is not installed. */
export async function lvmReport(): Promise<LvmReport> {
  if (!haveTool('lvs')) return { pvs: [], lvs: [], vgFree: {} };
  const pvs = JSON.parse((await run(['pvs', '--reportformat', 'json', '-o', 'pv_name,vg_name'])).stdout).report[0].pv;
  const lvs = JSON.parse((await run(['lvs', '--reportformat', 'json', '--units', 'b', '--nosuffix', '-o', 'lv_name,vg_name,lv_size,lv_path,lv_dm_path'])).stdout).report[0].lv;
  const vgs = JSON.parse((await run(['vgs', '--reportformat', 'json', '--units', 'b', '--nosuffix', '-o', 'vg_name,vg_free'])).stdout).report[0].vg as Array<{ vg_name: string; vg_free: string }>;
  return { pvs, lvs, vgFree: Object.fromEntries(vgs.map((vg) => [vg.vg_name, Number(vg.vg_free)])) };
}

/** Mount point -> the directory of its file system mounted there (mountinfo's root: "/@" for subvol=@, "/" for the whole). */
export async function mountinfoRoots(): Promise<Map<string, string>> {
  const text = await readFile('/proc/self/mountinfo', 'utf8').catch(() => '');
  const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    if (f.length > 4) out.set(unescape(f[4]), unescape(f[3]));
  }
  return out;
}

/** Devices in /proc/swaps (active swap). */
export async function activeSwaps(): Promise<string[]> {
  const text = await readFile('/proc/swaps', 'utf8').catch(() => '');
  return text.split('\n').slice(1).map((l) => l.split(/\s+/)[0]).filter(Boolean);
}

export interface NodeDisk {
  name: string;
  path: string;
  size: number;
  model: string | null;
  serial: string | null;
  rotational: boolean;
  transport: string;
  kind: 'disk' | 'loop';
  readOnly: boolean;
  removable: boolean;
  logicalSectorSize: number;
  /** Why the disk must not be touched now (a mounted filesystem, active swap, an active array or VG), or null. */
  inUse: string | null;
}

export function transportOf(node: BlockNode): string {
  if (node.type === 'loop') return 'loop';
  if (node.tran) return node.tran;
  if (node.subsystems?.includes('virtio')) return 'virtio';
  if (node.name.startsWith('nvme')) return 'nvme';
  if (node.name.startsWith('mmcblk')) return 'mmc';
  return 'scsi';
}

/** The whole disks of this node (and loop devices), with what makes each busy. */
export async function listNodeDisks(): Promise<NodeDisk[]> {
  const tree = await lsblk();
  const swaps = new Set(await activeSwaps());
  return tree
    .filter((n) => n.type === 'disk' || n.type === 'loop')
    .map((n) => ({
      name: n.name,
      path: n.path,
      size: n.size,
      model: n.model?.trim() || null,
      serial: n.serial?.trim() || null,
      rotational: n.rota,
      transport: transportOf(n),
      kind: n.type === 'loop' ? ('loop' as const) : ('disk' as const),
      readOnly: n.ro,
      removable: n.rm,
      logicalSectorSize: n['log-sec'] || 512,
      inUse: busyReason(n, swaps),
    }));
}

function busyReason(disk: BlockNode, swaps: Set<string>): string | null {
  for (const node of walk([disk])) {
    if (node.mountpoints.length) return `${node.path} is mounted at ${node.mountpoints[0]}`;
    if (swaps.has(node.path)) return `${node.path} is active swap`;
    if (node !== disk && (node.type.startsWith('raid') || node.type === 'lvm' || node.type === 'crypt')) return `${node.path} (${node.type}) is active on it`;
  }
  return null;
}

/** Waits until udev has processed its queue (a no-op where udev does not run). */
export async function settle(): Promise<void> {
  if (haveTool('udevadm')) await run(['udevadm', 'settle', '--timeout=30']).catch(() => {});
}
