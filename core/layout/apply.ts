/**
 * Applies a layout to the disks of the node being imaged.
 *
 * Algorithm:
 * 1. Match: each layout disk, in order, takes the first free disk of the node (natural
 *    name order) that fits its selector; only `devices` may be candidates when given
 *    (which also admits loop devices), `exclude` never. A disk that is mounted or busy,
 *    read-only, excluded or unmatched stops everything before anything is written.
 * 2. Size (place.ts): partitions keep the layout's exact starts and sizes, new space is
 *    on 1 MiB boundaries, the "grow" partition takes the rest; on a smaller disk the
 *    partitions that hold a filesystem shrink towards their minimum (the plan's notes say
 *    which); a disk that cannot hold every partition at its minimum is refused with figures.
 * 3. Plan: wipefs, sfdisk (a script on stdin with each partition's number, --wipe-partitions
 *    so no stale RAID/LVM signature survives), partx -u and -a (the kernel learns the new
 *    partitions, logical ones too, where nothing rescans, as on loop devices and in the
 *    boot environment without udev), mdadm --create, pvcreate/vgcreate/
 *    lvcreate, mkfs with a UUID chosen here (so the plan, a dry run and fstab all know
 *    it), then mkdir + mount under the target in mount-point order.
 * 4. Run the plan step by step (or print it for a dry run), and report the new fstab, the
 *    EFI system partition and the root filesystem for the bootloader step.
 * Outside the cloner boot environment (kernel command line with `cloner.server=`) it
 * refuses to run without `force`.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  ESP_GUID, LayoutError, MIB, formatSize, parseSize, partitionTypeCode,
  type DiskSpec, type FilesystemSpec, type Layout,
} from './model.ts';
import { globMatch } from './glob.ts';
import { partitionNumbers } from './partitions.ts';
import { LayoutTooSmallError, placePartitions, scalableMinimums, type Placed } from './place.ts';

export { LayoutTooSmallError };
import { listNodeDisks, run, type NodeDisk } from './probe.ts';
import { runSteps, type Step } from './steps.ts';

export { formatPlan, LayoutApplyError, runSteps, type Step } from './steps.ts';

export class LayoutUnmatchedError extends LayoutError {
  override readonly code = 'LAYOUT_DISK_UNMATCHED';
}
export class DiskInUseError extends LayoutError {
  override readonly code = 'LAYOUT_DISK_IN_USE';
}
export class LayoutNeedsForceError extends LayoutError {
  override readonly code = 'LAYOUT_NEEDS_FORCE';
}

export interface MatchOptions {
  /** Only these disks may be used (paths or names); admits loop devices. */
  devices?: string[];
  /** These disks are never used. */
  exclude?: string[];
  /** The node's disks; read with lsblk when not given. */
  nodeDisks?: NodeDisk[];
}

export interface ApplyOptions extends MatchOptions {
  /** Where to mount the filesystems; nothing is mounted when absent. */
  target?: string;
  dryRun?: boolean;
  force?: boolean;
  log?: (line: string) => void;
}

export interface PlannedFilesystem extends FilesystemSpec {
  path: string;
  uuid: string;
}

export interface ApplyPlan {
  disks: Array<{ id: string; device: string; size: number }>;
  /** What was scaled or moved to fit smaller disks. */
  notes: string[];
  /** Layout id (partition, array, VG/LV) -> device path. */
  devices: Record<string, string>;
  filesystems: PlannedFilesystem[];
  steps: Step[];
  /** Absolute mount points under the target, in mount order. */
  mounts: Array<{ path: string; device: string; type: string }>;
  fstab: string;
  espDevice: string | null;
  rootDevice: string | null;
}

/** True inside the cloner boot environment (its kernel command line names the server). */
export function isClonerBootEnvironment(): boolean {
  const cmdline = existsSync('/proc/cmdline') ? readFileSync('/proc/cmdline', 'utf8') : '';
  return /(^|\s)cloner\.server=/.test(cmdline);
}

const natural = (a: string, b: string) => a.localeCompare(b, 'en', { numeric: true });

