/**
 * The VM harness itself: a guest boots the cached image, runs commands with their exit
 * codes and output, runs the project's code from the read-only /src share on the
 * project's Node 24, reaches a host loopback server only through the ports it was given,
 * and leaves nothing running, also when a command overruns its timeout.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createServer } from 'node:http';
import { existsSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { chunkIdOf } from '../../core/store/chunk-id.ts';
import { seededBytes } from '../helpers/fixtures.ts';
import { VM_HOST_ADDRESS, withVm, vmUnavailable, type Vm } from './harness.ts';

function processGone(pid: number | undefined): boolean {
  if (pid === undefined) return true;
  try {
    process.kill(pid, 0);
    return false;
  } catch {
    return true;
  }
}

const blocker = vmUnavailable({ net: { hostPorts: [] } });
if (blocker) {
  console.log(`skipped: VM harness tests: ${blocker}`);
  test.skip('VM harness', () => {});
} else {
  test('a VM runs commands, the project code on Node 24, reaches only the listed host ports, and is gone afterwards', async () => {
    const payload = seededBytes(7, 100_000);
    const server = createServer((req, res) => res.end(req.url === '/payload' ? payload : 'hello from the host'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    const closed = createServer(() => {});
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const unlistedPort = (closed.address() as AddressInfo).port;
    let pid: number | undefined;
    let work = '';
    try {
      await withVm({ disks: ['256M', { size: '128M', bus: 'nvme', serial: 'NVME-A' }], net: { hostPorts: [port] } }, async (vm: Vm) => {
        pid = vm.pid;
        work = vm.jobDir;
        assert.ok(pid && !processGone(pid));

        const failing = await vm.run('echo to-stdout; echo to-stderr >&2; exit 3');
        assert.is(failing.code, 3);
        assert.match(failing.output, /to-stdout\nto-stderr/);

        // The full kernel has what this host's kernel lacks.
        const modules = await vm.runOk('modprobe raid1 && modprobe dm_mod && modprobe vfat && grep -E "raid1|vfat" /proc/filesystems /proc/mdstat | wc -l');
        assert.ok(Number(modules.trim()) >= 2, modules);
        const disks = await vm.runOk('lsblk -dn -o SERIAL,SIZE | sort');
        assert.match(disks, /CLONER-DISK-0\s+256M/);
        assert.match(disks, /NVME-A\s+128M/);

        // Node 24 and the project's native modules, from the read-only share.
        const id = await vm.runOk(`node --input-type=module -e "
          import { chunkIdOf } from '/src/core/store/chunk-id.ts';
          const r = await fetch('http://${VM_HOST_ADDRESS}:${port}/payload');
          console.log(process.version, chunkIdOf(new Uint8Array(await r.arrayBuffer())));"`);
        assert.is(id.trim(), `${process.version} ${chunkIdOf(payload)}`);
        const readOnly = await vm.run('touch /src/should-not-exist');
        assert.is.not(readOnly.code, 0);
        assert.not.ok(existsSync(new URL('../../should-not-exist', import.meta.url)));

        // A port not listed is not reachable, though the host listens on it.
        const refused = await vm.run(`timeout 5 bash -c 'exec 3<>/dev/tcp/${VM_HOST_ADDRESS}/${unlistedPort}'`);
        assert.is.not(refused.code, 0);
      });
    } finally {
      server.closeAllConnections();
      server.close();
      closed.close();
    }
    assert.ok(processGone(pid), `qemu ${pid} still runs`);
    assert.not.ok(existsSync(work), 'the VM directory was left behind');
  });

  test('a command over its timeout kills the VM with VM_TIMEOUT and leaves nothing running', async () => {
    let pid: number | undefined;
    let work = '';
    const started = Date.now();
    const err = await withVm({ share: false }, async (vm) => {
      pid = vm.pid;
      work = vm.jobDir;
      await vm.run('sleep 600', { timeoutMs: 3000 });
    }).then(
      () => null,
      (e: unknown) => e as { code?: string; message: string },
    );
    assert.ok(err, 'the overrun did not fail');
    assert.is(err!.code, 'VM_TIMEOUT', err!.message);
    assert.ok(Date.now() - started < 120_000);
    assert.ok(processGone(pid), `qemu ${pid} still runs`);
    assert.not.ok(existsSync(work), 'the VM directory was left behind');
  });
}

test.run();
