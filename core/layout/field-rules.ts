/**
 * What the tools a layout reaches accept, field by field (parseLayout's semantic checks
 * call these): lvm(8)'s VG/LV name rules, the mkfs options a layout may pass to each
 * mkfs tool with the values each takes, and the API file systems no disk may be mounted
 * over. A layout is untrusted input applied on every node, so these are allow-lists.
 */
import type { FilesystemType } from './model.ts';

/** File systems the kernel mounts itself: a layout mounting a disk over them would break the node. */
export const API_MOUNTS = ['/proc', '/sys', '/dev', '/run'];

/** Names /dev has on a running system: a VG named so would collide with its /dev/VG directory (lvm(8)). */
const DEV_NAMES = new Set(['block', 'bsg', 'bus', 'char', 'cpu', 'disk', 'dri', 'fd', 'hugepages', 'input', 'mapper', 'md', 'mqueue', 'net', 'pts', 'shm', 'snd', 'vfio', 'hpet', 'null', 'zero', 'console', 'tty', 'mem', 'kmsg', 'log', 'random', 'urandom', 'stdin', 'stdout', 'stderr', 'core', 'loop-control', 'rtc', 'watchdog', 'fuse', 'kvm', 'nvme-fabrics', 'lvm']);
/** lvm(8): "An LV cannot be called '.', '..', 'snapshot' or 'pvmove'" nor contain these. */
const LV_RESERVED_PARTS = ['_cdata', '_cmeta', '_corig', '_iorig', '_imeta', '_mlog', '_mimage', '_pmspare', '_rimage', '_rmeta', '_tdata', '_tmeta', '_vorigin', '_vdata', '_wcorig'];

export function lvmNameProblem(kind: 'VG' | 'LV', name: string): string | null {
  if (name === '.' || name === '..') return `"${name}" is not a valid ${kind} name`;
  if (name.startsWith('-')) return `a ${kind} name cannot start with "-"`;
  if (kind === 'VG' && DEV_NAMES.has(name)) return `a VG named "${name}" would collide with /dev/${name}`;
  if (kind === 'LV') {
    if (name === 'snapshot' || name === 'pvmove' || name.startsWith('snapshot') || name.startsWith('pvmove')) return `"${name}" is reserved by LVM`;
    const part = LV_RESERVED_PARTS.find((p) => name.includes(p));
    if (part) return `an LV name cannot contain "${part}" (reserved by LVM)`;
  }
  return null;
}

/** What one mkfs option takes: null for a flag, else the pattern its value must match. */
type OptionValue = RegExp | null;
const NUM = /^[0-9]{1,12}[kKmMgGtT]?$/;
const FEATURES = /^\^?[a-z0-9_]{1,32}(,\^?[a-z0-9_]{1,32}){0,31}$/;
/** A comma list of `key` or `key=value` with keys from `keys` and plain values (never a path). */
const subopts = (keys: string[]) => new RegExp(`^(${keys.join('|')})(=[A-Za-z0-9._:+]{1,32})?(,(${keys.join('|')})(=[A-Za-z0-9._:+]{1,32})?){0,15}$`);
const BTRFS_PROFILE = /^(single|dup|raid0|raid1|raid1c3|raid1c4|raid5|raid6|raid10)$/i;

const EXT_OPTIONS: Record<string, OptionValue> = {
  '-b': NUM, '-C': NUM, '-g': NUM, '-G': NUM, '-i': NUM, '-I': NUM, '-m': /^[0-9]{1,2}(\.[0-9]{1,3})?$/, '-N': NUM, '-r': /^[01]$/, '-j': null, '-D': null,
  '-O': FEATURES, '-o': /^[A-Za-z]{1,16}$/, '-T': /^[a-z0-9_,]{1,64}$/, '-e': /^(continue|remount-ro|panic)$/,
  '-E': subopts(['stride', 'stripe_width', 'stripe-width', 'resize', 'lazy_itable_init', 'lazy_journal_init', 'nodiscard', 'discard', 'num_backup_sb', 'packed_meta_blocks', 'root_owner', 'test_fs', 'encoding', 'encoding_flags', 'quotatype', 'assume_storage_prezeroed', 'orphan_file_size']),
};
/**
 * Per mkfs tool, the options a layout may pass. Left out on purpose: options that read a
 * file or directory into the new file system (mke2fs -d, mkfs.xfs -p, mkfs.btrfs --rootdir,
 * mkfs.vfat -B), read a bad-block list (-l) or run a bad-block scan (-c), put a journal,
 * log or realtime section on another device (mke2fs -J, mkfs.xfs -l logdev= / -r),
 * make no file system (-n, -N, -S), and what the layout's own fields set (-L, -U, -m uuid=).
 */
