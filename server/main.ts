/**
 * `cloner-server --data DIR [--listen HOST:PORT] [--tls-cert PEM --tls-key PEM] [--log-level LEVEL]`:
 * the image server (HTTPS with a certificate and key). `--upload-grace-s` (default 1800): how
 * long chunks of an upload not yet committed are safe from GC (one to two such periods).
 * DIR holds the embedded store (DIR/store: LevelDB index + packs) and the tokens
 * (admin.token, read.token; created on first start, mode 0600). Logs are pino JSON lines
 * on stdout; one line per request only at `--log-level debug`. SIGTERM/SIGINT close the
 * listener, let requests in flight finish, then close the store.
 *
 * Start-up checks come before anything is loaded or created: flags (unknown, missing value,
 * bad level), then the data directory (refused on /proc, /sys and other kernel file systems,
 * where mkdir never succeeds), then the port. Every start-up error is one line and a hint,
 * exit 2 (core/errors.ts describeFatal). The store and fastify are imported only after the
 * flags are good, so --help and --version answer at once.
 */
import { mkdir, readFile, statfs } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { describeFatal, UsageError } from '../core/errors.ts';
import { CLONER_VERSION } from '../core/version.ts';
import { secureDataDir } from './data-dir.ts';

const HELP = `cloner-server ${CLONER_VERSION}: the Cloner image server

Usage:
  cloner-server --data DIR [options]

Options:
  --data <dir>            Store and tokens (created on first start; admin.token, read.token)
  --listen <host:port>    Address to listen on (default: 127.0.0.1:8740; 0.0.0.0:8740 for nodes)
  --tls-cert <pem>        Serve HTTPS with this certificate (with --tls-key)
  --tls-key <pem>         The certificate's private key
  --public-url <url>      URL nodes reach this server at (default: the request's Host)
  --upload-grace-s <s>    Chunks of uploads not yet committed are safe from gc this long (default: 1800)
  --log-level <level>     fatal, error, warn, info (default), debug (one line per request), trace or silent
  -h, --help              Show this help
  -v, --version           Show the version

Example:
  cloner-server --data /var/lib/cloner --listen 0.0.0.0:8740
`;

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** File systems a data directory can never live on (statfs f_type): proc, sysfs, cgroup, cgroup2, debugfs, securityfs, tracefs. */
const KERNEL_FS: Record<number, string> = { 0x9fa0: 'proc', 0x62656572: 'sysfs', 0x27e0eb: 'cgroup', 0x63677270: 'cgroup2', 0x64626720: 'debugfs', 0x73636673: 'securityfs', 0x74726163: 'tracefs' };

function parseListen(value: string): { host: string; port: number } {
  const m = /^(\[[0-9a-fA-F:]+\]|[^:]+):(\d{1,5})$/.exec(value);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port > 65535) throw new UsageError(`bad --listen ${value}`, 'use HOST:PORT, e.g. 0.0.0.0:8740 or 127.0.0.1:0');
  return { host: m[1].replace(/^\[|\]$/g, ''), port };
}

