/**
 * sec-06: a corrupt chunk must be a reported failure, never a process killed by an
 * unhandled rejection. HttpStore.getMany fetches batches ahead of the one being yielded;
 * a batch that failed before its turn used to reject with nobody awaiting it, and Node
 * died (33 of 54 agent runs) before the deploy could report anything.
 *
 * Real parts: a cloner-server child process, a tree captured into it over HTTP, one byte
 * flipped in a pack file on the server's disk. Then 50 short restores in this process
 * (small batches, so the corrupt one is often fetched ahead) count unhandled rejections,
 * and the `cloner image-export` CLI is run a few times to show the user's side: exit 2 and
 * a one-line error with a hint, no stack trace.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdirSync, openSync, readdirSync, readSync, rmSync, statSync, writeFileSync, writeSync, closeSync } from 'node:fs';
import path from 'node:path';
import { HttpStore } from '../../core/store/http.ts';
import { captureTree } from '../../core/tree/capture.ts';
import { restoreTree } from '../../core/tree/restore.ts';
import { seededBytes, withTempDir } from '../helpers/fixtures.ts';
import { withServer } from '../helpers/server.ts';

const RUNS = 50;

function flipMiddleByteOfLargestPack(dataDir: string): void {
  const packsDir = path.join(dataDir, 'store', 'packs');
  const packs = readdirSync(packsDir, { recursive: true, encoding: 'utf8' }).filter((p) => p.endsWith('.pack')).map((p) => path.join(packsDir, p));
  const largest = packs.sort((a, b) => statSync(b).size - statSync(a).size)[0];
  const fd = openSync(largest, 'r+');
  try {
    const at = Math.floor(statSync(largest).size / 2);
    const byte = Buffer.alloc(1);
    readSync(fd, byte, 0, 1, at);
    byte[0] ^= 1;
    writeSync(fd, byte, 0, 1, at);
  } finally {
    closeSync(fd);
  }
}

test(`a corrupt chunk fails ${RUNS} restores through a real server cleanly: no unhandled rejection`, async () => {
  await withServer(async (server) => {
    await withTempDir(async (dir) => {
      const golden = path.join(dir, 'golden');
      mkdirSync(golden);
      for (let i = 0; i < 80; i++) writeFileSync(path.join(golden, `f${i}`), seededBytes(i, 30_000 + i * 977));
      const writer = new HttpStore({ url: server.url, token: server.adminToken });
      const { chunker } = await writer.requestJson<{ chunker: any }>('/v1/config');
      const { tree } = await captureTree({ root: golden, store: writer, chunker });
      await writer.flush();
      await writer.requestJson('/v1/images/corrupt/revisions', 'POST', { tree, stats: { files: 80, bytes: 0 }, create: true });
      flipMiddleByteOfLargestPack(server.dataDir);

      const unhandled: unknown[] = [];
      const onUnhandled = (err: unknown) => unhandled.push(err);
      process.on('unhandledRejection', onUnhandled);
      const codes = new Map<string, number>();
      const started = Date.now();
      try {
        for (let run = 0; run < RUNS; run++) {
          const target = path.join(dir, `t${run}`);
          mkdirSync(target);
          const reader = new HttpStore({ url: server.url, token: server.readToken, fetchBatch: 2, fetchConcurrency: 4 });
          const err = await restoreTree({ reader, tree, target }).then(() => null, (e: { code?: string }) => e);
          const code = err?.code ?? 'SUCCEEDED';
          codes.set(code, (codes.get(code) ?? 0) + 1);
          rmSync(target, { recursive: true, force: true });
          // Let any stray rejection of this run surface before the next one starts.
          await new Promise((r) => setImmediate(r));
        }
        await new Promise((r) => setTimeout(r, 200));
      } finally {
        process.off('unhandledRejection', onUnhandled);
      }
      const seconds = (Date.now() - started) / 1000;
      console.log(`  ${RUNS} runs in ${seconds.toFixed(1)} s: ${[...codes].map(([c, n]) => `${n} ${c}`).join(', ')}; ${unhandled.length} unhandled rejections`);
      assert.is(unhandled.length, 0, `unhandled rejections: ${unhandled.map(String).join('; ')}`);
      assert.equal([...codes], [['CHUNK_CORRUPT', RUNS]]);
      assert.ok(seconds < 120, `${RUNS} runs took ${seconds} s`);

      // The user's side: image-export reports the failure in one line with a hint.
      const tokenFile = path.join(dir, 'token');
      writeFileSync(tokenFile, server.readToken);
      for (let run = 0; run < 3; run++) {
        const target = path.join(dir, `cli${run}`);
        mkdirSync(target);
        const r = spawnSync(process.execPath, ['bin/cloner.js', 'image-export', '--image', 'corrupt', '--target', target, '--server', server.url, '--token-file', tokenFile], { encoding: 'utf8', timeout: 60_000 });
        assert.is(r.status, 2, `image-export exit ${r.status}: ${r.stderr}`);
        assert.match(r.stderr, /^cloner: error: .*corrupt/m);
        assert.match(r.stderr, /^hint: /m);
        assert.not.match(r.stderr, /^\s+at /m, 'a stack trace');
      }
    });
  });
});

test.run();
