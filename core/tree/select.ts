/**
 * Image selection: the one rule for which paths of a node belong to its image. The
 * capture (what it stores), the count (the progress total beside it) and a deploy (what
 * it leaves alone on the node) all take it from here, so they cannot drift apart.
 *
 * Algorithm: a list of glob patterns (the user's excludes, NODE_STATE_DIR, and on a live
 * node the contents of the virtual file systems) is compiled once with picomatch; a
 * pattern with a slash matches the whole root-relative path, one without matches an
 * entry's name anywhere. On a live node the running system's swap files inside the root
 * (from /proc/swaps) are left out too, as exact paths. A walk asks
 * `excludes(relPath)` before it lstats an entry, and `entersMount(relPath)` for a
 * directory on another device than its parent: only the layout's mounts (or all, with
 * crossMounts) are entered; the others stay empty directories. A directory on another
 * device that is no mount point (/proc/self/mountinfo) is a nested btrfs subvolume of the
 * same file system: it is entered.
 */
import * as fs from 'node:fs/promises';
import path from 'node:path';
import picomatch from 'picomatch';

/** What a live node's capture leaves out by default (contents of the virtual file systems). */
export const LIVE_NODE_EXCLUDES = ['/proc/*', '/sys/*', '/dev/*', '/run/*', '/tmp/*'];

/**
 * Cloner's own state on a deployed node (the image versions of the files the agent made
 * node-specific, kept as seeds for the next deploy); never part of an image.
 */
export const NODE_STATE_DIR = '/var/lib/cloner';

export interface SelectionOptions {
  /** The directory captured (resolved against the working directory). */
  root: string;
  /** Glob patterns of paths (as seen from the root, e.g. /scratch or /var/cache/*) to leave out. */
  exclude?: string[];
  /** Add LIVE_NODE_EXCLUDES and the running system's swap files; default: when root is "/". */
  liveNode?: boolean;
  /** Descend into every mounted file system below the root. */
  crossMounts?: boolean;
  /**
   * Mount points (as seen from the root, e.g. /boot/efi, /home) whose file systems are
   * part of the image: the disk layout's filesystems. Other mounts stay empty directories.
   */
  includeMounts?: string[];
  /** The running system's swap table (live node only); default /proc/swaps. Tests point it at a file of their own. */
  swapTable?: string;
  /** The mount table; default /proc/self/mountinfo. */
  mountTable?: string;
}

/** Built once by `imageSelection` and handed to every walk of the same capture. */
export interface ImageSelection {
  /** Absolute root directory; the paths below are relative to it ("/etc/hostname"). */
  readonly root: string;
  /** The running system's swap files inside the root (root-relative), left out; none unless live node. */
  readonly swapFiles: readonly string[];
  /** True when the entry at `relPath` is left out, with everything below it. */
  excludes(relPath: string): boolean;
  /** For a directory whose device differs from its parent's: true when its content is part of the image. */
  entersMount(relPath: string): boolean;
  /** True when a file system is mounted at relPath (else a device change is a nested subvolume). */
  isMountPoint(relPath: string): boolean;
}

/**
 * Builds the selection for a capture of `opts.root`. Reads the swap table on a live node
 * (an unreadable table means no swap files); throws nothing else.
 */
export async function imageSelection(opts: SelectionOptions): Promise<ImageSelection> {
  const root = path.resolve(opts.root);
  const liveNode = opts.liveNode ?? root === '/';
  const swapFiles = liveNode ? await swapFilesUnder(root, opts.swapTable ?? '/proc/swaps') : [];
  const swaps = new Set(swapFiles);
  const matches = excludeMatcher(selectionPatterns(opts.exclude ?? [], liveNode));
  const included = new Set((opts.includeMounts ?? []).filter((m) => m !== '/').map((m) => m.replace(/\/+$/, '')));
  const mounts = await mountPointsUnder(root, opts.mountTable ?? '/proc/self/mountinfo');
  const isMountPoint = (relPath: string) => mounts === null || mounts.has(relPath);
  return {
    root,
    swapFiles,
    excludes: (relPath) => matches(relPath) || swaps.has(relPath),
    entersMount: (relPath) => !!opts.crossMounts || included.has(relPath) || !isMountPoint(relPath),
    isMountPoint,
  };
}

/**
 * The target paths a deploy leaves alone (sync's `keep`): what a live-node capture leaves
 * out, with the image's own excludes (`excludePaths`, default none). The golden node's swap
 * files are not among them: they are that node's, not the target's, and the image lacks them.
 */
export function deployKeepList(excludePaths: string[] = []): string[] {
  return selectionPatterns(excludePaths, true);
}

function selectionPatterns(exclude: string[], liveNode: boolean): string[] {
  return [...exclude, NODE_STATE_DIR, ...(liveNode ? LIVE_NODE_EXCLUDES : [])];
}

/**
 * Compiles exclusion patterns into a test on root-relative paths ("/var/cache/x").
 * Patterns with a slash match the whole path (/scratch, /var/cache/*); patterns without
 * one match an entry's name anywhere (*.tmp). No patterns: nothing is excluded.
 */
export function excludeMatcher(patterns: readonly string[]): (relPath: string) => boolean {
  const withSlash = patterns.filter((p) => p.includes('/'));
  const nameOnly = patterns.filter((p) => !p.includes('/'));
  const full = withSlash.length ? picomatch(withSlash, { dot: true }) : null;
  const name = nameOnly.length ? picomatch(nameOnly, { dot: true }) : null;
  if (!full && !name) return () => false;
  return (relPath) => !!full?.(relPath) || !!name?.(relPath.slice(relPath.lastIndexOf('/') + 1));
}

/** Mount points below root (root-relative) from a mountinfo table; null when it cannot be read (every device change is then a mount). */
async function mountPointsUnder(root: string, table: string): Promise<Set<string> | null> {
  let text: string;
  try {
    text = await fs.readFile(table, 'utf8');
  } catch {
    return null;
  }
  const realRoot = await fs.realpath(root).catch(() => root);
  const prefix = realRoot === '/' ? '' : realRoot;
  const out = new Set<string>();
  for (const line of text.split('\n')) {
    const field = line.split(' ')[4];
    if (!field) continue;
    // mountinfo escapes blanks, tabs, newlines and backslashes as octal (\040).
    const mount = field.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
    if (mount.startsWith(`${prefix}/`)) out.add(mount.slice(prefix.length));
  }
  return out;
}

/**
 * Swap files listed in `table` (the /proc/swaps format: a header line, then the name with
 * spaces as \040, and the type) that lie inside `root`, as root-relative paths. The kernel
 * lists canonical paths, so they are compared with the root's real path.
 */
async function swapFilesUnder(root: string, table: string): Promise<string[]> {
  let text: string;
  try {
    text = await fs.readFile(table, 'utf8');
  } catch {
    return [];
  }
  const realRoot = await fs.realpath(root).catch(() => root);
  const prefix = realRoot === '/' ? '' : realRoot;
  return text
    .split('\n')
    .slice(1)
    .map((l) => l.split(/\s+/))
    .filter((f) => f[1] === 'file')
    .map((f) => f[0].replace(/\\040/g, ' '))
    .filter((file) => file.startsWith(`${prefix}/`))
    .map((file) => file.slice(prefix.length));
}
