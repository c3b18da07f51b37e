/**
 * VM test harness: runs commands inside a qemu VM with a full Debian kernel (md RAID,
 * device-mapper, vfat, efivars), for the tests this machine's kernel cannot host.
 *
 *   await withVm({ disks: ['2G', '2G'], uefi: true }, async (vm) => {
 *     const { code, output } = await vm.run('mdadm --create ...');
 *   });
 *
 * How: the cached image (image.ts) boots under qemu-system-x86_64 (TCG by default: this
 * host's /dev/kvm does not run guests; CLONER_VM_ACCEL=kvm where it does) with its own
 * kernel and initrd, a throw-away qcow2 overlay over the image as root, and blank sparse
 * disk files as extra disks (virtio, NVMe or SCSI, with serials). With `uefi` the firmware
 * is OVMF with a per-VM copy of its variable store, so EFI boot entries persist across
 * `vm.reboot()`. Two 9p shares: the job directory (/job, read-write: the agent, commands,
 * their output and exit codes) and the project tree (/src, read-only). The optional
 * network is qemu user networking inside 198.18.0.0/24 with `restrict=on`: the guest
 * (198.18.0.15) reaches only the host ports listed, at 198.18.0.10, each relayed to the
 * host's 127.0.0.1 by socat; nothing else leaves the VM.
 *
 * Nothing is left running: qemu runs under `setpriv --pdeathsig KILL` (it dies with the
 * test process), every VM has a hard time limit, and withVm powers off, kills if need be,
 * and removes the VM's files whether the test passed or failed.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, open, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { haveTool } from '../../core/tools.ts';
import { ensureVmImage, projectRoot, vmImageBuildBlocker, cachedVmImage, TCG_ACCEL, type VmImage } from './image.ts';

export interface VmDiskSpec {
  /** Size with a K/M/G/T suffix, e.g. '2G'. */
  size: string;
  bus?: 'virtio' | 'nvme' | 'scsi';
  /** Serial number the guest sees (virtio: /dev/disk/by-id/virtio-SERIAL). */
  serial?: string;
  /** SCSI only: report a spinning disk (rotation rate 7200) instead of an SSD. */
  rotational?: boolean;
}

export interface VmOptions {
  disks?: (string | VmDiskSpec)[];
  /** Boot through OVMF (UEFI) instead of SeaBIOS. */
  uefi?: boolean;
  memoryMiB?: number;
  cpus?: number;
  /** Host loopback ports the guest may reach at VM_HOST_ADDRESS:PORT. */
  net?: { hostPorts: number[] };
  /** Directory shared read-only at /src (default: the project tree); false for none. */
  share?: string | false;
  /** Hard limit for the VM's whole life; it is killed after it. */
  timeoutMs?: number;
  bootTimeoutMs?: number;
  /** TCG's threading under software emulation: 'single' (the default, TCG_ACCEL) or 'multi' (bench:tcg-crash). */
  tcgThread?: 'single' | 'multi';
  log?: (line: string) => void;
}

export interface VmRunResult {
  code: number;
  output: string;
}

export const VM_GUEST_ADDRESS = '198.18.0.15';
/** The host as the guest sees it: its listed loopback ports are relayed from this address. */
export const VM_HOST_ADDRESS = '198.18.0.10';
/** qemu's own user-network gateway (slirp does not allow forwards from it). */
const VM_GATEWAY = '198.18.0.2';
export const VM_GUEST_MAC = '52:54:00:c1:00:01';
const OVMF_CODE = '/usr/share/OVMF/OVMF_CODE_4M.fd';
const OVMF_VARS = '/usr/share/OVMF/OVMF_VARS_4M.fd';
const AGENT = new URL('./guest-agent.sh', import.meta.url).pathname;

export class VmError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = 'VmError';
    this.code = code;
  }
}

