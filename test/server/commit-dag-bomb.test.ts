/**
 * sec-10, a DAG bomb: 26 tiny directory objects, each listing the next one twice, make a
 * tree of 2^24 files. A commit through a real server is refused with 422 TREE_TOO_LARGE in
 * well under a second (each distinct directory is sized once), and nothing is stored under
 * the image name. Also: a deep chain past the depth limit and a tree whose file sizes sum
 * past the byte limit are refused; and the stats of a committed revision are the ones the
 * server counted, not the ones the client sent.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { HttpStore } from '../../core/store/http.ts';
import { putJsonObject } from '../../core/store/objects.ts';
import { DEFAULT_CHUNKER_PARAMS } from '../../core/chunker/fastcdc.ts';
import { commitRevision, TREE_LIMITS, TreeTooLargeError } from '../../core/tree/images.ts';
import { chunkIdOf, type ChunkId } from '../../core/store/chunk-id.ts';
import { withServer } from '../helpers/server.ts';
import { withStore } from '../helpers/store.ts';

const meta = { mode: 0o755, uid: 0, gid: 0, mtime: [1700000000, 0] };
type Writer = Parameters<typeof putJsonObject>[0];

/** The error `work` fails with (a failure when it does not). */
async function failure(work: () => Promise<unknown>): Promise<Error> {
  try {
    await work();
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a failure');
}

/**
 * A writer that answers each put with its id at once and stores in the background
 * (`done()` waits), so building a chain of objects does not wait for a pack commit per level.
 */
function eager(store: Writer & { flush(): Promise<void> }): Writer & { done(): Promise<void> } {
  const puts: Promise<unknown>[] = [];
  return {
    put: async (data: Uint8Array) => {
      const id = chunkIdOf(data);
      puts.push(store.put(data, id));
      return id;
    },
    done: async () => {
      await Promise.all(puts);
      await store.flush();
    },
  };
}

/** A bomb of `levels` directory objects over one 1-byte file: 2^levels files. */
async function bomb(target: Writer & { flush(): Promise<void> }, levels: number, file = { size: 1 }): Promise<ChunkId> {
  const store = eager(target);
  const x = await store.put(Buffer.from('x'));
  const obj = (o: unknown) => putJsonObject(store, o, DEFAULT_CHUNKER_PARAMS);
  let t = await obj({ v: 1, entries: [{ ...meta, mode: 0o644, name: 'f', type: 'file', size: file.size, chunks: [[0, 1, x]] }] });
  for (let i = 0; i < levels; i++) t = await obj({ v: 1, entries: [{ ...meta, name: 'a', type: 'dir', tree: t }, { ...meta, name: 'b', type: 'dir', tree: t }] });
  const top = await obj({ v: 1, root: meta, entries: [{ ...meta, name: 'top', type: 'dir', tree: t }] });
  await store.done();
  return top;
}

test('commit-dag-bomb: a 2^24-file tree of 26 objects is refused at commit through the server', async () => {
  await withServer(async (server) => {
    const store = new HttpStore({ url: server.url, token: server.adminToken });
    const tree = await bomb(store, 24);
    await store.flush();
    const post = (name: string, body: unknown) =>
      fetch(`${server.url}/v1/images/${name}/revisions`, { method: 'POST', headers: { authorization: `Bearer ${server.adminToken}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const t0 = performance.now();
    const r = await post('demo-bomb', { tree, stats: { files: 1, bytes: 1 }, create: true });
    const ms = performance.now() - t0;
    const body = await r.json();
    assert.is(r.status, 422);
    assert.is(body.error, 'TREE_TOO_LARGE');
    assert.match(body.message, /expands past the limit of 16000000 entries/);
    assert.ok(body.hint.length > 0);
    assert.ok(ms < 2000, `refused in ${Math.round(ms)} ms`);
    assert.is((await fetch(`${server.url}/v1/images/demo-bomb`, { headers: { authorization: `Bearer ${server.adminToken}` } })).status, 404);

    // A small tree of the same shape commits, with the stats the server counted.
    const small = await bomb(store, 3, { size: 1 });
    await store.flush();
    const ok = await post('small', { tree: small, stats: { files: 999_999_999, bytes: 2 ** 50 }, create: true });
    assert.is(ok.status, 201);
    assert.equal((await ok.json()).stats, { files: 8, bytes: 8 });
  });
});

test('commit-dag-bomb: depth and byte limits, each directory sized once', async () => {
  await withStore(async (store) => {
    // A chain deeper than the limit.
    const w = eager(store);
    let t = await putJsonObject(w, { v: 1, entries: [] }, DEFAULT_CHUNKER_PARAMS);
    for (let i = 0; i < TREE_LIMITS.depth + 5; i++) t = await putJsonObject(w, { v: 1, entries: [{ ...meta, name: 'd', type: 'dir', tree: t }] }, DEFAULT_CHUNKER_PARAMS);
    const deep = await putJsonObject(w, { v: 1, root: meta, entries: [{ ...meta, name: 'top', type: 'dir', tree: t }] }, DEFAULT_CHUNKER_PARAMS);
    await w.done();
    let err = await failure(() => commitRevision(store, 'deep', { tree: deep }, { create: true }));
    assert.instance(err, TreeTooLargeError);
    assert.match(err.message, /nested directories/);
    // 2^10 copies of a file that claims 2^40 bytes: 2^50 bytes, past the 64 TiB limit.
    const huge = await bomb(store, 10, { size: 2 ** 40 });
    err = await failure(() => commitRevision(store, 'huge', { tree: huge }, { create: true }));
    assert.instance(err, TreeTooLargeError);
    assert.match(err.message, /bytes of files/);
    // Each distinct directory object is read once: a 2^20-file bomb under raised limits
    // costs two reads per distinct object (22 objects), not a million.
    let reads = 0;
    const get = store.get.bind(store);
    const counting = Object.assign(Object.create(store), { get: async (id: ChunkId) => (reads++, get(id)) });
    const wide = await bomb(store, 20);
    const rev = await commitRevision(counting, 'wide', { tree: wide }, { create: true }, { ...TREE_LIMITS, entries: 2 ** 22 });
    assert.equal(rev.stats, { files: 2 ** 20, bytes: 2 ** 20 });
    // The root chunk, then the object through it; plus the few reads of the golden-kernel
    // lookup (/, usr, lib, modules, boot).
    assert.ok(reads <= 2 * 22 + 6, `${reads} object reads`);
  });
});

test.run();
