/**
 * sec-03 at the write call: writev may write fewer bytes than asked when the disk fills up
 * mid-call, and Node reports the short count without an error. A pack whose writes come
 * back short is finished by further writes and indexed whole; a write that makes no
 * progress (ENOSPC) fails the puts with StoreFullError (507), leaves no file in tmp/ or
 * packs/, indexes nothing, and the store takes the same chunks once writes work again.
 * Real LocalStore; FileHandle.writev is wrapped to cut writes short.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs/promises';
import path from 'node:path';
import { StoreFullError } from '../../core/store/errors.ts';
import { seededBytes } from '../helpers/fixtures.ts';
import { withStore } from '../helpers/store.ts';

type Writev = fs.FileHandle['writev'];

/** Runs `work` with every FileHandle.writev replaced by `wrap(original)`. */
async function withWritev<T>(wrap: (original: Writev) => Writev, work: () => Promise<T>): Promise<T> {
  const probe = await fs.open(process.execPath, 'r');
  const proto = Object.getPrototypeOf(probe) as { writev: Writev };
  await probe.close();
  const original = proto.writev;
  proto.writev = wrap(original);
  try {
    return await work();
  } finally {
    proto.writev = original;
  }
}

/** Bytes of `buffers` from the start, at most `n`. */
const firstBytes = (buffers: readonly NodeJS.ArrayBufferView[], n: number) => {
  const all = Buffer.concat(buffers.map((b) => Buffer.from(b.buffer, b.byteOffset, b.byteLength)));
  return [all.subarray(0, Math.min(n, all.length))];
};

const files = async (dir: string) => (await fs.readdir(dir, { recursive: true, withFileTypes: true })).filter((e) => e.isFile()).map((e) => e.name);

test('pack-short-write: short writes are continued; the pack is indexed only whole', async () => {
  await withStore(async (store) => {
    const data = Array.from({ length: 40 }, (_, i) => seededBytes(i + 1, 100_000));
    let calls = 0;
    const ids = await withWritev(
      (original) =>
        async function (this: fs.FileHandle, buffers, position) {
          calls++;
          // At most 64 KiB per call, as a disk filling up or a signal would leave it.
          return original.call(this, firstBytes(buffers, 64 * 1024), position);
        } as Writev,
      async () => {
        const puts = data.map((d) => store.put(d));
        await store.flush();
        return Promise.all(puts);
      },
    );
    assert.ok(calls > 10, `${calls} writes`);
    for (const [i, id] of ids.entries()) assert.ok((await store.get(id)).equals(data[i]));
    const report = await store.verify();
    assert.equal([report.missing, report.corrupt, report.damagedPacks], [[], [], []]);
  });
});

test('pack-short-write: a write that makes no progress fails with StoreFullError and stores nothing', async () => {
  await withStore(async (store) => {
    const data = Array.from({ length: 10 }, (_, i) => seededBytes(100 + i, 100_000));
    let written = 0;
    const failures = await withWritev(
      (original) =>
        async function (this: fs.FileHandle, buffers, position) {
          // The disk has room for 300 KB: then writes come back short, then with nothing.
          const room = Math.max(0, 300_000 - written);
          if (room === 0) return { bytesWritten: 0, buffers };
          const r = await original.call(this, firstBytes(buffers, room), position);
          written += r.bytesWritten;
          return r;
        } as Writev,
      async () => {
        const puts = data.map((d) => store.put(d));
        await store.flush();
        return Promise.allSettled(puts);
      },
    );
    for (const f of failures) {
      assert.is(f.status, 'rejected');
      const err = (f as PromiseRejectedResult).reason;
      assert.instance(err, StoreFullError);
      assert.is(err.status, 507);
      assert.match(err.message, new RegExp(`^no space for the store in ${store.dir}: `));
    }
    assert.equal(await files(path.join(store.dir, 'tmp')), []);
    assert.equal(await files(path.join(store.dir, 'packs')), []);
    assert.is((await store.stats()).chunks, 0, 'nothing indexed');
    // Writes work again: the same chunks are stored.
    const ids = await Promise.all(data.map((d) => store.put(d)));
    for (const [i, id] of ids.entries()) assert.ok((await store.get(id)).equals(data[i]));
  });
});

test.run();
