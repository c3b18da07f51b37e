/**
 * Golden device identifiers beyond filesystem UUIDs, mapped to the node's (issue 20): the deploy
 * knows the golden's only from the image's own files, and the node's from what it just made.
 *
 *   - PARTUUIDs: a golden fstab line `PARTUUID=X MOUNT` ties X to the layout filesystem mounted
 *     there; `root=PARTUUID=X` on a kernel command line to the filesystem at /, `resume=` to the
 *     only swap; X maps to that filesystem's partition on the node (blkid's PARTUUID).
 *   - md arrays: the golden's mdadm.conf ARRAY lines and the node's `mdadm --detail --scan` are
 *     paired by array name (name=HOST:NAME, /dev/md/NAME), then device (/dev/mdN), else when
 *     each has exactly one; the UUID (8:8:8:8, as rd.md.uuid= and /dev/disk/by-id/md-uuid- name
 *     it) maps to the node's.
 *   - LVM PVs: the golden's /etc/lvm/devices/system.devices entries (PVID=) are paired with the
 *     node's PVs by volume group order when the counts match one to one; the file itself is
 *     written anew from the node's PVs (IDTYPE=devname), since every entry named the golden's disks.
 *   - /dev/disk/by-id and by-path names: the golden disk is the layout disk whose captured serial
 *     the name carries (ata-MODEL_SERIAL, virtio-SERIAL, nvme-MODEL_SERIAL, scsi-...SERIAL), or the
 *     layout's only disk; its node name is the node disk's link of the same kind (wwn-, ata-, ...),
 *     with the golden's -partN suffix. by-path names map only with a single-disk layout.
 * Whatever cannot be paired is not guessed: the caller reports it as a warning.
 */
import type { NodeFilesystem } from './fstab.ts';

/** A layout disk on the node: its layout id, the golden's captured serial, and its /dev/disk/by-* links on the node (full paths). */
export interface NodeDisk {
  id: string;
  goldenSerial?: string | null;
  device: string;
  links: string[];
}

/** An LVM PV the layout made on the node (`pvs -o pv_name,pv_uuid,vg_name`). */
export interface NodePv {
  device: string;
  /** The PV UUID with its dashes, as pvs prints it. */
  uuid: string;
  vg: string;
}

export interface MdArray {
  device: string;
  name: string | null;
  uuid: string;
}

const COLON_UUID = /^[0-9a-f]{8}(:[0-9a-f]{8}){3}$/i;

/** The ARRAY lines of an mdadm.conf (or of `mdadm --detail --scan`). */
export function parseArrays(text: string): MdArray[] {
  const out: MdArray[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s*ARRAY\s+(\S+)(.*)$/.exec(line);
    if (!m) continue;
    const uuid = /\bUUID=(\S+)/i.exec(m[2])?.[1];
    if (!uuid || !COLON_UUID.test(uuid)) continue;
    const name = /\bname=(\S+)/.exec(m[2])?.[1]?.split(':').at(-1) ?? (m[1].startsWith('/dev/md/') ? m[1].slice(8) : null);
    out.push({ device: m[1], name, uuid: uuid.toLowerCase() });
  }
  return out;
}

/** Golden array UUID -> node array UUID (lower case, colon form); `unpaired` lists golden arrays with no node twin. */
export function mdUuidMap(goldenConf: string | null, nodeScan: string | null): { map: Map<string, string>; unpaired: string[] } {
  const map = new Map<string, string>();
  const golden = goldenConf ? parseArrays(goldenConf) : [];
  const node = nodeScan ? parseArrays(nodeScan) : [];
  const left = new Set(node);
  const pair = (g: MdArray, n: MdArray | undefined) => {
    if (!n) return false;
    left.delete(n);
    if (g.uuid !== n.uuid) map.set(g.uuid, n.uuid);
    return true;
  };
  const rest = golden.filter((g) => !(g.name && pair(g, [...left].find((n) => n.name === g.name))));
  const unpaired = rest.filter((g) => !pair(g, [...left].find((n) => n.device === g.device)));
  if (unpaired.length === 1 && left.size === 1) pair(unpaired.pop()!, [...left][0]);
  return { map, unpaired: unpaired.map((g) => g.uuid) };
}

