/**
 * What the installer tests share (make-installer.test.ts for initramfs-tools,
 * make-installer-dracut.test.ts for dracut): why they cannot run here; the cached VM root
 * mounted read-only as the golden (unmounted whatever happens); `cloner make-installer`
 * from it into a local boot directory; and a boot of the built installer in qemu (direct
 * kernel boot, software emulation, qemu's user network at 198.18.0.0/24 with DHCP handing
 * out 198.18.0.15 and reaching only the test server at 198.18.0.10:PORT through socat),
 * watching its serial console until a line shows up or the time is up. qemu is killed and
 * waited for whatever happens.
 */
import * as assert from 'uvu/assert';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { haveTool } from '../../core/tools.ts';
import { cloner } from '../helpers/cli.ts';
import { cachedVmImage, ensureVmImage, vmImageBuildBlocker } from '../vm/image.ts';

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

/**
 * Boots OUT/vmlinuz + OUT/initrd.img with `boot=cloner`, the server at 198.18.0.10:PORT, a
 * node and token that the server does not know, and `extraAppend`; returns the serial
 * console's text once it matches `until` (or after `timeoutMs`: the caller's assertions
 * then fail and show it).
 */
export async function bootInstaller(o: { out: string; log: string; port: number; until: RegExp; timeoutMs: number; extraAppend?: string }): Promise<string> {
  const append = `console=ttyS0 boot=cloner cloner.server=http://198.18.0.10:${o.port} cloner.node=ghost cloner.token=made-up cloner.dhcp_timeout=20 quiet${o.extraAppend ? ` ${o.extraAppend}` : ''}`;
  const qemu = spawn('qemu-system-x86_64', [
    '-nodefaults', '-no-user-config', '-display', 'none', '-monitor', 'none', '-no-reboot', '-machine', 'q35', '-accel', 'tcg,thread=multi', '-cpu', 'max', '-smp', '2', '-m', '1536',
    '-serial', `file:${o.log}`, '-kernel', path.join(o.out, 'vmlinuz'), '-initrd', path.join(o.out, 'initrd.img'), '-append', append,
    '-netdev', `user,id=n0,net=198.18.0.0/24,host=198.18.0.2,dhcpstart=198.18.0.15,restrict=on,guestfwd=tcp:198.18.0.10:${o.port}-cmd:socat - TCP:127.0.0.1:${o.port}`,
    '-device', 'virtio-net-pci,netdev=n0',
  ], { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => {
    qemu.once('exit', () => resolve());
    qemu.once('error', () => resolve());
  });
  try {
    const t = performance.now();
    const text = await waitFor(o.log, o.until, o.timeoutMs);
    console.log(`installer boot to ${o.until}: ${((performance.now() - t) / 1000).toFixed(0)} s`);
    return text;
  } finally {
    if (qemu.exitCode === null && qemu.signalCode === null) qemu.kill('SIGKILL');
    await exited;
  }
}
