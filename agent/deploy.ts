/**
 * `cloner-agent deploy`: images the node it runs on (normally from the cloner boot
 * environment, whose kernel command line names the server, the node and a deploy token).
 *
 * Phases, each reported to the server (GET /v1/deploys shows them), each a function below:
 *   identify     the node by name (--node) or by this machine's MACs; fetch the plan
 *   pre-scripts  the image's pre-script, on the boot environment (agent/scripts.ts)
 *   layout       disks already carrying the layout keep their file systems (a re-deploy
 *                then copies only what changed); otherwise partition, RAID/LVM, mkfs;
 *                the file systems are mounted under --target
 *   restore      sync the tree onto the target (core/tree/sync.ts): only chunks the node
 *                lacks are fetched, each BLAKE3-checked; a network cut is retried with
 *                backoff and resumes. In multicast mode (agent/multicast.ts) the chunks
 *                it lacks come from a multicast session, the rest over unicast
 *   identity     hostname, network, machine-id, SSH host keys, fstab (agent/identity.ts)
 *   post-scripts the image's post-script, chrooted into the target
 *   bootloader   GRUB and EFI boot entries when the layout and image have them (agent/boot.ts);
 *                a re-deploy keeps the initramfs and GRUB files the last one made when
 *                nothing they are made from changed (agent/boot-made.ts)
 *   bios         the image's BIOS settings through Intel's syscfg, when present
 *   report       the result; on success the server sets netboot to local
 * Any failure is reported with its phase and leaves netboot as it was, so the node tries
 * again at its next boot. The target is unmounted whatever happens.
 * Work is moved off the critical path where its result is not needed yet: the node's SSH
 * host keys are asked for (and made, if the server keeps none) while the layout and restore
 * run (agent/hostkeys.ts), and the restored tree is written back to disk from the end of the
 * restore's data phase on, beside the rest (agent/writeback.ts); the state kept in between is DeployRun
 * (agent/deploy-run.ts).
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { API } from '../core/api/endpoints.ts';
import { NODE_STATE_FILE, type DeployedRecord } from '../core/boot/efi.ts';
import { formatBytes } from '../core/format.ts';
import { EtaEstimator, formatDuration } from '../core/eta.ts';
import { applyLayout, fstabFor, isClonerBootEnvironment, mountSteps, runSteps, unmountPlan, type ApplyPlan } from '../core/layout/apply.ts';
import { checkLayoutSync } from '../core/layout/sync.ts';
import type { DeployPlan } from '../core/nodes/deploy.ts';
import { getJsonObject } from '../core/store/objects.ts';
import { run, toolPath } from '../core/tools.ts';
import { deployKeepList } from '../core/tree/select.ts';
import { newSyncProgress, syncTree, type SyncProgress } from '../core/tree/sync.ts';
import { installBootloader } from './boot.ts';
import { BootMade } from './boot-made.ts';
import { initramfsInputs } from './initramfs.ts';
import { labelWithPolicy, mdadmScan, nodeDisks, nodePvs, withPartuuids } from './identity/node-tools.ts';
import { MulticastReader } from './multicast.ts';
import { DeployError } from './errors.ts';
import { espOf } from './esp.ts';
import { HostKeys } from './hostkeys.ts';
import { applyIdentity, IMAGE_FILES_DIR, resultLists, writeTargetFile, type IdentityChange, type NodeFilesystem } from './identity.ts';
import { runScript, scriptEnv, withChrootMounts, withShebang } from './scripts.ts';
import { DeployRun, localMacs, type DeployOptions } from './deploy-run.ts';

export { DeployError, localMacs };
export type { DeployOptions, DeployPlan };

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
  /** What the identity step changed on the node. */
  changes: IdentityChange[];
}

/** What the layout phase leaves: the fstab to write, the devices by layout id, what was applied. */
interface Disks {
  fstab: string | null;
  /** The layout's filesystems on this node (their fstab entries are rewritten), or null without a layout. */
  filesystems: NodeFilesystem[] | null;
  devices: Record<string, string>;
  applied: ApplyPlan | null;
  kept: boolean;
}

