/**
 * A real cloner-server child process on an ephemeral loopback port, with its own data
 * directory; always stopped (SIGTERM, then SIGKILL) and removed after `work`. `restart()`
 * stops it and starts it again on the same data directory and address (a server outage).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { withTempDir } from './fixtures.ts';

export interface TestServer {
  url: string;
  dataDir: string;
  adminToken: string;
  readToken: string;
  /** The server's process id (e.g. to read its memory from /proc). */
  pid: number;
  /** What the server wrote to stderr so far. */
  stderr(): string;
  /** Resolves with the exit code once the server stopped on SIGTERM. */
  stop(): Promise<number | null>;
  /** Stops the server (SIGTERM) and starts it again on the same data directory and address; `pid` and `stderr` follow the new process. */
  restart(): Promise<void>;
}

export interface ServerPlacement {
  /** Address to listen on (default 127.0.0.1:0, an ephemeral loopback port). */
  listen?: string;
  /** Starts the server process (e.g. inside a network namespace); default: spawn here. */
  spawner?: (argv: string[]) => ChildProcess;
  /** An existing data directory to serve (left in place); default: a fresh temporary one. */
  dataDir?: string;
}

export async function withServer<T>(work: (server: TestServer) => Promise<T>, extraArgs: string[] = [], placement: ServerPlacement = {}): Promise<T> {
  return withTempDir(async (dir) => {
    const dataDir = placement.dataDir ?? path.join(dir, 'data');
    const listen = placement.listen ?? '127.0.0.1:0';
    let running = await startServer(dataDir, listen, extraArgs, placement);
    const stop = () => running.stop();
    // Same data directory and address (a fixed port: the one it had, when it was ephemeral).
    const restart = async () => {
      await running.stop();
      running = await startServer(dataDir, listen.endsWith(':0') ? new URL(running.url).host : listen, extraArgs, placement);
      server.pid = running.child.pid!;
    };
    const adminToken = (await readFile(path.join(dataDir, 'admin.token'), 'utf8')).trim();
    const readToken = (await readFile(path.join(dataDir, 'read.token'), 'utf8')).trim();
    const server: TestServer = { url: running.url, dataDir, adminToken, readToken, pid: running.child.pid!, stderr: () => running.stderr(), stop, restart };
    try {
      return await work(server);
    } finally {
      if (running.child.exitCode === null && running.child.signalCode === null) await running.stop();
    }
  });
}

/** Starts one server process and waits for its "listening on" line (20 s at most). */
async function startServer(dataDir: string, listen: string, extraArgs: string[], placement: ServerPlacement) {
  const argv = [process.execPath, 'bin/cloner-server.js', '--data', dataDir, '--listen', listen, '--log-level', 'warn', ...extraArgs];
  const child = placement.spawner ? placement.spawner(argv) : spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let stderr = '';
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the server did not start in 20 s: ${stderr}`)), 20_000);
    child.stderr!.on('data', (d) => {
      stderr += d;
      const m = /listening on (https?:\/\/\S+)/.exec(stderr);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.once('exit', (code) => reject(new Error(`the server exited (${code}): ${stderr}`)));
  });
  child.stdout!.resume();
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    const code = await exited;
    clearTimeout(timer);
    return code;
  };
  return { child, url, stderr: () => stderr, stop };
}