function canonical(device: string): string {
  const full = device.startsWith('/') ? device : `/dev/${device}`;
  try {
    return realpathSync(full);
  } catch {
    return full;
  }
}

function describeSelector(disk: DiskSpec): string {
  const m = disk.match ?? {};
  const parts = Object.entries(m).map(([k, v]) => `${k}=${v}`);
  return parts.length ? parts.join(', ') : 'any disk';
}

function fits(disk: DiskSpec, node: NodeDisk): boolean {
  const m = disk.match ?? {};
  const glob = (pattern: string | undefined, value: string | null) => pattern === undefined || globMatch(pattern, value ?? '');
  if (!glob(m.name, node.name) || !glob(m.model, node.model) || !glob(m.serial, node.serial)) return false;
  if (m.minSize !== undefined && node.size < parseSize(m.minSize)) return false;
  if (m.maxSize !== undefined && node.size > parseSize(m.maxSize)) return false;
  if (m.rotational !== undefined && m.rotational !== node.rotational) return false;
  // A loop device stands in for any transport: it is only a candidate when listed in `devices`.
  if (m.transport !== undefined && m.transport !== node.transport && node.kind !== 'loop') return false;
  return true;
}

/** Assigns a node disk to every layout disk, or throws saying which one fits none. */
export async function matchDisks(layout: Layout, options: MatchOptions = {}): Promise<Map<string, NodeDisk>> {
  const all = options.nodeDisks ?? (await listNodeDisks());
  const excluded = new Set((options.exclude ?? []).map(canonical));
  const allowed = options.devices ? new Set(options.devices.map(canonical)) : null;
  if (allowed) {
    for (const d of allowed) {
      if (excluded.has(d)) throw new LayoutUnmatchedError(`${d} is both allowed and excluded`, 'list it in one of --disks and --exclude-devices');
      if (!all.some((n) => canonical(n.path) === d)) throw new LayoutUnmatchedError(`${d} is not a disk of this node`, 'list whole disks, e.g. /dev/sda or /dev/nvme0n1');
    }
  }
  const candidates = all
    .filter((n) => !excluded.has(canonical(n.path)))
    .filter((n) => (allowed ? allowed.has(canonical(n.path)) : n.kind === 'disk' && !n.removable))
    .sort((a, b) => natural(a.name, b.name));
  const assignment = new Map<string, NodeDisk>();
  const taken = new Set<string>();
  for (const disk of layout.disks) {
    const node = candidates.find((n) => !taken.has(n.name) && fits(disk, n));
    if (!node) {
      const free = candidates.filter((n) => !taken.has(n.name)).map((n) => `${n.name} ${formatSize(n.size)} ${n.transport}${n.rotational ? ' rotational' : ''}`);
      throw new LayoutUnmatchedError(
        `layout disk "${disk.id}" (${describeSelector(disk)}) matches no disk of this node; free disks: ${free.join('; ') || 'none'}`,
        'edit the layout\'s match selector, or name the disks to use with --disks',
      );
    }
    taken.add(node.name);
    assignment.set(disk.id, node);
  }
  return assignment;
}

function partitionPath(disk: NodeDisk, n: number): string {
  return `/dev/${disk.name}${/\d$/.test(disk.name) ? 'p' : ''}${n}`;
}

function sfdiskScript(disk: DiskSpec, node: NodeDisk, placed: Placed[]): string {
  const lines = [`label: ${disk.table}`, 'unit: sectors'];
  // sfdisk starts a new GPT's usable area at 1 MiB; a golden partition before that needs the whole area.
  if (disk.table === 'gpt' && placed.some((p) => p.start < MIB / node.logicalSectorSize)) lines.push('first-lba: 34');
  lines.push('');
  const numbers = partitionNumbers(disk);
  disk.partitions.forEach((p, i) => {
    const fields = [`start=${placed[i].start}`, `size=${placed[i].size}`, `type=${partitionTypeCode(disk.table, p.type)}`];
    if (p.name) fields.push(`name="${p.name}"`);
    if (p.flags?.length) fields.push(`attrs="${p.flags.join(' ')}"`);
    if (p.bootable) fields.push('bootable');
    // A named line sets the partition number (sfdisk takes it from the name), so gaps and order survive.
    lines.push(`${partitionPath(node, numbers[i])} : ${fields.join(', ')}`);
  });
  return `${lines.join('\n')}\n`;
}