/** identify: who this machine is (by --node or its MACs), and what it is to get. */
async function identify(r: DeployRun): Promise<DeployPlan> {
  if (!r.node) {
    for (const mac of localMacs()) {
      const found = await r.client.api.callOrNull(API.identify, { query: { mac } });
      if (found) {
        r.node = found.node;
        break;
      }
    }
    if (!r.node) throw new DeployError(`none of this machine's MACs (${localMacs().join(', ') || 'none'}) is a registered node`, 'register it: cloner nodes set --nodes NAME eth0.mac=..., or pass --node');
  }
  await r.enter('identify', `node ${r.node}`);
  const plan = await r.client.api.call(API.deployPlan, { params: { name: r.node } });
  r.plan = plan;
  await r.report('identify', { image: plan.image, revision: plan.revision.n });
  r.log(`image ${plan.image} revision ${plan.revision.n}${plan.layout ? `, layout ${plan.layout.name} v${plan.layout.version}` : ', no layout'}`);
  r.attachments = await r.client.api.call(API.listAttachments, { params: { name: plan.image } });
  return plan;
}

/**
 * Checks before actions: outside the cloner boot environment, a deploy that would partition
 * needs --force, and is refused here, before the pre-script runs (the layout phase checks
 * again). Disks that already carry the layout are not partitioned and need no --force.
 */
async function refuseFirst(r: DeployRun, plan: DeployPlan): Promise<void> {
  if (!plan.layout || r.o.force || isClonerBootEnvironment()) return;
  if ((await checkLayoutSync(plan.layout.layout, { devices: r.o.disks })).inSync) return;
  throw new DeployError(`deploying ${plan.image} would partition and format this machine's disks, and this is not the cloner boot environment`, 'add --force if you mean it; --dry-run prints every step first');
}

/** pre-scripts: the image's pre-script, on the boot environment. */
async function preScript(r: DeployRun, plan: DeployPlan, workDir: string): Promise<void> {
  if (!r.hasAttachment('script', 'pre')) return;
  await r.enter('pre-scripts', 'running the pre-script');
  const body = await r.attachment('script', 'pre');
  if (!body) return;
  const file = path.join(workDir, 'pre-script');
  fs.writeFileSync(file, withShebang(body), { mode: 0o700 });
  await runScript([file], scriptEnv(plan, r.o.target, r.o.server), (line) => r.log(line), 'pre-script');
}

/** layout: keep disks that already carry the layout, else partition and format; mount under the target. */
async function layoutDisks(r: DeployRun, plan: DeployPlan): Promise<Disks> {
  fs.mkdirSync(r.o.target, { recursive: true });
  if (!plan.layout) {
    if (!fs.lstatSync(r.o.target).isDirectory()) throw new DeployError(`${r.o.target} is not a directory`, 'give --target an existing directory (the image has no layout)');
    return { fstab: null, filesystems: null, devices: {}, applied: null, kept: false };
  }
  const layout = plan.layout.layout;
  await r.enter('layout', `checking disks against layout ${plan.layout.name}`);
  const sync = await checkLayoutSync(layout, { devices: r.o.disks });
  if (sync.inSync) {
    r.log('the disks already carry the layout: keeping their file systems');
    const filesystems = (layout.filesystems ?? []).map((f) => ({ ...f, path: sync.devices[f.device], uuid: sync.uuids[f.device] }));
    const { steps, mounts } = mountSteps(filesystems, r.o.target);
    r.mounts = mounts;
    await runSteps(steps, (line) => r.log(line));
    return { fstab: fstabFor(filesystems), filesystems: (layout.filesystems ?? []).map((spec, n) => ({ spec, uuid: filesystems[n].uuid, device: filesystems[n].path })), devices: sync.devices, applied: null, kept: true };
  }
  for (const d of sync.differences) r.log(`  differs: ${d}`);
  await r.report('layout', { message: 'partitioning and formatting' });
  const applied = await applyLayout(layout, { devices: r.o.disks, target: r.o.target, force: r.o.force, log: (line) => r.log(line) });
  r.mounts = applied.mounts;
  return { fstab: applied.fstab, filesystems: (layout.filesystems ?? []).map((spec, n) => ({ spec, uuid: applied.filesystems[n].uuid, device: applied.filesystems[n].path })), devices: applied.devices, applied, kept: false };
}

