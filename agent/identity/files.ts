/**
 * The identity step's access to the target: every read, write, removal and move goes through
 * core/tree/beneath.ts's TargetRoot (parent directories opened with RESOLVE_BENEATH |
 * RESOLVE_NO_SYMLINKS, or an O_NOFOLLOW walk), so a symlink anywhere on the way (etc/udev ->
 * /etc/udev in a hostile image) is never followed: a file to write below one is refused
 * (IdentityError), a file to remove or read below one is not there for this step (and the
 * report says so). A file is replaced by writing a temporary name (O_CREAT|O_EXCL|O_NOFOLLOW),
 * then renaming it; the new file gets the SELinux label of the one it replaces.
 *
 * TargetFiles also keeps the report: each change (file, what changed) and each warning. The
 * image's version of every file changed or removed is saved under /var/lib/cloner/image-files
 * (not part of any image): the next deploy finds those chunks on the node, so a re-deploy of
 * an unchanged image fetches nothing. Disabled files are moved to /var/lib/cloner/disabled/
 * (their path with '/' as '%'), where no network stack or service reads them.
 */
import * as fs from 'node:fs';
import { constants as fsc } from 'node:fs';
import { ClonerError } from '../../core/errors.ts';
import { fsx } from '../../core/native/fsx.ts';
import { TargetRoot } from '../../core/tree/beneath.ts';
import { decodeName } from '../../core/tree/file-names.ts';
import { NODE_STATE_DIR } from '../../core/tree/select.ts';

export class IdentityError extends ClonerError {
  override readonly code = 'IDENTITY_FAILED';
}

/** One change the identity step made to the node: the file (tree path) and what changed. */
export interface IdentityChange {
  file: string;
  change: string;
}

/** Where the image's versions of the files made node-specific are saved (seeds of the next deploy). */
export const IMAGE_FILES_DIR = `${NODE_STATE_DIR.slice(1)}/image-files`;
/** Where configuration the node must not use (the golden node's) is moved. */
export const DISABLED_DIR = `${NODE_STATE_DIR.slice(1)}/disabled`;

const SELINUX_XATTR = 'security.selinux';

/** Tree path ("/etc/hosts") of a target-relative one ("etc/hosts"). */
export const treePath = (rel: string) => `/${rel.split('/').filter(Boolean).join('/')}`;
/** TargetRoot's name of a directory: "" for the target itself, else a tree path. */
const dirName = (rel: string) => (rel.split('/').filter(Boolean).length ? treePath(rel) : '');
const parentRel = (rel: string) => rel.split('/').filter(Boolean).slice(0, -1).join('/');

/** Codes openBeneath gives for a symlink (or non-directory) on the way. */
const isBlocked = (err: unknown) => ['ELOOP', 'ENOTDIR', 'EXDEV'].includes((err as NodeJS.ErrnoException).code ?? '');
const isMissing = (err: unknown) => (err as NodeJS.ErrnoException).code === 'ENOENT' || isBlocked(err);

export class TargetFiles {
  readonly root: TargetRoot;
  readonly changes: IdentityChange[] = [];
  readonly warnings: string[] = [];
  /** Tree paths written that carry no SELinux label (nothing to copy it from). */
  readonly unlabeled: string[] = [];
  /** Labels of files removed or disabled, by directory and kind (see kindOf), for new files of the same kind. */
  private readonly lostLabels = new Map<string, Buffer>();
  /** Files whose image version is saved in this run. */
  private readonly saved = new Set<string>();

  constructor(root: TargetRoot) {
    this.root = root;
  }

  static open(target: string): TargetFiles {
    return new TargetFiles(TargetRoot.open(target));
  }

  close(): void {
    this.root.close();
  }

  get path(): string {
    return this.root.path;
  }

  change(rel: string, change: string): void {
    this.changes.push({ file: treePath(rel), change });
  }

