/**
 * `cloner make-installer --generator dracut` from the cached VM root (Debian bookworm with
 * initramfs-tools as its own generator, plus dracut-core and dracut-network): dracut runs
 * chrooted into an overlay of the read-only root with contrib/dracut/99cloner, the result
 * is recompressed with zstd, stored and written out within the 80 MB size goal. Then it
 * boots in qemu like the initramfs-tools build (installer-vm.ts): dracut's shell init brings
 * the NIC up with dhclient (network-legacy, rd.neednet=1 ip=dhcp), the deploy hook prints
 * the address, runs the bundled agent, which reaches the test server and is refused (made-up
 * node and token), and keeps the node up with the error and a retry scheduled; no dracut
 * emergency shell. A generator the root lacks is refused (dracut-module.test.ts).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { withTempDir } from '../helpers/fixtures.ts';
import { withServer } from '../helpers/server.ts';
import { skipUnless } from '../helpers/skip.ts';
import { bootInstaller, installerVmBlocker, makeInstaller, withGolden } from './installer-vm.ts';

skipUnless(test, installerVmBlocker(), 'make-installer --generator dracut builds from the golden root within the size goal; the installer boots, gets DHCP through dracut, runs the agent and retries a failed deploy', async () => {
  await withTempDir(async (dir) => {
    await withGolden(dir, async (golden) => {
      const data = path.join(dir, 'data');
      const out = path.join(dir, 'out');
      const { report } = makeInstaller(golden, data, out, ['--generator', 'dracut']);
      assert.is(report.generator, 'dracut');
      assert.ok(report.bytes.total <= 80_000_000, `kernel + initrd ${report.bytes.total} bytes`);
      const stored = JSON.parse(readFileSync(path.join(data, 'boot', report.version, 'installer.json'), 'utf8')) as { generator?: string };
      assert.is(stored.generator, 'dracut');
      assert.ok(existsSync(path.join(out, 'initrd.img')));
      const magic = readFileSync(path.join(out, 'initrd.img')).subarray(0, 4);
      assert.equal([...magic], [0x28, 0xb5, 0x2f, 0xfd], 'the initrd is one zstd stream (recompressed like the initramfs-tools one)');

      await withServer(async (server) => {
        const port = Number(new URL(server.url).port);
        const text = await bootInstaller({ out, log: path.join(dir, 'console.log'), port, until: /Retrying in 30 s|Could not boot|dracut Warning: .*emergency/, timeoutMs: 300_000 });
        const tail = text.slice(-4000);
        assert.match(text, new RegExp(`cloner: installer for ${report.version.replace(/\./g, '\\.')} \\(dracut\\)`), tail);
        assert.match(text, /cloner: \S+: address 198\.18\.0\.15\/24/, `dhclient's lease: ${tail}`);
        assert.match(text, /cloner: deploy attempt 1/, tail);
        assert.match(text, /cloner: .*(token is not valid|UNAUTHORIZED)/, tail);
        assert.match(text, /cloner: deploy failed \(exit \d+\); the error is above\. Retrying in 30 s/, tail);
        assert.not.match(text, /Could not boot|emergency shell|No or empty root=|Don't know how to handle/, tail);
      });
    });
  });
});

test.run();