/** restore: sync the tree onto the target, fetching only what the node lacks, with progress reports. */
async function restore(r: DeployRun, plan: DeployPlan, made: BootMade | null): Promise<SyncProgress> {
  await r.enter('restore', `syncing the tree onto ${r.o.target}`);
  const options = plan.revision.options ? ((await getJsonObject(r.client.store, plan.revision.options)) as { excludePaths?: string[] }) : {};
  const progress = newSyncProgress();
  r.writeback.startWhenPlacing(progress, () => targetMounts(r));
  const restoreStarted = performance.now();
  // The ETA of the data phase, from files and bytes (core/eta.ts), timed from its start.
  const eta = new EtaEstimator();
  let dataStarted: number | undefined;
  const tick = setInterval(() => {
    const now = performance.now();
    const secs = (now - restoreStarted) / 1000;
    const rate = progress.fetchedBytes / Math.max(secs, 0.001);
    if (progress.phase === 'data') dataStarted ??= now;
    const left = progress.phase === 'data' && dataStarted !== undefined && progress.totalFiles ? eta.secondsLeft((now - dataStarted) / 1000, progress, { files: progress.totalFiles, bytes: progress.totalBytes }) : undefined;
    const files = progress.totalFiles ? `, ${progress.files} of ${progress.totalFiles} files` : '';
    const etaText = left === undefined ? '' : `, ETA ${formatDuration(left)}`;
    r.log(`restore: ${progress.phase}, ${formatBytes(progress.bytes)} of ${formatBytes(progress.totalBytes)} in place${files}, ${formatBytes(progress.fetchedBytes)} fetched (${formatBytes(rate)}/s), ${formatBytes(progress.scannedBytes)} scanned${etaText}`);
    void r.report('restore', { message: `${progress.phase}${etaText}`, bytes: progress.bytes, totalBytes: progress.totalBytes, fetchedBytes: progress.fetchedBytes, rate: Math.round(rate) });
  }, r.o.progressIntervalMs);
  const reader = r.o.multicast
    ? new MulticastReader(r.client, { ...r.o.multicast, node: plan.node.name, image: plan.image, revision: plan.revision.n, tree: plan.revision.tree, progress, log: (line) => r.log(line), status: (message) => void r.report('restore', { message }) })
    : r.client.store;
  try {
    const keep = [...deployKeepList(options.excludePaths), ...(made?.keepPatterns() ?? [])];
    await syncTree({ reader, tree: plan.revision.tree, target: r.o.target, chunker: plan.chunker, keep, seedDirs: [`/${IMAGE_FILES_DIR}`], checksum: r.o.checksum, variants: made?.variants(), onTree: (items) => made?.tree(items), onWarning: r.warn, progress });
  } finally {
    clearInterval(tick);
  }
  made?.synced(progress.variantsKept);
  if (reader instanceof MulticastReader) r.log(`restore: ${formatBytes(reader.tally.multicastBytes)} by multicast, ${reader.tally.unicastChunks} chunks over unicast${reader.tally.fellBack ? ` (${reader.tally.fellBack})` : ''}`);
  r.log(`restore: ${progress.files} files written, ${progress.keptFiles} already right, ${progress.deleted} removed; fetched ${formatBytes(progress.fetchedBytes)}, reused ${formatBytes(progress.seededBytes)} already on the node`);
  await r.report('restore', { bytes: progress.bytes, totalBytes: progress.totalBytes, fetchedBytes: progress.fetchedBytes });
  return progress;
}