/** Node's parseArgs errors, in the user's terms: the flag as typed, and what to do. */
function parseFlags(argv: string[]) {
  try {
    return parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        data: { type: 'string' },
        listen: { type: 'string', default: '127.0.0.1:8740' },
        'log-level': { type: 'string', default: 'info' },
        'tls-cert': { type: 'string' },
        'tls-key': { type: 'string' },
        'upload-grace-s': { type: 'string', default: '1800' },
        'public-url': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'v' },
      },
    }).values;
  } catch (err) {
    const e = err as { code?: string; message: string };
    const flag = /'(-{1,2}[^' ]+)/.exec(e.message)?.[1];
    if (e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') throw new UsageError(`unknown flag ${flag ?? ''}`.trim(), 'see the flags with cloner-server --help');
    if (e.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') throw new UsageError(`${flag ?? 'a flag'} needs a value`, 'see the flags with cloner-server --help');
    if (e.code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') throw new UsageError(`unexpected argument ${/'([^']*)'/.exec(e.message)?.[1] ?? ''}`.trim(), 'cloner-server takes only flags, e.g. --data /var/lib/cloner');
    throw new UsageError(e.message, 'see the flags with cloner-server --help');
  }
}

/** Refuses a data directory on a kernel file system (mkdir there fails forever, or spins). */
async function checkDataDir(dir: string): Promise<void> {
  for (let at = dir; ; at = path.dirname(at)) {
    try {
      const kind = KERNEL_FS[(await statfs(at)).type];
      if (kind) throw new UsageError(`--data ${dir} is on the kernel's ${kind} file system`, 'give a directory on a disk, e.g. --data /var/lib/cloner');
      return;
    } catch (err) {
      if (err instanceof UsageError) throw err;
      if (at === path.dirname(at)) return;
    }
  }
}

async function main(): Promise<void> {
  const values = parseFlags(process.argv.slice(2));
  if (values.help) return void process.stdout.write(HELP);
  if (values.version) return void process.stdout.write(`cloner-server ${CLONER_VERSION}\n`);
  if (!values.data) throw new UsageError('--data is required', 'give the directory for the store and tokens, e.g. --data /var/lib/cloner');
  const level = values['log-level']!;
  if (!LOG_LEVELS.includes(level)) throw new UsageError(`bad --log-level ${level}`, `use one of ${LOG_LEVELS.join(', ')}`);
  if (!values['tls-cert'] !== !values['tls-key']) throw new UsageError('--tls-cert and --tls-key go together', 'give both PEM files, or neither for plain HTTP');
  const { host, port } = parseListen(values.listen!);
  if (values['public-url'] !== undefined && !/^https?:\/\/[^/\s]+\/?$/.test(values['public-url'])) throw new UsageError(`bad --public-url ${values['public-url']}`, 'the URL nodes reach this server at, e.g. http://198.18.0.1:8740');
  const graceS = Number(values['upload-grace-s']);
  if (!Number.isInteger(graceS) || graceS < 1) throw new UsageError(`bad --upload-grace-s ${values['upload-grace-s']}`, 'give whole seconds, e.g. 1800');
  const readPem = async (file: string, what: string) => {
    try {
      return await readFile(file);
    } catch (err) {
      throw new UsageError(`cannot read the TLS ${what} ${file}: ${(err as NodeJS.ErrnoException).code}`, 'check the path and its permissions');
    }
  };
  const tls = values['tls-cert'] ? { cert: await readPem(values['tls-cert'], 'certificate'), key: await readPem(values['tls-key']!, 'key') } : undefined;
  const dataDir = path.resolve(values.data);
  await checkDataDir(dataDir);
  try {
    await mkdir(dataDir, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw new UsageError(`cannot create --data ${dataDir}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, 'give a directory this user may create or write, e.g. --data /var/lib/cloner');
  }
  for (const warning of await secureDataDir(dataDir)) process.stderr.write(`cloner-server: warning: ${warning}\n`);
  const [{ LocalStore }, { buildServer }, { loadTokens }] = await Promise.all([import('../core/store/local.ts'), import('./app.ts'), import('./auth.ts')]);
  const store = await LocalStore.open(path.join(dataDir, 'store'), { create: true });
  const auth = await loadTokens(dataDir);
  const app = await buildServer({ store, auth, logger: { level }, tls, uploadGraceMs: graceS * 1000, bootDir: path.join(dataDir, 'boot'), publicUrl: values['public-url']?.replace(/\/+$/, '') });
  let closing = false;
  const shutdown = async (signal: string) => {
    if (closing) return;
    closing = true;
    app.log.info({ signal }, 'shutting down: finishing requests in flight');
    await app.close();
    await store.close();
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
  let address: string;
  try {
    address = await app.listen({ host, port });
  } catch (err) {
    await store.close().catch(() => {});
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') throw new UsageError(`${values.listen} is in use by another program`, 'stop it (ss -ltnp shows which), or give another --listen HOST:PORT');
    if (code === 'EACCES') throw new UsageError(`no permission to listen on ${values.listen}`, 'ports below 1024 need root; use e.g. --listen 0.0.0.0:8740');
    if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND') throw new UsageError(`cannot listen on ${values.listen}: no such address on this machine`, 'use an address of this machine, or 0.0.0.0');
    throw err;
  }
  process.stderr.write(`cloner-server: listening on ${address} (data ${dataDir}; admin token in ${path.join(dataDir, 'admin.token')})\n`);
}

try {
  await main();
} catch (err) {
  const { text, exitCode } = describeFatal('cloner-server', err);
  process.stderr.write(text);
  process.exit(exitCode);
}
