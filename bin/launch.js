// Runs a TypeScript entry point on the project's Node 24 (the npm package `node`),
// whatever `node` is first on PATH: Node 24 strips types itself; older ones cannot.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export async function launch(entry) {
  const script = fileURLToPath(new URL(entry, import.meta.url));
  const major = Number(process.versions.node.split('.')[0]);
  if (major >= 24) {
    await import(script);
    return;
  }
  const node24 = fileURLToPath(new URL('../node_modules/node/bin/node', import.meta.url));
  if (!existsSync(node24)) {
    process.stderr.write(`cloner: error: needs Node 24, found ${process.version}\nhint: run npm ci in ${fileURLToPath(new URL('..', import.meta.url))}\n`);
    process.exit(2);
  }
  const r = spawnSync(node24, [script, ...process.argv.slice(2)], { stdio: 'inherit' });
  process.exit(r.status ?? 1);
}
