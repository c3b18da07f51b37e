/**
 * bench:upload — new-image of a real OS tree through a cloner-server on loopback, against
 * the same capture into a local store (the yardstick: what the HTTP protocol costs), and
 * against `restic backup` to a local repository (another tool that dedups and uploads), all
 * in the same run. Then a second new-image of the same tree under another name: nothing new
 * to send, so it measures the "ask what the server lacks" path. Runs the real CLI as a child
 * process (`--yes`), as an admin would.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { startBenchServer } from './server.ts';
import { mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';
import { ensureDebianTree } from './debian-tree.ts';
import { haveTool } from '../core/tools.ts';

const found = await ensureDebianTree();
if ('skip' in found) {
  console.log(`bench:upload skipped: ${found.skip}`);
  process.exit(0);
}
const tree = found.tree;
const work = await mkdtemp(path.join(process.env.CLONER_BENCH_WORK ?? '/var/tmp', 'cloner-bench-upload-'));
const bytes = Number(execFileSync('du', ['-sb', '--apparent-size', tree], { encoding: 'utf8' }).split('\t')[0]);
execFileSync('tar', ['-cf', '/dev/null', tree]); // warm the page cache for everyone alike

const cli = (...args: string[]) => {
  const t = performance.now();
  const r = spawnSync(process.execPath, ['bin/cloner.js', ...args, '--yes'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`cloner ${args.join(' ')} failed: ${r.stderr}`);
  return { seconds: (performance.now() - t) / 1000, out: r.stdout };
};

const server = await startBenchServer(path.join(work, 'server'));
try {
  const { url, tokenFile: token } = server;
  const local = cli('new-image', '--store', path.join(work, 'local'), '--init', '--image', 'a', '--root', tree);
  const http = cli('new-image', '--server', url, '--token-file', token, '--image', 'a', '--root', tree);
  const again = cli('new-image', '--server', url, '--token-file', token, '--image', 'b', '--root', tree);
  let restic: number | null = null;
  if (haveTool('restic')) {
    const env = { ...process.env, RESTIC_PASSWORD: 'bench', RESTIC_REPOSITORY: path.join(work, 'restic') };
    execFileSync('restic', ['init', '-q'], { env });
    const t = performance.now();
    execFileSync('restic', ['backup', '-q', tree], { env });
    restic = (performance.now() - t) / 1000;
  }
  const mbs = (s: number) => (bytes / 1e6 / s).toFixed(1);
  console.log(`tree ${tree}: ${(bytes / 1e6).toFixed(1)} MB`);
  console.log(`new-image --store (local yardstick): ${local.seconds.toFixed(2)} s, ${mbs(local.seconds)} MB/s`);
  console.log(`new-image --server (loopback):       ${http.seconds.toFixed(2)} s, ${mbs(http.seconds)} MB/s  (${(http.seconds / local.seconds).toFixed(2)}x the local time)`);
  console.log(`  ${http.out.trim()}`);
  console.log(`second image, same tree, --server:   ${again.seconds.toFixed(2)} s  (${again.out.trim().replace(/^.*new data stored/s, 'new data stored')})`);
  if (restic !== null) console.log(`restic backup (local repository):   ${restic.toFixed(2)} s, ${mbs(restic)} MB/s  (cloner over HTTP / restic: ${(http.seconds / restic).toFixed(2)}x)`);
  else console.log('restic backup (local repository):   skipped: restic is not installed (scripts/setup.sh installs it)');
} finally {
  await server.stop();
  await rm(work, { recursive: true, force: true });
}
