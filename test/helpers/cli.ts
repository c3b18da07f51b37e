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

/**
 * A cloner runner for one server (`remote`: its --server and --token-file flags) that
 * returns standard output and throws with all output when a command fails; `prefix` runs it
 * through another command (ip netns exec NS).
 */
export function clonerAgainst(remote: string[], prefix: string[] = []): (...args: string[]) => string {
  return (...args) => {
    const argv = [...prefix, 'node', 'bin/cloner.js', ...args, ...remote];
    const r = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`cloner ${args.join(' ')} failed (${r.status}): ${r.stderr}${r.stdout}`);
    return r.stdout;
  };
}
