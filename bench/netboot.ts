/**
 * bench:netboot: the cloner installer built by `cloner make-installer` from the cached VM
 * root (Debian bookworm; test/vm/image.ts): its size (kernel + initrd, goal <= 80 MB) and
 * build time, then its boot in qemu (software emulation, direct kernel boot, user network)
 * to the agent's first request: kernel start to DHCP done, and to the agent running.
 * Not yet measured (the netboot lab of issue 12 is not written): PXE to agent, deploy, and
 * reboot to clone, for one node and two at once.
 */
import { spawn, spawnSync } from 'node:child_process';
import http from 'node:http';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ensureVmImage } from '../test/vm/image.ts';

const dir = await mkdtemp(path.join(tmpdir(), 'cloner-bench-netboot-'));
const golden = path.join(dir, 'golden');
await mkdir(golden);
const image = await ensureVmImage();
spawnSync('mount', ['-o', 'ro,loop', image.rootImage, golden]);
try {
  const out = path.join(dir, 'out');
  const r = spawnSync(process.execPath, ['bin/cloner.js', 'make-installer', '--root', golden, '--output', out, '--json'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  const report = JSON.parse(r.stdout) as { version: string; bytes: { vmlinuz: number; 'initrd.img': number; total: number }; buildSeconds: number };
  console.log(`installer ${report.version}: vmlinuz ${(report.bytes.vmlinuz / 1e6).toFixed(1)} MB + initrd ${(report.bytes['initrd.img'] / 1e6).toFixed(1)} MB = ${(report.bytes.total / 1e6).toFixed(1)} MB (goal 80 MB); built in ${report.buildSeconds} s`);
  // Stands in for the server: every request is refused, so the agent's first call fails fast.
  const server = http.createServer((_req, res) => res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":"UNAUTHORIZED","message":"bench","hint":""}'));
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
  const port = (server.address() as { port: number }).port;
  const log = path.join(dir, 'console.log');
  const t0 = performance.now();
  const qemu = spawn('qemu-system-x86_64', ['-nodefaults', '-no-user-config', '-display', 'none', '-monitor', 'none', '-no-reboot', '-machine', 'q35', '-accel', 'tcg,thread=multi', '-cpu', 'max', '-smp', '2', '-m', '1536',
    '-serial', `file:${log}`, '-kernel', path.join(out, 'vmlinuz'), '-initrd', path.join(out, 'initrd.img'),
    '-append', `console=ttyS0 boot=cloner cloner.server=http://198.18.0.10:${port} cloner.node=bench cloner.token=none quiet`,
    '-netdev', `user,id=n0,net=198.18.0.0/24,host=198.18.0.2,dhcpstart=198.18.0.15,restrict=on,guestfwd=tcp:198.18.0.10:${port}-cmd:socat - TCP:127.0.0.1:${port}`, '-device', 'virtio-net-pci,netdev=n0'], { stdio: 'ignore' });
  const marks: Array<[string, RegExp]> = [['DHCP done', /cloner: \S+: address /], ['agent ran (first deploy attempt failed as expected)', /cloner: deploy failed/]];
  try {
    for (const [what, re] of marks) {
      while (!(existsSync(log) && re.test(readFileSync(log, 'latin1')))) {
        if (performance.now() - t0 > 300_000) throw new Error(`no "${what}" within 300 s`);
        await new Promise((res) => setTimeout(res, 250));
      }
      console.log(`qemu start -> ${what}: ${((performance.now() - t0) / 1000).toFixed(1)} s (TCG)`);
    }
  } finally {
    qemu.kill('SIGKILL');
    server.close();
  }
} finally {
  spawnSync('umount', [golden]);
  await rm(dir, { recursive: true, force: true });
}