/** The target's file systems (the target itself without a layout), for the writeback. */
const targetMounts = (r: DeployRun) => (r.mounts.length ? r.mounts.map((m) => m.path) : [r.o.target]);

/** identity: who this node is (hostname, network, machine-id, SSH host keys, fstab), and the deploy record. */
async function identity(r: DeployRun, plan: DeployPlan, disks: Disks, keys: HostKeys): Promise<void> {
  await r.enter('identity', `hostname ${plan.node.hostname ?? plan.node.name}, ${plan.node.interfaces.length} interfaces`);
  const hostKeys = fs.existsSync(path.join(r.o.target, 'etc/ssh')) ? await keys.keys(r.warn) : null;
  const mdadm = await mdadmScan(plan.layout?.layout, r.warn);
  const pvs = await nodePvs(plan.layout?.layout, r.warn);
  const filesystems = await withPartuuids(disks.filesystems);
  const changes = applyIdentity({ target: r.o.target, node: plan.node, filesystems, hostKeys, mdadmScan: mdadm, pvs, disks: nodeDisks(plan.layout?.layout, disks.devices) });
  await labelWithPolicy(r.o.target, changes, r.warn, (line) => r.log(line));
  r.changes.push(...changes.changes);
  r.bootChain = changes;
  changes.warnings.forEach(r.warn);
  r.log(`identity: ${changes.network ?? 'no'} network configuration; ${changes.changes.length} changes`);
  for (const c of changes.changes) r.log(`  ${c.file}: ${c.change}`);
  // What fix-efiboot (and an admin) later find on the node.
  const record: DeployedRecord = { node: plan.node.name, image: plan.image, revision: plan.revision.n, efiLabel: efiLabel(plan), at: new Date().toISOString() };
  writeTargetFile(r.o.target, NODE_STATE_FILE, `${JSON.stringify(record, null, 2)}\n`);
}

const efiLabel = (plan: DeployPlan) => `cloner ${plan.image}`;

/** post-scripts: the image's post-script, chrooted into the new system. */
async function postScript(r: DeployRun, plan: DeployPlan): Promise<void> {
  if (!r.hasAttachment('script', 'post')) return;
  await r.enter('post-scripts', 'running the post-script chrooted into the target');
  const body = await r.attachment('script', 'post');
  if (!body) return;
  const inTarget = `/.cloner-post-script-${randomBytes(4).toString('hex')}`;
  fs.writeFileSync(path.join(r.o.target, inTarget), withShebang(body), { mode: 0o700, flag: 'wx' });
  try {
    const env = { ...scriptEnv(plan, r.o.target, r.o.server), CLONER_TARGET: '/' };
    await withChrootMounts(r.o.target, () => runScript(['chroot', r.o.target, inTarget], env, (line) => r.log(line), 'post-script'));
  } finally {
    fs.rmSync(path.join(r.o.target, inTarget), { force: true });
  }
}

/** bootloader: GRUB from the image and the node's EFI entry (only with a layout). */
async function bootloader(r: DeployRun, plan: DeployPlan, disks: Disks, made: BootMade | null): Promise<void> {
  if (!plan.layout) return;
  const layout = plan.layout.layout;
  await r.enter('bootloader', 'boot loader and EFI entries');
  const esp = espOf(layout, disks.devices);
  const warnings = await withChrootMounts(r.o.target, () => installBootloader({ target: r.o.target, layout, applied: disks.applied, esp, label: efiLabel(plan), log: (line) => r.log(line), disks: r.o.disks, initramfs: r.bootChain.bootChainChanged || !!made?.holds('initramfs'), initramfsInputs: initramfsInputs(r.bootChain, layout), made: made ?? undefined, devices: (disks.filesystems ?? []).map((f) => `${f.spec.mount ?? ''} ${f.uuid} ${f.device}`) }));
  warnings.forEach(r.warn);
}

