/**
 * cloner power against a real IPMI BMC (OpenIPMI's ipmi_sim on loopback) through a real
 * server: status, on, reset, off change the simulated chassis; a wrong BMC password and a
 * node without a BMC fail with one line each and exit 2; the password never reaches a client.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import path from 'node:path';
import { cloner } from '../helpers/cli.ts';
import { ipmiSimUnavailable, withIpmiSim } from '../helpers/ipmi-sim.ts';
import { withServer } from '../helpers/server.ts';
import { withFakeRedfishBmc } from '../helpers/fake-redfish-bmc.ts';

const blocker = ipmiSimUnavailable();
if (blocker) {
  console.log(`skipped: power control against ipmi_sim: ${blocker}`);
  test.skip('power', () => {});
} else {
  test('power status/on/reset/off through ipmi_sim; bad credentials and missing BMCs are clear errors', async () => {
    await withIpmiSim(async (bmc) => {
      await withServer(async (server) => {
        const remote = ['--server', server.url, '--token-file', path.join(server.dataDir, 'admin.token')];
        let r = cloner('nodes', 'add', ...remote, 'node01', 'eth0.mac=52:54:00:00:00:01', 'bmc.type=ipmi', 'bmc.address=127.0.0.1', `bmc.port=${bmc.port}`, `bmc.username=${bmc.username}`, `bmc.password=${bmc.password}`);
        assert.is(r.code, 0, r.err);
        assert.not.ok(r.out.includes(bmc.password));
        assert.is(cloner('nodes', 'add', ...remote, 'node02', 'eth0.mac=52:54:00:00:00:02', 'bmc.type=ipmi', 'bmc.address=127.0.0.1', `bmc.port=${bmc.port}`, 'bmc.username=admin', 'bmc.password=wrong').code, 0);
        assert.is(cloner('nodes', 'add', ...remote, 'node03', 'eth0.mac=52:54:00:00:00:03').code, 0);

        r = cloner('power', 'status', ...remote, '--nodes', 'node01');
        assert.is(r.code, 0, r.err);
        assert.is(r.out, 'node01: off\n');
        r = cloner('power', 'on', ...remote, '--nodes', 'node01');
        assert.is(r.out, 'node01: on\n');
        assert.is(await bmc.powerState(), '1');
        r = cloner('power', 'reset', ...remote, '--nodes', 'node01');
        assert.is(r.code, 0, r.err);
        assert.match(await bmc.calls(), /set reset 1/);
        r = cloner('power', 'off', ...remote, '--nodes', 'node01', '--json');
        assert.equal(JSON.parse(r.out), [{ node: 'node01', action: 'off', state: 'off', error: null }]);
        assert.is(await bmc.powerState(), '0');

        r = cloner('power', 'status', ...remote, '--nodes', 'node[01-03]');
        assert.is(r.code, 2);
        assert.is(r.out, 'node01: off\n');
        assert.match(r.err, /cloner: error: node02: BMC 127\.0\.0\.1:\d+ did not do "power status"/);
        assert.match(r.err, /cloner: error: node03 has no BMC/);
        assert.match(r.err, /power status failed on 2 of 3 nodes\nhint: /);
        assert.is(cloner('power', 'dance', ...remote, '--nodes', 'node01').code, 2);
      });
    });
  });
}

test('power through a Redfish BMC (FakeRedfishBmc): ComputerSystem.Reset and PowerState; its self-signed certificate is refused unless bmc.tls_verify=no', async () => {
  await withFakeRedfishBmc(async (bmc) => {
    await withServer(async (server) => {
      const remote = ['--server', server.url, '--token-file', path.join(server.dataDir, 'admin.token')];
      const bmcSettings = ['bmc.type=redfish', 'bmc.address=127.0.0.1', `bmc.port=${bmc.port}`, `bmc.username=${bmc.username}`, `bmc.password=${bmc.password}`];
      assert.is(cloner('nodes', 'add', ...remote, 'rf01', 'eth0.mac=52:54:00:00:01:01', ...bmcSettings, 'bmc.tls_verify=no').code, 0);
      assert.is(cloner('nodes', 'add', ...remote, 'rf02', 'eth0.mac=52:54:00:00:01:02', ...bmcSettings).code, 0);
      assert.is(cloner('nodes', 'add', ...remote, 'rf03', 'eth0.mac=52:54:00:00:01:03', ...bmcSettings.slice(0, -1), 'bmc.password=wrong', 'bmc.tls_verify=no').code, 0);
      let r = cloner('power', 'status', ...remote, '--nodes', 'rf01');
      assert.is(r.out, 'rf01: off\n', r.err);
      r = cloner('power', 'on', ...remote, '--nodes', 'rf01');
      assert.is(r.out, 'rf01: on\n', r.err);
      assert.is(bmc.powerState(), 'On');
      r = cloner('power', 'reset', ...remote, '--nodes', 'rf01');
      assert.is(r.code, 0, r.err);
      r = cloner('power', 'off', ...remote, '--nodes', 'rf01');
      assert.is(r.out, 'rf01: off\n');
      const resets = bmc.calls().filter((c) => c.startsWith('POST'));
      assert.equal(resets, ['POST /redfish/v1/Systems/1/Actions/ComputerSystem.Reset On', 'POST /redfish/v1/Systems/1/Actions/ComputerSystem.Reset ForceRestart', 'POST /redfish/v1/Systems/1/Actions/ComputerSystem.Reset ForceOff']);
      r = cloner('power', 'status', ...remote, '--nodes', 'rf02,rf03');
      assert.is(r.code, 2);
      assert.match(r.err, /rf02: Redfish BMC 127\.0\.0\.1:\d+ refused GET \/redfish\/v1\/Systems: (DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN)/);
      assert.match(r.err, /rf03: Redfish BMC 127\.0\.0\.1:\d+ refused GET \/redfish\/v1\/Systems: HTTP 401/);
      assert.not.match(cloner('nodes', 'show', ...remote, 'rf01', '--json').out, /fake-bmc-secret/);
    });
  });
});

test.run();
