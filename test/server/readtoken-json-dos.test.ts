/**
 * sec-08, large JSON bodies with a read token: eight 63 MiB bodies sent at once to
 * /v1/chunks/missing (the read route with the largest limit), with a Content-Length and
 * streamed without one, are each refused with 413 and the JSON error body, fast, while the
 * server's memory stays flat and /v1/health keeps answering. Then every route's limit is
 * checked against what its largest valid body needs. Real server process on loopback.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import http from 'node:http';
import { readFileSync } from 'node:fs';
import { API, JSON_BODY_LIMIT, MAX_BATCH, NO_BODY_LIMIT } from '../../core/api/routes.ts';
import { withServer } from '../helpers/server.ts';
import { MAX_SUMMARY_BASE64 } from '../../core/multicast/types.ts';

const MiB = 1024 * 1024;
const rssMiB = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;

/**
 * POSTs `bytes` of a JSON ids body, 1 MiB at a time, with or without a Content-Length;
 * stops writing once the answer arrives. Resolves with the status and the answer's body,
 * or with `reset` when the server closed the connection before the client read its answer:
 * a server that refuses a body unread closes with bytes still coming, which is a TCP reset,
 * and a write that meets it (EPIPE) loses the answer already on its way (RFC 9112 9.6).
 */
function postLarge(url: string, token: string, bytes: number, withLength: boolean): Promise<{ status: number; body: string } | { reset: string }> {
  const piece = Buffer.from(`"${'a'.repeat(64)}",`.repeat(Math.floor(MiB / 67)));
  return new Promise((resolve, reject) => {
    const headers: http.OutgoingHttpHeaders = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    if (withLength) headers['content-length'] = String(8 + Math.ceil(bytes / piece.length) * piece.length + 2);
    const req = http.request(`${url}/v1/chunks/missing`, { method: 'POST', headers });
    let answered = false;
    req.on('response', (res) => {
      answered = true;
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (answered) return;
      if (err.code === 'EPIPE' || err.code === 'ECONNRESET') resolve({ reset: err.code });
      else reject(err);
    });
    (async () => {
      req.write('{"ids":[');
      for (let sent = 0; sent < bytes && !answered && !req.destroyed; sent += piece.length) {
        if (!req.write(piece)) await new Promise((r) => req.once('drain', r).once('close', r));
      }
      if (!answered && !req.destroyed) req.end('""]}');
    })().catch(() => undefined);
  });
}

test('readtoken-json-dos: 8 x 63 MiB JSON bodies with a read token are refused fast, memory flat', async () => {
  await withServer(async (server) => {
    for (const withLength of [true, false]) {
      const before = rssMiB(server.pid);
      let peak = before;
      const sampler = setInterval(() => (peak = Math.max(peak, rssMiB(server.pid))), 20);
      const latencies: number[] = [];
      let probing = true;
      const probe = (async () => {
        while (probing) {
          const t = performance.now();
          await (await fetch(`${server.url}/v1/health`)).text();
          latencies.push(performance.now() - t);
          await new Promise((r) => setTimeout(r, 20));
        }
      })();
      const t0 = performance.now();
      const answers = await Promise.all(Array.from({ length: 8 }, () => postLarge(server.url, server.readToken, 63 * MiB, withLength))).finally(() => {
        probing = false;
        clearInterval(sampler);
      });
      const ms = performance.now() - t0;
      await probe;
      const how = withLength ? 'with Content-Length' : 'streamed';
      console.log(`# ${how}: statuses ${answers.map((a) => ('reset' in a ? a.reset : a.status)).join(',')} in ${Math.round(ms)} ms; server RSS ${Math.round(before)} -> ${Math.round(peak)} MiB peak; /v1/health worst ${Math.round(Math.max(...latencies))} ms`);
      // Each body is refused: a 413 the client read, or the reset that follows a refusal. At
      // least half must be read whole, so the JSON refusal itself is checked every run.
      const read = answers.filter((a) => !('reset' in a));
      assert.ok(read.length >= answers.length / 2, `${how}: only ${read.length} of ${answers.length} answers read before a reset`);
      for (const a of read) {
        if ('reset' in a) continue;
        assert.is(a.status, 413, how);
        const body = JSON.parse(a.body);
        assert.type(body.error, 'string');
        assert.type(body.message, 'string');
        assert.type(body.hint, 'string');
      }
      assert.ok(ms < 5000, `${how}: answered in ${Math.round(ms)} ms`);
      assert.ok(peak - before < 64, `${how}: server RSS grew by ${Math.round(peak - before)} MiB`);
      assert.ok(Math.max(...latencies) < 1000, `${how}: /v1/health stayed responsive`);
    }
  });
});

test('readtoken-json-dos: every route has a limit sized to its largest valid body', () => {
  const needs: Record<string, number> = {
    // 20,000 ids of 64 hex digits, quoted, comma-separated, pretty-printed.
    chunksMissing: MAX_BATCH * 70,
    chunksFetch: MAX_BATCH * 70,
    // A note of 1000 characters, each escaped as \uXXXX, plus two ids and a name.
    commitRevision: 1000 * 6 + 400 + 256 * 1024,
    // 256 settings of 1024 ASCII characters.
    changeNode: 256 * 1030,
    // 16 files of 16 KiB of base64 and their names.
    putHostKeys: 16 * (16384 + 40),
    deployStatus: 2000 * 6 + 500,
    deployResult: 2000 * 6 + 500,
    // A node's summary of what it lacks: a deflated bitmap in base64 (core/multicast/summary.ts) and a few fields.
    multicastRegister: MAX_SUMMARY_BASE64 + 400,
    // What a node still misses after a round: at worst the same list again.
    multicastReport: 500_000 * 67,
  };
  // The routes whose need passes 2 MiB; they take only that node's deploy token (or the admin's).
  const over2MiB = new Set(['multicastReport']);
  // Installer files (up to 512 MB) are written to disk as they arrive, never held, and only with the admin token.
  const streamedToDisk = new Set(['putInstallerFile']);
  for (const [name, d] of Object.entries(API) as Array<[string, (typeof API)[keyof typeof API]]>) {
    const limit = ('bodyLimit' in d ? d.bodyLimit : undefined) ?? ('body' in d || ('raw' in d && d.raw) ? JSON_BODY_LIMIT : NO_BODY_LIMIT);
    assert.ok(limit <= 2 * MiB || (over2MiB.has(name) && d.access === 'node') || (streamedToDisk.has(name) && d.access === 'write'), `${name}: limit ${limit}`);
    if (needs[name]) assert.ok(limit >= needs[name] && limit <= needs[name] * 3, `${name}: limit ${limit} for a need of ${needs[name]}`);
    if (!('body' in d) && !('raw' in d)) assert.is(limit, NO_BODY_LIMIT, `${name} takes no body`);
  }
});

test.run();
