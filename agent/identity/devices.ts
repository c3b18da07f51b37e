/**
 * The boot chain follows the node's own disks (issue 20): every reference to a golden block
 * device in the boot configuration is rewritten for the node's devices, or reported.
 *
 * The golden's filesystem UUIDs (captured in the layout) map to the node's; labels are the
 * same on every node (mkfs -L). In the GRUB defaults (and grub.d), GRUB's config, the kernel
 * command line files (etc/kernel/cmdline, BLS entries), initramfs-tools' conf.d/resume,
 * dracut's conf.d, crypttab, the LVM configuration, each golden UUID becomes the node's
 * (UUID=, resume=, root=, /dev/disk/by-uuid/); so do golden PARTUUIDs, md array UUIDs (8:8:8:8,
 * rd.md.uuid=, by-id/md-uuid-), PVIDs (by-id/lvm-pv-uuid-) and /dev/disk/by-id|by-path disk
 * names, paired as identity/device-ids.ts says. mdadm.conf's ARRAY lines are the arrays made
 * on the node (`mdadm --detail --scan`, probed by the agent); LVM's system.devices lists the
 * node's PVs. What is left naming a device by an identifier the node does not have (a UUID,
 * PARTUUID, array, golden PVID, by-id|by-path name) is a warning, with why it was not paired. `changed` tells the agent
 * the boot chain changed, `replaced` which golden references went (agent/initramfs.ts looks
 * for them in the golden's initramfs to decide whether it must be made anew).
 */
import type { TargetFiles } from './files.ts';
import type { NodeFilesystem } from './fstab.ts';
import { devicesFilePvids, mapDiskLink, mdUuidMap, parseArrays, partuuidMap, pvidMap, systemDevicesFor, type NodeDisk, type NodePv } from './device-ids.ts';

export interface NodeDevices {
  filesystems: NodeFilesystem[];
  /** `mdadm --detail --scan` on the node (ARRAY lines of the arrays made), or null without arrays. */
  mdadmScan: string | null;
  /** The PVs the layout made on the node, or null without volume groups (or without pvs). */
  pvs?: NodePv[] | null;
  /** The layout's disks on the node with their /dev/disk/by-id|by-path names (for golden by-id names). */
  disks?: NodeDisk[];
  /** The node's name (system.devices' comment). */
  node?: string;
}

