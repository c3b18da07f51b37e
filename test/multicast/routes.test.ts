/**
 * The multicast routes as untrusted input meets them (app.inject, a real local store):
 * a node registers what it lacks and is listed waiting with the stored bytes of it; bad
 * bodies (a chunk id that is not one, an unknown field, a group outside 239.0.0.0/8, a
 * session id that is not 16 hex digits) are refused; a report or ready for a session the
 * node is not in is 404; only the admin may start a session; an unknown image is 404.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { buildServer } from '../../server/app.ts';
import { loadTokens } from '../../server/auth.ts';
import { withStore } from '../helpers/store.ts';
import { seededBytes } from '../helpers/fixtures.ts';

test('register, poll, status; bad input refused; sessions need the admin', async () => {
  await withStore(async (store, dir) => {
    const auth = await loadTokens(dir);
    const app = await buildServer({ store, auth, ui: false });
    try {
      const admin = { authorization: `Bearer ${auth.adminToken}` };
      const read = { authorization: `Bearer ${auth.readToken}` };
      const a = await store.put(seededBytes(1, 100_000));
      const b = await store.put(seededBytes(2, 50_000));
      await store.flush();
      const reg = await app.inject({ method: 'POST', url: '/v1/multicast/nodes/node1', headers: admin, payload: { image: 'debian', revision: 1, lacking: [a, b, a] } });
      assert.is(reg.statusCode, 200, reg.body);
      assert.is(reg.json().state, 'waiting');
      assert.is((await app.inject({ method: 'GET', url: '/v1/multicast/nodes/node1', headers: admin })).json().state, 'waiting');
      assert.is((await app.inject({ method: 'GET', url: '/v1/multicast/nodes/node2', headers: admin })).json().state, 'unknown');
      const st = (await app.inject({ method: 'GET', url: '/v1/multicast', headers: read })).json();
      assert.is(st.waiting.length, 1);
      assert.is(st.waiting[0].lackingChunks, 2);
      assert.ok(st.waiting[0].lackingBytes > 0 && st.waiting[0].lackingBytes <= 150_100, String(st.waiting[0].lackingBytes));
      const bad = [
        { url: '/v1/multicast/nodes/node1', payload: { image: 'debian', revision: 1, lacking: ['zz'] } },
        { url: '/v1/multicast/nodes/node1', payload: { image: 'debian', revision: 1, lacking: [], extra: 1 } },
        { url: '/v1/multicast/nodes/node1/ready', payload: { session: 'nothex' } },
        { url: '/v1/multicast/nodes/node1/report', payload: { session: '0123456789abcdef', round: 1, missing: [], gaps: [[a, [-1]]] } },
        { url: '/v1/multicast/sessions', payload: { image: 'debian', nodes: ['node1'], group: '224.0.0.1' } },
        { url: '/v1/multicast/sessions', payload: { image: 'debian', nodes: [] } },
      ];
      for (const x of bad) {
        const r = await app.inject({ method: 'POST', url: x.url, headers: admin, payload: x.payload });
        assert.is(r.statusCode, 400, `${x.url} ${JSON.stringify(x.payload)}: ${r.body}`);
      }
      const notIn = await app.inject({ method: 'POST', url: '/v1/multicast/nodes/node1/report', headers: admin, payload: { session: '0123456789abcdef', round: 1, missing: [], gaps: [] } });
      assert.is(notIn.statusCode, 404);
      assert.is(notIn.json().error, 'NOT_IN_SESSION');
      const byReader = await app.inject({ method: 'POST', url: '/v1/multicast/sessions', headers: read, payload: { image: 'debian', nodes: ['node1'] } });
      assert.is(byReader.statusCode, 403);
      const byReaderAsNode = await app.inject({ method: 'POST', url: '/v1/multicast/nodes/node1', headers: read, payload: { image: 'debian', revision: 1, lacking: [] } });
      assert.is(byReaderAsNode.statusCode, 403, 'the read token may not act for a node');
      const noImage = await app.inject({ method: 'POST', url: '/v1/multicast/sessions', headers: admin, payload: { image: 'debian', nodes: ['node1'], dryRun: true } });
      assert.is(noImage.statusCode, 404, noImage.body);
    } finally {
      await app.close();
    }
  });
});

test.run();
