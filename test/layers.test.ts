/**
 * The layer rules, checked on every import of the source tree (type-only imports too):
 * core/ imports no outer layer; server/, cli/ and agent/ import core/ and themselves, never
 * each other; and the agent, which runs alone in the boot environment, loads at run time
 * neither LevelDB nor fastify (its runtime import closure from agent/main.ts is walked).
 * Also: no source file of the four layers is over 400 lines.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import fg from 'fast-glob';

const root = path.resolve(new URL('..', import.meta.url).pathname);
const LAYERS = ['core', 'server', 'cli', 'agent'] as const;
const allowed: Record<(typeof LAYERS)[number], readonly string[]> = { core: ['core'], server: ['core', 'server'], cli: ['core', 'cli'], agent: ['core', 'agent'] };

interface Import {
  spec: string;
  typeOnly: boolean;
}

/** Every import/export-from specifier of a file, and whether it is erased at run time. */
export function importsOf(text: string): Import[] {
  const out: Import[] = [];
  const statement = /^\s*(import|export)\s+(type\s+)?([^;'"]*?\bfrom\s+)?['"]([^'"]+)['"]/gm;
  for (const m of text.matchAll(statement)) {
    if (m[1] === 'export' && !m[3]) continue;
    // `import { type A, type B } from` is erased too when every name is a type and there is
    // no default or namespace import beside the braces.
    const clause = m[3] ?? '';
    const names = /\{([^}]*)\}/.exec(clause)?.[1];
    const besideBraces = clause.replace(/\{[^}]*\}/, '').replace(/\bfrom\s+$/, '').trim();
    const allTypes = names !== undefined && besideBraces === '' && names.split(',').map((n) => n.trim()).filter(Boolean).every((n) => n.startsWith('type '));
    out.push({ spec: m[4], typeOnly: !!m[2] || allTypes });
  }
  for (const m of text.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g)) out.push({ spec: m[1], typeOnly: false });
  return out;
}

const files = fg.sync(['{core,server,cli,agent}/**/*.ts'], { cwd: root });

test('the import parser reads what the rules rely on', () => {
  const found = importsOf(`import a from './a.ts';\nimport type { B } from '../b.ts';\nimport {\n  c,\n  type D,\n} from "./c.ts";\nimport { type E } from './e.ts';\nexport { f } from './f.ts';\nexport type { G } from './g.ts';\nconst h = await import('./h.ts');\n`);
  assert.equal(found, [
    { spec: './a.ts', typeOnly: false },
    { spec: '../b.ts', typeOnly: true },
    { spec: './c.ts', typeOnly: false },
    { spec: './e.ts', typeOnly: true },
    { spec: './f.ts', typeOnly: false },
    { spec: './g.ts', typeOnly: true },
    { spec: './h.ts', typeOnly: false },
  ]);
});

test('core imports no outer layer; server, cli and agent import only core and themselves', () => {
  assert.ok(files.length > 50, `found ${files.length} source files`);
  const broken: string[] = [];
  for (const file of files) {
    const layer = file.split('/')[0] as (typeof LAYERS)[number];
    for (const { spec } of importsOf(readFileSync(path.join(root, file), 'utf8'))) {
      if (!spec.startsWith('.')) continue;
      const target = path.relative(root, path.resolve(root, path.dirname(file), spec));
      const targetLayer = target.split('/')[0];
      if ((LAYERS as readonly string[]).includes(targetLayer) && !allowed[layer].includes(targetLayer)) broken.push(`${file} imports ${target}`);
      if (!(LAYERS as readonly string[]).includes(targetLayer) && !target.startsWith('build/')) broken.push(`${file} imports ${target}, outside the layers`);
    }
  }
  assert.equal(broken, []);
});

test('the agent stands alone: its run-time closure loads neither LevelDB nor fastify', () => {
  const seen = new Set<string>();
  const packages = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    for (const { spec, typeOnly } of importsOf(readFileSync(path.join(root, file), 'utf8'))) {
      if (typeOnly) continue;
      if (spec.startsWith('.')) {
        const target = path.relative(root, path.resolve(root, path.dirname(file), spec));
        if (target.endsWith('.ts')) visit(target);
      } else if (!spec.startsWith('node:')) packages.add(spec.split('/').slice(0, spec.startsWith('@') ? 2 : 1).join('/'));
    }
  };
  visit('agent/main.ts');
  assert.ok(seen.has('agent/deploy.ts') && seen.has('core/tree/sync.ts'), 'the walk reaches the deploy');
  for (const heavy of ['classic-level', 'fastify', '@fastify/type-provider-typebox']) assert.not.ok(packages.has(heavy), `the agent loads ${heavy} (through ${[...seen].join(', ')})`);
  for (const file of seen) assert.not.ok(file.startsWith('server/') || file.startsWith('cli/'), `the agent loads ${file}`);
});

test('no source file of core, server, cli or agent is over 400 lines', () => {
  const long = files.map((f) => [f, readFileSync(path.join(root, f), 'utf8').split('\n').length] as const).filter(([, n]) => n > 400);
  assert.equal(long, []);
});

test.run();
