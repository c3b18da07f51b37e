/** A cloner-server child process on an ephemeral loopback port for benches; `peakRss` reads its VmHWM, `stop` ends it. */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { entryOf, profFlags } from './lab.ts';

export interface BenchServer {
  url: string;
  tokenFile: string;
  /** The server's peak resident set so far, in bytes (Linux /proc VmHWM). */
  peakRss(): number;
  stop(): Promise<void>;
}

export async function startBenchServer(dataDir: string): Promise<BenchServer> {
  const server = spawn(process.execPath, [...profFlags(), entryOf('cloner-server'), '--data', dataDir, '--listen', '127.0.0.1:0', '--log-level', 'warn'], { stdio: ['ignore', 'ignore', 'pipe'] });
  const exited = new Promise((r) => server.once('exit', r));
  const url = await new Promise<string>((resolve, reject) => {
    let err = '';
    server.stderr!.on('data', (d) => {
      err += d;
      const m = /listening on (\S+)/.exec(err);
      if (m) resolve(m[1]);
    });
    server.once('exit', () => reject(new Error(err)));
  });
  return {
    url,
    tokenFile: path.join(dataDir, 'admin.token'),
    peakRss() {
      const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${server.pid}/status`, 'utf8'));
      return m ? Number(m[1]) * 1024 : 0;
    },
    async stop() {
      server.kill('SIGTERM');
      await exited;
    },
  };
}
