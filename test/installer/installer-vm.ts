/**
 * What the installer tests share (make-installer.test.ts for initramfs-tools,
 * make-installer-dracut.test.ts for dracut): why they cannot run here; the cached VM root
 * mounted read-only as the golden (unmounted whatever happens); `cloner make-installer`
 * from it into a local boot directory; and a boot of the built installer in qemu (direct
 * kernel boot, software emulation, qemu's user network at 198.18.0.0/24 with DHCP handing
 * out 198.18.0.15 and reaching only the test server at 198.18.0.10:PORT through socat),
 * watching its serial console until a line shows up or the time is up; optionally with the
 * NIC's link down until a line shows up (QMP set_link). qemu is killed and waited for
 * whatever happens.
 */
import * as assert from 'uvu/assert';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { createConnection, type Socket } from 'node:net';
import path from 'node:path';
import { haveTool } from '../../core/tools.ts';
import { cloner } from '../helpers/cli.ts';
import { cachedVmImage, ensureVmImage, vmImageBuildBlocker, TCG_ACCEL } from '../vm/image.ts';

/** Why an installer cannot be built and booted here, or null. */
export function installerVmBlocker(): string | null {
  if (process.getuid?.() !== 0) return 'needs root (loop mount, overlay, chroot)';
  if (!haveTool('qemu-system-x86_64')) return 'qemu-system-x86 is not installed';
  if (!haveTool('socat')) return 'socat is not installed';
  if (process.env.CLONER_SKIP_VM && process.env.CI !== 'true') return 'CLONER_SKIP_VM is set';
  return cachedVmImage() ? null : vmImageBuildBlocker();
}

/** Runs `work` with the cached VM root mounted read-only at DIR/golden. */
export async function withGolden<T>(dir: string, work: (golden: string) => Promise<T>): Promise<T> {
  const image = await ensureVmImage();
  const golden = path.join(dir, 'golden');
  await mkdir(golden);
  const mounted = spawnSync('mount', ['-o', 'ro,loop', image.rootImage, golden], { encoding: 'utf8' });
  assert.is(mounted.status, 0, `mount ${image.rootImage}: ${mounted.stderr}`);
  try {
    return await work(golden);
  } finally {
    spawnSync('umount', [golden]);
  }
}

export interface BuildReport {
  version: string;
  generator: string;
  bytes: { vmlinuz: number; 'initrd.img': number; total: number };
  buildSeconds: number;
  warnings: string[];
}

/** `cloner make-installer --root GOLDEN --store DATA/store --output OUT --json ...extra`; asserts it succeeded and printed the time and size. */
export function makeInstaller(golden: string, data: string, out: string, extra: string[] = []): { report: BuildReport; err: string } {
  const t = performance.now();
  const built = cloner('make-installer', '--root', golden, '--store', path.join(data, 'store'), '--output', out, '--json', ...extra);
  assert.is(built.code, 0, built.err);
  const report = JSON.parse(built.out) as BuildReport;
  console.log(`make-installer (${report.generator}): ${(report.bytes.total / 1e6).toFixed(1)} MB in ${report.buildSeconds} s (test step ${((performance.now() - t) / 1000).toFixed(0)} s)`);
  return { report, err: built.err };
}

