/**
 * The disk-layout half of new-image and update-disklayout: capture the layout of the
 * disks behind --root (minus --exclude-devices) and store it as the next version of its
 * name, or reuse the stored one when the name exists and no recapture is asked for.
 */
import { captureLayout } from '../core/layout/capture.ts';
import { formatSize, layoutMounts, parseSize, type Layout } from '../core/layout/model.ts';
import type { Backend } from './backend.ts';

export interface LayoutRunOptions {
  backend: Backend;
  name: string;
  root: string;
  excludeDevices: string[];
  /** Capture even when the name exists (update-disklayout). */
  recapture?: boolean;
  /** Capture but never store (new-image --dry-run). */
  dryRun?: boolean;
  /** Store later, with save() (after the user said yes). */
  quiet?: boolean;
}

export interface LayoutChoice {
  name: string;
  reused: boolean;
  layout: Layout;
  /** Stores a newly captured layout (a no-op for a reused one); returns its version. */
  save(): Promise<number>;
}

/**
 * The layout for an image: the stored one when the name exists (no recapture), else the
 * one captured now. With `quiet` the caller stores it (save) once confirmed; otherwise it
 * is stored at once and described.
 */
export async function ensureLayout(o: LayoutRunOptions): Promise<LayoutChoice> {
  if (!o.recapture && (await o.backend.layoutExists(o.name))) {
    const stored = await o.backend.loadLayout(o.name);
    process.stdout.write(`disk layout ${o.name}: reusing version ${stored.version} (update-disklayout recaptures it)\n`);
    return { name: o.name, reused: true, layout: stored.layout, save: async () => stored.version };
  }
  const captured = await captureLayout({ root: o.root, excludeDevices: o.excludeDevices });
  for (const w of captured.warnings) process.stderr.write(`warning: ${w}\n`);
  let saved: number | null = null;
  const choice: LayoutChoice = {
    name: o.name,
    reused: false,
    layout: captured.layout,
    save: async () => {
      if (o.dryRun) return 0;
      saved ??= (await o.backend.saveLayout(o.name, captured.layout)).version;
      process.stdout.write(`disk layout ${o.name} version ${saved} stored\n`);
      return saved;
    },
  };
  if (!o.quiet) {
    process.stdout.write(`disk layout ${o.name}:\n${describeLayout(captured.layout)}`);
    await choice.save();
  }
  return choice;
}

/** Shows the drives and directories a new image will take and asks "Is this correct? [y/N]" (when given `ask`). */
export async function confirmPlan(o: { root: string; layout?: LayoutChoice; excludePaths: string[]; ask?: (q: string) => Promise<string> }): Promise<boolean> {
  const lines = [];
  if (o.layout) lines.push(`drives (disk layout ${o.layout.name}${o.layout.reused ? ', stored' : ', captured now'}):`, describeLayout(o.layout.layout).trimEnd());
  const mounts = (o.layout ? layoutMounts(o.layout.layout) : []).sort();
  lines.push(`directories: ${o.root}${mounts.filter((m) => m !== '/').map((m) => `, ${m} (own filesystem)`).join('')}`);
  if (o.excludePaths.length) lines.push(`left out: ${o.excludePaths.join(', ')}`);
  process.stdout.write(`${lines.join('\n')}\n`);
  return o.ask ? /^y(es)?$/i.test(await o.ask('Is this correct? [y/N] ')) : true;
}

/** The drives and filesystems of a layout, a line each, for the user to check. */
export function describeLayout(layout: Layout): string {
  const lines: string[] = [];
  for (const disk of layout.disks) {
    const c = disk.captured;
    lines.push(`  drive ${disk.id}${c?.name ? ` (${c.name}${c.size ? `, ${formatSize(c.size)}` : ''}${c.model ? `, ${c.model}` : ''})` : ''}: ${disk.table === 'none' ? 'a filesystem on the whole disk' : `${disk.table}, `}${disk.partitions.map((p) => `${p.id} ${p.size === 'grow' ? 'rest' : formatSize(parseSize(p.size))} ${p.type}`).join(', ')}`);
  }
  for (const raid of layout.raids ?? []) lines.push(`  raid ${raid.id}: RAID${raid.level} of ${raid.members.join(', ')}`);
  for (const vg of layout.volumeGroups ?? []) lines.push(`  volume group ${vg.name} on ${vg.pvs.join(', ')}: ${vg.lvs.map((lv) => `${lv.name} ${lv.size === 'grow' ? 'rest' : formatSize(parseSize(lv.size))}`).join(', ')}`);
  for (const fs of layout.filesystems ?? []) {
    const subvolumes = (fs.subvolumes ?? []).map((sv) => `${sv.path}${sv.mount ? ` at ${sv.mount}` : ''}`).join(', ');
    lines.push(`  filesystem ${fs.type} on ${fs.device}${fs.mount ? ` at ${fs.mount}` : ''}${fs.label ? ` (label ${fs.label})` : ''}${subvolumes ? `, subvolumes ${subvolumes}` : ''}`);
  }
  return `${lines.join('\n')}\n`;
}
