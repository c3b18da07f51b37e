/**
 * Image options: what an image was created with (paths and devices left out), stored with
 * each revision as a small JSON object, so later updates reuse them and can tell when the
 * command line asks for something else. Such a difference is a conflict, settled by
 * --update-conflict: `prompt` (default; one yes/no question per option on the terminal or
 * standard input), `server` (the stored value wins) or `commandline` (the command line
 * wins and is stored).
 */
import { createInterface } from 'node:readline';
import type { ChunkId } from '../core/store/chunk-id.ts';
import { getJsonObject, putJsonObject } from '../core/store/objects.ts';
import type { Backend } from './backend.ts';
import { UsageError } from './errors.ts';

export interface ImageOptions {
  excludePaths: string[];
  excludeDevices: string[];
}

export type ConflictMode = 'prompt' | 'server' | 'commandline';
export const DEFAULT_OPTIONS: ImageOptions = { excludePaths: [], excludeDevices: [] };
const FLAG: Record<keyof ImageOptions, string> = { excludePaths: '--exclude-paths', excludeDevices: '--exclude-devices' };

export function conflictMode(value: unknown): ConflictMode {
  const mode = value === undefined ? 'prompt' : String(value);
  if (mode !== 'prompt' && mode !== 'server' && mode !== 'commandline') throw new UsageError(`bad --update-conflict ${mode}`, 'use prompt, server or commandline');
  return mode;
}

export async function loadOptions(backend: Backend, id: ChunkId | null | undefined): Promise<ImageOptions> {
  if (!id) return { ...DEFAULT_OPTIONS };
  const raw = (await getJsonObject(backend.chunks, id)) as Partial<ImageOptions>;
  const list = (v: unknown) => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);
  return { excludePaths: list(raw.excludePaths), excludeDevices: list(raw.excludeDevices) };
}

export async function storeOptions(backend: Backend, options: ImageOptions): Promise<ChunkId> {
  const id = await putJsonObject(backend.chunks, options, backend.chunker);
  await backend.chunks.flush();
  return id;
}

/** Reads one answer per question from stdin (a terminal or a pipe). */
export function stdinAsker(): { ask(question: string): Promise<string>; close(): void } {
  const rl = createInterface({ input: process.stdin, terminal: false });
  const lines: string[] = [];
  const waiting: Array<(line: string | null) => void> = [];
  let ended = false;
  rl.on('line', (line) => (waiting.length ? waiting.shift()!(line) : lines.push(line)));
  rl.on('close', () => {
    ended = true;
    while (waiting.length) waiting.shift()!(null);
  });
  return {
    async ask(question) {
      process.stderr.write(question);
      const line = lines.length ? lines.shift()! : ended ? null : await new Promise<string | null>((resolve) => waiting.push(resolve));
      if (line === null) throw new UsageError('a question was asked but standard input has no answer', 'answer it on a terminal, or pass --yes / --update-conflict server|commandline');
      process.stderr.write(`${line}\n`);
      return line.trim();
    },
    close: () => rl.close(),
  };
}

/**
 * The options to use: stored values, except where the command line gave one (`given`
 * holds only what was given); differing values are settled by `mode`.
 */
export async function settleOptions(stored: ImageOptions, given: Partial<ImageOptions>, mode: ConflictMode, ask: (question: string) => Promise<string>): Promise<{ options: ImageOptions; conflicts: Array<keyof ImageOptions> }> {
  const options = { ...stored };
  const conflicts: Array<keyof ImageOptions> = [];
  for (const key of Object.keys(FLAG) as Array<keyof ImageOptions>) {
    const wanted = given[key];
    if (wanted === undefined || JSON.stringify(wanted) === JSON.stringify(stored[key])) continue;
    conflicts.push(key);
    let useCommandLine = mode === 'commandline';
    if (mode === 'prompt') {
      const answer = await ask(`${FLAG[key]}: the image has "${stored[key].join(',')}", the command line "${wanted.join(',')}". Use the command line's? [y/N] `);
      useCommandLine = /^y(es)?$/i.test(answer);
    }
    if (useCommandLine) options[key] = wanted;
  }
  return { options, conflicts };
}

/** Loads the stored options, settles the given ones against them (asking on stdin in prompt mode). */
export async function optionsForUpdate(backend: Backend, storedId: ChunkId | null | undefined, given: Partial<ImageOptions>, mode: ConflictMode): Promise<{ options: ImageOptions; changed: boolean }> {
  const stored = await loadOptions(backend, storedId);
  const asker = mode === 'prompt' ? stdinAsker() : null;
  try {
    const { options } = await settleOptions(stored, given, mode, asker ? asker.ask : async () => '');
    return { options, changed: JSON.stringify(options) !== JSON.stringify(stored) };
  } finally {
    asker?.close();
  }
}