/** bios: the image's BIOS settings through syscfg (`syscfg /r FILE /b`), a warning without it. */
async function bios(r: DeployRun, workDir: string): Promise<void> {
  const files = r.attachments.filter((a) => a.kind === 'bios');
  if (!files.length) return;
  await r.enter('bios', `${files.length} BIOS settings file(s)`);
  const syscfg = toolPath('syscfg');
  if (!syscfg) return r.warn(`the image has BIOS settings (${files.map((b) => b.item).join(', ')}) but syscfg is not on this node; skipped`);
  for (const b of files) {
    const body = await r.attachment('bios', b.item);
    if (!body) continue;
    const file = path.join(workDir, `bios-${b.item}.ini`);
    fs.writeFileSync(file, body, { mode: 0o600 });
    await runScript([syscfg, '/r', file, '/b'], process.env, (line) => r.log(line), `syscfg ${b.item}`);
  }
}

/**
 * report: flush, then tell the server (which sets netboot to local) while the file systems
 * are unmounted: everything is on disk once `sync` returns, and an unmount (0.2-0.4 s of
 * ext4's journal shutdown on the bench's loop disk) adds nothing to that; the deploy still
 * returns (and the node reboots) only after it.
 */
async function finish(r: DeployRun, plan: DeployPlan, disks: Disks, progress: SyncProgress): Promise<DeploySummary> {
  await r.writeback.settle();
  await run(['sync']);
  const unmounted = unmountPlan({ mounts: r.mounts });
  r.mounts = [];
  const seconds = (performance.now() - r.started) / 1000;
  try {
    await r.enter('report', 'telling the server');
    const message = r.warnings.length ? `${r.warnings.length} warning(s): ${r.warnings[0]}`.slice(0, 2000) : undefined;
    await r.client.api.call(API.deployResult, { params: { name: plan.node.name }, body: { ok: true, phase: 'done', image: plan.image, revision: plan.revision.n, seconds: Math.round(seconds * 10) / 10, fetchedBytes: progress.fetchedBytes, message, ...resultLists(r.warnings, r.changes) } });
  } finally {
    await unmounted;
  }
  r.log(`[done] ${plan.node.name} has ${plan.image} revision ${plan.revision.n} (${seconds.toFixed(1)} s)`);
  return { node: plan.node.name, image: plan.image, revision: plan.revision.n, seconds, fetchedBytes: progress.fetchedBytes, seededBytes: progress.seededBytes, keptFiles: progress.keptFiles, writtenFiles: progress.files, layoutKept: disks.kept, warnings: r.warnings, changes: r.changes };
}

/** Runs every phase in order; a failure is reported with its phase and rethrown. */
export async function deploy(o: DeployOptions): Promise<DeploySummary> {
  const r = new DeployRun(o);
  try {
    const plan = await identify(r);
    const workDir = fs.mkdtempSync(path.join(tmpdir(), 'cloner-agent-'));
    let hostKeys: HostKeys | null = null;
    try {
      await refuseFirst(r, plan);
      // Asked for (and made, when the server keeps none) while the layout and restore run.
      hostKeys = HostKeys.start(r.client, plan.node.name, workDir);
      await preScript(r, plan, workDir);
      const disks = await layoutDisks(r, plan);
      // What the last deploy made on the boot chain, kept when still valid (agent/boot-made.ts).
      const made = plan.layout ? new BootMade(r.o.target, espOf(plan.layout.layout, disks.devices)?.mount ?? null) : null;
      const progress = await restore(r, plan, made);
      // The restore's writes go to disk while identity and the boot loader run (agent/writeback.ts; started already, normally).
      r.writeback.start(targetMounts(r));
      await identity(r, plan, disks, hostKeys);
      await postScript(r, plan);
      await bootloader(r, plan, disks, made);
      await bios(r, workDir);
      return await finish(r, plan, disks, progress);
    } finally {
      await hostKeys?.settle();
      fs.rmSync(workDir, { recursive: true, force: true });
    }
  } catch (err) {
    await r.fail(err);
    throw err;
  } finally {
    await r.writeback.settle();
    if (r.mounts.length) await unmountPlan({ mounts: r.mounts });
  }
}
