/**
 * Start-up of the three programs as an admin runs them: every bad flag, missing value, bad
 * setting and port in use ends in one line `PROG: error: ...` plus a `hint:` line, a non-zero
 * exit and no stack trace; --help and --version answer; and a signal sent to the PID an admin
 * started (the installed shell launcher, or `node bin/PROG.js` on an older Node) stops the
 * real server: the port is free and no process is left.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, spawnSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { withTempDir } from './helpers/fixtures.ts';
import { CLONER_VERSION } from '../core/version.ts';

const root = path.resolve(new URL('..', import.meta.url).pathname);
const env = { ...process.env, PATH: `/usr/bin:/bin:${process.env.PATH}`, CLONER_CLIENT_CONFIG: '/nonexistent/client.json', CLONER_SERVER: '' };

function runProg(prog: string, args: string[]) {
  const r = spawnSync(path.join(root, 'bin', prog), args, { encoding: 'utf8', env, timeout: 20_000 });
  return { code: r.status, out: r.stdout, err: r.stderr, signal: r.signal };
}

function assertOneLineError(prog: string, args: string[], pattern: RegExp) {
  const r = runProg(prog, args);
  const what = `${prog} ${args.join(' ')}`;
  assert.ok(r.code !== 0 && r.code !== null, `${what}: exit ${r.code} (signal ${r.signal})`);
  assert.not.match(r.err, /\n\s+at |internal error/, `${what} printed a stack trace: ${r.err}`);
  assert.match(r.err, new RegExp(`^${prog}: error: [^\\n]+\\nhint: [^\\n]+\\n$`), `${what}: ${r.err}`);
  assert.match(r.err, pattern, `${what}: ${r.err}`);
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

const portFree = (port: number) => new Promise<boolean>((resolve) => {
  const s = net.createServer().once('error', () => resolve(false)).listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
});

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

test('package.json and core/version.ts agree; every program has --version and --help', async () => {
  const pkg = JSON.parse(await readFile(path.join(root, 'package.json'), 'utf8'));
  assert.is(pkg.version, CLONER_VERSION);
  for (const prog of ['cloner', 'cloner-server', 'cloner-agent']) {
    const v = runProg(prog, ['--version']);
    assert.is(v.code, 0, v.err);
    assert.match(v.out, CLONER_VERSION);
    const h = runProg(prog, ['--help']);
    assert.is(h.code, 0, h.err);
    assert.match(h.out, /Usage/);
  }
});

test('bad flags and settings: one line and a hint, no stack trace', async () => {
  await withTempDir(async (dir) => {
    assertOneLineError('cloner-server', ['--bogus'], /unknown flag --bogus/);
    assertOneLineError('cloner-server', ['--data'], /--data needs a value/);
    assertOneLineError('cloner-server', [], /--data is required/);
    assertOneLineError('cloner-server', ['--data', dir, '--log-level', 'loud'], /bad --log-level loud/);
    assertOneLineError('cloner-server', ['--data', dir, '--listen', 'nowhere'], /bad --listen/);
    assertOneLineError('cloner-server', ['--data', '/proc/cloner-data'], /proc file system/);
    assertOneLineError('cloner-server', ['--data', '/sys/cloner-data'], /sysfs file system/);
    assertOneLineError('cloner-server', ['stray'], /unexpected argument stray/);
    assertOneLineError('cloner', ['--bogus'], /unknown flag --bogus/);
    assertOneLineError('cloner', ['no-such-command'], /unknown command/);
    assertOneLineError('cloner', ['image-list', '--bogus'], /--bogus/);
    assertOneLineError('cloner', ['image-list', '--server'], /.+/);
    assertOneLineError('cloner', ['image-list'], /no server given/);
    assertOneLineError('cloner-agent', ['--bogus'], /unknown flag --bogus/);
    assertOneLineError('cloner-agent', ['deploy', '--bogus'], /--bogus/);
    assertOneLineError('cloner-agent', ['deploy', '--server', 'http://127.0.0.1:1', '--stall-s=0'], /--stall-s/);
    assertOneLineError('cloner-agent', ['nope'], /unknown command nope/);
  });
});

test('a port in use: one line and a hint', async () => {
  await withTempDir(async (dir) => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', () => resolve()));
    const { port } = blocker.address() as net.AddressInfo;
    try {
      assertOneLineError('cloner-server', ['--data', dir, '--listen', `127.0.0.1:${port}`], /in use/);
    } finally {
      blocker.close();
    }
  });
});

/** Starts cloner-server as `argv`, waits until it listens, sends `signal` to that PID, checks nothing is left. */
async function signalStops(argv: string[], signal: NodeJS.Signals): Promise<void> {
  await withTempDir(async (dir) => {
    const port = await freePort();
    const child = spawn(argv[0], [...argv.slice(1), '--data', dir, '--listen', `127.0.0.1:${port}`, '--log-level', 'warn'], { stdio: ['ignore', 'ignore', 'pipe'], env });
    let stderr = '';
    const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => child.once('exit', (code, sig) => resolve({ code, signal: sig })));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no start in 20 s: ${stderr}`)), 20_000);
      child.stderr!.on('data', (d) => {
        stderr += d;
        if (stderr.includes('listening on')) (clearTimeout(timer), resolve());
      });
    });
    // Every process whose parent is the started PID (a second Node, if the launcher spawned one).
    const children = spawnSync('ps', ['-o', 'pid=', '--ppid', String(child.pid)], { encoding: 'utf8' }).stdout.split('\n').map((s) => Number(s.trim())).filter(Boolean);
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    const result = await exited;
    clearTimeout(timer);
    assert.ok(result.signal !== 'SIGKILL', `${argv.join(' ')}: did not stop on ${signal}`);
    for (let i = 0; i < 50 && children.some(alive); i++) await new Promise((r) => setTimeout(r, 100));
    assert.equal(children.filter(alive), [], `${argv.join(' ')}: processes left after ${signal}`);
    assert.ok(await portFree(port), `${argv.join(' ')}: port ${port} still taken after ${signal}`);
  });
}

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  test(`${signal} to the started PID stops the server: installed launcher`, async () => {
    await signalStops([path.join(root, 'bin/cloner-server')], signal);
  });
  test(`${signal} to the started PID stops the server: node bin/cloner-server.js on the PATH's node`, async () => {
    await signalStops(['node', path.join(root, 'bin/cloner-server.js')], signal);
  });
}

test.run();
