/**
 * `cloner-server --data DIR [--listen HOST:PORT] [--tls-cert PEM --tls-key PEM] [--log-level LEVEL]`:
 * the image server (HTTPS with a certificate and key). `--upload-grace-s` (default 1800): how
 * long chunks of an upload not yet committed are safe from GC (one to two such periods).
 * DIR holds the embedded store (DIR/store: LevelDB index + packs) and the tokens
 * (admin.token, read.token; created on first start, mode 0600). Logs are pino JSON lines
 * on stdout. SIGTERM/SIGINT close the listener, let requests in flight finish, then close
 * the store. Bad arguments print one line with a hint and exit 2.
 */
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { describeFatal, UsageError } from '../core/errors.ts';
import { LocalStore } from '../core/store/local.ts';
import { buildServer } from './app.ts';
import { loadTokens } from './auth.ts';
import { secureDataDir } from './data-dir.ts';

function parseListen(value: string): { host: string; port: number } {
  const m = /^(\[[0-9a-fA-F:]+\]|[^:]+):(\d{1,5})$/.exec(value);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port > 65535) throw new UsageError(`bad --listen ${value}`, 'use HOST:PORT, e.g. 0.0.0.0:8740 or 127.0.0.1:0');
  return { host: m[1].replace(/^\[|\]$/g, ''), port };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      data: { type: 'string' },
      listen: { type: 'string', default: '127.0.0.1:8740' },
      'log-level': { type: 'string', default: 'info' },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
      'upload-grace-s': { type: 'string', default: '1800' },
      'public-url': { type: 'string' },
    },
  });
  if (!values['tls-cert'] !== !values['tls-key']) throw new UsageError('--tls-cert and --tls-key go together', 'give both PEM files, or neither for plain HTTP');
  const readPem = async (file: string, what: string) => {
    try {
      return await readFile(file);
    } catch (err) {
      throw new UsageError(`cannot read the TLS ${what} ${file}: ${(err as NodeJS.ErrnoException).code}`, 'check the path and its permissions');
    }
  };
  const tls = values['tls-cert'] ? { cert: await readPem(values['tls-cert'], 'certificate'), key: await readPem(values['tls-key']!, 'key') } : undefined;
  if (!values.data) throw new UsageError('--data is required', 'give the directory for the store and tokens, e.g. --data /var/lib/cloner');
  const { host, port } = parseListen(values.listen!);
  const dataDir = path.resolve(values.data);
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  for (const warning of await secureDataDir(dataDir)) process.stderr.write(`cloner-server: warning: ${warning}\n`);
  const store = await LocalStore.open(path.join(dataDir, 'store'), { create: true });
  const auth = await loadTokens(dataDir);
  if (values['public-url'] !== undefined && !/^https?:\/\/[^/\s]+\/?$/.test(values['public-url'])) throw new UsageError(`bad --public-url ${values['public-url']}`, 'the URL nodes reach this server at, e.g. http://198.18.0.1:8740');
  const graceS = Number(values['upload-grace-s']);
  if (!Number.isInteger(graceS) || graceS < 1) throw new UsageError(`bad --upload-grace-s ${values['upload-grace-s']}`, 'give whole seconds, e.g. 1800');
  const app = await buildServer({ store, auth, logger: { level: values['log-level'] }, tls, uploadGraceMs: graceS * 1000, bootDir: path.join(dataDir, 'boot'), publicUrl: values['public-url']?.replace(/\/+$/, '') });
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
  const address = await app.listen({ host, port });
  process.stderr.write(`cloner-server: listening on ${address} (data ${dataDir}; admin token in ${path.join(dataDir, 'admin.token')})\n`);
}

try {
  await main();
} catch (err) {
  const { text, exitCode } = describeFatal('cloner-server', err);
  process.stderr.write(text);
  process.exit(exitCode);
}
