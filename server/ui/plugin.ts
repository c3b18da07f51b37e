/**
 * The web interface under /ui/ (a fastify plugin, encapsulated: its cookie, form-body
 * parser, templates and hooks touch no API route). Pages are rendered on the server by
 * Eta templates (server/ui/views, through @fastify/view; `<%= %>` escapes) and enhanced
 * with htmx (served from node_modules, never a CDN) for partial updates and its SSE
 * extension for live deploys (server/ui/events.ts).
 *
 * Auth (server/ui/sessions.ts): POST /ui/login takes the admin or read token from a form
 * and sets an HttpOnly, SameSite=Strict session cookie (Secure under TLS); the token never
 * appears in a URL, a page or a log. Every other /ui/ route needs a live session. A
 * request that changes anything (every POST) must come from this origin (Origin, else
 * Sec-Fetch-Site) and carry the session's CSRF token; actions also need an admin session
 * (a read session sees no buttons and is refused with 403). The bearer-token hook of the
 * API (server/app.ts) lets these routes through as 'public': this plugin checks them.
 * Actions call the same core functions as the API routes (server/ui/actions.ts).
 */
import type { DiscoveredMacs } from '../../core/nodes/discovered.ts';
import fastifyCookie from '@fastify/cookie';
import fastifyFormbody from '@fastify/formbody';
import fastifyView from '@fastify/view';
import { Eta } from 'eta';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { Type } from 'typebox';
import { ClonerError } from '../../core/errors.ts';
import type { LiveDeploys } from '../../core/nodes/deploy.ts';
import type { MulticastHub } from '../../core/multicast/hub.ts';
import type { TokenAuth } from '../auth.ts';
import { actionRoutes } from './actions.ts';
import { eventRoutes } from './events.ts';
import { helpers } from './format.ts';
import { pageRoutes, type UiStore } from './pages.ts';
import { sameSecret, Sessions, type Session, type SessionLimits } from './sessions.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Who may use a /ui/ route: anyone (login, assets), a session, or an admin session. */
    ui?: 'anon' | 'session' | 'admin';
  }
  interface FastifyRequest {
    uiSession: Session | null;
  }
}

export interface UiOptions {
  store: UiStore;
  auth: TokenAuth;
  live: LiveDeploys;
  /** The unknown MACs /boot.ipxe saw (kept in memory by the netboot routes). */
  discovered: DiscoveredMacs;
  /** Multicast sessions and waiting nodes (the deploys page shows them). */
  multicast: Pick<MulticastHub, 'status'>;
  /** Mark the cookie Secure (the server speaks HTTPS). */
  secure: boolean;
  sessions?: SessionLimits;
}

export const COOKIE = 'cloner_ui';
const VIEWS = path.join(import.meta.dirname, 'views');
const require = createRequire(import.meta.url);