const FILES = ['etc/default/grub', 'etc/initramfs-tools/conf.d/resume', 'etc/uswsusp.conf', 'etc/crypttab', 'etc/kernel/cmdline', 'etc/lvm/lvm.conf', 'boot/grub/grub.cfg', 'boot/grub2/grub.cfg', 'etc/sysconfig/grub'];
const DIRS: Array<[string, RegExp]> = [['etc/default/grub.d', /\.cfg$/], ['etc/dracut.conf.d', /\.conf$/], ['etc/initramfs-tools/conf.d', /./], ['boot/loader/entries', /\.conf$/], ['etc/cmdline.d', /\.conf$/], ['etc/lvm/lvmlocal.conf.d', /./]];
/** Filesystem and GPT partition UUIDs, vfat ids, dos PARTUUIDs (disk id - number), md UUIDs, PVIDs and by-id/by-path names. */
const TOKEN = /\/dev\/disk\/by-(?:id|path)\/[^\s"',|$;)]+|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{8}(?::[0-9a-f]{8}){3}|\b[0-9A-Z]{6}(?:-[0-9A-Z]{4}){5}-[0-9A-Z]{6}\b|\b[0-9A-F]{4}-[0-9A-F]{4}\b|\b[0-9a-f]{8}-[0-9a-f]{2}\b/gi;
const dashedPvid = (id: string) => `${id.slice(0, 6)}-${[6, 10, 14, 18, 22].map((i) => id.slice(i, i + 4)).join('-')}-${id.slice(26)}`;

/** The boot configuration files of the image that exist. */
export function bootFiles(t: TargetFiles): string[] {
  const out = FILES.filter((f) => t.lstat(f)?.isFile());
  for (const [dir, re] of DIRS) for (const n of t.list(dir)) if (re.test(n) && t.lstat(`${dir}/${n}`)?.isFile() && !out.includes(`${dir}/${n}`)) out.push(`${dir}/${n}`);
  return out;
}

/**
 * Rewrites golden device references; returns whether anything of the boot chain changed, and
 * the golden references the node does not have (every golden id paired with a different one of
 * the node's, every token rewritten, the PVIDs and array UUIDs of the files written anew).
 * `goldenFstab` is the image's fstab before the identity step rewrote it (PARTUUIDs by mount point).
 */
export function rewriteDeviceReferences(t: TargetFiles, d: NodeDevices, fstabChanged: boolean, goldenFstab: string | null = null): { changed: boolean; replaced: string[] } {
  let changed = fstabChanged;
  const replaced = new Set<string>();
  const files = bootFiles(t);
  const texts = new Map(files.map((rel) => [rel, t.read(rel)] as const));
  const mdConf = ['etc/mdadm/mdadm.conf', 'etc/mdadm.conf'].map((rel) => t.read(rel)).find((x) => x !== null) ?? null;
  const map = new Map<string, string>();
  for (const f of d.filesystems) if (f.spec.uuid && f.spec.uuid.toLowerCase() !== f.uuid.toLowerCase()) map.set(f.spec.uuid.toLowerCase(), f.uuid);
  for (const [g, n] of partuuidMap(goldenFstab, [...texts.values()].filter((x): x is string => x !== null), d.filesystems)) map.set(g, n);
  const md = mdUuidMap(mdConf, d.mdadmScan);
  for (const [g, n] of md.map) map.set(g, n);
  const devicesFile = t.read('etc/lvm/devices/system.devices');
  const goldenPvids = devicesFile ? devicesFilePvids(devicesFile) : [];
  for (const [g, n] of (devicesFile && d.pvs?.length ? pvidMap(devicesFile, d.pvs) : null) ?? []) {
    map.set(g.toLowerCase(), n);
    map.set(dashedPvid(g).toLowerCase(), dashedPvid(n));
  }
  const disks = d.disks ?? [];
  const nodeIds = new Set(d.filesystems.flatMap((f) => [f.uuid.toLowerCase(), ...(f.partuuid ? [f.partuuid.toLowerCase()] : [])]));
  const nodeArrays = new Set((d.mdadmScan ? parseArrays(d.mdadmScan) : []).map((a) => a.uuid));
  const nodeLinks = new Set(disks.flatMap((x) => x.links));
  const unmapped = new Map<string, string>();
  for (const rel of files) {
    const text = texts.get(rel);
    if (text === null || text === undefined) continue;
    const notes: string[] = [];
    const next = text.replace(TOKEN, (m) => {
      let to = map.get(m.toLowerCase());
      // An array or PV by its id (md-uuid-8:8:8:8, lvm-pv-uuid-6-4-4-4-4-4-6): the id maps.
      const byId = /^(\/dev\/disk\/by-id\/(?:md-uuid-|lvm-pv-uuid-))(.+)$/.exec(m);
      if (byId && map.has(byId[2].toLowerCase())) to = `${byId[1]}${map.get(byId[2].toLowerCase())}`;
      if (!to && m.startsWith('/dev/disk/')) {
        const r = mapDiskLink(m, disks);
        if (r.to) to = r.to;
        else if (r.why && !nodeLinks.has(m)) unmapped.set(m, r.why);
      }
      if (!to || to === m) return m;
      replaced.add(m);
      if (!notes.includes(`${m} -> ${to}`)) notes.push(`${m} -> ${to}`);
      if (m.startsWith('/dev/disk/')) nodeLinks.add(to);
      return to;
    });
    if (next !== text) {
      t.write(rel, next, (t.lstat(rel)!.mode & 0o7777) || 0o644, `golden device references: ${notes.join(', ')}`);
      changed = true;
    }
    // What still names a device the node does not have.
    const stale = new Set<string>();
    for (const line of next.split('\n')) {
      if (line.trim().startsWith('#')) continue;
      for (const m of line.matchAll(/\b(?:UUID|PARTUUID)=["']?([0-9A-Fa-f-]{9,36})|\/dev\/disk\/by-(?:uuid|partuuid)\/([0-9A-Fa-f-]{9,36})|(\/dev\/disk\/by-(?:id|path)\/[^\s"',|$;)]+)|\brd\.md\.uuid=([0-9a-f:]{35})|\b([0-9A-Za-z]{32})\b/gi)) {
        const id = (m[1] ?? m[2] ?? '').toLowerCase();
        if (m[3]) {
          if (!nodeLinks.has(m[3])) stale.add(unmapped.has(m[3]) ? `${m[3]} (${unmapped.get(m[3])})` : m[3]);
        } else if (m[4]) {
          if (!nodeArrays.has(m[4].toLowerCase())) stale.add(`rd.md.uuid=${m[4]}${md.unpaired.includes(m[4].toLowerCase()) ? ' (no array of the node pairs with it)' : ''}`);
        } else if (m[5]) {
          if (goldenPvids.includes(m[5])) stale.add(`PV ${m[5]} (the golden's)`);
        } else if (id && !nodeIds.has(id)) stale.add(id);
      }
    }
    // GRUB's own search --fs-uuid lines are regenerated after this; the rest is the admin's to check.
    if (stale.size && !/grub2?\/grub\.cfg$/.test(rel)) t.warn(`/${rel} names devices this node does not have: ${[...stale].join(', ')} (not rewritten: check it)`);
  }
  if (devicesFile !== null && d.pvs?.length) {
    for (const id of goldenPvids) replaced.add(id).add(dashedPvid(id));
    t.write('etc/lvm/devices/system.devices', systemDevicesFor(devicesFile, d.pvs, d.node ?? 'this node'), 0o644, `this node's PVs (${d.pvs.map((p) => p.device).join(', ')}); the golden's ${goldenPvids.length} entries replaced`);
    changed = true;
  }
  for (const rel of ['etc/mdadm/mdadm.conf', 'etc/mdadm.conf']) {
    const text = t.read(rel);
    if (text === null) continue;
    const golden = text.split('\n').filter((l) => /^\s*ARRAY\s/.test(l));
    if (d.mdadmScan === null) {
      if (golden.length) t.warn(`/${rel} names arrays (${golden.length}) but the layout made none: left as it is`);
      continue;
    }
    const arrays = d.mdadmScan.split('\n').filter((l) => /^ARRAY\s/.test(l));
    const kept = text.split('\n').filter((l) => !/^\s*ARRAY\s/.test(l) && !/^\s+\S/.test(l) || !golden.length).filter((l, i, all) => !(i === all.length - 1 && l === ''));
    const next = `${[...kept, ...arrays].join('\n')}\n`;
    if (next !== text) {
      for (const a of parseArrays(golden.join('\n'))) replaced.add(a.uuid);
      t.write(rel, next, (t.lstat(rel)!.mode & 0o7777) || 0o644, `ARRAY lines are this node's arrays (${arrays.map((a) => a.split(/\s+/)[1]).join(', ')}), the golden's ${golden.length} replaced`);
      changed = true;
    }
  }
  for (const g of map.keys()) replaced.add(g);
  return { changed, replaced: [...replaced] };
}
