/**
 * The web interface's pages (GET, any session): overview, images, one image, the diff of
 * two revisions (core/tree/diff.ts, as `cloner image-diff`), nodes (a
 * fragment of the table for htmx filters), one node, deploys, discovered MACs. Each reads
 * the same core functions its JSON twin in /v1 does; what a page adds is layout (the
 * views in core/ui/). Query strings are checked by schemas like the API's.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type, type Static } from 'typebox';
import { NAME_SOURCE } from '../../core/names.ts';
import { loadLayout } from '../../core/layout/store.ts';
import { assignmentOf, getNode, listNodes, NodeNotFoundError, publicView } from '../../core/nodes/registry.ts';
import { HISTORY_LIMIT, nodeHistory } from '../../core/nodes/history.ts';
import { POWER_ACTIONS } from '../../core/nodes/power.ts';
import { ImageNotFoundError } from '../../core/store/errors.ts';
import { getJsonObject } from '../../core/store/objects.ts';
import { getAttachment, listAttachments } from '../../core/tree/attachments.ts';
import { revisionDiff } from '../../core/tree/diff.ts';
import { getImage, imageUsage, type ImageStore } from '../../core/tree/images.ts';
import { layoutView } from '../../core/ui/layout-view.ts';
import { deployView, imageSummaries, waitingMacs, NODE_SORT_KEYS, NODE_STATES, nodeTable, overview, storeUsage } from '../../core/ui/views.ts';
import { SelectorError } from '../../core/nodes/selector.ts';
import type { UiContext } from './plugin.ts';

/** What the pages use of the store: refs, objects, and the chunk index for usage figures. */
export type UiStore = ImageStore & Parameters<typeof imageUsage>[0];

/** Rows drawn at most in one nodes table; past that the page asks for a narrower filter. */
export const MAX_TABLE_ROWS = 5000;
/** Bytes of a pre- or post-script shown on the image page. */
const SCRIPT_SHOWN = 64 * 1024;

const Text = (max: number) => Type.Optional(Type.String({ maxLength: max }));
export const NodeQuerySchema = Type.Object(
  {
    sel: Text(1000),
    q: Text(200),
    state: Type.Optional(Type.Union([Type.Literal(''), ...NODE_STATES.map((s) => Type.Literal(s))])),
    sort: Type.Optional(Type.Union([Type.Literal(''), ...NODE_SORT_KEYS.map((s) => Type.Literal(s))])),
    desc: Type.Optional(Type.Union([Type.Literal(''), Type.Literal('1')])),
  },
  { additionalProperties: false },
);
export type NodeQueryInput = Static<typeof NodeQuerySchema>;
const NameParams = Type.Object({ name: Type.String({ pattern: NAME_SOURCE }) });
const RevNumber = Type.Optional(Type.String({ pattern: '^[1-9][0-9]{0,8}$' }));
const DiffQuery = Type.Object({ from: RevNumber, to: RevNumber }, { additionalProperties: false });
/** Paths a diff page lists (the totals count all; the CLI lists more). */
const DIFF_SHOWN = 2000;
const RevQuery = Type.Object({ rev: Type.Optional(Type.String({ pattern: '^[1-9][0-9]{0,8}$' })) }, { additionalProperties: false });

/** Page data every template gets: the title, the session (its role and CSRF token) and the active tab. */
export function pageData(req: FastifyRequest, title: string, tab: string, data: object): object {
  return { title, tab, me: req.uiSession, ...data };
}

