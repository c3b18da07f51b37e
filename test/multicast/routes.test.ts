/**
 * The multicast routes as untrusted input meets them (app.inject, a real local store and
 * image): a node registers what it lacks as a compact bitmap over the revision's sorted
 * chunk ids (core/multicast/summary.ts) and is listed waiting with the stored bytes of it;
 * bad bodies are refused with a JSON error: a summary that is not base64, does not
 * inflate, inflates past its size or has bits past its end (400), a count or digest that
 * is not the server's (409), an unknown revision (404), an unknown field, a group outside
 * 239.0.0.0/8, a session id that is not 16 hex digits, a progress poll without whole
 * non-negative counts (400); a report or progress for a session the node is not in is 404; only the admin may start a session.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { buildServer } from '../../server/app.ts';
import { loadTokens } from '../../server/auth.ts';
import { deflateRawSync } from 'node:zlib';
import { withStore } from '../helpers/store.ts';
import { seededBytes } from '../helpers/fixtures.ts';
import { DEFAULT_CHUNKER_PARAMS } from '../../core/chunker/fastcdc.ts';
import { putJsonObject } from '../../core/store/objects.ts';
import { commitRevision } from '../../core/tree/images.ts';
import { canonicalChunks, encodeLacking } from '../../core/multicast/summary.ts';

const meta = { mode: 0o644, uid: 0, gid: 0, mtime: [1700000000, 0] };

test('register, poll, status; bad input refused; sessions need the admin', async () => {
  await withStore(async (store, dir) => {
    const auth = await loadTokens(dir);
    const app = await buildServer({ store, auth, ui: false });
    try {
      const admin = { authorization: `Bearer ${auth.adminToken}` };
      const read = { authorization: `Bearer ${auth.readToken}` };
      const a = await store.put(seededBytes(1, 100_000));
      const b = await store.put(seededBytes(2, 50_000));
      const c = await store.put(seededBytes(3, 9_000));
      const file = (name: string, id: string, size: number) => ({ ...meta, name, type: 'file', size, chunks: [[0, size, id]] });
      const tree = await putJsonObject(store, { v: 1, root: { ...meta, mode: 0o755 }, entries: [file('a', a, 100_000), file('b', b, 50_000), file('c', c, 9_000)] }, DEFAULT_CHUNKER_PARAMS);
      await store.flush();
      await commitRevision(store, 'debian', { tree }, { create: true });
      const all = await canonicalChunks(store, tree);
      assert.is(all.length, 4, 'three file chunks and the directory object');
      const summary = encodeLacking(all, [a, b, a]);
      assert.ok(summary.lacking.length < 16, summary.lacking);
      const reg = await app.inject({ method: 'POST', url: '/v1/multicast/nodes/node1', headers: admin, payload: { image: 'debian', revision: 1, ...summary } });
      assert.is(reg.statusCode, 200, reg.body);
      assert.is(reg.json().state, 'waiting');
      assert.is((await app.inject({ method: 'GET', url: '/v1/multicast/nodes/node1', headers: admin })).json().state, 'waiting');
      assert.is((await app.inject({ method: 'GET', url: '/v1/multicast/nodes/node2', headers: admin })).json().state, 'unknown');
      const st = (await app.inject({ method: 'GET', url: '/v1/multicast', headers: read })).json();
      assert.is(st.waiting.length, 1);
      assert.is(st.waiting[0].lackingChunks, 2);
      assert.ok(st.waiting[0].lackingBytes > 0 && st.waiting[0].lackingBytes <= 150_100, String(st.waiting[0].lackingBytes));
      const register = (body: object) => ({ url: '/v1/multicast/nodes/node1', payload: { image: 'debian', revision: 1, ...summary, ...body } });
      const bits = (bytes: number[]) => deflateRawSync(Buffer.from(bytes)).toString('base64');
      const refused = [
        [register({ lacking: 'not base64!' }), 400, 'BAD_REQUEST'],
        [register({ lacking: Buffer.from('junk').toString('base64') }), 400, 'BAD_LACKING_SUMMARY'],
        [register({ lacking: bits([0xf0, 0]) }), 400, 'BAD_LACKING_SUMMARY'],
        [register({ lacking: bits([0xf8]) }), 400, 'BAD_LACKING_SUMMARY'],
        [register({ lacking: deflateRawSync(Buffer.alloc(10 << 20)).toString('base64') }), 400, 'BAD_LACKING_SUMMARY'],
        [register({ chunks: 5 }), 409, 'CHUNK_LIST_MISMATCH'],
        [register({ digest: a }), 409, 'CHUNK_LIST_MISMATCH'],
        [register({ revision: 2 }), 404, 'IMAGE_NOT_FOUND'],
      ] as const;
      for (const [x, status, code] of refused) {
        const r = await app.inject({ method: 'POST', url: x.url, headers: admin, payload: x.payload });
        assert.is(r.statusCode, status, `${JSON.stringify(x.payload).slice(0, 200)}: ${r.body}`);
        assert.is(r.json().error, code, r.body);
        assert.ok(r.json().hint !== undefined && !/\n\s+at /.test(r.body), r.body);
      }
      const bad = [
        { url: '/v1/multicast/nodes/node1', payload: { image: 'debian', revision: 1, ...summary, lacking: ['zz'] } },
        { url: '/v1/multicast/nodes/node1', payload: { image: 'debian', revision: 1, ...summary, extra: 1 } },
        { url: '/v1/multicast/nodes/node1/ready', payload: { session: 'nothex' } },
        { url: '/v1/multicast/nodes/node1/report', payload: { session: '0123456789abcdef', round: 1, missing: [], gaps: [[a, [-1]]] } },
        { url: '/v1/multicast/sessions', payload: { image: 'debian', nodes: ['node1'], group: '224.0.0.1' } },
        { url: '/v1/multicast/sessions', payload: { image: 'debian', nodes: [] } },
        { url: '/v1/multicast/nodes/node1/progress', payload: { session: '0123456789abcdef', datagrams: -1, lost: 0 } },
        { url: '/v1/multicast/nodes/node1/progress', payload: { session: '0123456789abcdef', datagrams: 10, lost: 1.5 } },
        { url: '/v1/multicast/nodes/node1/progress', payload: { session: '0123456789abcdef', datagrams: 10 } },
      ];
      for (const x of bad) {
        const r = await app.inject({ method: 'POST', url: x.url, headers: admin, payload: x.payload });
        assert.is(r.statusCode, 400, `${x.url} ${JSON.stringify(x.payload)}: ${r.body}`);
      }
      const notIn = await app.inject({ method: 'POST', url: '/v1/multicast/nodes/node1/report', headers: admin, payload: { session: '0123456789abcdef', round: 1, missing: [], gaps: [] } });
      assert.is(notIn.statusCode, 404);
      assert.is(notIn.json().error, 'NOT_IN_SESSION');
      const progressNotIn = await app.inject({ method: 'POST', url: '/v1/multicast/nodes/node1/progress', headers: admin, payload: { session: '0123456789abcdef', datagrams: 10, lost: 1 } });
      assert.is(progressNotIn.statusCode, 404, progressNotIn.body);
      assert.is(progressNotIn.json().error, 'NOT_IN_SESSION');
      const byReader = await app.inject({ method: 'POST', url: '/v1/multicast/sessions', headers: read, payload: { image: 'debian', nodes: ['node1'] } });
      assert.is(byReader.statusCode, 403);
      const byReaderAsNode = await app.inject({ method: 'POST', url: '/v1/multicast/nodes/node1', headers: read, payload: { image: 'debian', revision: 1, ...summary } });
      assert.is(byReaderAsNode.statusCode, 403, 'the read token may not act for a node');
      const noImage = await app.inject({ method: 'POST', url: '/v1/multicast/sessions', headers: admin, payload: { image: 'nosuch', nodes: ['node1'], dryRun: true } });
      assert.is(noImage.statusCode, 404, noImage.body);
      const dry = await app.inject({ method: 'POST', url: '/v1/multicast/sessions', headers: admin, payload: { image: 'debian', nodes: ['node1'], dryRun: true, repair: 'resend' } });
      assert.is(dry.statusCode, 200, dry.body);
      assert.equal(dry.json().waiting, ['node1']);
      assert.is((await app.inject({ method: 'POST', url: '/v1/multicast/sessions', headers: admin, payload: { image: 'debian', nodes: ['node1'], repair: 'xor' } })).statusCode, 400);
    } finally {
      await app.close();
    }
  });
});

test.run();
