/**
 * What the deploy made on the node's boot chain (the initramfs, GRUB's files), remembered
 * for the next deploy: a re-deploy keeps what it made last time, instead of writing the
 * image's version back and making it again, when nothing it was made from changed.
 *
 * Algorithm: each step (initramfs, grub) has an input digest, sha256 over the step's name
 * and arguments; the tree's entries it reads (paths under its prefixes: the kernels and the
 * golden's own initramfs in /boot, initramfs and GRUB configuration, hooks, module lists;
 * each with its type, mode and content digest or link target); and the node's boot
 * configuration as the identity step left it (fstab, crypttab, mdadm.conf, LVM, GRUB
 * defaults, kernel command lines: their content). The files a step made are found by
 * comparing /boot and the ESP before and after it; each is recorded with the tree file it
 * replaced (treeFileDigest, or null) and its sha256, in /var/lib/cloner/boot-made.json
 * (kept by the sync). The next deploy hands the recorded files to the sync: those the tree
 * has as variants (core/tree/variants.ts: kept only when the tree's file is the one
 * replaced and the node's is byte for byte the one made), the others as kept paths. A step
 * is skipped when its digest is the recorded one and every file it made is on the node as
 * made; otherwise its record is dropped, it runs, and its record is written after it
 * succeeded. A record that cannot be read is ignored (every step runs).
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { NODE_STATE_DIR } from '../core/tree/select.ts';
import type { TreeItem } from '../core/tree/restore.ts';
import type { Entry } from '../core/tree/manifest.ts';
import { fileSha256, treeFileDigest, type Variant } from '../core/tree/variants.ts';
import { TargetFiles } from './identity/files.ts';
import { bootFiles } from './identity/devices.ts';

/** The record's place on the node (target-relative). */
export const BOOT_MADE_FILE = `${NODE_STATE_DIR.slice(1)}/boot-made.json`;
const FORMAT = 'cloner-boot-made/1';

interface MadeFile {
  /** Tree path ("/boot/initrd.img-6.1.0-50-amd64"). */
  rel: string;
  /** treeFileDigest of the tree's file it replaced, null when the tree has none there. */
  tree: string | null;
  sha256: string;
}
interface MadeStep {
  inputs: string;
  files: MadeFile[];
}
interface BootRecord {
  format: typeof FORMAT;
  steps: { [step: string]: MadeStep };
}

/** The tree paths each step reads: a path matches itself and what is below it. */
const STEP_INPUTS: { [step: string]: { paths: string[]; also?: RegExp } } = {
  initramfs: {
    paths: ['/boot', '/etc/initramfs-tools', '/etc/dracut.conf', '/etc/dracut.conf.d', '/etc/mkinitcpio.conf', '/etc/mkinitcpio.d', '/etc/initcpio', '/etc/modprobe.d', '/etc/modules', '/etc/modules-load.d', '/etc/kernel', '/usr/share/initramfs-tools', '/usr/lib/dracut', '/usr/lib/initcpio', '/usr/lib/kernel'],
    also: /^\/(?:usr\/)?lib\/modules\/[^/]+\/modules\.(?:dep|builtin|order)$/,
  },
  grub: {
    paths: ['/boot', '/usr/lib/grub', '/usr/share/grub', '/etc/default/grub', '/etc/default/grub.d', '/etc/grub.d', '/etc/os-release', '/usr/lib/os-release', '/etc/kernel'],
    also: /^\/(?:usr\/)?s?bin\/(?:grub|update-grub)[^/]*$/,
  },
};
const under = (rel: string, p: string) => rel === p || rel.startsWith(`${p}/`);
const inputOf = (step: string, rel: string) => STEP_INPUTS[step].paths.some((p) => under(rel, p)) || !!STEP_INPUTS[step].also?.test(rel);
const isMadeFile = (x: unknown): x is MadeFile => {
  const f = x as MadeFile;
  return typeof f?.rel === 'string' && f.rel.startsWith('/') && !f.rel.split('/').includes('..') && (f.tree === null || typeof f.tree === 'string') && typeof f.sha256 === 'string';
};

