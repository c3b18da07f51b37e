/**
 * The commands and files a layout plan is made of (core/layout/apply.ts builds the plan):
 * the mkfs command of each filesystem type with a UUID chosen beforehand (so the plan, a
 * dry run and fstab all know it), the btrfs subvolume steps, the mkdir + mount steps in
 * mount-point order, and the new node's fstab by UUID.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { FilesystemSpec } from './model.ts';

export interface Step {
  what: string;
  argv: string[];
  input?: string;
  /** Paths that must exist before the next step (device nodes of new partitions). */
  waitFor?: string[];
  /** A failure is fine (partx -a on partitions the kernel already has); waitFor still holds, and the step runs again while it waits. */
  mayFail?: boolean;
}

/** Mounted filesystems as mountSteps reports them: absolute mount point, device and type. */
export interface PlannedMount {
  path: string;
  device: string;
  type: string;
}

export function mkfsArgv(fs: FilesystemSpec, device: string, uuid: string): string[] {
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

export function newUuid(fs: FilesystemSpec): string {
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
export function subvolumeSteps(fs: FilesystemSpec, device: string): Step[] {
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
export function mountSteps(filesystems: Array<FilesystemSpec & { path: string }>, target: string): { steps: Step[]; mounts: PlannedMount[] } {
  const mounted = filesystems.flatMap(withSubvolumeMounts).filter((fs) => fs.mount && fs.type !== 'swap').sort((a, b) => a.mount!.split('/').filter(Boolean).length - b.mount!.split('/').filter(Boolean).length || a.mount!.localeCompare(b.mount!));
  const steps: Step[] = [];
  const mounts: PlannedMount[] = [];
  for (const fs of mounted) {
    const where = fs.mount === '/' ? path.resolve(target) : path.join(path.resolve(target), fs.mount!);
    steps.push({ what: `mount ${fs.path} at ${fs.mount}`, argv: ['mkdir', '-p', where] });
    const subvol = fs.mountOptions?.startsWith('subvol=') ? ['-o', fs.mountOptions.split(',')[0]] : [];
    steps.push({ what: `mount ${fs.path} at ${fs.mount}`, argv: ['mount', '-t', fs.type, ...subvol, fs.path, where] });
    mounts.push({ path: where, device: fs.path, type: fs.type });
  }
  return { steps, mounts };
}