/** Golden PARTUUID -> node PARTUUID, from the golden's fstab and kernel command lines. */
export function partuuidMap(goldenFstab: string | null, cmdlines: string[], filesystems: NodeFilesystem[]): Map<string, string> {
  const map = new Map<string, string>();
  const put = (golden: string, fs: NodeFilesystem | undefined) => {
    if (fs?.partuuid && !map.has(golden.toLowerCase()) && golden.toLowerCase() !== fs.partuuid.toLowerCase()) map.set(golden.toLowerCase(), fs.partuuid);
  };
  for (const line of (goldenFstab ?? '').split('\n')) {
    const m = /^\s*(?:PARTUUID=["']?([0-9a-f-]+)|\/dev\/disk\/by-partuuid\/([0-9a-f-]+))\S*\s+(\S+)\s+(\S+)/i.exec(line);
    if (!m) continue;
    const id = m[1] ?? m[2];
    put(id, m[4] === 'swap' ? (filesystems.filter((f) => f.spec.type === 'swap').length === 1 ? filesystems.find((f) => f.spec.type === 'swap') : undefined) : filesystems.find((f) => f.spec.mount === m[3]));
  }
  for (const text of cmdlines) {
    for (const m of text.matchAll(/\b(root|resume)=(?:PARTUUID=|\/dev\/disk\/by-partuuid\/)([0-9a-f-]+)/gi)) {
      const swaps = filesystems.filter((f) => f.spec.type === 'swap');
      put(m[2], m[1] === 'root' ? filesystems.find((f) => f.spec.mount === '/') : swaps.length === 1 ? swaps[0] : undefined);
    }
  }
  return map;
}

/** The PVIDs (32 characters, no dashes) a system.devices file lists. */
export function devicesFilePvids(text: string): string[] {
  return [...text.matchAll(/\bPVID=([0-9A-Za-z]{32})\b/g)].map((m) => m[1]);
}

/** The node's system.devices: the golden's header (VERSION) kept, one entry per PV the layout made. */
export function systemDevicesFor(golden: string, pvs: NodePv[], node: string): string {
  const version = /^VERSION=\S+$/m.exec(golden)?.[0] ?? 'VERSION=1.1.1';
  const entries = pvs.map((p) => `IDTYPE=devname IDNAME=${p.device} DEVNAME=${p.device} PVID=${p.uuid.replace(/-/g, '')}`);
  return `# LVM uses devices listed in this file.\n# Created by cloner for ${node}: this node's physical volumes (the golden's entries named its disks)\n${version}\n${entries.join('\n')}\n`;
}

/** Golden PVID -> node PVID (both without dashes), when the golden's file lists as many PVs as the node has. */
export function pvidMap(golden: string, pvs: NodePv[]): Map<string, string> | null {
  const ids = devicesFilePvids(golden);
  if (ids.length !== pvs.length) return null;
  // system.devices lists PVs in no defined order: pair them only when there is one of each.
  if (ids.length !== 1) return null;
  return new Map([[ids[0], pvs[0].uuid.replace(/-/g, '')]]);
}

const KINDS = ['wwn-', 'nvme-eui.', 'nvme-', 'ata-', 'scsi-', 'virtio-', 'usb-', 'mmc-'];
const kindOf = (name: string) => KINDS.find((k) => name.startsWith(k)) ?? name.split(/[-.]/)[0];

/**
 * The node's name for a golden /dev/disk/by-id or by-path name, or null (with why) when the
 * golden disk or a node link of that kind is not known.
 */
export function mapDiskLink(golden: string, disks: NodeDisk[]): { to: string | null; why?: string } {
  const m = /^\/dev\/disk\/(by-id|by-path)\/(.+?)(-part\d+)?$/.exec(golden);
  if (!m) return { to: null, why: 'not a disk link' };
  const [, dir, name, part = ''] = m;
  if (dir === 'by-id' && /^(md-|lvm-|dm-)/.test(name)) return { to: null, why: 'names an array or volume, not a disk' };
  let disk: NodeDisk | undefined;
  if (dir === 'by-id') {
    disk = disks.find((d) => d.goldenSerial && d.goldenSerial.length >= 4 && (name.endsWith(`_${d.goldenSerial}`) || name.endsWith(`-${d.goldenSerial}`) || name === d.goldenSerial || name.includes(d.goldenSerial)));
  }
  if (!disk && disks.length === 1) disk = disks[0];
  if (!disk) return { to: null, why: dir === 'by-path' ? 'a by-path name maps only with a single-disk layout' : 'no layout disk has the serial it names' };
  const own = disk.links.filter((l) => l.startsWith(`/dev/disk/${dir}/`) && !/-part\d+$/.test(l));
  const kind = kindOf(name);
  const same = own.filter((l) => kindOf(l.split('/').at(-1)!) === kind);
  const pick = same[0] ?? (dir === 'by-id' ? KINDS.map((k) => own.find((l) => l.split('/').at(-1)!.startsWith(k))).find(Boolean) : own[0]);
  if (!pick) return { to: null, why: `the node's disk ${disk.device} has no /dev/disk/${dir} name` };
  return { to: `${pick}${part}` };
}
