/**
 * Test helpers: temporary directories that are always removed, seeded random bytes,
 * and declarative fixture trees (`{ 'etc/hostname': file('n1\n'), 'bin/sh': symlink('dash') }`).
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, mkdir, writeFile, symlink as fsSymlink, link } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

export async function withTempDir<T>(work: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(path.join(tmpdir(), 'cloner-test-'));
  try {
    return await work(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Deterministic bytes from a seed (xorshift32), so vectors and sizes are reproducible. */
export function seededBytes(seed: number, length: number): Buffer {
  const out = Buffer.allocUnsafe(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

export type Fixture =
  | { kind: 'file'; content: string | Buffer; mode?: number }
  | { kind: 'symlink'; target: string }
  | { kind: 'hardlink'; to: string }
  | { kind: 'dir'; mode?: number };

export const file = (content: string | Buffer, mode?: number): Fixture => ({ kind: 'file', content, mode });
export const symlink = (target: string): Fixture => ({ kind: 'symlink', target });
export const hardlink = (to: string): Fixture => ({ kind: 'hardlink', to });
export const dir = (mode?: number): Fixture => ({ kind: 'dir', mode });

export async function makeTree(root: string, spec: Record<string, Fixture>): Promise<void> {
  for (const [rel, f] of Object.entries(spec)) {
    const p = path.join(root, rel);
    await mkdir(path.dirname(p), { recursive: true });
    if (f.kind === 'file') await writeFile(p, f.content, { mode: f.mode ?? 0o644 });
    else if (f.kind === 'symlink') await fsSymlink(f.target, p);
    else if (f.kind === 'hardlink') await link(path.join(root, f.to), p);
    else await mkdir(p, { recursive: true, mode: f.mode ?? 0o755 });
  }
}

export const isRoot = process.getuid?.() === 0;

/** What `rsync -naHAX --itemize-changes` would change to make `dst` like `src` (a line each; none when equal). */
export function rsyncDifferences(src: string, dst: string, extra: string[] = []): string[] {
  const r = spawnSync('rsync', ['-naHAX', '--itemize-changes', ...extra, `${src}/`, `${dst}/`], { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`rsync failed: ${r.stderr}`);
  return r.stdout.split('\n').filter(Boolean);
}
