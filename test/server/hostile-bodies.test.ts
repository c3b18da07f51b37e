/**
 * Every route of the protocol table, with the admin token, against hostile bodies, params and
 * content types (malformed JSON, deep nesting, wrong types, prototype keys, NUL bytes, huge
 * numbers, names that are paths): never a 5xx, and every 4xx a JSON {error, message, hint}.
 * Real LocalStore; the server through app.inject.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { API } from '../../core/api/routes.ts';
import { buildServer } from '../../server/app.ts';
import { withStore } from '../helpers/store.ts';

const TOKEN = 'admin-token-for-the-hostile-bodies-test';

const bodies: Array<[string, string]> = [
  ['empty', ''],
  ['not JSON', 'this is not json'],
  ['cut JSON', '{"ids": ["'],
  ['null', 'null'],
  ['a number', '1e999'],
  ['an array', '[1,2,3]'],
  ['deep nesting', '['.repeat(20_000) + ']'.repeat(20_000)],
  ['prototype keys', '{"__proto__": {"admin": true}, "constructor": {"prototype": {"x": 1}}}'],
  ['wrong types', '{"ids": "x", "tree": 5, "settings": {"a": 1}, "files": [], "action": null, "stats": {"files": -1, "bytes": 1e308}}'],
  ['NUL and controls', JSON.stringify({ ids: ['\u0000'.repeat(64)], settings: ['hostname=\u0000\u001b[2J'], note: '\u0007' })],
  ['huge numbers', '{"stats": {"files": 123456789012345678901234567890, "bytes": -0}, "tree": "' + 'a'.repeat(64) + '"}'],
  ['extra fields', JSON.stringify({ tree: 'a'.repeat(64), stats: { files: 1, bytes: 1 }, create: true, admin: true })],
];
const names = ['node01', '..', '%2e%2e%2fetc', 'a'.repeat(300), '%00', 'NODE%0Aevil'];

test('hostile-bodies: no route answers a 5xx; every 4xx is the JSON error body', async () => {
  await withStore(async (store) => {
    const app = await buildServer({ store, auth: { roleOf: (t) => (t === TOKEN ? 'admin' : null) } });
    try {
      let requests = 0;
      const seen = new Map<number, number>();
      for (const [route, d] of Object.entries(API)) {
        for (const name of names) {
          const url = d.url
            .replace(':name', name)
            .replace(':id', name === 'node01' ? 'a'.repeat(64) : name)
            .replace(':kind', name === 'node01' ? 'script' : name)
            .replace(':item', name === 'node01' ? 'pre' : name)
            .replace(':file', name === 'node01' ? 'vmlinuz' : name);
          const queries = d.url === '/boot.ipxe' || d.url === '/v1/identify' ? ['', '?mac=zz', '?mac=52:54:00:00:00:01', '?node=..', '?mac=1&node=2', '?version=-1'] : ['', '?version=0x10'];
          for (const query of queries) {
            for (const [what, payload] of d.method === 'GET' || d.method === 'DELETE' ? [['none', ''] as [string, string]] : bodies) {
              for (const type of d.method === 'GET' || d.method === 'DELETE' ? [undefined] : ['application/json', 'text/plain', 'application/octet-stream', 'application/x-cloner-chunks']) {
                const r = await app.inject({
                  method: d.method,
                  url: url + query,
                  headers: { authorization: `Bearer ${TOKEN}`, ...(type ? { 'content-type': type } : {}) },
                  ...(d.method === 'GET' || d.method === 'DELETE' ? {} : { payload }),
                });
                requests++;
                seen.set(r.statusCode, (seen.get(r.statusCode) ?? 0) + 1);
                const at = `${route} ${d.method} ${url}${query} (${what}, ${type})`;
                assert.ok(r.statusCode < 500, `${at}: ${r.statusCode} ${r.body.slice(0, 200)}`);
                if (r.statusCode >= 400 && !String(r.headers['content-type']).startsWith('text/plain')) {
                  const body = r.json();
                  assert.type(body.error, 'string', at);
                  assert.type(body.message, 'string', at);
                  assert.type(body.hint, 'string', at);
                  assert.not.match(body.message, /\n\s+at /, `${at}: no stack trace`);
                }
              }
            }
          }
        }
      }
      console.log(`# ${requests} hostile requests: ${[...seen].sort().map(([s, n]) => `${n} x ${s}`).join(', ')}`);
    } finally {
      await app.close();
    }
  });
});

test.run();
