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
 * 4. Check safety: a chosen disk that is in use (mounted, swap, a member of an array or
 *    volume group) or read-only, and running outside the cloner boot environment (kernel
 *    command line with `cloner.server=`) without `force`, are refusals. A real run throws
 *    the first before anything is written; a dry run makes the same checks and lists them
 *    in the plan (`refusals`), so it shows exactly what the real run would do. Refusals
 *    found while matching and sizing (no disk fits, a disk too small, a --disks device the
 *    node lacks) are thrown by both.
 * 5. Run the plan step by step (or print it for a dry run), and report the new fstab, the
 *    EFI system partition and the root filesystem for the bootloader step.
 */
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import path from 'node:path';
import {
  ESP_GUID, LayoutError, MIB, formatSize, parseSize, partitionTypeCode,
  type DiskSpec, type FilesystemSpec, type Layout,
} from './model.ts';
import { globMatch } from './glob.ts';
import { partitionNumbers } from './partitions.ts';
import { LayoutTooSmallError, placePartitions, scalableMinimums, type Placed } from './place.ts';
import { fstabFor, mkfsArgv, mountSteps, newUuid, subvolumeSteps, type PlannedMount, type Step } from './steps.ts';

export { fstabFor, mountSteps, type Step };

export { LayoutTooSmallError };
import { listNodeDisks, run, settle, type NodeDisk } from './probe.ts';