function mkfsArgv(fs: FilesystemSpec, device: string, uuid: string): string[] {
  const label = fs.label;
  const extra = fs.mkfsOptions ?? [];
  switch (fs.type) {
    case 'ext2':
    case 'ext3':
    case 'ext4':
      return [`mkfs.${fs.type}`, '-F', '-q', ...(label ? ['-L', label] : []), '-U', uuid, ...extra, device];
    case 'xfs':
      return ['mkfs.xfs', '-f', '-q', ...(label ? ['-L', label] : []), '-m', `uuid=${uuid}`, ...extra, device];
    case 'btrfs':
      return ['mkfs.btrfs', '-f', '-q', ...(label ? ['-L', label] : []), '-U', uuid, ...extra, device];
    case 'vfat':
      return ['mkfs.vfat', ...(label ? ['-n', label] : []), '-i', uuid.replace('-', ''), ...extra, device];
    case 'swap':
      return ['mkswap', ...(label ? ['-L', label] : []), '-U', uuid, ...extra, device];
  }
}

function newUuid(fs: FilesystemSpec): string {
  if (fs.keepUuid && fs.uuid) return fs.uuid;
  if (fs.type === 'vfat') {
    const hex = randomBytes(4).toString('hex').toUpperCase();
    return `${hex.slice(0, 4)}-${hex.slice(4)}`;
  }
  return randomUUID();
}

