/** Shared pieces of the restore attack tests: hand-made (malicious) manifests in a real store. */
import * as assert from 'uvu/assert';
import { mkdir, readdir } from 'node:fs/promises';
import path from 'node:path';
import type { LocalStore } from '../../core/store/local.ts';
import { putObject } from '../../core/store/objects.ts';
import { ManifestError } from '../../core/tree/manifest.ts';
import { RestoreError, restoreTree } from '../../core/tree/restore.ts';

export const meta = { mode: 0o644, uid: 0, gid: 0, mtime: [1_700_000_000, 0] };

/** Stores a directory object exactly as given (no canonicalisation, no checks). */
export async function putRawDir(store: LocalStore, entries: unknown[]): Promise<string> {
  return putObject(store, Buffer.from(JSON.stringify({ v: 1, entries })), store.config.chunker);
}

export async function fileEntry(store: LocalStore, name: string, content: string) {
  const id = await store.put(Buffer.from(content));
  return { ...meta, name, type: 'file', size: content.length, chunks: [[0, content.length, id]] };
}

/**
 * Restores `tree` into work/target with a sibling work/outside directory, expects a
 * ManifestError or RestoreError, and checks nothing was written outside the target.
 */
export async function expectRefused(store: LocalStore, work: string, tree: string, prepare?: (target: string, outside: string) => Promise<void>): Promise<Error> {
  const target = path.join(work, 'target');
  const outside = path.join(work, 'outside');
  await mkdir(target, { recursive: true });
  await mkdir(outside, { recursive: true });
  await prepare?.(target, outside);
  const before = await readdir(outside);
  let error: Error | null = null;
  try {
    await restoreTree({ reader: store, tree, target });
  } catch (err) {
    error = err as Error;
  }
  assert.ok(error, 'the restore was not refused');
  assert.ok(error instanceof ManifestError || error instanceof RestoreError, `refused with the wrong error: ${error}`);
  assert.equal(await readdir(outside), before, 'something was written outside the target');
  return error;
}
