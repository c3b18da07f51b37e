/**
 * The chunk protocol of a real cloner-server process on loopback: tokens (401 vs 403),
 * missing-chunk queries, framed uploads checked by the server (a frame whose bytes do not
 * hash to its id is refused and stores nothing), a cut-off upload, batch fetches, single
 * chunks at an immutable URL with ETag, bad input as 4xx JSON, concurrent uploads, and a
 * graceful stop.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { chunkIdOf } from '../../core/store/chunk-id.ts';
import { decodeChunk, encodeChunk } from '../../core/store/codec.ts';
import { LocalStore } from '../../core/store/local.ts';
import { CHUNKS_MEDIA_TYPE, encodeFrame, readFrames } from '../../core/store/wire.ts';
import { seededBytes } from '../helpers/fixtures.ts';
import { withServer, type TestServer } from '../helpers/server.ts';

const chunks = (seed: number, n: number) =>
  Array.from({ length: n }, (_, i) => (i % 2 ? Buffer.from(`compressible ${seed}/${i} `.repeat(2000)) : seededBytes(seed * 1000 + i, 20_000 + i)));

function call(server: TestServer, route: string, init: RequestInit & { token?: string | null } = {}) {
  const token = init.token === undefined ? server.adminToken : init.token;
  const headers = new Headers(init.headers);
  if (token) headers.set('authorization', `Bearer ${token}`);
  return fetch(`${server.url}${route}`, { ...init, headers });
}

const json = (body: unknown) => ({ method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
const upload = (server: TestServer, data: Buffer[], token?: string | null) =>
  call(server, '/v1/chunks', { method: 'POST', body: new Uint8Array(Buffer.concat(data.map((d) => encodeFrame(encodeChunk(d))))), headers: { 'content-type': CHUNKS_MEDIA_TYPE }, token });

test('tokens: none or wrong is 401, a read token on a write route is 403; tokens are 0600 files', async () => {
  await withServer(async (server) => {
    assert.is((await call(server, '/v1/health', { token: null })).status, 200);
    for (const token of [null, 'not-the-token']) {
      const r = await call(server, '/v1/chunks/missing', { ...json({ ids: [] }), token });
      assert.is(r.status, 401);
      const body = await r.json();
      assert.is(body.error, 'UNAUTHORIZED');
      assert.ok(body.hint.length > 0);
    }
    assert.is((await call(server, '/v1/chunks/missing', { ...json({ ids: [] }), token: server.readToken })).status, 200);
    const denied = await upload(server, chunks(1, 1), server.readToken);
    assert.is(denied.status, 403);
    assert.is((await denied.json()).error, 'FORBIDDEN');
    for (const f of ['admin.token', 'read.token']) assert.is((await stat(path.join(server.dataDir, f))).mode & 0o777, 0o600);
  });
});

test('upload, missing, fetch, single immutable chunks; the server checks every chunk itself', async () => {
  await withServer(async (server) => {
    const data = chunks(2, 40);
    const ids = data.map((d) => chunkIdOf(d));
    const unknown = chunkIdOf(Buffer.from('never uploaded'));
    let r = await call(server, '/v1/chunks/missing', json({ ids: [...ids, unknown] }));
    assert.equal((await r.json()).missing, [...ids, unknown]);

    r = await upload(server, data);
    assert.is(r.status, 200);
    assert.equal(await r.json(), { stored: 40, ids });
    r = await upload(server, data.slice(0, 5)); // idempotent
    assert.equal((await r.json()).stored, 5);
    r = await call(server, '/v1/chunks/missing', json({ ids: [...ids, unknown] }));
    assert.equal((await r.json()).missing, [unknown]);

    r = await call(server, '/v1/chunks/fetch', { ...json({ ids: [ids[3], ids[0], ids[3]] }), token: server.readToken });
    assert.is(r.status, 200);
    assert.is(r.headers.get('content-type'), CHUNKS_MEDIA_TYPE);
    const got: Buffer[] = [];
    for await (const c of readFrames(r.body as unknown as AsyncIterable<Uint8Array>)) got.push(decodeChunk(c));
    assert.equal(got, [data[3], data[0], data[3]]);
    r = await call(server, '/v1/chunks/fetch', json({ ids: [ids[1], unknown] }));
    assert.is(r.status, 404);
    assert.is((await r.json()).error, 'CHUNK_MISSING');

    r = await call(server, `/v1/chunks/${ids[7]}`, { token: server.readToken });
    assert.is(r.status, 200);
    assert.is(r.headers.get('cache-control'), 'public, max-age=31536000, immutable');
    assert.is(r.headers.get('etag'), `"${ids[7]}"`);
    let single;
    for await (const c of readFrames((async function* () { yield new Uint8Array(await r.arrayBuffer()); })())) single = c;
    assert.equal(decodeChunk(single!), data[7]);
    r = await call(server, `/v1/chunks/${ids[7]}`, { headers: { 'if-none-match': `"${ids[7]}"` } });
    assert.is(r.status, 304);
    r = await call(server, `/v1/chunks/${unknown}`);
    assert.is(r.status, 404);
    assert.is((await r.json()).error, 'CHUNK_MISSING');
  });
});

test('a fetch of 303 chunks from 6 uploads answers them in the order asked, intact; one missing id among them is a 404 in JSON', async () => {
  await withServer(async (server) => {
    const data = Array.from({ length: 6 }, (_, u) => chunks(40 + u, 50)).flat();
    const ids = data.map((d) => chunkIdOf(d));
    for (let u = 0; u < 6; u++) assert.is((await upload(server, data.slice(u * 50, u * 50 + 50))).status, 200);
    // Reversed within each upload, uploads interleaved, some asked twice (several packs: test/store/batched-lookups).
    const asked = Array.from({ length: 50 }, (_, i) => [0, 1, 2, 3, 4, 5].map((u) => ids[u * 50 + 49 - i])).flat();
    asked.push(ids[0], ids[299], ids[0]);
    let r = await call(server, '/v1/chunks/fetch', { ...json({ ids: asked }), token: server.readToken });
    assert.is(r.status, 200);
    const got: string[] = [];
    for await (const c of readFrames(r.body as unknown as AsyncIterable<Uint8Array>)) {
      assert.ok(decodeChunk(c).equals(data[ids.indexOf(c.id)]), `chunk ${got.length} is intact`);
      got.push(c.id);
    }
    assert.equal(got, asked);

    const unknown = chunkIdOf(Buffer.from('not uploaded either'));
    r = await call(server, '/v1/chunks/fetch', json({ ids: [...asked.slice(0, 100), unknown, ids[3]] }));
    assert.is(r.status, 404);
    const body = await r.json();
    assert.equal([body.error, body.message], ['CHUNK_MISSING', `1 of 102 chunks are not stored (first: ${unknown})`]);
    assert.ok(body.hint.length > 0);
  });
});

test('concurrent fetches of several MiB, one read slowly and one cut off, while others run: every chunk read arrives intact (reused frame slabs)', async () => {
  await withServer(async (server) => {
    const data = Array.from({ length: 4 }, (_, u) => chunks(60 + u, 120)).flat();
    const ids = data.map((d) => chunkIdOf(d));
    for (let u = 0; u < 4; u++) assert.is((await upload(server, data.slice(u * 120, u * 120 + 120))).status, 200);
    const fetchAll = async (order: string[], slow: boolean, stopAfter = Infinity) => {
      const r = await call(server, '/v1/chunks/fetch', json({ ids: order }));
      assert.is(r.status, 200);
      const reader = readFrames(r.body as unknown as AsyncIterable<Uint8Array>);
      let n = 0;
      for await (const c of reader) {
        if (slow && n % 20 === 0) await new Promise((resolve) => setTimeout(resolve, 15));
        assert.ok(decodeChunk(c).equals(data[ids.indexOf(c.id)]), `chunk ${n} is intact`);
        if (++n >= stopAfter) break;
      }
      return n;
    };
    for (let round = 0; round < 3; round++) {
      const shuffled = [...ids].sort((a, b) => (a + round < b ? -1 : 1));
      const counts = await Promise.all([fetchAll(ids, true), fetchAll([...ids].reverse(), false), fetchAll(shuffled, false, 50), fetchAll(shuffled, true)]);
      assert.equal(counts, [480, 480, 50, 480]);
    }
  });
});

test('bad input: forged and cut-off uploads, bad ids, oversized batches, wrong media type: 4xx JSON, nothing bad stored', async () => {
  await withServer(async (server) => {
    const [good, victim] = chunks(3, 2);
    // A frame claiming the id of `victim` but carrying other bytes.
    const forged = encodeFrame({ ...encodeChunk(Buffer.from('evil bytes')), id: chunkIdOf(victim) });
    let r = await call(server, '/v1/chunks', { method: 'POST', body: new Uint8Array(Buffer.concat([encodeFrame(encodeChunk(good)), forged])), headers: { 'content-type': CHUNKS_MEDIA_TYPE } });
    assert.is(r.status, 400);
    let body = await r.json();
    assert.is(body.error, 'CHUNK_CORRUPT');
    r = await call(server, '/v1/chunks/missing', json({ ids: [chunkIdOf(good), chunkIdOf(victim)] }));
    assert.equal((await r.json()).missing, [chunkIdOf(victim)], 'the good frame before it is kept, the forged one is not');

    const frame = encodeFrame(encodeChunk(victim));
    r = await call(server, '/v1/chunks', { method: 'POST', body: new Uint8Array(frame.subarray(0, frame.length - 10)), headers: { 'content-type': CHUNKS_MEDIA_TYPE } });
    assert.is(r.status, 400);
    body = await r.json();
    assert.is(body.error, 'FRAME_INVALID');
    assert.match(body.message, /ends inside frame 1/);

    const huge = Buffer.alloc(41);
    huge.writeUInt32BE(0xffffffff, 33);
    r = await call(server, '/v1/chunks', { method: 'POST', body: new Uint8Array(huge), headers: { 'content-type': CHUNKS_MEDIA_TYPE } });
    assert.is(r.status, 400);
    assert.match((await r.json()).message, /lengths out of range/);

    r = await call(server, '/v1/chunks', { method: 'POST', body: new Uint8Array(frame), headers: { 'content-type': 'application/octet-stream' } });
    assert.is(r.status, 415);
    for (const bad of [{ ids: ['zz'] }, { ids: 'x' }, {}, { ids: [], extra: 1 }, { ids: Array(20_001).fill(chunkIdOf(good)) }]) {
      r = await call(server, '/v1/chunks/missing', json(bad));
      assert.is(r.status, 400, JSON.stringify(bad).slice(0, 80));
      assert.is((await r.json()).error, 'BAD_REQUEST');
    }
    r = await call(server, '/v1/chunks/not-an-id');
    assert.is(r.status, 400);
    r = await call(server, '/v1/chunks/missing', { method: 'POST', body: '{not json', headers: { 'content-type': 'application/json' } });
    assert.is(r.status, 400);
    r = await call(server, '/v1/nothing-here');
    assert.is(r.status, 404);
  });
});

test('8 concurrent uploads of overlapping chunk sets all succeed and leave a consistent store', async () => {
  await withServer(async (server) => {
    const sets = Array.from({ length: 8 }, (_, i) => chunks(10 + (i % 3), 30));
    const results = await Promise.all(sets.map((s) => upload(server, s)));
    for (const r of results) assert.is(r.status, 200);
    // Rounds of uploads of several MiB each, with a forged one among them: each request's
    // frames are carved from slabs the earlier requests gave back (wire.ts FrameSlabs), so a
    // slab reused while its chunks were still unwritten would store damaged chunks.
    for (let round = 0; round < 3; round++) {
      const big = Array.from({ length: 3 }, (_, i) => chunks(100 + round * 10 + i, 160));
      sets.push(...big);
      const forged = Buffer.concat([encodeFrame(encodeChunk(Buffer.from(`round ${round}`))), encodeFrame({ ...encodeChunk(Buffer.from('the bytes')), id: chunkIdOf(Buffer.from('other bytes')) })]);
      const answers = await Promise.all([...big.map((s) => upload(server, s)), call(server, '/v1/chunks', { method: 'POST', body: new Uint8Array(forged), headers: { 'content-type': CHUNKS_MEDIA_TYPE } })]);
      assert.equal(answers.map((r) => r.status), [200, 200, 200, 400]);
    }
    const all = [...new Set(sets.flat().map((d) => chunkIdOf(d)))];
    const r = await call(server, '/v1/chunks/missing', json({ ids: all }));
    assert.equal((await r.json()).missing, []);
    assert.is(await server.stop(), 0, 'graceful stop exits 0');
    const store = await LocalStore.open(path.join(server.dataDir, 'store'));
    try {
      const report = await store.verify();
      assert.equal([report.missing, report.corrupt], [[], []]);
      assert.equal(await store.hasMany(all), all.map(() => true));
    } finally {
      await store.close();
    }
  });
});

test('a GC between an upload and its commit keeps the uploaded chunks (no revision refers to them yet)', async () => {
  await withServer(async (server) => {
    const data = chunks(20, 10);
    assert.is((await upload(server, data)).status, 200);
    const gc = await call(server, '/v1/gc', { method: 'POST' });
    assert.is(gc.status, 200);
    const r = await call(server, '/v1/chunks/missing', json({ ids: data.map((d) => chunkIdOf(d)) }));
    assert.equal((await r.json()).missing, []);
  });
});

test('SIGTERM during an upload: the upload in flight finishes, then the server exits 0 with its chunks stored', async () => {
  await withServer(async (server) => {
    const data = chunks(30, 20);
    const frames = data.map((d) => encodeFrame(encodeChunk(d)));
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (sent === frames.length) return controller.close();
        await new Promise((res) => setTimeout(res, 40));
        controller.enqueue(new Uint8Array(frames[sent++]));
      },
    });
    const response = call(server, '/v1/chunks', { method: 'POST', body, headers: { 'content-type': CHUNKS_MEDIA_TYPE }, duplex: 'half' } as RequestInit);
    while (sent < 5) await new Promise((res) => setTimeout(res, 10));
    const stopped = server.stop();
    const r = await response;
    assert.is(r.status, 200);
    assert.is((await r.json()).stored, 20);
    assert.is(await stopped, 0);
    const store = await LocalStore.open(path.join(server.dataDir, 'store'));
    try {
      assert.equal(await store.hasMany(data.map((d) => chunkIdOf(d))), data.map(() => true));
    } finally {
      await store.close();
    }
  });
});

test.run();