export class LayoutUnmatchedError extends LayoutError {
  override readonly code = 'LAYOUT_DISK_UNMATCHED';
}
export class DiskInUseError extends LayoutError {
  override readonly code = 'LAYOUT_DISK_IN_USE';
}
export class LayoutNeedsForceError extends LayoutError {
  override readonly code = 'LAYOUT_NEEDS_FORCE';
}
export class LayoutApplyError extends LayoutError {
  override readonly code = 'LAYOUT_APPLY_FAILED';
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

/** Why the real run would stop before writing anything (a dry run lists them). */
export interface Refusal {
  code: string;
  message: string;
  hint: string;
}

export interface ApplyPlan {
  disks: Array<{ id: string; device: string; size: number }>;
  /** What stops the real run; filled by a dry run (a real run throws the first instead). */
  refusals: Refusal[];
  /** What was scaled or moved to fit smaller disks. */
  notes: string[];
  /** Layout id (partition, array, VG/LV) -> device path. */
  devices: Record<string, string>;
  filesystems: PlannedFilesystem[];
  steps: Step[];
  /** Absolute mount points under the target, in mount order. */
  mounts: PlannedMount[];
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
      const left = candidates.filter((n) => !taken.has(n.name)).map((n) => `${n.name} ${formatSize(n.size)} ${n.transport}${n.rotational ? ' rotational' : ''}${n.inUse ? ` (in use: ${n.inUse})` : ''}${n.readOnly ? ' (read-only)' : ''}`);
      throw new LayoutUnmatchedError(
        `layout disk "${disk.id}" (${describeSelector(disk)}) matches no disk of this node; disks not taken: ${left.join('; ') || 'none'}`,
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
  return { disks, refusals: [], notes, devices, filesystems, steps, mounts, fstab: fstabFor(filesystems), espDevice, rootDevice: root?.path ?? null };
}

const quote = (arg: string) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`);

/** The plan as the shell commands it runs (a dry run prints this), after what would stop it. */
export function formatPlan(plan: ApplyPlan): string {
  const out: string[] = plan.refusals.map((r) => `# REFUSED (the real run stops here, before any command): ${r.message}; ${r.hint}`);
  out.push(...plan.notes.map((n) => `# scaled: ${n}`));
  for (const step of plan.steps) {
    out.push(`# ${step.what}`);
    const cmd = step.argv.map(quote).join(' ');
    out.push(step.input !== undefined ? `${cmd} <<'EOF'\n${step.input}EOF` : cmd);
  }
  return `${out.join('\n')}\n`;
}

/** What the kernel lists for each missing node (sysfs), for the error when they never appear. */
function kernelView(paths: string[]): string {
  return paths
    .filter((p) => !existsSync(p))
    .map((p) => {
      const name = path.basename(p);
      const dev = `/sys/class/block/${name}/dev`;
      return `${p} (${existsSync(dev) ? `the kernel has it as ${readFileSync(dev, 'utf8').trim()}, but no device node` : 'the kernel does not list it'})`;
    })
    .join(', ');
}

async function waitForPaths(paths: string[], again?: string[], timeoutMs = 30_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  let nextTry = Date.now() + 1000;
  await settle();
  while (paths.some((p) => !existsSync(p))) {
    // The kernel may miss an add (a busy loop device, a re-read racing ours, several disks
    // partitioned at once): ask again each second, an update (-u) and then an add (-a).
    if (again && Date.now() > nextTry) {
      if (again[0] === 'partx') await run(['partx', '-u', again[again.length - 1]]).catch(() => {});
      await run(again).catch(() => {});
      await settle();
      nextTry = Date.now() + 1000;
    }
    if (Date.now() > until) throw new LayoutApplyError(`device nodes did not appear: ${kernelView(paths)}`, 'check that the kernel sees the new partitions (partx -u) and that udev runs');
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Runs the steps in order; the first failure stops with the step named. */
export async function runSteps(steps: Step[], log: (line: string) => void = () => {}): Promise<void> {
  for (const [i, step] of steps.entries()) {
    log(`[${i + 1}/${steps.length}] ${step.what}: ${step.argv.map(quote).join(' ')}`);
    try {
      await run(step.argv, step.input).catch((err) => {
        if (!step.mayFail) throw err;
      });
      if (step.waitFor) await waitForPaths(step.waitFor, step.mayFail ? step.argv : undefined);
    } catch (err) {
      if (err instanceof LayoutApplyError) throw err;
      throw new LayoutApplyError(`step ${i + 1}/${steps.length} (${step.what}) failed: ${(err as Error).message}`, 'the disks are partly set up; fix the cause and apply the layout again (it starts from scratch)');
    }
  }
}

/** The safety checks on a plan: every reason the real run must not start (in this order). */
export async function safetyRefusals(plan: Pick<ApplyPlan, 'disks'>, options: Pick<ApplyOptions, 'nodeDisks' | 'force'> = {}): Promise<LayoutError[]> {
  const nodeDisks = options.nodeDisks ?? (await listNodeDisks());
  const out: LayoutError[] = [];
  for (const d of plan.disks) {
    const node = nodeDisks.find((n) => n.path === d.device);
    if (!node) out.push(new LayoutUnmatchedError(`refusing to touch ${d.device}: the node no longer lists it`, 'check the disks (lsblk) and apply again'));
    else if (node.inUse) out.push(new DiskInUseError(`refusing to touch ${node.path}: ${node.inUse}`, 'unmount it (and stop its arrays and volume groups) first, or name other disks with --disks'));
    else if (node.readOnly) out.push(new DiskInUseError(`refusing to touch ${node.path}: it is read-only`, 'check the disk or leave it out'));
  }
  if (!options.force && !isClonerBootEnvironment()) {
    out.push(new LayoutNeedsForceError(`applying a layout erases ${plan.disks.map((d) => d.device).join(', ')}, and this is not the cloner boot environment`, 'add --force if you mean it (a --dry-run shows every command first)'));
  }
  return out;
}

/**
 * Plans, checks safety, and (unless dryRun) partitions, formats and mounts. A dry run makes
 * the same checks and returns them in `refusals` instead of throwing the first.
 */
export async function applyLayout(layout: Layout, options: ApplyOptions = {}): Promise<ApplyPlan> {
  const nodeDisks = options.nodeDisks ?? (await listNodeDisks());
  const plan = await planLayout(layout, { ...options, nodeDisks });
  const refusals = await safetyRefusals(plan, { ...options, nodeDisks });
  if (options.dryRun) return { ...plan, refusals: refusals.map((e) => ({ code: e.code, message: e.message, hint: e.hint })) };
  if (refusals.length) throw refusals[0];
  for (const note of plan.notes) options.log?.(`scaled: ${note}`);
  await runSteps(plan.steps, options.log);
  return plan;
}

/** Unmounts what applyLayout mounted, children first. */
export async function unmountPlan(plan: Pick<ApplyPlan, 'mounts'>): Promise<void> {
  for (const m of [...plan.mounts].reverse()) await run(['umount', m.path]).catch(() => {});
}
