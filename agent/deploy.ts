/**
 * `cloner-agent deploy`: images the node it runs on (normally from the cloner boot
 * environment, whose kernel command line names the server, the node and a deploy token).
 *
 * Phases, each reported to the server (GET /v1/deploys shows them):
 *   identify     the node by name (--node) or by this machine's MACs; fetch the plan
 *   pre-scripts  the image's pre-script, on the boot environment
 *   layout       disks already carrying the layout keep their file systems (a re-deploy
 *                then copies only what changed); otherwise partition, RAID/LVM, mkfs;
 *                the file systems are mounted under --target
 *   restore      sync the tree onto the target (core/tree/sync.ts): only chunks the node
 *                lacks are fetched, each BLAKE3-checked; a network cut is retried with
 *                backoff and resumes
 *   identity     hostname, network, machine-id, SSH host keys, fstab (agent/identity.ts)
 *   post-scripts the image's post-script, chrooted into the target
 *   bootloader   GRUB and EFI boot entries when the layout and image have them (agent/boot.ts)
 *   bios         the image's BIOS settings through Intel's syscfg, when present
 *   report       the result; on success the server sets netboot to local
 * Any failure is reported with its phase and leaves netboot as it was, so the node tries
 * again at its next boot. The target is unmounted whatever happens.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ClonerError } from '../core/errors.ts';
import { formatBytes } from '../core/format.ts';
import { applyLayout, fstabFor, mountSteps, runSteps, unmountPlan, type ApplyPlan } from '../core/layout/apply.ts';
import { ESP_GUID, partitionTypeCode, type Layout } from '../core/layout/model.ts';
import { checkLayoutSync } from '../core/layout/sync.ts';
import { run } from '../core/layout/probe.ts';
import type { DeployPhase, DeployStatus } from '../core/nodes/deploy-state.ts';
import type { NodeRecord } from '../core/nodes/registry.ts';
import { getJsonObject } from '../core/store/objects.ts';
import { haveTool, toolPath } from '../core/tools.ts';
import type { ChunkerParams } from '../core/chunker/fastcdc.ts';
import { deployKeepList } from '../core/tree/select.ts';
import type { Revision } from '../core/tree/images.ts';
import { newSyncProgress, syncTree } from '../core/tree/sync.ts';
import { AgentClient } from './client.ts';
import { applyIdentity, IMAGE_FILES_DIR, writeTargetFile } from './identity.ts';
import { installBootloader, NODE_STATE_FILE, type DeployedRecord, type EspLocation } from './boot.ts';

export class DeployError extends ClonerError {
  override readonly code = 'DEPLOY_FAILED';
}

export interface DeployOptions {
  server: string;
  token?: string;
  node?: string;
  /** Only these disks may be written (paths); others are never touched. */
  disks?: string[];
  target: string;
  /** Partition even outside the cloner boot environment (needed with --disks on a running system). */
  force?: boolean;
  /** Read every file already on the node instead of trusting size + mtime. */
  checksum?: boolean;
  retryDeadlineMs: number;
  stallMs: number;
  progressIntervalMs: number;
  log: (line: string) => void;
}

export interface DeployPlan {
  node: NodeRecord;
  image: string;
  revision: Revision;
  layout: { name: string; version: number; layout: Layout } | null;
  chunker: ChunkerParams;
}

export interface DeploySummary {
  node: string;
  image: string;
  revision: number;
  seconds: number;
  fetchedBytes: number;
  seededBytes: number;
  keptFiles: number;
  writtenFiles: number;
  layoutKept: boolean;
  warnings: string[];
}

/** This machine's MAC addresses (not loopback, not all-zero). */
export function localMacs(): string[] {
  const out: string[] = [];
  for (const name of fs.readdirSync('/sys/class/net').sort()) {
    try {
      const mac = fs.readFileSync(`/sys/class/net/${name}/address`, 'utf8').trim().toLowerCase();
      if (/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/.test(mac) && mac !== '00:00:00:00:00:00') out.push(mac);
    } catch {
      // an interface that went away
    }
  }
  return [...new Set(out)];
}