export const MKFS_OPTIONS: Record<FilesystemType, Record<string, OptionValue>> = {
  ext2: EXT_OPTIONS,
  ext3: EXT_OPTIONS,
  ext4: EXT_OPTIONS,
  xfs: {
    '-b': subopts(['size', 'log']),
    '-d': subopts(['agcount', 'agsize', 'su', 'sunit', 'sw', 'swidth', 'noalign', 'cowextsize', 'extszinherit', 'daxinherit', 'concurrency']),
    '-i': subopts(['size', 'log', 'perblock', 'maxpct', 'align', 'sparse', 'attr', 'projid32bit', 'nrext64', 'exchange']),
    '-l': subopts(['size', 'version', 'su', 'sunit', 'lazy-count', 'internal']),
    '-m': subopts(['crc', 'finobt', 'rmapbt', 'reflink', 'bigtime', 'inobtcount', 'autofsck']),
    '-n': subopts(['size', 'log', 'version', 'ftype', 'parent']),
    '-s': subopts(['size', 'log']),
    '-K': null,
  },
  btrfs: {
    '-d': BTRFS_PROFILE, '--data': BTRFS_PROFILE, '-m': BTRFS_PROFILE, '--metadata': BTRFS_PROFILE,
    '-n': NUM, '--nodesize': NUM, '-s': NUM, '--sectorsize': NUM, '-b': NUM, '--byte-count': NUM,
    '-O': FEATURES, '--features': FEATURES, '-R': FEATURES, '--runtime-features': FEATURES,
    '-M': null, '--mixed': null, '-K': null, '--nodiscard': null, '--csum': /^(crc32c|xxhash|sha256|blake2)$/,
  },
  vfat: { '-F': /^(12|16|32)$/, '-S': NUM, '-s': NUM, '-r': NUM, '-R': NUM, '-f': /^[12]$/, '-h': NUM, '-a': null, '-I': null, '-A': null, '--codepage': /^[0-9]{3,4}$/ },
  swap: { '-p': NUM, '--pagesize': NUM, '-e': /^(little|big|native)$/, '--endianness': /^(little|big|native)$/ },
};

export function checkMkfsOptions(type: FilesystemType, options: string[], at: string, fail: (at: string, message: string) => never): void {
  const allowed = MKFS_OPTIONS[type];
  const tool = type === 'swap' ? 'mkswap' : `mkfs.${type}`;
  for (let i = 0; i < options.length; i++) {
    const item = options[i];
    const eq = item.startsWith('--') ? item.indexOf('=') : -1;
    const flag = eq > 0 ? item.slice(0, eq) : item;
    if (!Object.hasOwn(allowed, flag)) {
      fail(`${at}[${i}]`, `${JSON.stringify(item)} is not an option cloner passes to ${tool} (allowed: ${Object.keys(allowed).join(' ')}); options that read files or other devices are refused`);
    }
    const rule = allowed[flag];
    if (rule === null) {
      if (eq > 0) fail(`${at}[${i}]`, `${flag} takes no value`);
      continue;
    }
    const value = eq > 0 ? item.slice(eq + 1) : options[++i];
    if (value === undefined) fail(`${at}[${i - 1}]`, `${flag} needs a value`);
    if (!rule.test(value)) fail(`${at}[${i}]`, `${JSON.stringify(value)} is not a value ${tool} ${flag} takes here`);
  }
}
