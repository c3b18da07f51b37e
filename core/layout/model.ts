/**
 * The disk layout model: a JSON document (schema in layout.schema.json, format
 * "cloner-layout/1") saying how to partition and format a node's drives. Disks are found
 * by selectors, not kernel names; partitions have fixed sizes or "grow" (take the rest);
 * md RAID arrays, LVM volume groups and filesystems refer to devices by id: a partition's
 * id, a RAID array's id, or "VG/LV".
 *
 * `parseLayout` checks a document in two passes: the JSON schema (ajv) for shape, then
 * semantic checks (unique ids, references that resolve, each device used once, one "grow"
 * per disk and VG, partitions that do not overlap, known filesystem types, labels and
 * UUIDs the filesystem accepts, mount points that are absolute, normal and unique, a root
 * filesystem). Every failure is a LayoutInvalidError naming the path, e.g.
 * `filesystems[2].type: unknown filesystem type "zfs"`.
 *
 * A layout is untrusted input that reaches tools on every node it is deployed to, so each
 * field is held to what that tool accepts: mount points are paths of portable name
 * characters (they become fstab fields and mount(8) arguments: no blanks or newlines) and
 * never an API file system (/proc, /sys, /dev, /run); VG and LV names follow lvm(8)'s
 * rules (not "." or "..", no reserved names or suffixes, no name that /dev already has);
 * mkfs options are taken only from a per-tool list of options that change the new file
 * system's format (nothing that reads a file or directory, names another device, or skips
 * making the file system), each with the values it takes; disk selector globs must parse
 * (glob.ts matches them in bounded time). A btrfs filesystem may list subvolumes (paths
 * from its top level, each with its own mount point and options, as `subvol=@` roots).
 */
import { Ajv } from 'ajv';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ClonerError } from '../errors.ts';
import { formatBytes } from '../format.ts';
import { API_MOUNTS, checkMkfsOptions, lvmNameProblem } from './field-rules.ts';
import { parseGlob } from './glob.ts';
import { checkPartitions, fixedBytes, isExtended } from './partitions.ts';

export { fixedBytes };

export const LAYOUT_FORMAT = 'cloner-layout/1';
export type Size = number | string;

export interface DiskMatch {
  name?: string;
  model?: string;
  serial?: string;
  minSize?: Size;
  maxSize?: Size;
  rotational?: boolean;
  transport?: string;
}

export interface PartitionSpec {
  id: string;
  size: Size | 'grow';
  /** The smallest this partition may be made on a smaller disk ("grow": the least it takes). */
  minSize?: Size;
  /** Byte offset on the disk; absent: the next 1 MiB boundary. */
  start?: number;
  /** The partition number (sda3, nvme0n1p3); absent: one more than the previous one's. */
  number?: number;
  /** A logical partition inside the dos table's extended partition. */
  logical?: boolean;
  type: string;
  name?: string;
  flags?: string[];
  bootable?: boolean;
}

export interface DiskSpec {
  id: string;
  match?: DiskMatch;
  /** "none": a filesystem (or PV, or array member) on the whole disk, referred to by the disk's id. */
  table: 'gpt' | 'dos' | 'none';
  partitions: PartitionSpec[];
  captured?: { name?: string; model?: string | null; serial?: string | null; size?: number };
}

export interface RaidSpec {
  id: string;
  name?: string;
  level: 0 | 1 | 4 | 5 | 6 | 10;
  members: string[];
  metadata?: '0.90' | '1.0' | '1.1' | '1.2';
}

export interface LogicalVolumeSpec {
  name: string;
  size: Size | 'grow';
  minSize?: Size;
}

export interface VolumeGroupSpec {
  name: string;
  pvs: string[];
  lvs: LogicalVolumeSpec[];
}

export type FilesystemType = 'ext2' | 'ext3' | 'ext4' | 'xfs' | 'vfat' | 'btrfs' | 'swap';
export const FILESYSTEM_TYPES: readonly FilesystemType[] = ['ext2', 'ext3', 'ext4', 'xfs', 'vfat', 'btrfs', 'swap'];

