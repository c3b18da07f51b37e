/**
 * The agent's side of the server: the chunk store (HttpStore, with retries so a network
 * cut during a deploy is waited out) and the protocol's typed client (core/api/client.ts)
 * over the same connection settings, every call retried with backoff while the failure
 * may pass (unreachable server, 5xx, cut connection) until the deadline.
 */
import { ApiClient } from '../core/api/client.ts';
import { HttpStore } from '../core/store/http.ts';

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
  /** Calls retried until the deadline. */
  readonly api: ApiClient;
  /** Calls tried once (reports whose loss is not worth waiting for). */
  readonly once: ApiClient;

  constructor(o: ClientOptions) {
    this.store = new HttpStore({ url: o.server, token: o.token, retry: { deadlineMs: o.retryDeadlineMs, stallMs: o.stallMs, onRetry: (err, n, delay) => o.onRetry?.('fetching chunks', err, n, delay) }, fetchConcurrency: 4 });
    this.api = new ApiClient(this.store, { deadlineMs: o.retryDeadlineMs, stallMs: o.stallMs, onRetry: (err, n, delay) => o.onRetry?.('a request to the server', err, n, delay) });
    this.once = new ApiClient(this.store);
  }
}
