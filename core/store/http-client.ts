/**
 * The transport under HttpStore (and every CLI and agent call through it): requests to a
 * cloner server with its bearer token, over fetch for streamed answers and over node:http
 * for JSON calls and uploads (the comments below say why); a non-2xx answer becomes a
 * ServerError with the server's code, message and hint, a failed connection a
 * ServerUnreachableError with a hint.
 */
import { ChunkCorruptError } from './errors.ts';
import { ServerError, ServerUnreachableError } from './http-retry.ts';

export class ServerClient {
  readonly url: string;
  protected readonly token: string | undefined;

  /** `url`: the server's base URL (trailing slashes dropped); `token`: its bearer token, if any. */
  constructor(url: string, token: string | undefined) {
    this.url = url.replace(/\/+$/, '');
    this.token = token;
  }

  /** A request to the server; non-2xx answers become ServerError with the server's code and hint. */
  async request(route: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    if (this.token) headers.set('authorization', `Bearer ${this.token}`);
    let response: Response;
    try {
      response = await fetch(`${this.url}${route}`, { ...init, headers });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw this.unreachable(cause?.code ?? cause?.message ?? (err as Error).message);
    }
    if (response.ok || response.status === 304) return response;
    throw this.refusal(response.status, await response.text().catch(() => ''), init.method ?? 'GET', route);
  }

  /**
   * A JSON request and its parsed answer, over node:http rather than fetch: most CLI and
   * agent calls are one small JSON request, and loading fetch (undici) costs a start ~50 ms
   * of CPU where node:http costs ~5 ms (bench/startup.ts). node:http is taken with
   * process.getBuiltinModule: its ES module wrapper (`import`) reads every export, which
   * loads undici anyway. Errors as `request`'s; a kept-alive connection the server closed
   * just as it was reused (ECONNRESET on a reused socket) is tried once more on a new one.
   */
  async requestJson<T>(route: string, method = 'GET', body?: unknown): Promise<T> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const { status, text } = await this.httpRequest(route, method, payload && { 'content-type': 'application/json', 'content-length': payload.length }, payload);
    if (status < 200 || status > 299) throw this.refusal(status, text, method, route);
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new ServerError(status, 'BAD_ANSWER', `${method} ${route}: the server's answer is not JSON`, 'check that --server names a cloner server');
    }
  }

  /**
   * One request over node:http (or https) and its whole answer as text, errors as
   * `request`'s. The payload is written as it is, never copied: uploads go this way too,
   * because fetch copies a Uint8Array body (undici's extractBody) and queues it again in a
   * web stream, which held each 8 MiB batch two or three times over (heap snapshot of a
   * capture to a server: ~80 MB of upload bodies in flight for ~35 MB of frames). A
   * kept-alive connection the server closed just as it was reused (ECONNRESET on a reused
   * socket) is tried once more on a new one; every request here is safe to repeat (an
   * upload stores chunks by their id).
   */
  protected async httpRequest(route: string, method: string, headers: { [key: string]: string | number } | undefined, payload: Buffer | undefined): Promise<{ status: number; text: string }> {
    const mod = (this.url.startsWith('https:') ? process.getBuiltinModule('node:https') : process.getBuiltinModule('node:http')) as typeof import('node:http');
    const all: { [key: string]: string | number } = { accept: 'application/json', ...headers };
    if (this.token) all.authorization = `Bearer ${this.token}`;
    const once = (fresh: boolean) =>
      new Promise<{ status: number; text: string }>((resolve, reject) => {
        const req = mod.request(`${this.url}${route}`, { method, headers: all, ...(fresh ? { agent: false } : {}) }, (res) => {
          const parts: Buffer[] = [];
          res.on('data', (piece: Buffer) => parts.push(piece));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(parts).toString('utf8') }));
          res.on('error', reject);
        });
        req.on('error', (err: NodeJS.ErrnoException) => reject(req.reusedSocket && err.code === 'ECONNRESET' && !fresh ? err : this.unreachable(err.code ?? err.message)));
        req.end(payload);
      });
    return once(false).catch((err) => (err instanceof ServerUnreachableError ? Promise.reject(err) : once(true)));
  }

  protected unreachable(why: string): ServerUnreachableError {
    return new ServerUnreachableError(`cannot reach the cloner server at ${this.url}: ${why}`, 'check --server (host, host:port or URL) and that cloner-server runs there');
  }

  /** The error for a non-2xx answer: the server's code, message and hint from its JSON body. */
  protected refusal(status: number, text: string, method: string, route: string): Error {
    let body: { error?: string; message?: string; hint?: string } = {};
    try {
      const parsed: unknown = JSON.parse(text);
      if (parsed && typeof parsed === 'object') body = parsed as typeof body;
    } catch {
      // not JSON: keep the status alone
    }
    const code = typeof body.error === 'string' ? body.error : `HTTP_${status}`;
    const message = typeof body.message === 'string' ? body.message : `${method} ${route} answered ${status}`;
    if (code === 'CHUNK_CORRUPT') return new ChunkCorruptError(route, message);
    return new ServerError(status, code, message, typeof body.hint === 'string' ? body.hint : '');
  }
}
