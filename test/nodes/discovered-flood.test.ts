/**
 * sec-05, a flood of unknown MACs at the unauthenticated /boot.ipxe: the discovered list is
 * capped (least recently seen dropped), entries expire, new MACs are rate-limited per source
 * address, and the flood writes nothing to the store's refs while it runs (the list is
 * written once per period and at stop). Real LocalStore; the server through app.inject with
 * chosen source addresses.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { randomBytes } from 'node:crypto';
import { DiscoveredMacs } from '../../core/nodes/discovered.ts';
import type { LocalStore } from '../../core/store/local.ts';
import { buildServer } from '../../server/app.ts';
import { withStore } from '../helpers/store.ts';

const randomMac = () => [...randomBytes(6)].map((b) => b.toString(16).padStart(2, '0')).join(':');

/** Counts the ref writes a store receives. */
function countWrites(store: LocalStore): { writes: number } {
  const counter = { writes: 0 };
  const cas = store.casRef.bind(store);
  store.casRef = async (...args) => {
    counter.writes++;
    return cas(...args);
  };
  return counter;
}

test('discovered-flood: cap, expiry, per-source rate limit, one write per period', async () => {
  await withStore(async (store) => {
    const list = new DiscoveredMacs(store, { max: 50, burst: 10, perMinute: 60, persistMs: 3_600_000 });
    await list.start();
    const writes = countWrites(store);
    const t0 = Date.now();
    const results = Array.from({ length: 200 }, () => list.record(randomMac(), '198.18.0.66', t0));
    assert.is(results.filter((r) => r === 'recorded').length, 10, 'one address adds its burst');
    assert.is(results.filter((r) => r === 'rate-limited').length, 190);
    // A minute later the bucket has refilled (60/min, capped at the burst of 10).
    assert.is(list.record(randomMac(), '198.18.0.66', t0 + 60_000), 'recorded');
    // Many addresses: the list keeps the 50 most recently seen.
    const macs = Array.from({ length: 100 }, () => randomMac());
    macs.forEach((mac, i) => list.record(mac, `198.18.1.${i}`, t0 + 61_000 + i));
    const listed = list.list(t0 + 62_000);
    assert.is(listed.length, 50);
    assert.equal(new Set(listed.map((d) => d.mac)), new Set(macs.slice(50)));
    // A refresh moves an entry to the back and is not rate-limited.
    assert.is(list.record(macs[50], '198.18.0.66', t0 + 63_000), 'refreshed');
    assert.is(writes.writes, 0, 'no ref write while recording');
    await list.stop();
    assert.is(writes.writes, 1, 'one write at stop');

    // Read back; a week later everything not seen since is gone.
    const again = new DiscoveredMacs(store, { max: 50 });
    await again.start();
    assert.is(again.list(t0 + 64_000).length, 50);
    assert.is(again.list(t0 + 63_000 + 7 * 24 * 3600_000 - 1).map((d) => d.mac).join(), macs[50]);
    assert.is(again.list(t0 + 64_000 + 7 * 24 * 3600_000).length, 0);
    await again.stop();
  });
});

test('discovered-flood: per-MAC refs of an older server are read into the list and removed', async () => {
  await withStore(async (store) => {
    const d = { mac: '52:54:00:00:00:01', first: new Date().toISOString(), last: new Date().toISOString(), from: '198.18.0.9' };
    await store.casRef(`discovered/${d.mac}`, undefined, JSON.stringify(d));
    const list = new DiscoveredMacs(store);
    await list.start();
    assert.equal(list.list(), [d]);
    assert.equal(await store.listRefs('discovered/'), []);
    await list.stop();
  });
});

test('discovered-flood: 3000 anonymous /boot.ipxe requests from one address and from many', async () => {
  await withStore(async (store) => {
    const app = await buildServer({ store, auth: { roleOf: (t) => (t === 'r'.repeat(20) ? 'read' : null) }, discovered: { max: 1024, persistMs: 3_600_000 } });
    try {
      const writes = countWrites(store);
      const boot = (mac: string, remoteAddress: string) => app.inject({ method: 'GET', url: `/boot.ipxe?mac=${mac}`, remoteAddress });
      const t0 = performance.now();
      for (let i = 0; i < 1000; i++) {
        const r = await boot(randomMac(), '198.18.0.66');
        assert.is(r.statusCode, 200);
        assert.match(r.body, /\nexit\n$/);
      }
      for (let i = 0; i < 2000; i++) await boot(randomMac(), `10.${(i >> 8) & 255}.${i & 255}.1`);
      const seconds = (performance.now() - t0) / 1000;
      const listed = await app.inject({ method: 'GET', url: '/v1/discovered', headers: { authorization: `Bearer ${'r'.repeat(20)}` } });
      const entries = listed.json() as Array<{ mac: string; from: string }>;
      assert.is(entries.length, 1024, 'capped');
      assert.ok(entries.filter((e) => e.from === '198.18.0.66').length <= 32, 'one address adds at most its burst');
      assert.is(writes.writes, 0, 'the flood wrote nothing to the refs');
      console.log(`# 3000 anonymous requests in ${seconds.toFixed(1)} s, 0 ref writes, ${entries.length} entries listed`);
    } finally {
      await app.close();
    }
    const stored = JSON.parse((await store.getRef('discovered'))!) as unknown[];
    assert.is(stored.length, 1024, 'written once at close');
  });
});

test.run();
