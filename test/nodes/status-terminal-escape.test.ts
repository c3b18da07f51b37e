/**
 * Text a node reports (a status message, an error) reaches the admin's terminal through
 * `cloner status`: escape sequences in it (clear the screen, retitle the window, move the
 * cursor to overwrite another node's line) must arrive as visible text, not act.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import path from 'node:path';
import { cloner } from '../helpers/cli.ts';
import { withServer } from '../helpers/server.ts';

test('a node\'s hostile status message is shown escaped by cloner status', async () => {
  await withServer(async (server) => {
    const remote = ['--server', server.url, '--token-file', path.join(server.dataDir, 'admin.token')];
    assert.is(cloner('nodes', 'add', ...remote, 'n1', 'eth0.mac=52:54:00:00:00:01').code, 0);
    const hostile = 'ok\u001b[2J\u001b]0;pwned\u0007\r\u001b[1Anode99 done';
    const r = await fetch(`${server.url}/v1/nodes/n1/deploy/result`, { method: 'POST', headers: { authorization: `Bearer ${server.adminToken}`, 'content-type': 'application/json' }, body: JSON.stringify({ ok: false, phase: 'restore', message: hostile }) });
    assert.is(r.status, 200);
    const out = cloner('status', ...remote, '--nodes', 'n1').out;
    assert.not.match(out, /[\u0000-\u0009\u000b-\u001f\u007f]/, 'no control character but newlines reaches the terminal');
    assert.match(out, /failed\s+.*in restore: ok\\x1b\[2J\\x1b\]0;pwned\\x07\\x0d\\x1b\[1Anode99 done/);
  });
});

test.run();
