/**
 * Where a client finds the cloner server: `serverUrl` turns what a user types (`head`,
 * `head:9000`, `http://head:9000/`, `https://...`, `[::1]:8740`) into a base URL, port
 * 8740 by default. Shared by the CLI (--server, CLONER_SERVER, the client config) and the
 * agent (--server, cloner.server= on the kernel command line).
 */
import { UsageError } from '../errors.ts';

export const DEFAULT_PORT = 8740;

/** The base URL (scheme://host:port, no path) of a server; UsageError when it is not one. */
export function serverUrl(value: string): string {
  const text = value.trim();
  if (/^https?:\/\//.test(text)) {
    try {
      const u = new URL(text);
      return `${u.protocol}//${u.host}`;
    } catch {
      // fall through to the error below
    }
  } else {
    const m = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?$/.exec(text);
    if (m) return `http://${m[1]}${m[2] ?? `:${DEFAULT_PORT}`}`;
  }
  throw new UsageError(`bad --server ${JSON.stringify(value)}`, 'give a host, host:port or URL, e.g. --server head or --server http://head:8740');
}
