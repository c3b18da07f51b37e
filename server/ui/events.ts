/**
 * Live deploys pushed to open pages with server-sent events (GET /ui/deploys/events,
 * consumed by htmx's SSE extension on the deploys page). The server listens to LiveDeploys
 * (core/nodes/deploy.ts `subscribe`): each report or end of a node is rendered once as that
 * node's table row, marked hx-swap-oob so htmx replaces the row with the same id, and
 * written to every open stream; the counts above the table follow at most every
 * SUMMARY_EVERY_MS. A new stream first gets the row of every node that reported since the
 * server started, so nothing between the page's render and the stream's start is lost.
 * Multicast sessions (core/multicast/hub.ts `status`) change without a deploy report: while
 * a stream is open their section is rendered every MULTICAST_EVERY_MS and sent when its HTML
 * changed (the section shows times, not ages, so an idle session sends nothing).
 * Streams end with their session (checked at every heartbeat) and when the server closes.
 */
import type { FastifyInstance } from 'fastify';
import type { ServerResponse } from 'node:http';
import type { DeployRow } from '../../core/nodes/deploy.ts';
import { getNode, publicView, type NodeRecord } from '../../core/nodes/registry.ts';
import { deployView } from '../../core/ui/views.ts';
import { helpers } from './format.ts';
import { deployCounts } from './pages.ts';
import type { UiContext } from './plugin.ts';
import type { Session } from './sessions.ts';

/** Counts are recomputed over every node (a registry read), so at most this often. */
export const SUMMARY_EVERY_MS = 250;
/** How often the multicast section is re-rendered while a page is open (sent only when it changed). */
export const MULTICAST_EVERY_MS = 500;
/** A comment line this often keeps proxies from closing an idle stream and ends expired sessions. */
export const HEARTBEAT_MS = 15_000;

/** One SSE frame: the event name, then each line of the HTML as a data line. */
export function sseFrame(event: string, html: string): string {
  return `event: ${event}\n${html.split('\n').map((line) => `data: ${line}`).join('\n')}\n\n`;
}

export async function eventRoutes(app: FastifyInstance, ctx: UiContext): Promise<void> {
  const { store, live, eta, sessions } = ctx;
  const streams = new Set<{ raw: ServerResponse; session: Session }>();
  const rowHtml = (row: DeployRow) => eta.render('./deploy-row', { v: deployView(row), h: helpers, oob: true });
  const rowOf = (node: NodeRecord, name: string): DeployRow => ({ node: name, netboot: node.netboot, image: node.cloner_image ?? null, status: live.snapshot().get(name) ?? null, lastDeploy: node.lastDeploy ?? null });

  const broadcast = (frame: string) => {
    for (const s of streams) {
      if (sessions.expired(s.session)) {
        streams.delete(s);
        s.raw.end();
      } else s.raw.write(frame);
    }
  };

  let summaryTimer: NodeJS.Timeout | undefined;
  const scheduleSummary = () => {
    summaryTimer ??= setTimeout(() => {
      summaryTimer = undefined;
      deployCounts(ctx)
        .then((counts) => broadcast(sseFrame('row', eta.render('./deploy-summary', { counts, h: helpers, oob: true }))))
        .catch((err) => app.log.warn({ err }, 'deploy summary for the web interface failed'));
    }, SUMMARY_EVERY_MS);
  };

  const unsubscribe = live.subscribe((name, _status, node) => {
    if (!streams.size) return;
    (async () => {
      const record = node ?? (await getNode(store, name));
      if (!record) return;
      broadcast(sseFrame('row', rowHtml(rowOf(publicView(record), name))));
      scheduleSummary();
    })().catch((err) => app.log.warn({ err, node: name }, 'deploy event for the web interface failed'));
  });

  const multicastHtml = () => eta.render('./multicast', { m: ctx.multicast.status(), h: helpers, oob: true });
  let lastMulticast = '';
  const multicastTimer = setInterval(() => {
    if (!streams.size) return;
    const html = multicastHtml();
    if (html === lastMulticast) return;
    lastMulticast = html;
    broadcast(sseFrame('row', html));
  }, MULTICAST_EVERY_MS);
  multicastTimer.unref();

  const heartbeat = setInterval(() => broadcast(': heartbeat\n\n'), HEARTBEAT_MS);
  heartbeat.unref();
  // Open streams would keep close() waiting for ever: end them first.
  app.addHook('preClose', async () => {
    unsubscribe();
    clearInterval(heartbeat);
    clearInterval(multicastTimer);
    clearTimeout(summaryTimer);
    for (const s of streams) s.raw.end();
    streams.clear();
  });

  app.get('/deploys/events', async (req, reply) => {
    const session = req.uiSession!;
    reply.hijack();
    const raw = reply.raw;
    raw.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', 'x-accel-buffering': 'no', 'x-content-type-options': 'nosniff' });
    raw.write('retry: 2000\n\n');
    const entry = { raw, session };
    streams.add(entry);
    req.raw.on('close', () => streams.delete(entry));
    for (const row of await live.rows(store)) if (row.status && streams.has(entry)) raw.write(sseFrame('row', rowHtml(row)));
    if (streams.has(entry)) raw.write(sseFrame('row', multicastHtml()));
  });
}