  warn(message: string): void {
    if (!this.warnings.includes(message)) this.warnings.push(message);
  }

  /** A real directory under the target, created (0755) when missing; a symlink on the way is refused, never followed. */
  ensureDir(rel: string, mode = 0o755): void {
    let current = '';
    for (const part of rel.split('/').filter(Boolean)) {
      current = `${current}/${part}`;
      try {
        this.root.dirFd(current);
        continue;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
          throw new IdentityError(`${this.root.path}${current} is not a directory (a symlink in the image?)`, 'identity files are only written into real directories of the target');
        }
      }
      fs.mkdirSync(this.root.at(current), mode);
      this.root.dirFd(current);
    }
  }

  /** The content of a regular file of the target, or null (missing, not a regular file, or below a symlink). */
  readBytes(rel: string): Buffer | null {
    let fd: number;
    try {
      fd = this.root.open(treePath(rel), fsc.O_RDONLY | fsc.O_NONBLOCK);
    } catch (err) {
      if (isMissing(err)) return null;
      throw err;
    }
    try {
      return fs.fstatSync(fd).isFile() ? fs.readFileSync(fd) : null;
    } finally {
      fs.closeSync(fd);
    }
  }

  read(rel: string): string | null {
    return this.readBytes(rel)?.toString('utf8') ?? null;
  }

  /** The kind of the entry at `rel`, or null when missing or below a symlink (not part of this target). */
  lstat(rel: string): fs.Stats | null {
    try {
      return fs.lstatSync(this.root.at(treePath(rel)));
    } catch (err) {
      if (isMissing(err)) return null;
      throw err;
    }
  }

  exists(rel: string): boolean {
    return this.lstat(rel) !== null;
  }

  list(rel: string): string[] {
    try {
      return fs.readdirSync(this.root.dirPath(dirName(rel)), { encoding: 'buffer' }).map(decodeName).sort();
    } catch (err) {
      if (isMissing(err)) return [];
      throw err;
    }
  }

  /** The SELinux label of an entry, or null. */
  label(rel: string): Buffer | null {
    try {
      return fsx.lgetxattr(this.root.at(treePath(rel)), SELINUX_XATTR);
    } catch {
      return null;
    }
  }

  /** A file's kind for labels: its directory and extension, or its name's first word (ssh_host_*_key). */
  private static kindOf(rel: string): string {
    const name = rel.split('/').at(-1)!;
    const ext = /\.[A-Za-z0-9]+$/.exec(name)?.[0] ?? `${name.split(/[_.-]/)[0]}*${/_key$/.test(name) ? '_key' : ''}`;
    return `${parentRel(rel)}|${ext}`;
  }

  /** The label of a file of the same kind beside `rel` (or one removed from there), for a file that replaces none. */
  private siblingLabel(rel: string): Buffer | null {
    const kind = TargetFiles.kindOf(rel);
    for (const name of this.list(parentRel(rel))) {
      const sib = `${parentRel(rel)}/${name}`;
      if (sib !== rel && TargetFiles.kindOf(sib) === kind && this.lstat(sib)?.isFile()) {
        const l = this.label(sib);
        if (l) return l;
      }
    }
    return this.lostLabels.get(kind) ?? null;
  }

  private rememberLabel(rel: string): void {
    const l = this.label(rel);
    if (l) this.lostLabels.set(TargetFiles.kindOf(rel), l);
  }

  /** Creates (or replaces) a file by a temporary name and a rename, all beneath the root; the label of the file replaced is kept. */
  private replace(rel: string, content: string | Buffer, mode: number, label: Buffer | null): void {
    const file = treePath(rel);
    const temp = `${file}.cloner-new`;
    try {
      fs.unlinkSync(this.root.at(temp));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    const fd = this.root.open(temp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, mode);
    try {
      fs.writeFileSync(fd, content);
      fs.fchmodSync(fd, mode);
      if (label) {
        try {
          fsx.fdSetxattr(fd, SELINUX_XATTR, label);
        } catch {
          label = null;
        }
      }
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(this.root.at(temp), this.root.at(file));
    if (!label && !file.startsWith(`/${NODE_STATE_DIR.slice(1)}`)) this.unlabeled.push(file);
  }

  /**
   * Saves the image's version of a file about to be changed or removed, so a re-deploy finds
   * its chunks on the node instead of fetching them. The directory is root's only (0700): it
   * holds the image's SSH host keys when the image has them.
   */
  private saveImageVersion(rel: string): void {
    // Only the first version seen is the image's: a file written twice in one run keeps it.
    const key = rel.split('/').filter(Boolean).join('/');
    if (this.saved.has(key)) return;
    this.saved.add(key);
    const content = this.readBytes(rel);
    if (content === null) return;
    this.ensureDir(IMAGE_FILES_DIR, 0o700);
    this.replace(`${IMAGE_FILES_DIR}/${rel.split('/').filter(Boolean).join('%')}`, content, 0o600, null);
  }

  /** Writes one file (never through a symlink), records the change; returns its tree path. */
  write(rel: string, content: string | Buffer, mode = 0o644, what?: string): string {
    this.ensureDir(parentRel(rel));
    const before = this.readBytes(rel);
    if (before !== null && before.equals(Buffer.from(content))) return treePath(rel);
    // The label of the file replaced, else that of a file of the same kind beside it.
    const label = this.label(rel) ?? this.siblingLabel(rel);
    this.saveImageVersion(rel);
    this.replace(rel, content, mode, label);
    this.change(rel, what ?? (before === null ? 'created' : 'rewritten'));
    return treePath(rel);
  }

  /** Is the directory holding `rel` reachable (not below a symlink)? Warns when it is not. */
  private parentReachable(rel: string): boolean {
    const dir = parentRel(rel);
    try {
      this.root.dirFd(dirName(dir));
      return true;
    } catch (err) {
      if (isBlocked(err)) this.warn(`/${dir} is a symlink (or below one) in the image: /${rel} left alone`);
      else if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      return false;
    }
  }

  /** Removes a file (not a directory) of the target; records why. */
  remove(rel: string, why = 'removed'): boolean {
    if (!this.parentReachable(rel)) return false;
    const st = this.lstat(rel);
    if (!st || st.isDirectory()) return false;
    this.rememberLabel(rel);
    this.saveImageVersion(rel);
    fs.unlinkSync(this.root.at(treePath(rel)));
    this.change(rel, why);
    return true;
  }

  /** Copies a file's current content to /var/lib/cloner/disabled/ (before parts of it are taken out); returns where. */
  setAside(rel: string): string {
    const content = this.readBytes(rel);
    const dest = `${DISABLED_DIR}/${rel.split('/').filter(Boolean).join('%')}`;
    if (content !== null) {
      this.ensureDir(DISABLED_DIR, 0o700);
      this.replace(dest, content, 0o600, null);
    }
    return treePath(dest);
  }

  /** Moves a file to /var/lib/cloner/disabled/ (where nothing reads it); records why. */
  disable(rel: string, why: string): boolean {
    if (!this.parentReachable(rel)) return false;
    const st = this.lstat(rel);
    if (!st || st.isDirectory()) return false;
    const content = st.isFile() ? this.readBytes(rel) : null;
    this.rememberLabel(rel);
    if (content !== null) {
      this.ensureDir(DISABLED_DIR, 0o700);
      this.replace(`${DISABLED_DIR}/${rel.split('/').filter(Boolean).join('%')}`, content, st.mode & 0o7777, null);
    }
    this.saveImageVersion(rel);
    fs.unlinkSync(this.root.at(treePath(rel)));
    this.change(rel, `disabled (moved to /${DISABLED_DIR}): ${why}`);
    return true;
  }
}
