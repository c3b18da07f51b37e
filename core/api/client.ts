/**
 * The typed client of the cloner protocol, used by the CLI (cli/backend.ts) and the agent
 * (agent/client.ts): `call(API.getImage, { params: { name } })` sends the route of the
 * table in core/api/routes.ts and returns its answer typed by the route's schema. Nothing
 * outside core/api spells a path. Requests go through a Transport (HttpStore's `request`:
 * base URL, bearer token, errors as ClonerErrors carrying the server's code, status and
 * hint); with `retry`, failures that may pass (unreachable, 5xx, cut connection) are tried
 * again with backoff until the deadline (core/store/http.ts withRetry).
 */
import type { HttpStoreOptions } from '../store/http.ts';
import { ServerError, withRetry } from '../store/http.ts';
import { routePath } from './endpoints.ts';
import type { RouteDef, RouteInput, RouteOutput } from './routes.ts';

export interface Transport {
  /** One request; a non-2xx answer throws (ServerError with the server's code and status). */
  request(route: string, init?: RequestInit): Promise<Response>;
  /** A JSON request and its parsed answer (HttpStore: over node:http, cheaper to load than fetch); errors as request's. */
  requestJson?<T>(route: string, method?: string, body?: unknown): Promise<T>;
}

/** Arguments of a call: optional when the route takes none. */
type Args<D extends RouteDef> = object extends RouteInput<D> ? [input?: RouteInput<D>] : [input: RouteInput<D>];

export class ApiClient {
  readonly transport: Transport;
  private readonly retry: HttpStoreOptions['retry'];

  constructor(transport: Transport, retry?: HttpStoreOptions['retry']) {
    this.transport = transport;
    this.retry = retry;
  }

  private send<D extends RouteDef>(d: D, input: RouteInput<D> | undefined, init: RequestInit = {}): Promise<Response> {
    const i = (input ?? {}) as { params?: Record<string, string>; query?: Record<string, string>; body?: unknown };
    const path = routePath(d, i.params, i.query);
    if (!d.raw && i.body !== undefined) {
      init = { ...init, body: JSON.stringify(i.body), headers: { 'content-type': 'application/json', ...(init.headers as Record<string, string> | undefined) } };
    }
    return withRetry(this.retry, () => this.transport.request(path, { method: d.method, ...init }));
  }

  /** A JSON route: its answer, typed by the route's response schema. */
  async call<D extends RouteDef>(d: D, ...[input]: Args<D>): Promise<RouteOutput<D>> {
    const t = this.transport;
    if (t.requestJson && !d.raw) {
      const i = (input ?? {}) as { params?: Record<string, string>; query?: Record<string, string>; body?: unknown };
      const path = routePath(d, i.params, i.query);
      return withRetry(this.retry, () => t.requestJson!<RouteOutput<D>>(path, d.method, i.body));
    }
    return (await (await this.send(d, input)).json()) as RouteOutput<D>;
  }

  /** Like call, but a 404 answer is null. */
  async callOrNull<D extends RouteDef>(d: D, ...[input]: Args<D>): Promise<RouteOutput<D> | null> {
    return this.call(d, ...([input] as Args<D>)).catch((err) => (err instanceof ServerError && err.status === 404 ? null : Promise.reject(err)));
  }

  /** A route that answers bytes, with the answer's headers (e.g. an attachment's version). */
  async bytes<D extends RouteDef>(d: D, ...[input]: Args<D>): Promise<{ body: Buffer; headers: Headers }> {
    return withRetry(this.retry, async () => {
      const response = await this.send(d, input);
      return { body: Buffer.from(await response.arrayBuffer()), headers: response.headers };
    });
  }

  /** Like bytes, but a 404 answer is null. */
  async bytesOrNull<D extends RouteDef>(d: D, ...[input]: Args<D>): Promise<Buffer | null> {
    return this.bytes(d, ...([input] as Args<D>)).then(
      (r) => r.body,
      (err) => (err instanceof ServerError && err.status === 404 ? null : Promise.reject(err)),
    );
  }

  /** A route that takes bytes (application/octet-stream) and answers JSON. */
  async upload<D extends RouteDef>(d: D, input: RouteInput<D>, body: Uint8Array): Promise<RouteOutput<D>> {
    const response = await this.send(d, input, { body: new Uint8Array(body), headers: { 'content-type': 'application/octet-stream' } });
    return (await response.json()) as RouteOutput<D>;
  }
}