/** The four files the pages load, read once: no request path ever reaches the file system. */
function loadAssets(): Map<string, { body: Buffer; type: string; etag: string }> {
  const files: Array<[string, string, string]> = [
    ['htmx.min.js', require.resolve('htmx.org/dist/htmx.min.js'), 'text/javascript'],
    ['sse.min.js', require.resolve('htmx-ext-sse/dist/sse.min.js'), 'text/javascript'],
    ['ui.css', path.join(import.meta.dirname, 'static', 'ui.css'), 'text/css'],
    ['ui.js', path.join(import.meta.dirname, 'static', 'ui.js'), 'text/javascript'],
  ];
  return new Map(files.map(([name, file, type]) => {
    const body = readFileSync(file);
    return [name, { body, type: `${type}; charset=utf-8`, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"` }];
  }));
}

/** The page's own origin, as a browser writes it in Origin. */
const ownOrigin = (req: FastifyRequest) => `${req.protocol}://${req.host}`;

function crossSite(req: FastifyRequest): boolean {
  const origin = req.headers.origin;
  if (origin !== undefined) return origin !== ownOrigin(req);
  const site = req.headers['sec-fetch-site'];
  return site !== undefined && site !== 'same-origin' && site !== 'none';
}

export const isHtmx = (req: FastifyRequest) => req.headers['hx-request'] === 'true';

export async function uiRoutes(app: FastifyInstance, opts: UiOptions): Promise<void> {
  const sessions = new Sessions(opts.sessions);
  const eta = new Eta({ views: VIEWS, cache: true, autoEscape: true });
  const assets = loadAssets();

  // Every route here bypasses the API's bearer-token hook and is checked below instead.
  app.addHook('onRoute', (route) => {
    route.config = { ...route.config, access: 'public', ui: route.config?.ui ?? 'session' };
  });
  await app.register(fastifyCookie);
  await app.register(fastifyFormbody, { bodyLimit: 256 * 1024 });
  await app.register(fastifyView, { engine: { eta }, root: VIEWS, production: true, defaultContext: { h: helpers } });
  app.decorateRequest('uiSession', null);

  app.addHook('onRequest', async (req, reply) => {
    reply.header('content-security-policy', "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'");
    reply.header('x-frame-options', 'DENY').header('referrer-policy', 'same-origin').header('x-content-type-options', 'nosniff');
    const changing = req.method !== 'GET' && req.method !== 'HEAD';
    if (changing && crossSite(req)) return refuse(req, reply, 403, 'a cross-site request may not change anything');
    const need = req.routeOptions.config?.ui ?? 'session';
    if (need === 'anon') return;
    reply.header('cache-control', 'no-store');
    req.uiSession = sessions.get(req.cookies[COOKIE]);
    if (!req.uiSession) {
      if (!changing && !isHtmx(req)) return reply.redirect('/ui/login', 303);
      if (isHtmx(req)) reply.header('hx-redirect', '/ui/login');
      return refuse(req, reply, 401, 'not logged in (or the session expired)');
    }
    if (changing && need === 'admin' && req.uiSession.role !== 'admin') return refuse(req, reply, 403, 'this session may only read: log in with the admin token to change anything');
  });
  // After the body is parsed: every state-changing request carries the session's CSRF token.
  app.addHook('preHandler', async (req, reply) => {
    if (req.method === 'GET' || req.method === 'HEAD' || !req.uiSession) return;
    const given = req.headers['x-csrf-token'] ?? (req.body as { _csrf?: unknown } | undefined)?._csrf;
    if (!sameSecret(typeof given === 'string' ? given : undefined, req.uiSession.csrf)) return refuse(req, reply, 403, 'missing or wrong CSRF token: reload the page and try again');
  });

  app.setErrorHandler((err: Error & { validation?: unknown; statusCode?: number }, req, reply) => {
    if (err instanceof ClonerError) return refuse(req, reply, err.status, err.message, err.hint);
    if (err.validation) return refuse(req, reply, 400, err.message, 'check the form');
    if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) return refuse(req, reply, err.statusCode, err.message);
    req.log.error(err);
    return refuse(req, reply, 500, 'internal server error', 'see the server log');
  });
  app.setNotFoundHandler((req, reply) => refuse(req, reply, 404, `no page ${req.url.slice(0, 200)}`));

  app.get('/static/:file', { config: { ui: 'anon' }, schema: { params: Type.Object({ file: Type.String({ maxLength: 40 }) }) } }, async (req, reply) => {
    const asset = assets.get((req.params as { file: string }).file);
    if (!asset) return refuse(req, reply, 404, 'no such file');
    reply.header('etag', asset.etag).header('cache-control', 'public, max-age=3600').type(asset.type);
    if (req.headers['if-none-match'] === asset.etag) return reply.code(304).send();
    return reply.send(asset.body);
  });

  app.get('/login', { config: { ui: 'anon' } }, async (req, reply) => {
    reply.header('cache-control', 'no-store');
    return reply.view('login.eta', { title: 'Log in', me: null, error: null });
  });
  const LoginBody = Type.Object({ token: Type.String({ maxLength: 512 }) }, { additionalProperties: false });
  app.post('/login', { config: { ui: 'anon' }, schema: { body: LoginBody } }, async (req, reply) => {
    const role = opts.auth.roleOf((req.body as { token: string }).token.trim());
    if (!role) {
      reply.code(401).header('cache-control', 'no-store');
      return reply.view('login.eta', { title: 'Log in', me: null, error: 'That token is not valid for this server: use admin.token, or read.token for a read-only view.' });
    }
    const session = sessions.create(role);
    reply.setCookie(COOKIE, session.id, { path: '/ui', httpOnly: true, sameSite: 'strict', secure: opts.secure, maxAge: Math.floor(sessions.maxAgeMs / 1000) });
    req.log.info({ role }, 'web interface login');
    return reply.redirect('/ui/', 303);
  });
  app.post('/logout', { config: { ui: 'session' }, schema: { body: Type.Optional(Type.Object({ _csrf: Type.String({ maxLength: 100 }) }, { additionalProperties: false })) } }, async (req, reply) => {
    sessions.end(req.uiSession!.id);
    reply.clearCookie(COOKIE, { path: '/ui', httpOnly: true, sameSite: 'strict', secure: opts.secure });
    if (isHtmx(req)) return reply.header('hx-redirect', '/ui/login').code(204).send();
    return reply.redirect('/ui/login', 303);
  });

  const ctx = { store: opts.store, live: opts.live, discovered: opts.discovered, multicast: opts.multicast, sessions, eta };
  await pageRoutes(app, ctx);
  await actionRoutes(app, ctx);
  await eventRoutes(app, ctx);
}

export type UiContext = { store: UiStore; live: LiveDeploys; discovered: DiscoveredMacs; multicast: Pick<MulticastHub, 'status'>; sessions: Sessions; eta: Eta };

/** An error answer: a fragment for htmx (swapped into the page), else a small page. */
export function refuse(req: FastifyRequest, reply: FastifyReply, status: number, message: string, hint = ''): FastifyReply {
  reply.code(status).header('cache-control', 'no-store');
  // htmx swaps the message into the page's #flash box, whatever the form targeted.
  if (isHtmx(req)) return reply.header('hx-retarget', '#flash').header('hx-reswap', 'innerHTML').header('hx-reselect', '.error').view('error.eta', { message, hint, status });
  if (req.method !== 'GET') return reply.type('text/plain; charset=utf-8').send(`${status}: ${message}${hint ? `\n${hint}` : ''}\n`);
  return reply.view('error-page.eta', { title: `Error ${status}`, me: req.uiSession, message, hint, status });
}