/** Environment of pre- and post-scripts: the node, its image and each interface. */
function scriptEnv(plan: DeployPlan, target: string, server: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    HOME: '/root',
    LANG: 'C.UTF-8',
    CLONER_NODE: plan.node.name,
    CLONER_HOSTNAME: plan.node.hostname ?? plan.node.name,
    CLONER_IMAGE: plan.image,
    CLONER_REVISION: String(plan.revision.n),
    CLONER_SERVER: server,
    CLONER_TARGET: target,
    CLONER_INTERFACES: plan.node.interfaces.map((i) => i.name).join(' '),
  };
  for (const i of plan.node.interfaces) {
    const key = i.name.toUpperCase().replace(/[^A-Z0-9]/g, '_');
    env[`CLONER_IF_${key}_MAC`] = i.mac;
    if (i.ip) env[`CLONER_IF_${key}_IP`] = i.ip;
    if (i.gateway) env[`CLONER_IF_${key}_GATEWAY`] = i.gateway;
  }
  return env;
}

/** Runs a script (its own #! line, else /bin/sh), its output going to the log line by line. */
function runScript(argv: string[], env: NodeJS.ProcessEnv, log: (line: string) => void, what: string, timeoutMs = 30 * 60_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0], argv.slice(1), { env, stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs, killSignal: 'SIGKILL' });
    let pending = '';
    const onData = (data: Buffer) => {
      const lines = (pending + data.toString('utf8')).split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) log(`${what}: ${line}`);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('error', (err) => reject(new DeployError(`${what} could not start: ${err.message}`, 'check the script\'s #! line')));
    child.on('close', (code, signal) => {
      if (pending) log(`${what}: ${pending}`);
      if (code === 0) resolve();
      else reject(new DeployError(`${what} failed (${signal ? `killed by ${signal}` : `exit ${code}`})`, 'see its output above; fix it with: cloner script --image IMAGE --type pre|post --set FILE'));
    });
  });
}

const withShebang = (body: Buffer) => (body.subarray(0, 2).toString() === '#!' ? body : Buffer.concat([Buffer.from('#!/bin/sh\n'), body]));

/** /dev, /proc and /sys of the boot environment inside the target, for chrooted work. */
export async function withChrootMounts<T>(target: string, work: () => Promise<T>): Promise<T> {
  const mounted: string[] = [];
  try {
    for (const [what, args] of [['dev', ['--bind', '/dev']], ['proc', ['-t', 'proc', 'proc']], ['sys', ['-t', 'sysfs', 'sysfs']], ['sys/firmware/efi/efivars', ['-t', 'efivarfs', 'efivarfs']]] as const) {
      const where = path.join(target, what);
      if (what.includes('efivars') && !fs.existsSync('/sys/firmware/efi/efivars')) continue;
      const st = fs.lstatSync(where, { throwIfNoEntry: false });
      if (!st) fs.mkdirSync(where, { recursive: true });
      else if (!st.isDirectory()) throw new DeployError(`${where} is not a directory`, 'the image\'s /dev, /proc and /sys must be directories');
      await run(['mount', ...args, where]);
      mounted.push(where);
    }
    return await work();
  } finally {
    for (const where of mounted.reverse()) await run(['umount', '-l', where]).catch(() => {});
  }
}