/** A btrfs subvolume of a filesystem: its path from the top level, and where it is mounted. */
export interface SubvolumeSpec {
  path: string;
  mount?: string;
  /** Options besides subvol=, which the mount gets from `path`. */
  mountOptions?: string;
}

export interface FilesystemSpec {
  device: string;
  type: FilesystemType;
  label?: string;
  uuid?: string;
  keepUuid?: boolean;
  mkfsOptions?: string[];
  mount?: string;
  mountOptions?: string;
  dump?: 0 | 1;
  pass?: 0 | 1 | 2;
  /** btrfs only: subvolumes a deploy creates (and mounts, where they have a mount point). */
  subvolumes?: SubvolumeSpec[];
}

export interface Layout {
  format: typeof LAYOUT_FORMAT;
  disks: DiskSpec[];
  raids?: RaidSpec[];
  volumeGroups?: VolumeGroupSpec[];
  filesystems?: FilesystemSpec[];
}

export class LayoutError extends ClonerError {
  override readonly code: string = 'LAYOUT_ERROR';
}

export class LayoutInvalidError extends LayoutError {
  override readonly code = 'LAYOUT_INVALID';
  constructor(message: string, hint = 'fix the layout file (`cloner disklayout` exports the stored one) and upload it again') {
    super(message, hint);
  }
}

