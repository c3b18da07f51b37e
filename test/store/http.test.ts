/**
 * HttpStore against a real fastify server on loopback (in process, over a real LocalStore):
 * the store conformance suite, plus the errors a client meets: an unreachable server and
 * a refused token.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { HttpStore } from '../../core/store/http.ts';
import { LocalStore } from '../../core/store/local.ts';
import { buildServer } from '../../server/app.ts';
import { loadTokens } from '../../server/auth.ts';
import { seededBytes } from '../helpers/fixtures.ts';
import { conformanceSuite } from './conformance.ts';

async function startServer() {
  const dir = await mkdtemp(path.join(tmpdir(), 'cloner-http-'));
  const local = await LocalStore.open(path.join(dir, 'store'), { create: true, packTargetBytes: 256 * 1024 });
  const auth = await loadTokens(dir);
  const app = await buildServer({ store: local, auth });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  return {
    url,
    auth,
    close: async () => {
      await app.close();
      await local.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

conformanceSuite('HttpStore', async () => {
  const server = await startServer();
  const store = new HttpStore({ url: server.url, token: server.auth.adminToken, uploadBatchBytes: 64 * 1024, fetchBatch: 7 });
  return { store, close: async () => (await store.close(), await server.close()) };
}).run();

test('uploaded and already-stored bytes are both counted raw', async () => {
  const server = await startServer();
  try {
    const store = new HttpStore({ url: server.url, token: server.auth.adminToken });
    // Compressible chunks, so encoded and raw sizes differ.
    const chunks = [1, 2, 3].map((n) => Buffer.from(`chunk ${n} `.repeat(4000)));
    const raw = chunks.reduce((sum, c) => sum + c.length, 0);
    await Promise.all(chunks.map((c) => store.put(c)));
    await store.flush();
    assert.is(store.uploadedRawBytes, raw);
    assert.ok(store.uploadedBytes < raw, 'the wire carried LZ4 frames, smaller than the raw bytes');
    assert.is(store.alreadyStoredBytes, 0);
    const again = new HttpStore({ url: server.url, token: server.auth.adminToken });
    await Promise.all(chunks.map((c) => again.put(c)));
    await again.flush();
    assert.is(again.alreadyStoredBytes, raw);
    assert.is(again.uploadedBytes, 0);
  } finally {
    await server.close();
  }
});

test('many batches in flight, some chunks already stored, one put reusing its read buffer: every chunk stored intact (reused slabs)', async () => {
  const server = await startServer();
  try {
    // Small batches, so raw copies and bodies come from slabs given back by earlier batches.
    const store = new HttpStore({ url: server.url, token: server.auth.adminToken, uploadBatchBytes: 96 * 1024 });
    const sizes = Array.from({ length: 240 }, (_, i) => 1 + ((i * 7919) % 70000));
    const data = sizes.map((n, i) => (i % 3 ? Buffer.from(`chunk ${i} `.repeat(Math.ceil(n / 8)).slice(0, n)) : seededBytes(5000 + i, n)));
    await Promise.all(data.slice(0, 40).map((d) => store.put(d)));
    await store.flush();
    // As capture does: one read buffer, refilled as soon as put returns.
    const window = Buffer.alloc(80000);
    const puts: Promise<string>[] = [];
    for (const d of data) {
      d.copy(window);
      puts.push(store.put(window.subarray(0, d.length)));
      window.fill(0xa5);
      if (puts.length % 37 === 0) await new Promise((r) => setTimeout(r, 5));
    }
    const ids = await Promise.all(puts);
    await store.flush();
    assert.ok(store.alreadyStoredBytes > 0, 'some were on the server already');
    const got = new Map<string, Buffer>();
    for await (const [id, bytes] of store.getMany(ids)) got.set(id, bytes);
    data.forEach((d, i) => assert.ok(got.get(ids[i])?.equals(d), `chunk ${i} (${d.length} bytes)`));
    await store.close();
  } finally {
    await server.close();
  }
});

test('getMany with transient: each chunk right when yielded, in reused memory; a caller that stops early leaves the store usable', async () => {
  const server = await startServer();
  try {
    const store = new HttpStore({ url: server.url, token: server.auth.adminToken, fetchBatch: 9 });
    const data = Array.from({ length: 120 }, (_, i) => (i % 4 ? Buffer.from(`transient ${i} `.repeat(300 + i * 40)) : seededBytes(9000 + i, 3000 + i * 500)));
    const ids = await Promise.all(data.map((d) => store.put(d)));
    await store.flush();
    const byId = new Map(ids.map((id, i) => [id, data[i]]));
    const seen: Buffer[] = [];
    let n = 0;
    for await (const [id, bytes] of store.getMany(ids, { transient: true })) {
      // A slow caller: the batches fetched meanwhile must not take this one's memory.
      if (n % 3 === 0) await new Promise((r) => setTimeout(r, 3));
      assert.ok(bytes.equals(byId.get(id)!), `chunk ${id} as yielded`);
      seen.push(bytes);
      n++;
    }
    assert.is(n, data.length);
    const buffers = new Set(seen.map((b) => b.buffer));
    assert.ok(buffers.size < seen.length / 2, `decoded into reused memory (${buffers.size} buffers for ${seen.length} chunks)`);
    // Stop after a few, twice; then every chunk still comes back whole, transient or not.
    for (let round = 0; round < 2; round++) {
      let k = 0;
      for await (const [id, bytes] of store.getMany(ids, { transient: true })) {
        assert.ok(bytes.equals(byId.get(id)!));
        if (++k === 20) break;
      }
    }
    const got = new Map<string, Buffer>();
    for await (const [id, bytes] of store.getMany(ids)) got.set(id, bytes);
    for (const [id, d] of byId) assert.ok(got.get(id)?.equals(d));
    await store.close();
  } finally {
    await server.close();
  }
});

test('an unreachable server and a refused token are clear errors', async () => {
  const server = await startServer();
  try {
    const wrong = new HttpStore({ url: server.url, token: 'wrong-token-123456' });
    const denied = await wrong.has('0'.repeat(64)).catch((e) => e);
    assert.is(denied.code, 'UNAUTHORIZED');
    assert.ok(denied.hint.length > 0);
    const reader = new HttpStore({ url: server.url, token: server.auth.readToken });
    const forbidden = await reader.put(seededBytes(1, 1000)).catch((e) => e);
    assert.is(forbidden.code, 'FORBIDDEN');
  } finally {
    await server.close();
  }
  const gone = new HttpStore({ url: server.url, token: 'x' });
  const err = await gone.has('0'.repeat(64)).catch((e) => e);
  assert.is(err.code, 'SERVER_UNREACHABLE');
  assert.match(err.message, /cannot reach the cloner server at http:\/\/127\.0\.0\.1:\d+: ECONNREFUSED/);
});

test.run();