function readRecord(t: TargetFiles): BootRecord {
  const empty: BootRecord = { format: FORMAT, steps: {} };
  try {
    const parsed = JSON.parse(t.read(BOOT_MADE_FILE) ?? 'null') as BootRecord | null;
    if (parsed?.format !== FORMAT || typeof parsed.steps !== 'object' || !parsed.steps) return empty;
    const steps: BootRecord['steps'] = {};
    for (const [name, s] of Object.entries(parsed.steps)) if (name in STEP_INPUTS && typeof s?.inputs === 'string' && Array.isArray(s.files) && s.files.every(isMadeFile)) steps[name] = s;
    return { format: FORMAT, steps };
  } catch {
    return empty;
  }
}

/** One deploy's view of the record: what to hand the sync, then which steps to skip. */
export class BootMade {
  private readonly target: string;
  private readonly record: BootRecord;
  /** The tree's entries the steps read or may replace, by tree path (set by `tree`). */
  private readonly entries = new Map<string, Entry>();
  private kept = new Set<string>();
  private readonly snapshotDirs: string[];

  /** Reads the record on the mounted target; `espMount` is the ESP's mount point in it, if any. */
  constructor(target: string, espMount: string | null) {
    this.target = target;
    const t = TargetFiles.open(target);
    try {
      this.record = readRecord(t);
    } finally {
      t.close();
    }
    this.snapshotDirs = ['/boot', ...(espMount && !under(espMount, '/boot') ? [espMount] : [])];
  }

  private files(): MadeFile[] {
    return Object.values(this.record.steps).flatMap((s) => s.files);
  }

  /** The recorded files the tree has, for the sync's `variants`. */
  variants(): Map<string, Variant> {
    return new Map(this.files().flatMap((f) => (f.tree === null ? [] : [[f.rel, { tree: f.tree, sha256: f.sha256 }] as const])));
  }

  /**
   * The recorded files the tree may lack, for the sync's keep list: glob patterns there, so
   * plain names only (another is not kept: its step runs again), one pattern per directory.
   */
  keepPatterns(): string[] {
    const byDir = new Map<string, string[]>();
    for (const f of this.files()) {
      const cut = f.rel.lastIndexOf('/');
      if (f.tree !== null || !/^[\w./+-]+$/.test(f.rel) || cut <= 0) continue;
      byDir.set(f.rel.slice(0, cut), [...(byDir.get(f.rel.slice(0, cut)) ?? []), f.rel.slice(cut + 1)]);
    }
    return [...byDir].map(([dir, names]) => (names.length === 1 ? `${dir}/${names[0]}` : `${dir}/{${names.join(',')}}`));
  }

  /** The tree's entries (from the sync's onTree): only those a step reads or made are kept. */
  tree(items: readonly TreeItem[]): void {
    for (const { rel, entry } of items) if (Object.keys(STEP_INPUTS).some((s) => inputOf(s, rel)) || this.snapshotDirs.some((d) => under(rel, d))) this.entries.set(rel, entry);
  }

  /** The variants the sync kept (its progress.variantsKept). */
  synced(kept: readonly string[]): void {
    this.kept = new Set(kept);
  }

  /** Whether the sync kept a file the step made last time (the step must then run, or be found unchanged). */
  holds(step: string): boolean {
    return (this.record.steps[step]?.files ?? []).some((f) => f.tree !== null && this.kept.has(f.rel));
  }

  /** Whether the step's record says it made no file (the initramfs step kept the image's). */
  madeNothing(step: string): boolean {
    return this.record.steps[step]?.files.length === 0;
  }