/** Why a VM with these options cannot run here (a line for the skip message), or null. */
export function vmUnavailable(options: Pick<VmOptions, 'uefi' | 'net'> = {}): string | null {
  if (process.env.CLONER_SKIP_VM) return 'CLONER_SKIP_VM is set';
  if (process.platform !== 'linux' || process.arch !== 'x64') return `VM tests need linux x64 (this is ${process.platform} ${process.arch})`;
  if (!haveTool('qemu-system-x86_64')) return 'qemu-system-x86_64 is not installed (scripts/setup.sh installs qemu-system-x86)';
  if (!haveTool('setpriv')) return 'setpriv (util-linux) is not installed';
  if (options.uefi && !(existsSync(OVMF_CODE) && existsSync(OVMF_VARS))) return `OVMF firmware is not installed (${OVMF_CODE}; apt-get install ovmf)`;
  if (options.net && !haveTool('socat')) return 'socat is not installed (the guest-to-host relay)';
  if (!cachedVmImage()) return vmImageBuildBlocker();
  return null;
}

function sizeBytes(size: string): number {
  const m = /^(\d+)([KMGT]?)$/i.exec(size);
  if (!m) throw new VmError('VM_BAD_OPTION', `bad disk size "${size}" (use e.g. 512M or 2G)`);
  return Number(m[1]) * 1024 ** ' KMGT'.indexOf((m[2] || ' ').toUpperCase());
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class Vm {
  /** Host path of the job share, /job in the guest: drop files here for the guest to read. */
  readonly jobDir: string;
  /** Host paths of the extra disk images, in the order given. */
  readonly diskFiles: string[] = [];
  /** Seconds the last boot took, from qemu's start to the agent's "ready". */
  bootSeconds = 0;
  private child: ChildProcess | null = null;
  private exited: Promise<void> = Promise.resolve();
  private qemuStderr = '';
  private seq = 0;
  private deadline: NodeJS.Timeout | null = null;
  private killedFor = '';
  /** Boot through the firmware from the disks (no -kernel): the guest agent is not there. */
  private fromDisk = false;

  private readonly work: string;
  private readonly image: VmImage;
  private readonly options: VmOptions;

  private constructor(work: string, image: VmImage, options: VmOptions) {
    this.work = work;
    this.image = image;
    this.options = options;
    this.jobDir = path.join(work, 'job');
  }

  static async create(options: VmOptions): Promise<Vm> {
    const log = options.log ?? (() => {});
    const image = await ensureVmImage(log);
    await removeAbandonedVmDirs();
    const work = await mkdtemp(path.join(tmpdir(), 'cloner-vm-'));
    await writeFile(path.join(work, 'owner.pid'), String(process.pid));
    const vm = new Vm(work, image, options);
    try {
      await vm.prepare();
      await vm.boot();
      return vm;
    } catch (err) {
      await vm.destroy();
      throw err;
    }
  }

  private async prepare(): Promise<void> {
    await mkdir(this.jobDir);
    const overlay = path.join(this.work, 'root.qcow2');
    const made = spawnSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'raw', '-b', this.image.rootImage, overlay], { encoding: 'utf8' });
    if (made.status !== 0) throw new VmError('VM_SETUP', `qemu-img create failed: ${made.stderr.trim()}`);
    for (const [i, spec] of (this.options.disks ?? []).entries()) {
      const file = path.join(this.work, `disk${i}.img`);
      const handle = await open(file, 'wx');
      await handle.truncate(sizeBytes(typeof spec === 'string' ? spec : spec.size));
      await handle.close();
      this.diskFiles.push(file);
    }
    if (this.options.uefi) await copyFile(OVMF_VARS, path.join(this.work, 'efivars.fd'));
  }

  private qemuArgs(): string[] {
    const o = this.options;
    const accel = process.env.CLONER_VM_ACCEL ?? 'tcg';
    const args = [
      '-nodefaults', '-no-user-config', '-display', 'none', '-monitor', 'none', '-no-reboot',
      '-machine', `q35,accel=${accel}`, '-cpu', accel === 'kvm' ? 'host' : 'max',
      '-smp', String(o.cpus ?? 2), '-m', String(o.memoryMiB ?? 1024),
      '-serial', `file:${path.join(this.work, 'console.log')}`,
      ...(this.fromDisk ? [] : ['-kernel', this.image.kernel, '-initrd', this.image.initrd, '-append', 'root=LABEL=cloner-vm rw console=ttyS0 init=/usr/local/sbin/cloner-vm-init panic=-1 net.ifnames=0 quiet loglevel=4']),
      '-drive', `file=${path.join(this.work, 'root.qcow2')},format=qcow2,if=none,id=root,cache=unsafe`,
      '-device', 'virtio-blk-pci,drive=root,serial=cloner-vm-root',
      '-fsdev', `local,id=job,path=${this.jobDir},security_model=none`,
      '-device', 'virtio-9p-pci,fsdev=job,mount_tag=cloner-job',
    ];
    if (accel === 'tcg') args.splice(args.indexOf('-machine'), 2, '-machine', 'q35', ...(o.tcgThread === 'multi' ? ['-accel', 'tcg,thread=multi'] : TCG_ACCEL));
    const share = o.share === undefined ? projectRoot() : o.share;
    if (share) args.push('-fsdev', `local,id=src,path=${share},security_model=none,readonly=on`, '-device', 'virtio-9p-pci,fsdev=src,mount_tag=cloner-src');
    if (o.uefi) {
      args.push('-drive', `if=pflash,format=raw,unit=0,readonly=on,file=${OVMF_CODE}`);
      args.push('-drive', `if=pflash,format=raw,unit=1,file=${path.join(this.work, 'efivars.fd')}`);
    }
    let scsi = false;
    for (const [i, spec0] of (o.disks ?? []).entries()) {
      const spec: VmDiskSpec = typeof spec0 === 'string' ? { size: spec0 } : spec0;
      const serial = spec.serial ?? `CLONER-DISK-${i}`;
      args.push('-drive', `file=${this.diskFiles[i]},format=raw,if=none,id=disk${i},cache=writeback`);
      if ((spec.bus ?? 'virtio') === 'virtio') args.push('-device', `virtio-blk-pci,drive=disk${i},serial=${serial}`);
      else if (spec.bus === 'nvme') args.push('-device', `nvme,drive=disk${i},serial=${serial}`);
      else {
        if (!scsi) args.push('-device', 'virtio-scsi-pci,id=scsi0');
        scsi = true;
        args.push('-device', `scsi-hd,bus=scsi0.0,drive=disk${i},serial=${serial},rotation_rate=${spec.rotational ? 7200 : 1}`);
      }
    }
    if (o.net) {
      const forwards = o.net.hostPorts.map((port) => {
        if (!Number.isInteger(port) || port < 1 || port > 65535) throw new VmError('VM_BAD_OPTION', `bad host port ${port}`);
        return `,guestfwd=tcp:${VM_HOST_ADDRESS}:${port}-cmd:socat - TCP:127.0.0.1:${port}`;
      });
      args.push('-netdev', `user,id=net0,net=198.18.0.0/24,host=${VM_GATEWAY},dns=198.18.0.3,dhcpstart=${VM_GUEST_ADDRESS},restrict=on${forwards.join('')}`);
      args.push('-device', `virtio-net-pci,netdev=net0,mac=${VM_GUEST_MAC}`);
    }
    return args;
  }

  private async boot(): Promise<void> {
    const o = this.options;
    await copyFile(AGENT, path.join(this.jobDir, 'agent.sh'));
    const env = [
      `CLONER_VM_SRC=${o.share === false ? '' : '1'}`,
      'CLONER_VM_WORKDIR=/src',
      ...(o.net ? [`CLONER_VM_ADDRESS=${VM_GUEST_ADDRESS}/24`, `CLONER_VM_GATEWAY=${VM_GATEWAY}`, `CLONER_VM_MAC=${VM_GUEST_MAC}`] : []),
    ];
    if (o.share === false) env[1] = 'CLONER_VM_WORKDIR=/';
    await writeFile(path.join(this.jobDir, 'env'), `${env.join('\n')}\n`);
    // A boot under software emulation very rarely hangs before the kernel runs (seen once
    // in many OVMF boots); one hung boot is reported and retried, a second one fails.
    const bootTimeoutMs = o.bootTimeoutMs ?? 90_000;
    for (let attempt = 1; ; attempt++) {
      try {
        await this.startQemu(bootTimeoutMs);
        return;
      } catch (err) {
        if (attempt >= 2 || (err as VmError).code !== 'VM_TIMEOUT') throw err;
        process.stderr.write(`vm: boot attempt ${attempt} hung; retrying once. ${(err as Error).message}\n`);
        this.killedFor = '';
      }
    }
  }

  private async startQemu(bootTimeoutMs: number): Promise<void> {
    const o = this.options;
    const started = performance.now();
    this.spawnQemu();
    await this.waitFor(path.join(this.jobDir, 'ready'), bootTimeoutMs, 'boot');
    this.bootSeconds = (performance.now() - started) / 1000;
    o.log?.(`vm: booted in ${this.bootSeconds.toFixed(1)} s`);
  }

  private spawnQemu(): void {
    const o = this.options;
    this.qemuStderr = '';
    const child = spawn('setpriv', ['--pdeathsig', 'KILL', '--', 'qemu-system-x86_64', ...this.qemuArgs()], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.child = child;
    child.stderr!.on('data', (d) => {
      this.qemuStderr += d;
    });
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    this.exited.then(() => {
      if (this.child === child) this.child = null;
    });
    if (!this.deadline) {
      const limit = o.timeoutMs ?? 10 * 60_000;
      this.deadline = setTimeout(() => this.kill(`its time limit of ${limit / 1000} s`), limit);
      this.deadline.unref();
    }
  }

  /**
   * Powers off and starts the VM again through its firmware alone (UEFI boot entries, or
   * the disks' boot code), as a deployed node boots: what it runs is on its disks, so
   * there is no agent; follow it with waitForConsole. The console log starts afresh.
   */
  async bootFromDisk(): Promise<void> {
    await this.powerOff();
    await rm(path.join(this.work, 'console.log'), { force: true });
    this.fromDisk = true;
    this.spawnQemu();
  }

  /** Waits until the serial console shows `pattern`; returns the console so far. */
  async waitForConsole(pattern: RegExp, timeoutMs: number): Promise<string> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const text = this.consoleLog();
      if (pattern.test(text)) return text;
      if (!this.child) throw new VmError('VM_DIED', `the VM stopped before its console showed ${pattern}${this.diagnostics()}`);
      if (Date.now() > until) throw new VmError('VM_TIMEOUT', `the console did not show ${pattern} in ${timeoutMs / 1000} s${this.diagnostics()}`);
      await sleep(250);
    }
  }

  /** Waits for a file the guest writes; fails fast when qemu is gone. */
  private async waitFor(file: string, timeoutMs: number, what: string): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (!existsSync(file)) {
      if (!this.child) throw new VmError('VM_DIED', `the VM stopped during ${what}${this.killedFor ? ` (killed: ${this.killedFor})` : ''}${this.diagnostics()}`);
      if (Date.now() > until) {
        this.kill(`${what} took over ${timeoutMs / 1000} s`);
        await this.exited;
        throw new VmError('VM_TIMEOUT', `${what} took over ${timeoutMs / 1000} s; the VM was killed${this.diagnostics()}`);
      }
      await sleep(100);
    }
  }

  private diagnostics(): string {
    const stderr = this.qemuStderr.trim();
    return `${stderr ? `\nqemu: ${stderr}` : ''}\nconsole (last lines):\n${this.consoleLog().split('\n').slice(-15).join('\n')}`;
  }

  /** The guest's serial console so far (kernel messages and the agent's lines). */
  consoleLog(): string {
    const file = path.join(this.work, 'console.log');
    return existsSync(file) ? readFileSync(file, 'utf8') : '';
  }

  /** Runs a bash script in the guest (cwd /src) and returns its exit code and output. */
  async run(script: string, options: { timeoutMs?: number } = {}): Promise<VmRunResult> {
    if (!this.child) throw new VmError('VM_DIED', 'the VM is not running');
    const n = ++this.seq;
    const cmd = path.join(this.jobDir, `cmd.${n}`);
    await writeFile(`${cmd}.tmp`, `set -o pipefail\n${script}\n`);
    await rename(`${cmd}.tmp`, cmd);
    const timeoutMs = options.timeoutMs ?? 300_000;
    await this.waitFor(path.join(this.jobDir, `rc.${n}`), timeoutMs, `command ${n} (${script.split('\n')[0].slice(0, 60)})`);
    const code = Number((await readFile(path.join(this.jobDir, `rc.${n}`), 'utf8')).trim());
    const output = await readFile(path.join(this.jobDir, `out.${n}`), 'utf8');
    return { code, output };
  }

  /**
   * Runs a command that may be re-run (a deploy resumes), once more if the process died of
   * a signal: Node died of SIGSEGV or SIGTRAP in about 1 of 25 runs under multi-threaded
   * TCG, which is the emulator's fault, not the command's (the VMs now run single-threaded
   * TCG, where 120 runs saw none: see TCG_ACCEL and bench:tcg-crash); kept as the one
   * guard for read-only or resumable commands.
   */
  async runRetryingCrash(script: string, options: { timeoutMs?: number } = {}): Promise<VmRunResult> {
    const first = await this.run(script, options);
    if (first.code < 128) return first;
    process.stderr.write(`vm: the command died of signal ${first.code - 128}; running it once more. Its output ended:\n${first.output.split('\n').slice(-8).join('\n')}\n`);
    return this.run(script, options);
  }

  /** Like run, but a non-zero exit throws with the script's output. */
  async runOk(script: string, options: { timeoutMs?: number } = {}): Promise<string> {
    const { code, output } = await this.run(script, options);
    if (code !== 0) throw new VmError('VM_COMMAND_FAILED', `guest command exited ${code}: ${script.split('\n')[0].slice(0, 80)}\n${output}`);
    return output;
  }

  /** Powers the guest off and boots it again; disks and EFI variables persist. */
  async reboot(): Promise<void> {
    await this.powerOff();
    await this.bootAgain();
  }

  /** Boots the stopped VM again with a fresh command sequence. */
  private async bootAgain(): Promise<void> {
    for (const f of await readdir(this.jobDir)) {
      if (/^(cmd|out|rc)\.\d+|^ready$|^poweroff$/.test(f)) await rm(path.join(this.jobDir, f), { force: true });
    }
    this.seq = 0;
    await this.boot();
  }

  /**
   * Pulls the plug: qemu is killed at once (what the guest had not written to its virtual
   * disks, its page cache, is lost; what it had is in the host's disk files) and the VM
   * boots again; disks and EFI variables persist. For durability tests.
   */
  async hardReset(): Promise<void> {
    this.kill('a hard reset');
    await this.exited;
    this.killedFor = '';
    await this.bootAgain();
  }

  /** Asks the agent to power off; kills qemu when it does not within the grace period. */
  async powerOff(graceMs = 30_000): Promise<void> {
    if (!this.child) return;
    if (this.fromDisk) graceMs = 0; // no agent to ask
    await writeFile(path.join(this.jobDir, 'poweroff'), '').catch(() => {});
    let timer: NodeJS.Timeout | undefined;
    const stopped = await Promise.race([this.exited.then(() => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), graceMs)))]);
    clearTimeout(timer);
    if (!stopped) {
      this.kill('it did not power off');
      await this.exited;
    }
  }

  /** The qemu process id while it runs (tests check nothing is left behind). */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  private kill(reason: string): void {
    if (!this.child) return;
    this.killedFor = reason;
    this.child.kill('SIGKILL');
  }

  async destroy(): Promise<void> {
    if (this.deadline) clearTimeout(this.deadline);
    await this.powerOff().catch(() => {});
    await rm(this.work, { recursive: true, force: true });
  }
}

/**
 * Removes the directories of VMs whose test process was killed (SIGKILL leaves no chance
 * to clean up; qemu itself died with it through its parent-death signal).
 */
async function removeAbandonedVmDirs(): Promise<void> {
  for (const entry of await readdir(tmpdir())) {
    if (!entry.startsWith('cloner-vm-')) continue;
    const dir = path.join(tmpdir(), entry);
    const owner = Number(await readFile(path.join(dir, 'owner.pid'), 'utf8').catch(() => '0'));
    if (owner > 0 && !processAlive(owner)) await rm(dir, { recursive: true, force: true });
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Boots a VM, runs `work` with it, and always powers it off and removes its files. */
export async function withVm<T>(options: VmOptions, work: (vm: Vm) => Promise<T>): Promise<T> {
  const vm = await Vm.create(options);
  try {
    return await work(vm);
  } finally {
    await vm.destroy();
  }
}