export async function deploy(o: DeployOptions): Promise<DeploySummary> {
  const started = performance.now();
  const warnings: string[] = [];
  const warn = (message: string) => {
    warnings.push(message);
    o.log(`warning: ${message}`);
  };
  const client = new AgentClient({
    server: o.server,
    token: o.token,
    retryDeadlineMs: o.retryDeadlineMs,
    stallMs: o.stallMs,
    onRetry: (what, err, n, delay) => o.log(`retry ${n} of ${what} in ${(delay / 1000).toFixed(1)} s: ${err.message}`),
  });
  let phase: DeployPhase = 'identify';
  let nodeName: string | null = o.node ?? null;
  let startedAt = new Date().toISOString();
  let status: Omit<DeployStatus, 'phase'> = {};
  const report = async (next: DeployPhase, extra: Omit<DeployStatus, 'phase'> = {}) => {
    phase = next;
    status = { ...status, ...extra };
    if (!nodeName) return;
    // A lost report is not worth failing the deploy for: the next one carries the state.
    await client.store.requestJson(`/v1/nodes/${nodeName}/deploy/status`, 'POST', { phase, started: startedAt, ...status }).catch((err: Error) => o.log(`(status report failed: ${err.message})`));
  };
  const enter = async (next: DeployPhase, message: string) => {
    o.log(`[${next}] ${message}`);
    await report(next, { message });
  };

  let plan: DeployPlan | null = null;
  let mounts: ApplyPlan['mounts'] = [];
  try {
    // 1. Who am I, and what am I to get?
    if (!nodeName) {
      for (const mac of localMacs()) {
        const found = await client.jsonOrNull<{ node: string }>(`/v1/identify?mac=${encodeURIComponent(mac)}`);
        if (found) {
          nodeName = found.node;
          break;
        }
      }
      if (!nodeName) throw new DeployError(`none of this machine's MACs (${localMacs().join(', ') || 'none'}) is a registered node`, 'register it: cloner nodes set --nodes NAME eth0.mac=..., or pass --node');
    }
    startedAt = new Date().toISOString();
    await enter('identify', `node ${nodeName}`);
    plan = await client.json<DeployPlan>(`/v1/nodes/${nodeName}/deploy`);
    status = { image: plan.image, revision: plan.revision.n };
    o.log(`image ${plan.image} revision ${plan.revision.n}${plan.layout ? `, layout ${plan.layout.name} v${plan.layout.version}` : ', no layout'}`);
    const attachments = await client.json<Array<{ kind: string; item: string }>>(`/v1/images/${plan.image}/attachments`);
    const env = scriptEnv(plan, o.target, o.server);
    const workDir = fs.mkdtempSync(path.join(tmpdir(), 'cloner-agent-'));
    try {
      // 2. Pre-script, on the boot environment.
      if (attachments.some((a) => a.kind === 'script' && a.item === 'pre')) {
        await enter('pre-scripts', 'running the pre-script');
        const body = await client.bytesOrNull(`/v1/images/${plan.image}/attachments/script/pre`);
        if (body) {
          const file = path.join(workDir, 'pre-script');
          fs.writeFileSync(file, withShebang(body), { mode: 0o700 });
          await runScript([file], env, o.log, 'pre-script');
        }
      }

      // 3. Disks.
      fs.mkdirSync(o.target, { recursive: true });
      let fstab: string | null = null;
      let layoutKept = false;
      let applied: ApplyPlan | null = null;
      let devices: Record<string, string> = {};
      if (plan.layout) {
        const layout = plan.layout.layout;
        await enter('layout', `checking disks against layout ${plan.layout.name}`);
        const sync = await checkLayoutSync(layout, { devices: o.disks });
        if (sync.inSync) {
          layoutKept = true;
          devices = sync.devices;
          o.log('the disks already carry the layout: keeping their file systems');
          const filesystems = (layout.filesystems ?? []).map((f) => ({ ...f, path: sync.devices[f.device], uuid: sync.uuids[f.device] }));
          const { steps, mounts: planned } = mountSteps(filesystems, o.target);
          mounts = planned;
          await runSteps(steps, o.log);
          fstab = fstabFor(filesystems);
        } else {
          for (const d of sync.differences) o.log(`  differs: ${d}`);
          await report('layout', { message: 'partitioning and formatting' });
          applied = await applyLayout(layout, { devices: o.disks, target: o.target, force: o.force, log: o.log });
          mounts = applied.mounts;
          fstab = applied.fstab;
          devices = applied.devices;
        }
      } else if (!fs.lstatSync(o.target).isDirectory()) {
        throw new DeployError(`${o.target} is not a directory`, 'give --target an existing directory (the image has no layout)');
      }

      // 4. The tree.
      await enter('restore', `syncing the tree onto ${o.target}`);
      const options = plan.revision.options ? ((await getJsonObject(client.store, plan.revision.options)) as { excludePaths?: string[] }) : {};
      const progress = newSyncProgress();
      const restoreStarted = performance.now();
      const tick = setInterval(() => {
        const secs = (performance.now() - restoreStarted) / 1000;
        const rate = progress.fetchedBytes / Math.max(secs, 0.001);
        o.log(`restore: ${progress.phase}, ${formatBytes(progress.bytes)} of ${formatBytes(progress.totalBytes)} in place, ${formatBytes(progress.fetchedBytes)} fetched (${formatBytes(rate)}/s), ${formatBytes(progress.scannedBytes)} scanned`);
        void report('restore', { message: `${progress.phase}`, bytes: progress.bytes, totalBytes: progress.totalBytes, fetchedBytes: progress.fetchedBytes, rate: Math.round(rate) });
      }, o.progressIntervalMs);
      try {
        await syncTree({ reader: client.store, tree: plan.revision.tree, target: o.target, chunker: plan.chunker, keep: deployKeepList(options.excludePaths), seedDirs: [`/${IMAGE_FILES_DIR}`], checksum: o.checksum, onWarning: warn, progress });
      } finally {
        clearInterval(tick);
      }
      o.log(`restore: ${progress.files} files written, ${progress.keptFiles} already right, ${progress.deleted} removed; fetched ${formatBytes(progress.fetchedBytes)}, reused ${formatBytes(progress.seededBytes)} already on the node`);
      await report('restore', { bytes: progress.bytes, totalBytes: progress.totalBytes, fetchedBytes: progress.fetchedBytes });

      // 5. Who this node is.
      await enter('identity', `hostname ${plan.node.hostname ?? plan.node.name}, ${plan.node.interfaces.length} interfaces`);
      const hostKeys = fs.existsSync(path.join(o.target, 'etc/ssh')) ? await nodeHostKeys(client, plan.node.name, workDir, warn) : null;
      const identity = applyIdentity({ target: o.target, node: plan.node, fstab, hostKeys });
      identity.warnings.forEach(warn);
      o.log(`identity: ${identity.network ?? 'no'} network configuration; wrote ${identity.changed.filter((c) => !c.startsWith('-')).length} files, removed ${identity.changed.filter((c) => c.startsWith('-')).length}`);

      // What fix-efiboot (and an admin) later find on the node.
      const efiLabel = `cloner ${plan.image}`;
      writeTargetFile(o.target, NODE_STATE_FILE, `${JSON.stringify({ node: plan.node.name, image: plan.image, revision: plan.revision.n, efiLabel, at: new Date().toISOString() } satisfies DeployedRecord, null, 2)}\n`);

      // 6. Post-script, inside the new system.
      if (attachments.some((a) => a.kind === 'script' && a.item === 'post')) {
        await enter('post-scripts', 'running the post-script chrooted into the target');
        const body = await client.bytesOrNull(`/v1/images/${plan.image}/attachments/script/post`);
        if (body) {
          const inTarget = `/.cloner-post-script-${randomBytes(4).toString('hex')}`;
          fs.writeFileSync(path.join(o.target, inTarget), withShebang(body), { mode: 0o700, flag: 'wx' });
          try {
            await withChrootMounts(o.target, () => runScript(['chroot', o.target, inTarget], { ...env, CLONER_TARGET: '/' }, o.log, 'post-script'));
          } finally {
            fs.rmSync(path.join(o.target, inTarget), { force: true });
          }
        }
      }

      // 7. Boot entries.
      if (plan.layout) {
        await enter('bootloader', 'boot loader and EFI entries');
        const esp = espOf(plan.layout.layout, devices);
        const bootWarnings = await withChrootMounts(o.target, () => installBootloader({ target: o.target, layout: plan!.layout!.layout, applied, esp, label: efiLabel, log: o.log, disks: o.disks }));
        bootWarnings.forEach(warn);
      }

      // 8. BIOS settings.
      const bios = attachments.filter((a) => a.kind === 'bios');
      if (bios.length) {
        await enter('bios', `${bios.length} BIOS settings file(s)`);
        const syscfg = toolPath('syscfg');
        if (!syscfg) warn(`the image has BIOS settings (${bios.map((b) => b.item).join(', ')}) but syscfg is not on this node; skipped`);
        else {
          for (const b of bios) {
            const body = await client.bytesOrNull(`/v1/images/${plan.image}/attachments/bios/${b.item}`);
            if (!body) continue;
            const file = path.join(workDir, `bios-${b.item}.ini`);
            fs.writeFileSync(file, body, { mode: 0o600 });
            await runScript([syscfg, '/r', file, '/b'], process.env, o.log, `syscfg ${b.item}`);
          }
        }
      }

      // 9. Done: flush, unmount, tell the server.
      await run(['sync']);
      await unmountPlan({ mounts });
      mounts = [];
      const seconds = (performance.now() - started) / 1000;
      await enter('report', 'telling the server');
      await client.json(`/v1/nodes/${plan.node.name}/deploy/result`, 'POST', { ok: true, phase: 'done', image: plan.image, revision: plan.revision.n, seconds: Math.round(seconds * 10) / 10, fetchedBytes: progress.fetchedBytes, message: warnings.length ? `${warnings.length} warning(s): ${warnings[0]}`.slice(0, 2000) : undefined });
      o.log(`[done] ${plan.node.name} has ${plan.image} revision ${plan.revision.n} (${seconds.toFixed(1)} s)`);
      return { node: plan.node.name, image: plan.image, revision: plan.revision.n, seconds, fetchedBytes: progress.fetchedBytes, seededBytes: progress.seededBytes, keptFiles: progress.keptFiles, writtenFiles: progress.files, layoutKept, warnings };
    } finally {
      fs.rmSync(workDir, { recursive: true, force: true });
    }
  } catch (err) {
    const message = (err as Error).message;
    o.log(`[failed] in ${phase}: ${message}`);
    if (nodeName) {
      await client.store
        .requestJson(`/v1/nodes/${nodeName}/deploy/result`, 'POST', { ok: false, phase, message: message.slice(0, 2000), image: plan?.image, revision: plan?.revision.n })
        .catch((e: Error) => o.log(`(could not report the failure: ${e.message})`));
    }
    throw err;
  } finally {
    if (mounts.length) await unmountPlan({ mounts });
  }
}