/** Waits until `file` matches `re` or the time is up; returns the text. */
async function waitFor(file: string, re: RegExp, ms: number): Promise<string> {
  const end = Date.now() + ms;
  for (;;) {
    const text = existsSync(file) ? readFileSync(file, 'latin1') : '';
    if (re.test(text) || Date.now() > end) return text;
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/** A QMP connection to qemu: `command` sends one command and resolves with its return (or rejects with its error). */
async function qmp(socket: string): Promise<{ command: (execute: string, args?: object) => Promise<unknown>; close: () => void }> {
  let conn: Socket | null = null;
  for (let i = 0; i < 100 && !conn; i++) {
    conn = await new Promise<Socket | null>((resolve) => {
      const c = createConnection(socket, () => resolve(c));
      c.once('error', () => resolve(null));
    });
    if (!conn) await new Promise((r) => setTimeout(r, 100));
  }
  if (!conn) throw new Error(`qemu's QMP socket ${socket} did not open`);
  const sock = conn;
  const waiting: Array<{ resolve: (v: unknown) => void; reject: (e: Error) => void }> = [];
  let buffered = '';
  let greeted: () => void = () => {};
  const greeting = new Promise<void>((r) => (greeted = r));
  sock.on('data', (d) => {
    buffered += d.toString();
    let nl;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const msg = JSON.parse(buffered.slice(0, nl)) as { QMP?: unknown; return?: unknown; error?: { desc: string } };
      buffered = buffered.slice(nl + 1);
      if (msg.QMP) greeted();
      else if ('return' in msg) waiting.shift()?.resolve(msg.return);
      else if (msg.error) waiting.shift()?.reject(new Error(`QMP: ${msg.error.desc}`));
    }
  });
  await greeting;
  const command = (execute: string, args?: object) => new Promise<unknown>((resolve, reject) => {
    waiting.push({ resolve, reject });
    sock.write(`${JSON.stringify({ execute, ...(args ? { arguments: args } : {}) })}\n`);
  });
  await command('qmp_capabilities');
  return { command, close: () => sock.destroy() };
}

/**
 * Boots OUT/vmlinuz + OUT/initrd.img with `boot=cloner`, the server at 198.18.0.10:PORT, a
 * node and token that the server does not know, and `extraAppend`; returns the serial
 * console's text once it matches `until` (or after `timeoutMs`: the caller's assertions
 * then fail and show it). With `linkUpAt`, the NIC's link starts down (no DHCP answer can
 * come) and goes up once the console matches it.
 */
export async function bootInstaller(o: { out: string; log: string; port: number; until: RegExp; timeoutMs: number; extraAppend?: string; linkUpAt?: RegExp }): Promise<string> {
  const append = `console=ttyS0 boot=cloner cloner.server=http://198.18.0.10:${o.port} cloner.node=ghost cloner.token=made-up cloner.dhcp_timeout=20 quiet${o.extraAppend ? ` ${o.extraAppend}` : ''}`;
  const socket = `${o.log}.qmp`;
  const qemu = spawn('qemu-system-x86_64', [
    '-nodefaults', '-no-user-config', '-display', 'none', '-monitor', 'none', '-no-reboot', '-machine', 'q35', ...TCG_ACCEL, '-cpu', 'max', '-smp', '2', '-m', '1536',
    '-serial', `file:${o.log}`, '-kernel', path.join(o.out, 'vmlinuz'), '-initrd', path.join(o.out, 'initrd.img'), '-append', append,
    '-netdev', `user,id=n0,net=198.18.0.0/24,host=198.18.0.2,dhcpstart=198.18.0.15,restrict=on,guestfwd=tcp:198.18.0.10:${o.port}-cmd:socat - TCP:127.0.0.1:${o.port}`,
    '-device', 'virtio-net-pci,netdev=n0,id=nic0',
    ...(o.linkUpAt ? ['-S', '-qmp', `unix:${socket},server=on,wait=off`] : []),
  ], { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => {
    qemu.once('exit', () => resolve());
    qemu.once('error', () => resolve());
  });
  let monitor: Awaited<ReturnType<typeof qmp>> | null = null;
  try {
    const t = performance.now();
    if (o.linkUpAt) {
      monitor = await qmp(socket);
      await monitor.command('set_link', { name: 'nic0', up: false });
      await monitor.command('cont');
      const before = await waitFor(o.log, o.linkUpAt, o.timeoutMs);
      if (!o.linkUpAt.test(before)) return before;
      console.log(`installer boot to ${o.linkUpAt} with the link down: ${((performance.now() - t) / 1000).toFixed(0)} s; link up`);
      await monitor.command('set_link', { name: 'nic0', up: true });
    }
    const text = await waitFor(o.log, o.until, Math.max(0, o.timeoutMs - (performance.now() - t)));
    console.log(`installer boot to ${o.until}: ${((performance.now() - t) / 1000).toFixed(0)} s`);
    return text;
  } finally {
    monitor?.close();
    if (qemu.exitCode === null && qemu.signalCode === null) qemu.kill('SIGKILL');
    await exited;
  }
}
