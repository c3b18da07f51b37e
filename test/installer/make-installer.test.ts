/**
 * `cloner make-installer` from the cached VM root (Debian bookworm with its kernel and
 * initramfs-tools; mounted read-only, built through an overlay): the installer is stored
 * under its kernel version in the server's boot directory (--store DATA/store) and written
 * to --output, within the 80 MB size goal; a second run without --overwrite is refused with
 * a hint naming the flag. Then the installer boots in qemu (installer-vm.ts: direct kernel
 * boot, software emulation, qemu's user network reaching only the test server): its init
 * brings up the NIC with DHCP, runs the bundled agent on the project's Node, which reaches
 * the server and fails (the node is not registered and the token is made up), and the
 * boot script keeps the node up with the error on the console and a retry scheduled.
 * The dracut build of the same root: make-installer-dracut.test.ts.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { cloner } from '../helpers/cli.ts';
import { withTempDir } from '../helpers/fixtures.ts';
import { withServer } from '../helpers/server.ts';
import { skipUnless } from '../helpers/skip.ts';
import { bootInstaller, installerVmBlocker, makeInstaller, withGolden } from './installer-vm.ts';

skipUnless(test, installerVmBlocker(), 'make-installer builds from a golden root within the size goal; the installer boots, gets DHCP, runs the agent and retries a failed deploy', async () => {
  await withTempDir(async (dir) => {
    await withGolden(dir, async (golden) => {
      const data = path.join(dir, 'data');
      const out = path.join(dir, 'out');
      const { report, err } = makeInstaller(golden, data, out);
      assert.is(report.generator, 'initramfs-tools', 'the golden\'s own generator (it has dracut-core too)');
      assert.ok(report.bytes.total <= 80_000_000, `kernel + initrd ${report.bytes.total} bytes`);
      assert.match(report.version, /^\d+\.\d+\.\d+-\d+-amd64$/);
      assert.ok(existsSync(path.join(data, 'boot', report.version, 'installer.json')));
      assert.ok(existsSync(path.join(out, 'initrd.img')));
      const again = cloner('make-installer', '--root', golden, '--store', path.join(data, 'store'), '--dry-run');
      assert.is(again.code, 2);
      assert.match(again.err, /already has an installer for kernel .*\nhint: pass --overwrite/);
      assert.match(err, /ssh-keygen is not on the golden node: the installer cannot do making SSH host keys/, 'a missing tool is named with what it costs');

      await withServer(async (server) => {
        const port = Number(new URL(server.url).port);
        const text = await bootInstaller({ out, log: path.join(dir, 'console.log'), port, until: /Retrying in 30 s/, timeoutMs: 240_000 });
        assert.match(text, /cloner: DHCP on \S+ \(at most 20 s\)/, text.slice(-3000));
        assert.match(text, /cloner: \S+: address 198\.18\.0\.15\//, text.slice(-3000));
        assert.match(text, /cloner: deploy attempt 1/, text.slice(-3000));
        assert.match(text, /cloner: .*(token is not valid|UNAUTHORIZED)/, text.slice(-3000));
        assert.match(text, /cloner: deploy failed \(exit \d+\); the error is above\. Retrying in 30 s/);
      });
    });
  });
});

test.run();
