/**
 * Bundles the three programs into dist/ (run by scripts/setup.sh and `npm run build`):
 * dist/cloner.js, dist/cloner-server.js, dist/cloner-agent.js plus shared chunks. Loading
 * one bundled file instead of ~150 TypeScript modules is what makes `cloner --help` start
 * in tens of milliseconds instead of ~0.5 s (bench/startup.ts); code splitting keeps each
 * sub-command's heavy modules (LevelDB, layouts, capture) in chunks loaded by its action.
 *
 * Kept outside the bundle: the npm packages with native addons (found from dist/ through
 * node_modules as usual). Source files that locate files next to themselves with
 * `import.meta.url`, `.filename` or `.dirname` (the fsx addon, the layout JSON schema, the
 * web UI's templates and assets) get them rewritten to their own source path, relative to
 * dist/, so they find the same files from the bundle.
 * Usage: node scripts/build.ts   (Node 24; the launchers in bin/ fall back to the sources
 * when dist/ is missing or older than the sources is not checked: rebuild after a change).
 */
import { build, type Plugin } from 'esbuild';
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const outdir = path.join(root, 'dist');

const importMetaUrlOfSource: Plugin = {
  name: 'import-meta-url-of-source',
  setup(b) {
    b.onLoad({ filter: /\.ts$/ }, async (args) => {
      const text = await readFile(args.path, 'utf8');
      if (!/import\.meta\.(url|dirname|filename)/.test(text)) return undefined;
      const rel = path.relative(outdir, args.path).split(path.sep).join('/');
      const relDir = `${path.relative(outdir, path.dirname(args.path)).split(path.sep).join('/')}/`;
      // The source's own URL, file and directory, as seen from the bundle's place in dist/.
      const contents = text
        // (not the banner text a source builds another bundle with: `__clonerRequire(import.meta.url)`)
        .replace(/(?<!__clonerRequire\()import\.meta\.url/g, `new URL(${JSON.stringify(rel)}, import.meta.url).href`)
        .replaceAll('import.meta.filename', `decodeURIComponent(new URL(${JSON.stringify(rel)}, import.meta.url).pathname)`)
        .replaceAll('import.meta.dirname', `decodeURIComponent(new URL(${JSON.stringify(relDir)}, import.meta.url).pathname).replace(/\\/$/, '')`);
      return { contents, loader: 'ts' };
    });
  },
};

await rm(outdir, { recursive: true, force: true });
const result = await build({
  absWorkingDir: root,
  entryPoints: { cloner: 'cli/main.ts', 'cloner-server': 'server/main.ts', 'cloner-agent': 'agent/main.ts' },
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node24',
  external: ['classic-level', '@napi-rs/blake-hash'],
  // CommonJS packages inside an ES module bundle call require() for Node built-ins.
  banner: { js: "import { createRequire as __clonerRequire } from 'node:module'; const require = __clonerRequire(import.meta.url);" },
  // Every output sits directly in dist/, so a path relative to dist/ holds in any chunk.
  chunkNames: 'chunk-[hash]',
  plugins: [importMetaUrlOfSource],
  logLevel: 'warning',
  metafile: true,
});
const outputs = Object.entries(result.metafile.outputs).filter(([file]) => !path.basename(file).startsWith('chunk-'));
for (const [file, out] of outputs) process.stdout.write(`build: ${file} (${(out.bytes / 1024).toFixed(0)} KiB)\n`);
if (process.argv.includes('--analyze')) {
  // What each program loads before its first dynamic import: its entry and the chunks it imports statically.
  const outs = result.metafile.outputs;
  for (const [file] of outputs) {
    const seen = new Set<string>();
    const walk = (f: string) => {
      if (seen.has(f)) return;
      seen.add(f);
      for (const imp of outs[f].imports) if (imp.kind === 'import-statement' && !imp.external) walk(imp.path);
    };
    walk(file);
    const inputs = [...seen].flatMap((f) => Object.entries(outs[f].inputs).map(([i, v]) => [i, v.bytesInOutput] as const)).sort((a, b) => b[1] - a[1]);
    process.stdout.write(`${file}: ${(inputs.reduce((s, [, n]) => s + n, 0) / 1024).toFixed(0)} KiB at start-up\n${inputs.slice(0, 25).map(([i, n]) => `  ${(n / 1024).toFixed(1)} KiB ${i}`).join('\n')}\n`);
  }
}