/** An fstab field: blanks, newlines, '#' and backslashes octal-escaped as fstab(5) reads them (parseLayout already refuses them; this is the second line of defence). */
function fstabField(value: string): string {
  return value.replace(/[\s\\#]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, '0')}`);
}

/** The fstab of the new node for the layout's filesystems (and mounted btrfs subvolumes), by UUID. */
export function fstabFor(filesystems: Array<FilesystemSpec & { uuid: string }>): string {
  const lines = ['# /etc/fstab: written by cloner from the disk layout', '# <file system> <mount point> <type> <options> <dump> <pass>'];
  for (const fs of [...filesystems.flatMap(withSubvolumeMounts)].sort((a, b) => (a.mount ?? '~').localeCompare(b.mount ?? '~'))) {
    if (fs.type === 'swap') {
      lines.push(`UUID=${fs.uuid} none swap sw 0 0`);
    } else if (fs.mount) {
      const pass = fs.pass ?? (fs.mount === '/' ? 1 : fs.type === 'xfs' || fs.type === 'btrfs' ? 0 : 2);
      lines.push(`UUID=${fs.uuid} ${fstabField(fs.mount)} ${fs.type} ${fs.mountOptions ?? (fs.type === 'vfat' ? 'umask=0077' : 'defaults')} ${fs.dump ?? 0} ${pass}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

/** A filesystem and, for each mounted btrfs subvolume, a copy of it mounted there with subvol= first in its options. */
function withSubvolumeMounts<T extends FilesystemSpec>(fs: T): T[] {
  const subs = (fs.subvolumes ?? []).filter((sv) => sv.mount).map((sv) => ({ ...fs, mount: sv.mount, mountOptions: [`subvol=/${sv.path}`, ...(sv.mountOptions ? [sv.mountOptions] : [])].join(','), pass: 0 as const, subvolumes: undefined }));
  return [...(fs.mount || !subs.length ? [fs] : []), ...subs];
}

/** Steps that make a btrfs filesystem's subvolumes: mount its top level aside, create each (parents first), unmount. */
function subvolumeSteps(fs: FilesystemSpec, device: string): Step[] {
  if (!fs.subvolumes?.length) return [];
  const top = path.join(tmpdir(), `cloner-btrfs-${randomBytes(6).toString('hex')}`);
  const what = `btrfs subvolumes on ${fs.device} (${device})`;
  const steps: Step[] = [{ what, argv: ['mkdir', '-p', top] }, { what, argv: ['mount', '-t', 'btrfs', '-o', 'subvolid=5', device, top] }];
  for (const sv of [...fs.subvolumes].sort((a, b) => a.path.split('/').length - b.path.split('/').length)) {
    const parent = path.posix.dirname(sv.path);
    if (parent !== '.') steps.push({ what, argv: ['mkdir', '-p', path.join(top, parent)] });
    steps.push({ what, argv: ['btrfs', 'subvolume', 'create', path.join(top, sv.path)] });
  }
  steps.push({ what, argv: ['umount', top] }, { what, argv: ['rmdir', top] });
  return steps;
}

/** mkdir + mount steps for the mounted filesystems and btrfs subvolumes, parents before children. */
export function mountSteps(filesystems: Array<FilesystemSpec & { path: string }>, target: string): { steps: Step[]; mounts: ApplyPlan['mounts'] } {
  const mounted = filesystems.flatMap(withSubvolumeMounts).filter((fs) => fs.mount && fs.type !== 'swap').sort((a, b) => a.mount!.split('/').filter(Boolean).length - b.mount!.split('/').filter(Boolean).length || a.mount!.localeCompare(b.mount!));
  const steps: Step[] = [];
  const mounts: ApplyPlan['mounts'] = [];
  for (const fs of mounted) {
    const where = fs.mount === '/' ? path.resolve(target) : path.join(path.resolve(target), fs.mount!);
    steps.push({ what: `mount ${fs.path} at ${fs.mount}`, argv: ['mkdir', '-p', where] });
    const subvol = fs.mountOptions?.startsWith('subvol=') ? ['-o', fs.mountOptions.split(',')[0]] : [];
    steps.push({ what: `mount ${fs.path} at ${fs.mount}`, argv: ['mount', '-t', fs.type, ...subvol, fs.path, where] });
    mounts.push({ path: where, device: fs.path, type: fs.type });
  }
  return { steps, mounts };
}

/** Matches disks, checks sizes and builds every step; runs nothing. */
export async function planLayout(layout: Layout, options: ApplyOptions = {}): Promise<ApplyPlan> {
  const assignment = await matchDisks(layout, options);
  const steps: Step[] = [];
  const devices: Record<string, string> = {};
  let espDevice: string | null = null;
  const disks: ApplyPlan['disks'] = [];
  const notes: string[] = [];
  for (const disk of layout.disks) {
    const node = assignment.get(disk.id)!;
    disks.push({ id: disk.id, device: node.path, size: node.size });
    if (disk.table === 'none') {
      devices[disk.id] = node.path;
      steps.push({ what: `wipe old signatures on ${disk.id} (${node.path}, a filesystem on the whole disk)`, argv: ['wipefs', '-a', '-q', node.path] });
      continue;
    }
    const { placed, notes: scaled } = placePartitions(disk, { path: node.path, size: node.size, sector: node.logicalSectorSize }, scalableMinimums(disk, layout.filesystems ?? []));
    notes.push(...scaled);
    const numbers = partitionNumbers(disk);
    const parts = disk.partitions.map((p, i) => partitionPath(node, numbers[i]));
    disk.partitions.forEach((p, i) => {
      devices[p.id] = parts[i];
      if (!espDevice && (partitionTypeCode(disk.table, p.type) === ESP_GUID || (disk.table === 'dos' && partitionTypeCode('dos', p.type) === 'ef'))) espDevice = parts[i];
    });
    steps.push({ what: `wipe old signatures on ${disk.id} (${node.path})`, argv: ['wipefs', '-a', '-q', node.path] });
    steps.push({ what: `partition ${disk.id} (${node.path})`, argv: ['sfdisk', '--quiet', '--wipe', 'always', '--wipe-partitions', 'always', node.path], input: sfdiskScript(disk, node, placed) });
    // -u updates the partitions the kernel knows; -a adds the ones it does not (logical
    // partitions on a loop device, where nothing rescans): without udev both are needed.
    steps.push({ what: `tell the kernel about ${node.path}'s partitions`, argv: ['partx', '-u', node.path] });
    steps.push({ what: `tell the kernel about ${node.path}'s new partitions`, argv: ['partx', '-a', node.path], mayFail: true, waitFor: parts });
  }
  for (const raid of layout.raids ?? []) {
    const name = raid.name ?? raid.id;
    const device = `/dev/md/${name}`;
    devices[raid.id] = device;
    steps.push({
      what: `create RAID${raid.level} ${name}`,
      argv: ['mdadm', '--create', device, '--run', '--quiet', `--level=${raid.level}`, `--raid-devices=${raid.members.length}`, `--metadata=${raid.metadata ?? '1.2'}`, '--homehost=any', ...raid.members.map((m) => devices[m])],
      waitFor: [device],
    });
  }
  for (const vg of layout.volumeGroups ?? []) {
    const pvs = vg.pvs.map((pv) => devices[pv]);
    for (const pv of pvs) steps.push({ what: `LVM physical volume ${pv}`, argv: ['pvcreate', '-ff', '-y', '-q', pv] });
    steps.push({ what: `volume group ${vg.name}`, argv: ['vgcreate', '-q', '-y', vg.name, ...pvs] });
    for (const lv of vg.lvs) {
      const device = `/dev/${vg.name}/${lv.name}`;
      devices[`${vg.name}/${lv.name}`] = device;
      const size = lv.size === 'grow' ? ['-l', '100%FREE'] : ['-L', `${parseSize(lv.size)}b`];
      steps.push({ what: `logical volume ${vg.name}/${lv.name}`, argv: ['lvcreate', '-q', '-y', '-W', 'y', '-Z', 'y', ...size, '-n', lv.name, vg.name], waitFor: [device] });
    }
  }
  const filesystems: PlannedFilesystem[] = (layout.filesystems ?? []).map((fs) => ({ ...fs, path: devices[fs.device], uuid: newUuid(fs) }));
  for (const fs of filesystems) {
    steps.push({ what: `${fs.type} on ${fs.device} (${fs.path})${fs.mount ? ` for ${fs.mount}` : ''}`, argv: mkfsArgv(fs, fs.path, fs.uuid) });
    steps.push(...subvolumeSteps(fs, fs.path));
  }
  const { steps: mountPlan, mounts } = options.target ? mountSteps(filesystems, options.target) : { steps: [], mounts: [] };
  steps.push(...mountPlan);
  const root = filesystems.find((fs) => fs.mount === '/' || fs.subvolumes?.some((sv) => sv.mount === '/'));
  return { disks, notes, devices, filesystems, steps, mounts, fstab: fstabFor(filesystems), espDevice, rootDevice: root?.path ?? null };
}

/** Plans, checks safety, and (unless dryRun) partitions, formats and mounts. */
export async function applyLayout(layout: Layout, options: ApplyOptions = {}): Promise<ApplyPlan> {
  const plan = await planLayout(layout, options);
  if (options.dryRun) return plan;
  const nodeDisks = options.nodeDisks ?? (await listNodeDisks());
  for (const d of plan.disks) {
    const node = nodeDisks.find((n) => n.path === d.device)!;
    if (node.inUse) throw new DiskInUseError(`refusing to touch ${node.path}: ${node.inUse}`, 'unmount it (and stop its arrays and volume groups) first');
    if (node.readOnly) throw new DiskInUseError(`refusing to touch ${node.path}: it is read-only`, 'check the disk or leave it out');
  }
  if (!options.force && !isClonerBootEnvironment()) {
    throw new LayoutNeedsForceError(`applying a layout erases ${plan.disks.map((d) => d.device).join(', ')}, and this is not the cloner boot environment`, 'add --force if you mean it (a --dry-run shows every command first)');
  }
  for (const note of plan.notes) options.log?.(`scaled: ${note}`);
  await runSteps(plan.steps, options.log);
  return plan;
}

/** Unmounts what applyLayout mounted, children first. */
export async function unmountPlan(plan: Pick<ApplyPlan, 'mounts'>): Promise<void> {
  for (const m of [...plan.mounts].reverse()) await run(['umount', m.path]).catch(() => {});
}