/** The nodes table for a query; a bad selector is shown above an empty table, not as an error page. */
export async function nodesTableData(ctx: UiContext, query: NodeQueryInput): Promise<object> {
  const nodes = await listNodes(ctx.store);
  let rows: ReturnType<typeof nodeTable> = [];
  let problem: string | null = null;
  try {
    rows = nodeTable(nodes, ctx.live.snapshot(), { sel: query.sel, q: query.q, state: query.state || undefined, sort: query.sort || undefined, desc: query.desc === '1' });
  } catch (err) {
    if (!(err instanceof SelectorError)) throw err;
    problem = `${err.message} (${err.hint})`;
  }
  const images = (await imageSummaries(ctx.store)).map((i) => i.name);
  return { rows: rows.slice(0, MAX_TABLE_ROWS), shown: Math.min(rows.length, MAX_TABLE_ROWS), matched: rows.length, total: nodes.length, problem, query, images, groups: [...new Set(nodes.flatMap((n) => n.groups))].sort(), states: NODE_STATES, sorts: NODE_SORT_KEYS, powerActions: POWER_ACTIONS };
}

export async function pageRoutes(app: FastifyInstance, ctx: UiContext): Promise<void> {
  const { store, live } = ctx;
  const view = (reply: FastifyReply, template: string, data: object) => reply.type('text/html; charset=utf-8').view(template, data);

  app.get('/', async (req, reply) => view(reply, 'overview.eta', pageData(req, 'Overview', 'overview', { o: await overview(store, live.snapshot(), ctx.discovered.list()) })));
  app.get('/usage', async (_req, reply) => view(reply, 'store-usage.eta', { u: await storeUsage(store) }));

  app.get('/images', async (req, reply) => view(reply, 'images.eta', pageData(req, 'Images', 'images', { images: await imageSummaries(store), usage: null })));
  // The stored bytes each image alone uses: walks every tree, so the list loads it afterwards.
  app.get('/images/rows', async (_req, reply) => {
    const usage = new Map((await imageUsage(store)).map((u) => [u.name, u]));
    return view(reply, 'image-rows.eta', { images: await imageSummaries(store), usage });
  });
  app.get('/images/:name', { schema: { params: NameParams, querystring: RevQuery } }, async (req, reply) => {
    const wanted = (req.query as Static<typeof RevQuery>).rev;
    return view(reply, 'image.eta', await imagePageData(ctx, req, (req.params as Static<typeof NameParams>).name, wanted ? Number(wanted) : null, null));
  });

  app.get('/images/:name/diff', { schema: { params: NameParams, querystring: DiffQuery } }, async (req, reply) => {
    const { name } = req.params as Static<typeof NameParams>;
    const q = req.query as Static<typeof DiffQuery>;
    const image = await getImage(store, name);
    if (!image) throw new ImageNotFoundError(`no image named ${name}`, 'see the list of images');
    const to = q.to ? Number(q.to) : (image.revisions.at(-1)?.n ?? 1);
    const from = q.from ? Number(q.from) : (image.revisions.filter((r) => r.n < to).at(-1)?.n ?? to);
    const diff = await revisionDiff(store, image, from, to, DIFF_SHOWN);
    return view(reply, 'image-diff.eta', pageData(req, `Image ${name}: revision ${from} to ${to}`, 'images', { image, diff }));
  });

  app.get('/nodes', { schema: { querystring: NodeQuerySchema } }, async (req, reply) => {
    const data = await nodesTableData(ctx, req.query as NodeQueryInput);
    reply.header('vary', 'HX-Request, HX-Target');
    if (req.headers['hx-target'] === 'nodes-table') return view(reply, 'nodes-table.eta', { ...data, me: req.uiSession });
    return view(reply, 'nodes.eta', pageData(req, 'Nodes', 'nodes', data));
  });
  app.get('/nodes/:name', { schema: { params: NameParams } }, async (req, reply) => view(reply, 'node.eta', await nodePageData(ctx, req, (req.params as Static<typeof NameParams>).name, null)));

  app.get('/deploys', { schema: { querystring: NodeQuerySchema } }, async (req, reply) => {
    const data = await deploysData(ctx, req.query as NodeQueryInput);
    return view(reply, 'deploys.eta', pageData(req, 'Deploys', 'deploys', data));
  });

  app.get('/discovered', async (req, reply) => view(reply, 'discovered.eta', await discoveredPageData(ctx, req, null)));
}

