/**
 * Where the node's EFI system partition is, for its boot entry: the layout's ESP partition
 * (by GPT type or the dos type byte 0xef), its disk and partition number from sysfs, and
 * its mount point.
 */
import * as fs from 'node:fs';
import path from 'node:path';
import { ESP_GUID, partitionTypeCode, type Layout } from '../core/layout/model.ts';
import type { EspLocation } from './boot.ts';

/** The ESP of the layout: its disk and partition number (from sysfs, for efibootmgr) and mount point; null without one. */
export function espOf(layout: Layout, devices: Record<string, string>): EspLocation | null {
  for (const disk of layout.disks) {
    const part = disk.partitions.find((p) => partitionTypeCode(disk.table, p.type).toUpperCase() === ESP_GUID.toUpperCase() || (disk.table === 'dos' && partitionTypeCode('dos', p.type) === 'ef'));
    if (!part) continue;
    const mount = (layout.filesystems ?? []).find((f) => f.device === part.id)?.mount ?? '/boot/efi';
    const device = devices[part.id];
    try {
      const sys = fs.realpathSync(`/sys/class/block/${path.basename(fs.realpathSync(device))}`);
      return { disk: `/dev/${path.basename(path.dirname(sys))}`, partition: Number(fs.readFileSync(`${sys}/partition`, 'utf8')), mount };
    } catch {
      return { disk: null, partition: disk.partitions.indexOf(part) + 1, mount };
    }
  }
  return null;
}

