/**
 * The clients' route table (core/api/endpoints.ts) and the server's (core/api/routes.ts)
 * name the same routes with the same method, URL, access and rawness, and the clients'
 * table loads without TypeBox (what keeps a CLI start cheap, bench/startup.ts).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { API as CLIENT_API, ENDPOINTS } from '../../core/api/endpoints.ts';
import { API } from '../../core/api/routes.ts';

const root = path.resolve(new URL('../..', import.meta.url).pathname);

test('every route has the same method, URL, access and rawness in both tables', () => {
  assert.equal(Object.keys(ENDPOINTS).sort(), Object.keys(API).sort());
  for (const [name, d] of Object.entries(API)) {
    const e = (CLIENT_API as unknown as Record<string, { method: string; url: string; access: string; raw?: boolean }>)[name];
    assert.equal({ method: e.method, url: e.url, access: e.access, raw: !!e.raw }, { method: d.method, url: d.url, access: d.access, raw: !!(d as { raw?: boolean }).raw }, name);
  }
});

/** The module URLs `modules` load, recorded by a resolve hook in a fresh Node. */
function loadedBy(modules: string[]): string[] {
  const probe = `const { registerHooks } = await import('node:module'); const seen = [];
    registerHooks({ resolve(spec, ctx, next) { const r = next(spec, ctx); seen.push(r.url); return r; } });
    for (const m of ${JSON.stringify(modules)}) await import(m);
    process.stdout.write(JSON.stringify(seen));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', probe], { cwd: root, encoding: 'utf8' });
  assert.is(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
}

test('the clients\' table, the API client and HttpStore load neither TypeBox nor the schemas (the server\'s table does)', () => {
  const client = loadedBy(['./core/api/endpoints.ts', './core/api/client.ts', './core/store/http.ts']);
  assert.ok(client.some((u) => u.endsWith('/core/store/http.ts')), 'the probe saw the modules it loaded');
  assert.equal(client.filter((u) => /typebox|schemas\.ts|routes\.ts|lz4|blake/.test(u)), []);
  assert.ok(loadedBy(['./core/api/routes.ts']).some((u) => u.includes('typebox')), 'the server\'s table loads TypeBox');
});

test.run();
