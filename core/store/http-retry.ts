/**
 * The HTTP store's errors (ServerError, ServerUnreachableError) and retry rules: which
 * errors may pass (the network, a 5xx or 429; never the data or the request), `withRetry`'s
 * backoff until a deadline after the first failure, and `watchStall`, which aborts a
 * response body that stops sending. http.ts re-exports them.
 */
import { ClonerError } from '../errors.ts';
import type { HttpStoreOptions } from './http.ts';

export class ServerError extends ClonerError {
  override readonly code: string;
  override readonly status: number;
  constructor(status: number, code: string, message: string, hint: string) {
    super(message, hint);
    this.status = status;
    this.code = code;
  }
}

export class ServerUnreachableError extends ClonerError {
  override readonly code = 'SERVER_UNREACHABLE';
}

/** Errors worth another try: the network or the server, not the data or the request. */
export function isTransient(err: unknown): boolean {
  if (err instanceof ServerUnreachableError) return true;
  if (err instanceof ServerError) return err.status >= 500 || err.status === 429;
  if (err instanceof ClonerError) return false;
  const e = err as { name?: string; code?: string; cause?: { code?: string } };
  return e?.name === 'AbortError' || e?.name === 'TimeoutError' || e?.name === 'TypeError' || /^(ECONN|EPIPE|ETIMEDOUT|ENETUNREACH|EHOSTUNREACH|UND_ERR)/.test(e?.code ?? e?.cause?.code ?? '');
}

/** Runs `attempt` until it succeeds, fails for good, or the deadline after the first failure passes. */
export async function withRetry<T>(retry: HttpStoreOptions['retry'], attempt: () => Promise<T>): Promise<T> {
  if (!retry) return attempt();
  let firstFailure = 0;
  for (let n = 1; ; n++) {
    try {
      return await attempt();
    } catch (err) {
      if (!isTransient(err)) throw err;
      firstFailure ||= Date.now();
      const delay = Math.min(250 * 2 ** (n - 1), 5000);
      if (Date.now() + delay - firstFailure > retry.deadlineMs) throw err;
      retry.onRetry?.(err as Error, n, delay);
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}

/** The body's pieces, aborting the request when none arrives for `stallMs`. */
export async function* watchStall(body: AsyncIterable<Uint8Array>, controller: AbortController, stallMs: number): AsyncIterable<Uint8Array> {
  let timer = setTimeout(() => controller.abort(new DOMException('no data from the server', 'TimeoutError')), stallMs);
  try {
    for await (const piece of body) {
      timer.refresh();
      yield piece;
    }
  } finally {
    clearTimeout(timer);
  }
}