/** The ESP of the layout: its disk and partition number (from sysfs, for efibootmgr) and mount point; null without one. */
function espOf(layout: Layout, devices: Record<string, string>): EspLocation | null {
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

/** The node's SSH host keys: those the server keeps, or new ones made now and kept there. */
async function nodeHostKeys(client: AgentClient, node: string, workDir: string, warn: (m: string) => void): Promise<Record<string, Buffer> | null> {
  const decode = (files: Record<string, string>) => Object.fromEntries(Object.entries(files).map(([name, b64]) => [name, Buffer.from(b64, 'base64')]));
  const kept = await client.jsonOrNull<{ files: Record<string, string> }>(`/v1/nodes/${node}/hostkeys`);
  if (kept) return decode(kept.files);
  if (!haveTool('ssh-keygen')) {
    warn('ssh-keygen is not on this node: no SSH host keys made');
    return null;
  }
  const prefix = path.join(workDir, 'hostkeys');
  fs.mkdirSync(path.join(prefix, 'etc/ssh'), { recursive: true });
  await run(['ssh-keygen', '-A', '-f', prefix]);
  const files: Record<string, string> = {};
  for (const name of fs.readdirSync(path.join(prefix, 'etc/ssh'))) if (/^ssh_host_[a-z0-9]+_key(\.pub)?$/.test(name)) files[name] = fs.readFileSync(path.join(prefix, 'etc/ssh', name)).toString('base64');
  try {
    await client.json(`/v1/nodes/${node}/hostkeys`, 'PUT', { files });
    return decode(files);
  } catch (err) {
    // Another deploy of this node stored its keys first: use those.
    const again = await client.jsonOrNull<{ files: Record<string, string> }>(`/v1/nodes/${node}/hostkeys`);
    if (again) return decode(again.files);
    throw err;
  }
}
