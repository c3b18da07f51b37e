/**
 * `cloner make-installer` from the cached VM root (Debian bookworm with its kernel and
 * initramfs-tools; mounted read-only, built through an overlay): the installer is stored
 * under its kernel version in the server's boot directory (--store DATA/store) and written
 * to --output, within the 80 MB size goal; a second run without --overwrite is refused with
 * a hint naming the flag. Then the installer boots in qemu (direct kernel boot, software
 * emulation, qemu's user network at 198.18.0.0/24 reaching only the test server): its init
 * brings up the NIC with DHCP, runs the bundled agent on the project's Node, which reaches
 * the server and fails (the node is not registered and the token is made up), and the
 * boot script keeps the node up with the error on the console and a retry scheduled.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { cloner } from '../helpers/cli.ts';
import { withTempDir } from '../helpers/fixtures.ts';
import { withServer } from '../helpers/server.ts';
import { skipUnless } from '../helpers/skip.ts';
import { haveTool } from '../../core/tools.ts';
import { cachedVmImage, ensureVmImage, vmImageBuildBlocker } from '../vm/image.ts';

const blocker = process.getuid?.() !== 0 ? 'needs root (loop mount, overlay, chroot)' : !haveTool('qemu-system-x86_64') ? 'qemu-system-x86 is not installed' : !haveTool('socat') ? 'socat is not installed' : process.env.CLONER_SKIP_VM && process.env.CI !== 'true' ? 'CLONER_SKIP_VM is set' : cachedVmImage() ? null : vmImageBuildBlocker();

/** Waits until `file` matches `re` or the time is up; returns the text. */
async function waitFor(file: string, re: RegExp, ms: number): Promise<string> {
  const end = Date.now() + ms;
  for (;;) {
    const text = existsSync(file) ? readFileSync(file, 'latin1') : '';
    if (re.test(text) || Date.now() > end) return text;
    await new Promise((r) => setTimeout(r, 1000));
  }
}

skipUnless(test, blocker, 'make-installer builds from a golden root within the size goal; the installer boots, gets DHCP, runs the agent and retries a failed deploy', async () => {
  const image = await ensureVmImage();
  await withTempDir(async (dir) => {
    const golden = path.join(dir, 'golden');
    await mkdir(golden);
    spawnSync('mount', ['-o', 'ro,loop', image.rootImage, golden]);
    try {
      const data = path.join(dir, 'data');
      const out = path.join(dir, 'out');
      const t = performance.now();
      const built = cloner('make-installer', '--root', golden, '--store', path.join(data, 'store'), '--output', out, '--json');
      assert.is(built.code, 0, built.err);
      const report = JSON.parse(built.out) as { version: string; bytes: { total: number }; buildSeconds: number };
      console.log(`make-installer: ${(report.bytes.total / 1e6).toFixed(1)} MB in ${report.buildSeconds} s (test step ${((performance.now() - t) / 1000).toFixed(0)} s)`);
      assert.ok(report.bytes.total <= 80_000_000, `kernel + initrd ${report.bytes.total} bytes`);
      assert.match(report.version, /^\d+\.\d+\.\d+-\d+-amd64$/);
      assert.ok(existsSync(path.join(data, 'boot', report.version, 'installer.json')));
      assert.ok(existsSync(path.join(out, 'initrd.img')));
      const again = cloner('make-installer', '--root', golden, '--store', path.join(data, 'store'), '--dry-run');
      assert.is(again.code, 2);
      assert.match(again.err, /already has an installer for kernel .*\nhint: pass --overwrite/);
      assert.match(built.err, /ssh-keygen is not on the golden node: the installer cannot do making SSH host keys/, 'a missing tool is named with what it costs');

      await withServer(async (server) => {
        const port = Number(new URL(server.url).port);
        const log = path.join(dir, 'console.log');
        const append = `console=ttyS0 boot=cloner cloner.server=http://198.18.0.10:${port} cloner.node=ghost cloner.token=made-up cloner.dhcp_timeout=20 quiet`;
        const qemu = spawn('qemu-system-x86_64', [
          '-nodefaults', '-no-user-config', '-display', 'none', '-monitor', 'none', '-no-reboot', '-machine', 'q35', '-accel', 'tcg,thread=multi', '-cpu', 'max', '-smp', '2', '-m', '1536',
          '-serial', `file:${log}`, '-kernel', path.join(out, 'vmlinuz'), '-initrd', path.join(out, 'initrd.img'), '-append', append,
          '-netdev', `user,id=n0,net=198.18.0.0/24,host=198.18.0.2,dhcpstart=198.18.0.15,restrict=on,guestfwd=tcp:198.18.0.10:${port}-cmd:socat - TCP:127.0.0.1:${port}`,
          '-device', 'virtio-net-pci,netdev=n0',
        ], { stdio: 'ignore' });
        try {
          const t2 = performance.now();
          const text = await waitFor(log, /Retrying in 30 s/, 240_000);
          console.log(`installer boot to a retried deploy: ${((performance.now() - t2) / 1000).toFixed(0)} s`);
          assert.match(text, /cloner: DHCP on \S+ \(at most 20 s\)/, text.slice(-3000));
          assert.match(text, /cloner: \S+: address 198\.18\.0\.15\//, text.slice(-3000));
          assert.match(text, /cloner: deploy attempt 1/, text.slice(-3000));
          assert.match(text, /cloner: .*(token is not valid|UNAUTHORIZED)/, text.slice(-3000));
          assert.match(text, /cloner: deploy failed \(exit \d+\); the error is above\. Retrying in 30 s/);
        } finally {
          qemu.kill('SIGKILL');
        }
      });
    } finally {
      spawnSync('umount', [golden]);
    }
  });
});

test.run();