/** What an action tells the user: one line per node, or one line. */
export type Outcomes = Array<{ node: string; ok: boolean; message: string }> | null;

export async function imagePageData(ctx: UiContext, req: FastifyRequest, name: string, wanted: number | null, outcome: Outcomes): Promise<object> {
  const { store } = ctx;
  const image = await getImage(store, name);
  if (!image) throw new ImageNotFoundError(`no image named ${name}`, 'see the list of images');
  const rev = (wanted ? image.revisions.find((r) => r.n === wanted) : undefined) ?? image.revisions.at(-1);
  const stored = rev?.layout ? await loadLayout(store, rev.layout).catch(() => null) : null;
  const options = rev?.options ? await getJsonObject(store, rev.options) : null;
  const attachments = await listAttachments(store, name);
  const scripts = [];
  for (const a of attachments.filter((x) => x.kind === 'script')) {
    const { body } = await getAttachment(store, name, 'script', a.item);
    scripts.push({ ...a, size: body.length, text: body.subarray(0, SCRIPT_SHOWN).toString('utf8'), cut: body.length > SCRIPT_SHOWN });
  }
  return pageData(req, `Image ${name}`, 'images', {
    image, rev, layoutName: rev?.layout ?? null, layout: stored ? layoutView(stored.layout) : null, layoutVersion: stored?.version ?? null,
    options, scripts, bios: attachments.filter((a) => a.kind === 'bios'), outcome,
  });
}

export async function nodePageData(ctx: UiContext, req: FastifyRequest, name: string, outcome: Outcomes): Promise<object> {
  const { store, live } = ctx;
  const node = await getNode(store, name);
  if (!node) throw new NodeNotFoundError(`no node named ${name}`, 'see the list of nodes');
  const deploy = deployView({ node: name, netboot: node.netboot, image: node.cloner_image ?? null, status: live.snapshot().get(name) ?? null, lastDeploy: node.lastDeploy ?? null });
  return pageData(req, `Node ${name}`, 'nodes', {
    node: publicView(node), assignment: await assignmentOf(store, node), deploy, history: await nodeHistory(store, name), historyLimit: HISTORY_LIMIT, images: (await imageSummaries(store)).map((i) => i.name), powerActions: POWER_ACTIONS, outcome,
  });
}

export async function discoveredPageData(ctx: UiContext, req: FastifyRequest, outcome: Outcomes): Promise<object> {
  const images = (await imageSummaries(ctx.store)).map((i) => i.name);
  return pageData(req, 'Discovered MACs', 'discovered', { discovered: waitingMacs(ctx.discovered.list(), await listNodes(ctx.store)), images, outcome });
}

/** Every node's deploy (narrowed by a selector), with counts by state over all nodes. */
export async function deploysData(ctx: UiContext, query: NodeQueryInput): Promise<object> {
  const table = (await nodesTableData(ctx, { sel: query.sel, q: query.q })) as { rows: ReturnType<typeof nodeTable>; problem: string | null };
  const views = table.rows.map((r) => deployView({ node: r.node.name, netboot: r.node.netboot, image: r.node.cloner_image ?? null, status: r.live, lastDeploy: r.node.lastDeploy ?? null }));
  return { views, counts: await deployCounts(ctx), problem: table.problem, query, multicast: ctx.multicast.status() };
}

/** How many nodes are deploying, done, failed and idle. */
export async function deployCounts(ctx: UiContext): Promise<Record<'running' | 'done' | 'failed' | 'idle', number>> {
  const counts = { running: 0, done: 0, failed: 0, idle: 0 };
  const live = ctx.live.snapshot();
  for (const n of await listNodes(ctx.store)) counts[deployView({ node: n.name, netboot: n.netboot, image: n.cloner_image ?? null, status: live.get(n.name) ?? null, lastDeploy: n.lastDeploy ?? null }).state]++;
  return counts;
}