/** GPT type GUIDs and MBR type bytes by friendly name. */
export const PARTITION_TYPES: Record<string, { gpt: string; dos: string }> = {
  linux: { gpt: '0FC63DAF-8483-4772-8E79-3D69D8477DE4', dos: '83' },
  swap: { gpt: '0657FD6D-A4AB-43C4-84E5-0933C84B4F4F', dos: '82' },
  esp: { gpt: 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B', dos: 'ef' },
  raid: { gpt: 'A19D880F-05FC-4D3B-A006-743F0F84911E', dos: 'fd' },
  lvm: { gpt: 'E6D6D379-F507-44C2-A23C-238F2A3DF928', dos: '8e' },
  'bios-boot': { gpt: '21686148-6449-6E6F-744E-656564454649', dos: '' },
  home: { gpt: '933AC7E1-2EB4-4F13-B844-0E14E2AEF915', dos: '83' },
  'root-x86-64': { gpt: '4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709', dos: '83' },
  xbootldr: { gpt: 'BC13C2FF-59E6-4262-A352-B275FD6F7172', dos: 'ea' },
  extended: { gpt: '', dos: '5' },
};

/** The type code sfdisk gets for a layout partition type (alias, GUID or MBR byte). */
export function partitionTypeCode(table: DiskSpec['table'], type: string): string {
  const alias = PARTITION_TYPES[type];
  if (alias) return table === 'gpt' ? alias.gpt : alias.dos;
  return table === 'gpt' ? type.toUpperCase() : type.toLowerCase().replace(/^0x/, '');
}

export const ESP_GUID = PARTITION_TYPES.esp.gpt;
export const MIB = 1024 * 1024;

/** Bytes of a size: an integer, or "512M", "1.5G", "20GiB" (binary units). */
export function parseSize(size: Size): number {
  if (typeof size === 'number') return size;
  const m = /^([0-9]+(?:\.[0-9]+)?)([KMGT])(?:i?B)?$/.exec(size);
  if (!m) throw new LayoutInvalidError(`bad size ${JSON.stringify(size)}`, 'use bytes or a number with K, M, G or T (binary units), e.g. 512M');
  return Math.round(Number(m[1]) * 1024 ** ('KMGT'.indexOf(m[2]) + 1));
}

/** "1.50 GiB"-style text for messages. */
export function formatSize(bytes: number): string {
  return formatBytes(bytes, 2);
}

/** The shortest exact size text: "512M" for 536870912, bytes when no unit divides it. */
export function compactSize(bytes: number): Size {
  for (const [suffix, factor] of [['T', 1024 ** 4], ['G', 1024 ** 3], ['M', MIB], ['K', 1024]] as const) {
    if (bytes % factor === 0) return `${bytes / factor}${suffix}`;
  }
  return bytes;
}

/** The least room capture leaves a filesystem to grow from ("grow" minimums): what mkfs takes, with room for btrfs's chunks. */
export const FS_MINIMUM: Partial<Record<FilesystemType, number>> = { xfs: 300 * MIB, btrfs: 256 * MIB };
/** The smallest device each mkfs formats (xfsprogs 6: 300 MiB; btrfs-progs 6 default profiles: 110 MiB, 100 MiB fails), so a layout that cannot apply is refused at upload. */
const MKFS_MINIMUM: Partial<Record<FilesystemType, number>> = { xfs: 300 * MIB, btrfs: 110 * MIB };

const LABEL_LIMITS: Record<FilesystemType, number> = { ext2: 16, ext3: 16, ext4: 16, xfs: 12, vfat: 11, btrfs: 255, swap: 16 };

const schema = JSON.parse(readFileSync(path.join(path.dirname(new URL(import.meta.url).pathname), 'layout.schema.json'), 'utf8'));
const ajv = new Ajv({ allErrors: false, strict: true });
const validateShape = ajv.compile(schema);

function where(instancePath: string): string {
  // "/disks/0/partitions/2/size" -> "disks[0].partitions[2].size"
  return instancePath.replace(/\/(\d+)/g, '[$1]').replace(/^\//, '').replace(/\//g, '.') || '(document)';
}

/** Parses layout JSON text (or an already parsed value) and checks it; throws LayoutInvalidError. */
export function parseLayout(input: string | unknown): Layout {
  let doc: unknown = input;
  if (typeof input === 'string') {
    try {
      doc = JSON.parse(input);
    } catch (err) {
      throw new LayoutInvalidError(`the layout is not valid JSON: ${(err as Error).message}`);
    }
  }
  if (!validateShape(doc)) {
    const e = validateShape.errors![0];
    if (/\/(size|minSize|maxSize)$/.test(e.instancePath)) {
      const value = e.instancePath.split('/').slice(1).reduce<any>((o, k) => o?.[k], doc);
      throw new LayoutInvalidError(`${where(e.instancePath)}: bad size ${JSON.stringify(value)} (use bytes, a number with K, M, G or T such as 512M${e.instancePath.endsWith('/size') ? ', or "grow"' : ''})`);
    }
    if (e.keyword === 'pattern' && /\/mount$/.test(e.instancePath)) {
      const value = e.instancePath.split('/').slice(1).reduce<any>((o, k) => o?.[k], doc);
      throw new LayoutInvalidError(`${where(e.instancePath)}: mount point ${JSON.stringify(value)} is not an absolute path of letters, digits and . _ @ + : , = ~ - (an fstab field holds no blanks, newlines, quotes or backslashes)`);
    }
    const detail = e.keyword === 'additionalProperties' ? `unknown field "${(e.params as { additionalProperty: string }).additionalProperty}"` : e.keyword === 'enum' ? `${e.message} (${(e.params as { allowedValues: unknown[] }).allowedValues.join(', ')})` : e.message;
    throw new LayoutInvalidError(`${where(e.instancePath)}: ${detail}`);
  }
  const layout = doc as Layout;
  checkSemantics(layout);
  return layout;
}

const PORTABLE_PATH = /^\/([A-Za-z0-9._@+:,=~-]+(\/[A-Za-z0-9._@+:,=~-]+)*)?$/;

/** A mount point no other filesystem or subvolume has, outside the API file systems. */
function checkMountPoint(mount: string, at: string, fail: (at: string, message: string) => never, mounts: Map<string, number>, f: number): void {
  const api = API_MOUNTS.find((m) => mount === m || mount.startsWith(`${m}/`));
  if (api) fail(at, `mount point "${mount}" is inside ${api}, which the kernel provides (an API file system), not a disk`);
  if (mounts.has(mount)) fail(at, `mount point "${mount}" is also used by filesystems[${mounts.get(mount)}]`);
  mounts.set(mount, f);
}

function checkSubvolumes(fs: FilesystemSpec, at: string, fail: (at: string, message: string) => never, mounts: Map<string, number>, f: number): void {
  if (fs.type !== 'btrfs') fail(`${at}.subvolumes`, `only btrfs has subvolumes, this filesystem is ${fs.type}`);
  const seen = new Set<string>();
  fs.subvolumes!.forEach((sv, i) => {
    const sat = `${at}.subvolumes[${i}]`;
    if (!PORTABLE_PATH.test(`/${sv.path}`) || sv.path.split('/').some((c) => c === '.' || c === '..')) fail(`${sat}.path`, `subvolume path ${JSON.stringify(sv.path)} is not a relative path of letters, digits and . _ @ + : , = ~ - without . or .. components`);
    if (seen.has(sv.path)) fail(`${sat}.path`, `subvolume "${sv.path}" is listed twice`);
    seen.add(sv.path);
    if (sv.mountOptions !== undefined && /(^|,)subvol(id)?=/.test(sv.mountOptions)) fail(`${sat}.mountOptions`, 'leave out subvol= and subvolid=: the mount takes them from "path"');
    if (sv.mount === undefined) {
      if (sv.mountOptions !== undefined) fail(`${sat}.mountOptions`, 'mount options without a mount point');
      return;
    }
    if (path.posix.normalize(sv.mount) !== sv.mount || (sv.mount !== '/' && sv.mount.endsWith('/')) || !PORTABLE_PATH.test(sv.mount)) fail(`${sat}.mount`, `mount point ${JSON.stringify(sv.mount)} is not a normal absolute path of portable characters`);
    checkMountPoint(sv.mount, `${sat}.mount`, fail, mounts, f);
  });
}

function checkSemantics(layout: Layout): void {
  const fail = (at: string, message: string): never => {
    throw new LayoutInvalidError(`${at}: ${message}`);
  };
  // Every device that can hold something: partitions, arrays, LVs.
  const devices = new Map<string, string>(); // id -> where defined
  const define = (id: string, at: string) => {
    if (devices.has(id)) fail(at, `id "${id}" is already used at ${devices.get(id)}`);
    devices.set(id, at);
  };
  const diskIds = new Set<string>();
  const extendedIds = new Set<string>();
  layout.disks.forEach((disk, d) => {
    const at = `disks[${d}]`;
    if (diskIds.has(disk.id)) fail(`${at}.id`, `disk id "${disk.id}" is used twice`);
    diskIds.add(disk.id);
    for (const key of ['name', 'model', 'serial'] as const) {
      const pattern = disk.match?.[key];
      const problem = pattern === undefined ? null : parseGlob(pattern);
      if (typeof problem === 'string') fail(`${at}.match.${key}`, `bad pattern ${JSON.stringify(pattern)}: ${problem}`);
    }
    if (disk.match?.minSize !== undefined && disk.match.maxSize !== undefined && parseSize(disk.match.minSize) > parseSize(disk.match.maxSize)) fail(`${at}.match`, 'minSize is larger than maxSize');
    if (disk.table === 'none') define(disk.id, at);
    disk.partitions.forEach((part, p) => {
      const pat = `${at}.partitions[${p}]`;
      define(part.id, pat);
      if (isExtended(part)) extendedIds.add(part.id);
      if (!PARTITION_TYPES[part.type] && /^[a-z-]+$/.test(part.type) && !/^[0-9a-f]{1,2}$/.test(part.type)) {
        fail(`${pat}.type`, `unknown partition type "${part.type}" (known: ${Object.keys(PARTITION_TYPES).join(', ')}, a GPT type GUID or an MBR type byte)`);
      }
      const isGuid = /-/.test(part.type) && part.type.length === 36;
      if (disk.table === 'dos' && PARTITION_TYPES[part.type]?.dos === '') fail(`${pat}.type`, `type "${part.type}" exists only on gpt tables`);
      if (disk.table === 'gpt' && PARTITION_TYPES[part.type]?.gpt === '') fail(`${pat}.type`, `type "${part.type}" exists only on dos tables`);
      if (disk.table === 'dos' && isGuid) fail(`${pat}.type`, 'a dos table takes an MBR type byte, not a GUID');
      if (disk.table === 'gpt' && !isGuid && !PARTITION_TYPES[part.type]) fail(`${pat}.type`, 'a gpt table takes a type GUID or a known type name, not an MBR byte');
      if (disk.table === 'gpt' && part.bootable) fail(`${pat}.bootable`, 'the bootable flag is for dos tables; on gpt use type "esp" or flags ["LegacyBIOSBootable"]');
      if (disk.table === 'dos' && part.flags?.length) fail(`${pat}.flags`, 'GPT attribute flags do not apply to a dos table');
      if (disk.table === 'dos' && part.name) fail(`${pat}.name`, 'a dos table has no partition names');
      if (disk.table === 'dos' && /^(0x)?0{1,2}$/.test(part.type)) fail(`${pat}.type`, 'MBR type 0 marks an empty slot, not a partition');
    });
    checkPartitions(disk, at, fail);
    if (disk.match?.maxSize !== undefined) {
      const fixed = fixedBytes(disk);
      if (fixed > parseSize(disk.match.maxSize)) fail(`${at}`, `the fixed partitions need ${formatSize(fixed)}, more than the selector's maxSize`);
    }
  });
  // Sizes of partitions and LVs, so a filesystem too small for its mkfs is refused here, not mid-deploy.
  const sizes = new Map<string, { size: Size; minSize?: Size }>();
  for (const disk of layout.disks) for (const p of disk.partitions) sizes.set(p.id, p);
  for (const vg of layout.volumeGroups ?? []) for (const lv of vg.lvs) sizes.set(`${vg.name}/${lv.name}`, lv);
  const used = new Map<string, string>(); // device id -> user
  const use = (id: string, at: string, by: string) => {
    if (!devices.has(id)) fail(at, `refers to "${id}", which no partition, array or logical volume defines`);
    if (extendedIds.has(id)) fail(at, `"${id}" is an extended partition, a container for logical partitions that holds no data itself`);
    if (used.has(id)) fail(at, `"${id}" is already used by ${used.get(id)}`);
    used.set(id, by);
  };
  (layout.raids ?? []).forEach((raid, r) => {
    const at = `raids[${r}]`;
    const minimum = { 0: 2, 1: 2, 4: 3, 5: 3, 6: 4, 10: 2 }[raid.level];
    if (raid.members.length < minimum) fail(`${at}.members`, `RAID${raid.level} needs at least ${minimum} members, has ${raid.members.length}`);
    raid.members.forEach((m, i) => use(m, `${at}.members[${i}]`, `RAID ${raid.id}`));
    define(raid.id, at);
  });
  const vgNames = new Set<string>();
  (layout.volumeGroups ?? []).forEach((vg, v) => {
    const at = `volumeGroups[${v}]`;
    if (vgNames.has(vg.name)) fail(`${at}.name`, `volume group "${vg.name}" is defined twice`);
    vgNames.add(vg.name);
    const vgProblem = lvmNameProblem('VG', vg.name);
    if (vgProblem) fail(`${at}.name`, vgProblem);
    vg.pvs.forEach((pv, i) => use(pv, `${at}.pvs[${i}]`, `volume group ${vg.name}`));
    const lvNames = new Set<string>();
    let grows = 0;
    vg.lvs.forEach((lv, l) => {
      if (lvNames.has(lv.name)) fail(`${at}.lvs[${l}].name`, `logical volume "${lv.name}" is defined twice`);
      lvNames.add(lv.name);
      const lvProblem = lvmNameProblem('LV', lv.name);
      if (lvProblem) fail(`${at}.lvs[${l}].name`, lvProblem);
      if (vg.name.length + lv.name.length > 126) fail(`${at}.lvs[${l}].name`, 'VG and LV names together hold at most 126 characters (the /dev/mapper name)');
      if (lv.size === 'grow') grows++;
      else if (lv.minSize !== undefined) fail(`${at}.lvs[${l}].minSize`, 'only a "grow" logical volume has a minimum size');
      devices.set(`${vg.name}/${lv.name}`, `${at}.lvs[${l}]`);
    });
    if (grows > 1) fail(`${at}.lvs`, `only one logical volume per group may "grow", this one has ${grows}`);
  });
  const mounts = new Map<string, number>();
  (layout.filesystems ?? []).forEach((fs, f) => {
    const at = `filesystems[${f}]`;
    if (!FILESYSTEM_TYPES.includes(fs.type)) fail(`${at}.type`, `unknown filesystem type "${fs.type}" (supported: ${FILESYSTEM_TYPES.join(', ')})`);
    use(fs.device, `${at}.device`, `filesystem ${f}`);
    const holder = sizes.get(fs.device);
    const floor = MKFS_MINIMUM[fs.type];
    // A "grow" device without a minimum is judged at apply, on the disk it gets.
    const least = holder === undefined ? undefined : holder.size !== 'grow' ? holder.size : holder.minSize;
    if (least !== undefined && floor && parseSize(least) < floor) {
      fail(`${at}.device`, `mkfs.${fs.type} needs at least ${formatSize(floor)}, ${fs.device} is ${holder!.size === 'grow' ? 'at least ' : ''}${formatSize(parseSize(least))}`);
    }
    if (fs.label !== undefined && fs.label.length > LABEL_LIMITS[fs.type]) fail(`${at}.label`, `a ${fs.type} label holds ${LABEL_LIMITS[fs.type]} characters, "${fs.label}" has ${fs.label.length}`);
    if (fs.uuid !== undefined) {
      const short = /^[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}$/.test(fs.uuid);
      if (short !== (fs.type === 'vfat')) fail(`${at}.uuid`, fs.type === 'vfat' ? 'a vfat volume id looks like ABCD-1234' : `a ${fs.type} UUID looks like 8-4-4-4-12 hex digits`);
    }
    if (fs.keepUuid && !fs.uuid) fail(`${at}.keepUuid`, 'keepUuid needs a uuid');
    if (fs.mkfsOptions) checkMkfsOptions(fs.type, fs.mkfsOptions, `${at}.mkfsOptions`, fail);
    if (fs.subvolumes !== undefined) checkSubvolumes(fs, at, fail, mounts, f);
    if (fs.type === 'swap') {
      if (fs.mount !== undefined) fail(`${at}.mount`, 'swap is not mounted; leave out "mount"');
      return;
    }
    if (fs.mount !== undefined) {
      if (path.posix.normalize(fs.mount) !== fs.mount || (fs.mount !== '/' && fs.mount.endsWith('/')) || fs.mount.split('/').includes('..')) fail(`${at}.mount`, `mount point "${fs.mount}" is not a normal absolute path`);
      if (!/^\/([A-Za-z0-9._@+:,=~-]+(\/[A-Za-z0-9._@+:,=~-]+)*)?$/.test(fs.mount)) fail(`${at}.mount`, `mount point ${JSON.stringify(fs.mount)} holds characters an fstab field cannot (blanks, newlines, quotes, backslashes)`);
      checkMountPoint(fs.mount, `${at}.mount`, fail, mounts, f);
    } else if (fs.mountOptions !== undefined) {
      fail(`${at}.mountOptions`, 'mount options without a mount point');
    }
  });
  if (mounts.size > 0 && !mounts.has('/')) fail('filesystems', 'no filesystem is mounted at "/"');
}

/** Every mount point of a layout: its filesystems' and their btrfs subvolumes'. */
export function layoutMounts(layout: Pick<Layout, 'filesystems'>): string[] {
  return (layout.filesystems ?? []).flatMap((fs) => [...(fs.mount ? [fs.mount] : []), ...(fs.subvolumes ?? []).flatMap((sv) => (sv.mount ? [sv.mount] : []))]);
}

/** The canonical text of a layout (stable key order as written, 2-space indent). */
export function serializeLayout(layout: Layout): string {
  return `${JSON.stringify(layout, null, 2)}\n`;
}
