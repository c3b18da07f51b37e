/** Runs the cloner CLI as a user would: the bin launcher on the machine's default node. */
import { spawnSync } from 'node:child_process';

export interface CliResult {
  code: number | null;
  out: string;
  err: string;
}

/** With standard input `input` (the answers to its questions). */
export function clonerWithInput(input: string, ...args: string[]): CliResult {
  const r = spawnSync('node', ['bin/cloner.js', ...args], { encoding: 'utf8', input, env: { ...process.env, PATH: `/usr/bin:/bin:${process.env.PATH}` } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

export function cloner(...args: string[]): CliResult {
  return clonerWithInput('', ...args);
}
