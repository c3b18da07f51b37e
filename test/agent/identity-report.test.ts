/**
 * Every identity change is in the deploy result, and `cloner status` shows a done deploy's
 * warnings under its row (issue 13): the result lists fit the server's 16 KiB body limit
 * however many there are, and the status line names the count and each warning.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import Value from 'typebox/value';
import { resultLists } from '../../agent/identity.ts';
import { DeployResultBody } from '../../core/api/schemas.ts';
import { statusLine } from '../../cli/commands/status.ts';

test('result lists: trimmed to the body limit with a "more" entry, and valid against the schema', () => {
  const warnings = Array.from({ length: 500 }, (_, n) => `warning ${n} ${'x'.repeat(80)}`);
  const changes = Array.from({ length: 500 }, (_, n) => ({ file: `/etc/NetworkManager/system-connections/p${n}.nmconnection`, change: `disabled (moved to /var/lib/cloner/disabled): the golden's profile ${n}` }));
  const lists = resultLists(warnings, changes);
  const body = { ok: true, phase: 'done' as const, ...lists };
  assert.ok(Value.Check(DeployResultBody, body), [...Value.Errors(DeployResultBody, body)].map((e) => JSON.stringify(e)).join('\n'));
  assert.ok(JSON.stringify(body).length < 16 * 1024, `${JSON.stringify(body).length} bytes`);
  assert.match(lists.warnings.at(-1)!, /and \d+ more warnings/);
  assert.match(lists.changes.at(-1)!.change, /and \d+ more changes/);
  const few = resultLists(['w1'], [{ file: '/etc/hosts', change: 'golden01 -> n1' }]);
  assert.equal(few, { warnings: ['w1'], changes: [{ file: '/etc/hosts', change: 'golden01 -> n1' }] });
});

test('status: a done deploy shows its warnings next to "done", one a line', () => {
  const row = {
    node: 'node03', netboot: 'local', image: 'nm', status: null,
    lastDeploy: { ok: true, phase: 'done' as const, image: 'nm', revision: 1, seconds: 3, fetchedBytes: 0, at: new Date().toISOString(), warnings: ['/etc/NetworkManager/system-connections/ib0.nmconnection: disabled', 'no SSH host keys'], changes: [{ file: '/etc/hostname', change: 'golden01 -> node03' }] },
  };
  const text = statusLine(row as Parameters<typeof statusLine>[0]);
  const lines = text.split('\n');
  assert.match(lines[0], /done .* 2 warnings:$/);
  assert.equal(lines.slice(1), ['    warning: /etc/NetworkManager/system-connections/ib0.nmconnection: disabled', '    warning: no SSH host keys']);
  const clean = statusLine({ ...row, lastDeploy: { ...row.lastDeploy, warnings: [] } } as Parameters<typeof statusLine>[0]);
  assert.not.match(clean, /warning/);
});

test.run();
