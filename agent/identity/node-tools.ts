/**
 * The identity step's uses of tools: on the boot environment (`mdadm --detail --scan`: the
 * arrays the layout made, for mdadm.conf; `pvs`: the PVs made, for LVM's devices file; blkid's
 * PARTUUID of each filesystem's partition; the /dev/disk/by-id|by-path links of each layout
 * disk, read from the directories udev keeps) and in the target's chroot (the image's setfiles
 * labelling what the identity step wrote with the image's own SELinux policy; /.autorelabel
 * when that fails).
 */
import * as fs from 'node:fs';
import path from 'node:path';
import type { Layout } from '../../core/layout/model.ts';
import { haveTool, run } from '../../core/tools.ts';
import type { IdentityReport, NodeDisk, NodeFilesystem, NodePv } from '../identity.ts';

/** ARRAY lines of the arrays assembled on this node, when the layout has arrays. */
export async function mdadmScan(layout: Layout | null | undefined, warn: (m: string) => void): Promise<string | null> {
  if (!layout?.raids?.length) return null;
  if (!haveTool('mdadm')) {
    warn('mdadm is not on this node: mdadm.conf left with the golden\'s arrays');
    return null;
  }
  return (await run(['mdadm', '--detail', '--scan'])).stdout;
}

/** Labels the files the identity step wrote with the image's policy (its setfiles, chrooted); /.autorelabel if that fails. */
export async function labelWithPolicy(target: string, report: IdentityReport, warn: (m: string) => void, log: (m: string) => void): Promise<void> {
  const s = report.selinuxToLabel;
  if (!s) return;
  try {
    await run(['chroot', target, s.setfiles, '-F', s.fileContexts, ...s.files]);
    log(`identity: ${s.files.length} files labelled with the image's SELinux policy (setfiles)`);
    report.changes.push(...s.files.map((file) => ({ file, change: "SELinux label from the image's policy (setfiles)" })));
  } catch (err) {
    fs.writeFileSync(path.join(target, '.autorelabel'), '');
    report.changes.push({ file: '/.autorelabel', change: 'created: the node relabels at its first boot' });
    warn(`the image's setfiles could not label ${s.files.length} identity files (${(err as Error).message.slice(0, 200)}): /.autorelabel makes the node relabel at its first boot`);
  }
}

/** The PARTUUID of each filesystem's partition (blkid; none for arrays, volumes, whole disks). */
export async function withPartuuids(filesystems: NodeFilesystem[] | null): Promise<NodeFilesystem[] | null> {
  if (!filesystems || !haveTool('blkid')) return filesystems;
  return Promise.all(filesystems.map(async (f) => {
    const partuuid = await run(['blkid', '-s', 'PARTUUID', '-o', 'value', f.device]).then((r) => r.stdout.trim(), () => '');
    return partuuid ? { ...f, partuuid } : f;
  }));
}

/** The PVs of the layout's volume groups on this node, or null without volume groups. */
export async function nodePvs(layout: Layout | null | undefined, warn: (m: string) => void): Promise<NodePv[] | null> {
  const vgs = new Set((layout?.volumeGroups ?? []).map((v) => v.name));
  if (!vgs.size) return null;
  if (!haveTool('pvs')) {
    warn('pvs is not on this node: LVM\'s devices file cannot name this node\'s PVs (removed)');
    return null;
  }
  const out = (await run(['pvs', '--noheadings', '--separator', '|', '-o', 'pv_name,pv_uuid,vg_name'])).stdout;
  return out.split('\n').map((l) => l.trim().split('|')).filter((f) => f.length === 3 && vgs.has(f[2])).map(([device, uuid, vg]) => ({ device, uuid, vg }));
}

/**
 * Each layout disk on this node (`devices`: layout id -> device) with its /dev/disk/by-id and
 * by-path links (full paths under /dev/disk, whatever `linksRoot` is) and the golden's captured serial.
 */
export function nodeDisks(layout: Layout | null | undefined, devices: Record<string, string>, linksRoot = '/dev/disk'): NodeDisk[] {
  const real = (p: string) => {
    try {
      return fs.realpathSync(p);
    } catch {
      return null;
    }
  };
  const links: Array<[string, string]> = [];
  for (const dir of ['by-id', 'by-path']) {
    let names: string[] = [];
    try {
      names = fs.readdirSync(path.join(linksRoot, dir));
    } catch {
      continue;
    }
    for (const n of names.slice(0, 4096)) {
      const to = real(path.join(linksRoot, dir, n));
      if (to) links.push([`/dev/disk/${dir}/${n}`, to]);
    }
  }
  return (layout?.disks ?? []).filter((d) => devices[d.id]).map((d) => {
    const dev = real(devices[d.id]) ?? devices[d.id];
    return { id: d.id, goldenSerial: d.captured?.serial ?? d.match?.serial ?? null, device: devices[d.id], links: links.filter(([, to]) => to === dev).map(([l]) => l).sort() };
  });
}
