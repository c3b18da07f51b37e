/**
 * The disk-layout half of new-image and update-disklayout: capture the layout of the
 * disks behind --root (minus --exclude-devices) and store it as the next version of its
 * name, or reuse the stored one when the name exists and no recapture is asked for.
 */
import { captureLayout } from '../core/layout/capture.ts';
import { formatSize, parseSize, type Layout } from '../core/layout/model.ts';
import type { Backend } from './backend.ts';

export interface LayoutRunOptions {
  backend: Backend;
  name: string;
  root: string;
  excludeDevices: string[];
  /** Capture even when the name exists (update-disklayout). */
  recapture?: boolean;
  quiet?: boolean;
}

export async function ensureLayout(o: LayoutRunOptions): Promise<{ name: string; version: number; reused: boolean; layout: Layout }> {
  if (!o.recapture && (await o.backend.layoutExists(o.name))) {
    const stored = await o.backend.loadLayout(o.name);
    if (!o.quiet) process.stdout.write(`disk layout ${o.name}: reusing version ${stored.version} (update-disklayout recaptures it)\n`);
    return { name: o.name, version: stored.version, reused: true, layout: stored.layout };
  }
  const captured = await captureLayout({ root: o.root, excludeDevices: o.excludeDevices });
  for (const w of captured.warnings) process.stderr.write(`warning: ${w}\n`);
  const { version } = await o.backend.saveLayout(o.name, captured.layout);
  if (!o.quiet) process.stdout.write(`disk layout ${o.name} version ${version}:\n${describeLayout(captured.layout)}`);
  return { name: o.name, version, reused: false, layout: captured.layout };
}

/** The drives and filesystems of a layout, a line each, for the user to check. */
export function describeLayout(layout: Layout): string {
  const lines: string[] = [];
  for (const disk of layout.disks) {
    const c = disk.captured;
    lines.push(`  drive ${disk.id}${c?.name ? ` (${c.name}${c.size ? `, ${formatSize(c.size)}` : ''}${c.model ? `, ${c.model}` : ''})` : ''}: ${disk.table}, ${disk.partitions.map((p) => `${p.id} ${p.size === 'grow' ? 'rest' : formatSize(parseSize(p.size))} ${p.type}`).join(', ')}`);
  }
  for (const raid of layout.raids ?? []) lines.push(`  raid ${raid.id}: RAID${raid.level} of ${raid.members.join(', ')}`);
  for (const vg of layout.volumeGroups ?? []) lines.push(`  volume group ${vg.name} on ${vg.pvs.join(', ')}: ${vg.lvs.map((lv) => `${lv.name} ${lv.size === 'grow' ? 'rest' : formatSize(parseSize(lv.size))}`).join(', ')}`);
  for (const fs of layout.filesystems ?? []) lines.push(`  filesystem ${fs.type} on ${fs.device}${fs.mount ? ` at ${fs.mount}` : ''}${fs.label ? ` (label ${fs.label})` : ''}`);
  return `${lines.join('\n')}\n`;
}