  /** The step's input digest (see the module comment); `args` are what else it depends on. */
  private inputs(step: string, args: string[]): string {
    const h = createHash('sha256').update(JSON.stringify([FORMAT, step, args]));
    for (const [rel, e] of [...this.entries].filter(([rel]) => inputOf(step, rel)).sort(([a], [b]) => (a < b ? -1 : 1))) {
      h.update(JSON.stringify([rel, e.type, e.mode, e.type === 'file' ? treeFileDigest(e) : e.type === 'symlink' ? e.target : '']));
    }
    const t = TargetFiles.open(this.target);
    try {
      // GRUB's config is made by the grub step (the image's is a tree input), not read by either.
      const node = [...new Set([...bootFiles(t), 'etc/fstab', 'etc/mdadm/mdadm.conf', 'etc/mdadm.conf', 'etc/lvm/devices/system.devices'])].filter((rel) => !/grub2?\/grub\.cfg$/.test(rel)).sort();
      for (const rel of node) h.update(JSON.stringify([rel, t.readBytes(rel)?.toString('base64') ?? null]));
    } finally {
      t.close();
    }
    return h.digest('hex');
  }

  /** Whether every file of a recorded step is on the node as it was made. */
  private intact(step: MadeStep): boolean {
    const t = TargetFiles.open(this.target);
    try {
      return step.files.every((f) => (f.tree === null ? fileSha256(t.root, f.rel) === f.sha256 : this.kept.has(f.rel)));
    } finally {
      t.close();
    }
  }

  /**
   * Runs `make` unless the step's record says its result is on the node already (returns
   * false then); `args` are the step's arguments (tool, devices). A failing `make` leaves
   * the step without a record.
   */
  async step(step: string, args: string[], make: () => Promise<void>): Promise<boolean> {
    const inputs = this.inputs(step, args);
    const was = this.record.steps[step];
    if (was && was.inputs === inputs && this.intact(was)) return false;
    delete this.record.steps[step];
    this.save();
    const before = this.snapshot();
    await make();
    const t = TargetFiles.open(this.target);
    try {
      const files: MadeFile[] = [];
      for (const [rel, stat] of this.snapshot()) {
        if (before.get(rel) === stat) continue;
        const sha256 = fileSha256(t.root, rel);
        const e = this.entries.get(rel);
        if (sha256) files.push({ rel, tree: e?.type === 'file' ? treeFileDigest(e) : null, sha256 });
      }
      this.record.steps[step] = { inputs, files };
    } finally {
      t.close();
    }
    this.save();
    return true;
  }

  /** The regular files under the snapshot directories (never through a symlink): tree path -> "ino size mtime ctime". */
  private snapshot(): Map<string, string> {
    const out = new Map<string, string>();
    const t = TargetFiles.open(this.target);
    const walk = (rel: string) => {
      for (const name of t.list(rel)) {
        const child = `${rel}/${name}`;
        const st = t.lstat(child);
        if (st?.isDirectory()) walk(child);
        else if (st?.isFile()) out.set(child, `${st.ino} ${st.size} ${st.mtimeMs} ${st.ctimeMs}`);
      }
    };
    try {
      for (const d of this.snapshotDirs) if (t.lstat(d)?.isDirectory()) walk(d);
    } finally {
      t.close();
    }
    return out;
  }

  /** Writes the record (a new file renamed over the old, beneath the target), or removes it when empty. */
  private save(): void {
    const t = TargetFiles.open(this.target);
    const rel = `/${BOOT_MADE_FILE}`;
    try {
      if (!Object.keys(this.record.steps).length) {
        if (t.exists(rel)) fs.rmSync(t.root.at(rel));
        return;
      }
      t.ensureDir(NODE_STATE_DIR);
      const temp = `${rel}.new`;
      fs.rmSync(t.root.at(temp), { force: true });
      const fd = t.root.open(temp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o600);
      try {
        fs.writeSync(fd, `${JSON.stringify(this.record, null, 1)}\n`);
      } finally {
        fs.closeSync(fd);
      }
      fs.renameSync(t.root.at(temp), t.root.at(rel));
    } finally {
      t.close();
    }
  }
}
