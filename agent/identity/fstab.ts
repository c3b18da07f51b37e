/**
 * /etc/fstab of a node: the golden's file with only the entries of the layout's filesystems
 * rewritten for the node's devices, every other line and comment kept as it was (NFS and
 * Lustre mounts, tmpfs, bind mounts, swap files, /proc options).
 *
 * An fstab line belongs to a layout filesystem when its source names the golden's
 * filesystem (UUID=, LABEL=, /dev/disk/by-uuid|by-label/) or, failing that, by its mount
 * point (swap: the first block-device swap line with a swap filesystem left). Its source is
 * rewritten in the form the golden used: UUID= gets the node's UUID, LABEL= stays when the
 * node's filesystem has that label, PARTUUID= gets the node's partition UUID, a /dev path
 * the node's device; the rest of the line (options, dump, pass) is the golden's. Layout
 * filesystems no line names are added (by UUID, with the layout's options). A block-device
 * line naming no filesystem of the layout is kept and reported.
 */
import { fstabFor } from '../../core/layout/apply.ts';
import type { FilesystemSpec } from '../../core/layout/model.ts';

/** A filesystem of the layout: as the golden had it (spec: its UUID, label, mount) and on this node. */
export interface NodeFilesystem {
  spec: FilesystemSpec;
  /** The node's filesystem UUID and device (/dev/...). */
  uuid: string;
  device: string;
  /** The node's partition UUID, when known. */
  partuuid?: string;
}

export interface FstabResult {
  text: string;
  notes: string[];
  warnings: string[];
  /** The golden's sources of the lines rewritten ("UUID=…", "/dev/sda2"): references the node no longer has. */
  replaced: string[];
}

const BLOCK_SOURCE = /^(UUID=|LABEL=|PARTUUID=|PARTLABEL=|\/dev\/)/;
const unquote = (v: string) => v.replace(/^"(.*)"$/, '$1');

/** Does an fstab source name the golden's filesystem `spec`? */
export function namesGolden(source: string, spec: FilesystemSpec): boolean {
  const uuid = /^UUID=(.+)$/i.exec(source)?.[1];
  if (spec.uuid && uuid && unquote(uuid).toLowerCase() === spec.uuid.toLowerCase()) return true;
  if (spec.uuid && source.toLowerCase() === `/dev/disk/by-uuid/${spec.uuid.toLowerCase()}`) return true;
  if (spec.label && (unquote(source) === `LABEL=${spec.label}` || source === `LABEL="${spec.label}"` || source === `/dev/disk/by-label/${spec.label}`)) return true;
  return false;
}

/** The node's source for a line that used `source` for the golden's filesystem: the same form. */
export function nodeSource(source: string, fs: NodeFilesystem): string {
  if (/^LABEL=/i.test(source) || source.startsWith('/dev/disk/by-label/')) {
    if (fs.spec.label && (source.endsWith(`=${fs.spec.label}`) || source.endsWith(`="${fs.spec.label}"`) || source.endsWith(`/${fs.spec.label}`))) return source;
    return `UUID=${fs.uuid}`;
  }
  if (source.startsWith('/dev/disk/by-uuid/')) return `/dev/disk/by-uuid/${fs.uuid}`;
  if (/^PARTUUID=/i.test(source)) return fs.partuuid ? `PARTUUID=${fs.partuuid}` : `UUID=${fs.uuid}`;
  if (source.startsWith('/dev/disk/by-partuuid/')) return fs.partuuid ? `/dev/disk/by-partuuid/${fs.partuuid}` : `UUID=${fs.uuid}`;
  if (source.startsWith('/dev/') && !source.startsWith('/dev/disk/')) return fs.device;
  return `UUID=${fs.uuid}`;
}

/** The node's fstab from the golden's (`previous`, null when it had none) and the layout's filesystems. */
export function mergeFstab(previous: string | null, filesystems: NodeFilesystem[]): FstabResult {
  const notes: string[] = [];
  const warnings: string[] = [];
  const replaced: string[] = [];
  const fresh = (list: NodeFilesystem[]) => fstabFor(list.map((f) => ({ ...f.spec, uuid: f.uuid })));
  if (previous === null) return { text: fresh(filesystems), notes: ['written from the layout'], warnings, replaced };
  const left = new Set(filesystems);
  const lines = previous.split('\n');
  if (lines.at(-1) === '') lines.pop();
  const parsed = lines.map((line) => {
    const m = /^(\s*)(\S+)(\s+)(\S+)(\s+)(\S+)(.*)$/.exec(line);
    return m && !m[2].startsWith('#') ? { m, source: m[2], mount: m[4], type: m[6] } : null;
  });
  const owner = new Map<number, NodeFilesystem>();
  const take = (i: number, fs: NodeFilesystem | undefined) => {
    if (!fs) return;
    owner.set(i, fs);
    left.delete(fs);
  };
  // First by the golden's identity, then by mount point, then swap lines by order.
  parsed.forEach((p, i) => p && take(i, [...left].find((fs) => namesGolden(p.source, fs.spec))));
  parsed.forEach((p, i) => p && !owner.has(i) && p.type !== 'swap' && p.mount !== 'none' && take(i, [...left].find((fs) => fs.spec.mount === p.mount && fs.spec.type !== 'swap')));
  parsed.forEach((p, i) => p && !owner.has(i) && p.type === 'swap' && BLOCK_SOURCE.test(p.source) && !/^\/dev\/(mapper|zram)/.test(p.source) && take(i, [...left].find((fs) => fs.spec.type === 'swap')));
  const out = lines.map((line, i) => {
    const p = parsed[i];
    if (!p) return line;
    const fs = owner.get(i);
    if (!fs) {
      if (/^(UUID=|LABEL=|PARTUUID=|PARTLABEL=|\/dev\/disk\/by-)/i.test(p.source)) warnings.push(`/etc/fstab: ${p.source} (${p.mount}) is not a filesystem of the layout: line kept as the golden had it`);
      return line;
    }
    const source = nodeSource(p.source, fs);
    if (source === p.source) return line;
    replaced.push(p.source);
    notes.push(`${p.mount === 'none' ? 'swap' : p.mount}: ${p.source} -> ${source}`);
    return `${p.m[1]}${source}${p.m[3]}${p.m[4]}${p.m[5]}${p.m[6]}${p.m[7]}`;
  });
  const added = [...left].filter((fs) => fs.spec.mount || fs.spec.type === 'swap');
  if (added.length) {
    for (const l of fresh(added).split('\n').filter((l) => l && !l.startsWith('#'))) {
      out.push(l);
      notes.push(`added ${l.split(/\s+/).slice(0, 2).join(' ')} (from the layout)`);
    }
  }
  return { text: `${out.join('\n')}\n`, notes, warnings, replaced };
}
