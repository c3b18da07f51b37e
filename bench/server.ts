/** A cloner-server child process on an ephemeral loopback port for benches; `stop` ends it. */
import { spawn } from 'node:child_process';
import path from 'node:path';

export async function startBenchServer(dataDir: string): Promise<{ url: string; tokenFile: string; stop(): Promise<void> }> {
  const server = spawn(process.execPath, ['bin/cloner-server.js', '--data', dataDir, '--listen', '127.0.0.1:0', '--log-level', 'warn'], { stdio: ['ignore', 'ignore', 'pipe'] });
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
    async stop() {
      server.kill('SIGTERM');
      await exited;
    },
  };
}
