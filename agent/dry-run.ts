/**
 * `cloner-agent deploy --dry-run`: what a deploy of this node would do, phase by phase,
 * doing none of it: the plan is read from the server (no status is reported, nothing is
 * fetched beyond the plan and the attachment list), the layout is planned against this
 * machine's disks (every command printed, and the refusals the real run would make: a disk
 * in use, or no --force outside the cloner boot environment), then the files and identity
 * changes it would write, the scripts it would run, and whether it would reboot.
 */
import { API } from '../core/api/endpoints.ts';
import { formatBytes } from '../core/format.ts';
import { applyLayout, formatPlan, isClonerBootEnvironment } from '../core/layout/apply.ts';
import { checkLayoutSync } from '../core/layout/sync.ts';
import { AgentClient } from './client.ts';
import { localMacs, type DeployOptions } from './deploy.ts';
import { DeployError } from './errors.ts';

export async function dryRunDeploy(o: DeployOptions & { reboot: boolean }): Promise<void> {
  const say = (line: string) => o.log(`(dry run) ${line}`);
  const client = new AgentClient({ server: o.server, token: o.token, retryDeadlineMs: o.retryDeadlineMs, stallMs: o.stallMs });
  let node = o.node;
  if (!node) {
    for (const mac of localMacs()) {
      const found = await client.api.callOrNull(API.identify, { query: { mac } });
      if (found) {
        node = found.node;
        break;
      }
    }
    if (!node) throw new DeployError(`none of this machine's MACs (${localMacs().join(', ') || 'none'}) is a registered node`, 'register it: cloner nodes set --nodes NAME eth0.mac=..., or pass --node');
  }
  const plan = await client.api.call(API.deployPlan, { params: { name: node } });
  const attachments = await client.api.call(API.listAttachments, { params: { name: plan.image } });
  const has = (kind: string, item?: string) => attachments.some((a) => a.kind === kind && (item === undefined || a.item === item));
  say(`[identify] node ${node}: image ${plan.image} revision ${plan.revision.n}${plan.layout ? `, layout ${plan.layout.name} v${plan.layout.version}` : ', no layout'}`);
  const bootEnv = isClonerBootEnvironment();
  say(`[pre-scripts] ${has('script', 'pre') ? 'would run the image\'s pre-script on this machine' : 'none'}`);
  if (plan.layout) {
    const sync = await checkLayoutSync(plan.layout.layout, { devices: o.disks });
    if (sync.inSync) say(`[layout] the disks already carry layout ${plan.layout.name}: would keep their file systems and mount them under ${o.target}`);
    else {
      for (const d of sync.differences) say(`[layout] differs: ${d}`);
      const planned = await applyLayout(plan.layout.layout, { devices: o.disks, target: o.target, dryRun: true, force: o.force || bootEnv });
      say(`[layout] would erase ${planned.disks.map((d) => d.device).join(', ')} and run:`);
      o.log(formatPlan({ ...planned, refusals: [] }).trimEnd());
      for (const r of planned.refusals) say(`[layout] REFUSED: ${r.message}; the real run would stop here, before any pre-script (${r.hint})`);
    }
  } else say(`[layout] the image has no layout: would write into the directory ${o.target}`);
  const stats = plan.revision.stats as { files?: number; bytes?: number };
  say(`[restore] would sync ${stats.files ?? '?'} files, ${formatBytes(stats.bytes ?? 0)}, onto ${o.target}, fetching only chunks this machine lacks${o.checksum ? ' (reading every file already there)' : ''}`);
  const n = plan.node;
  say(`[identity] would write hostname ${n.hostname ?? n.name}, /etc/hosts, a new machine-id and random seed, fstab, the node's SSH host keys`);
  for (const i of n.interfaces) say(`[identity] interface ${i.name} ${i.mac}${i.ip ? ` ${i.ip}` : ' (DHCP)'}${i.gateway ? ` gateway ${i.gateway}` : ''}: a .link file pinning the name, network configuration in the image's format`);
  say(`[post-scripts] ${has('script', 'post') ? 'would run the image\'s post-script chrooted into the target' : 'none'}`);
  say(`[bootloader] ${plan.layout ? 'would install GRUB from the image and replace earlier EFI entries' : 'none (no layout)'}`);
  say(`[bios] ${has('bios') ? 'would apply the image\'s BIOS settings with syscfg' : 'none'}`);
  say(`[report] would report the result; on success the server sets netboot to local`);
  say(o.reboot ? 'would reboot' : 'would not reboot');
}
