/**
 * The node's SSH host keys asked for and made ahead of the identity phase (agent/hostkeys.ts),
 * against a real server on loopback and the real ssh-keygen: a node without kept keys gets a
 * full set made for it (comment root@NODE), stored on the server only when the identity
 * phase takes them; the next deploy gets the same keys and runs no ssh-keygen; keys made
 * for a deploy that never takes them (an image without /etc/ssh, a failed deploy) are not
 * stored; a server error comes out of `keys`, not as an unhandled rejection at the start.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { haveTool } from '../../core/tools.ts';
import { AgentClient } from '../../agent/client.ts';
import { HostKeys } from '../../agent/hostkeys.ts';
import { clonerAgainst } from '../helpers/cli.ts';
import { withTempDir } from '../helpers/fixtures.ts';
import { withServer } from '../helpers/server.ts';

if (!haveTool('ssh-keygen')) {
  console.log('skipped: host keys: ssh-keygen is not installed (openssh-client)');
  test.skip('host keys made ahead of the identity phase', () => {});
} else {
  test('host keys made ahead of the identity phase, stored only when taken', async () => {
    await withServer(async (server) => {
      const cloner = clonerAgainst(['--server', server.url, '--token-file', path.join(server.dataDir, 'admin.token')]);
      cloner('nodes', 'add', 'n1');
      cloner('nodes', 'add', 'n2');
      const client = new AgentClient({ server: server.url, token: server.adminToken, retryDeadlineMs: 2000, stallMs: 2000 });
      const stored = async (node: string) => (await fetch(`${server.url}/v1/nodes/${node}/hostkeys`, { headers: { authorization: `Bearer ${server.adminToken}` } })).status;
      await withTempDir(async (dir) => {
        const warnings: string[] = [];
        const warn = (m: string) => warnings.push(m);

        // n2: made for a deploy that never takes them (no /etc/ssh in the image, or a failure before identity).
        const unused = HostKeys.start(client, 'n2', path.join(dir, 'a'));
        await unused.settle();
        assert.ok(readdirSync(path.join(dir, 'a/hostkeys/etc/ssh')).length >= 6, 'the keys were made ahead');
        assert.is(await stored('n2'), 404, 'keys nobody took are not stored on the server');

        // n1: made, then taken: stored, with the node's name as their comment.
        const first = HostKeys.start(client, 'n1', path.join(dir, 'b'));
        const keys = (await first.keys(warn))!;
        await first.settle();
        const names = Object.keys(keys).sort();
        for (const type of ['ecdsa', 'ed25519', 'rsa']) {
          assert.ok(names.includes(`ssh_host_${type}_key`) && names.includes(`ssh_host_${type}_key.pub`), `${type} key pair`);
          assert.match(keys[`ssh_host_${type}_key.pub`].toString(), / root@n1\n?$/, `the ${type} public key names the node`);
        }
        assert.is(await stored('n1'), 200);

        // The next deploy of n1: the server's keys, and no ssh-keygen run.
        const again = HostKeys.start(client, 'n1', path.join(dir, 'c'));
        const kept = (await again.keys(warn))!;
        await again.settle();
        assert.equal(Object.keys(kept).sort(), names);
        for (const n of names) assert.ok(kept[n].equals(keys[n]), `${n} is the one stored`);
        assert.not.ok(existsSync(path.join(dir, 'c/hostkeys')), 'nothing made when the server keeps keys');
        assert.equal(warnings, []);

        // An unknown node: the PUT fails; the error comes out of keys(), nothing unhandled before.
        const lost = HostKeys.start(client, 'nobody', path.join(dir, 'd'));
        await new Promise((r) => setTimeout(r, 50));
        let message = '';
        await lost.keys(warn).catch((err: Error) => (message = err.message));
        await lost.settle();
        assert.match(message, /nobody/);
      });
    });
  });
}

test.run();
