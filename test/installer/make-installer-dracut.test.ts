/**
 * `cloner make-installer --generator dracut` from the cached VM root (Debian bookworm with
 * initramfs-tools as its own generator, plus dracut-core and dracut-network): dracut runs
 * chrooted into an overlay of the read-only root with contrib/dracut/99cloner, the result
 * is recompressed with zstd, stored and written out within the 80 MB size goal. Then it
 * boots in qemu like the initramfs-tools build (installer-vm.ts), first with the NIC's link
 * down: dhclient gets no answer, init's wait for the network ends (cloner-nonet.sh, not
 * dracut's emergency shell) and the deploy loop says so; with the link up its next DHCP
 * (network-legacy's ifup, dhclient) gets the lease, the deploy hook prints
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
        // The link is down until the deploy loop says no DHCP answer came (init did not wait
        // forever nor drop to dracut's emergency shell), then up: the loop's next DHCP gets the lease.
        // rd.net.timeout.carrier=2 (dracut's default 10): its wait for a carrier runs `ip` ten
        // times a second, each a slow fork under emulation (~4 minutes here with the default).
        const text = await bootInstaller({
          out, log: path.join(dir, 'console.log'), port, timeoutMs: 420_000, extraAppend: 'rd.net.timeout.carrier=2',
          linkUpAt: /no DHCP answer on any interface; retrying in 30 s|Could not boot|dracut Warning: .*emergency/,
          until: /deploy failed .* Retrying in \d+ s|Could not boot|dracut Warning: .*emergency/,
        });
        const tail = text.slice(-4000);
        console.log(text.split('\n').filter((l) => l.startsWith('cloner: ')).slice(0, 8).join('\n'));
        assert.match(text, new RegExp(`cloner: installer for ${report.version.replace(/\./g, '\\.')} \\(dracut\\)`), tail);
        assert.match(text, /cloner: no DHCP answer on any interface; retrying in 30 s\r?\ncloner: DHCP on eth0\r?\n/, tail);
        assert.match(text, /cloner: eth0: address 198\.18\.0\.15\/24/, `dhclient's lease: ${tail}`);
        assert.match(text, /cloner: deploy attempt 1/, tail);
        assert.match(text, /cloner: .*(token is not valid|UNAUTHORIZED)/, tail);
        assert.match(text, /cloner: deploy failed \(exit \d+\); the error is above\. Retrying in 60 s/, `the back-off went on from the DHCP retry: ${tail}`);
        assert.not.match(text, /Could not boot|emergency shell|No or empty root=|Don't know how to handle/, tail);
      });
    });
  });
});

test.run();
