/**
 * The agent's side of the server: the chunk store (HttpStore, with retries so a network
 * cut during a deploy is waited out) and the JSON routes, each retried with backoff while
 * the failure may pass (unreachable server, 5xx, cut connection) until the deadline.
 */
import { HttpStore, ServerError, withRetry, type HttpStoreOptions } from '../core/store/http.ts';

export interface ClientOptions {
  server: string;
  token?: string;
  /** Give up after this long without success (since the first failure). */
  retryDeadlineMs: number;
  /** A fetch with no data for this long is abandoned and retried. */
  stallMs: number;
  onRetry?: (what: string, err: Error, attempt: number, delayMs: number) => void;
}

export class AgentClient {
  readonly store: HttpStore;
  private readonly retry: NonNullable<HttpStoreOptions['retry']>;
  private readonly onRetry: ClientOptions['onRetry'];

  constructor(o: ClientOptions) {
    this.onRetry = o.onRetry;
    this.retry = { deadlineMs: o.retryDeadlineMs, stallMs: o.stallMs, onRetry: (err, n, delay) => o.onRetry?.('fetching chunks', err, n, delay) };
    this.store = new HttpStore({ url: o.server, token: o.token, retry: this.retry, fetchConcurrency: 4 });
  }

  /** A JSON request, retried while the failure may pass. */
  json<T>(route: string, method = 'GET', body?: unknown): Promise<T> {
    return withRetry({ ...this.retry, onRetry: (err, n, delay) => this.onRetry?.(`${method} ${route}`, err, n, delay) }, () => this.store.requestJson<T>(route, method, body));
  }

  /** Like json, but a 404 answer is null. */
  async jsonOrNull<T>(route: string): Promise<T | null> {
    try {
      return await this.json<T>(route);
    } catch (err) {
      if (err instanceof ServerError && err.status === 404) return null;
      throw err;
    }
  }

  /** Raw bytes of a route (attachments), or null on 404. */
  async bytesOrNull(route: string): Promise<Buffer | null> {
    try {
      return await withRetry(this.retry, async () => Buffer.from(await (await this.store.request(route)).arrayBuffer()));
    } catch (err) {
      if (err instanceof ServerError && err.status === 404) return null;
      throw err;
    }
  }
}
