/** Runs the cloner CLI as a user would: the bin launcher on the machine's default node. */
import { spawnSync } from 'node:child_process';

export function cloner(...args: string[]): { code: number | null; out: string; err: string } {
  const r = spawnSync('node', ['bin/cloner.js', ...args], { encoding: 'utf8', env: { ...process.env, PATH: `/usr/bin:/bin:${process.env.PATH}` } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}
