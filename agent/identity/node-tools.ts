/**
 * The identity step's uses of tools: on the boot environment (`mdadm --detail --scan`: the
 * arrays the layout made, for mdadm.conf) and in the target's chroot (the image's setfiles
 * labelling what the identity step wrote with the image's own SELinux policy; /.autorelabel
 * when that fails).
 */
import * as fs from 'node:fs';
import path from 'node:path';
import type { Layout } from '../../core/layout/model.ts';
import { haveTool, run } from '../../core/tools.ts';
import type { IdentityReport } from '../identity.ts';

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
