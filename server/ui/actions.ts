/**
 * The web interface's actions (POST, admin session, CSRF token: server/ui/plugin.ts). Each
 * calls the core function its API route calls, with the same checks: changeNode (every
 * setting, as `cloner nodes set` / `cloner netboot`), addToGroup (`cloner nodes group`),
 * powerNode (the BMC from the server), rollbackImage (commitRevision, as `cloner image-rollback`), deleteImage, and
 * changeNode with create for a discovered MAC. A failed check is shown on the page with
 * its hint; the answer re-renders the part of the page that changed.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type, type Static } from 'typebox';
import { NAME_SOURCE } from '../../core/names.ts';
import { POWER_ACTIONS, type PowerAction } from '../../core/nodes/power.ts';
import { changeNode, NETBOOT_STATES } from '../../core/nodes/registry.ts';
import { MAX_NODES } from '../../core/nodes/selector.ts';
import { deleteImage } from '../../core/tree/images.ts';
import { rollbackImage } from '../../core/tree/rollback.ts';
import { groupNodes, powerNodes, setOnNodes, type Outcome } from '../../core/ui/bulk.ts';
import { ClonerError } from '../../core/errors.ts';
import { isHtmx, type UiContext } from './plugin.ts';
import { discoveredPageData, imagePageData, nodePageData, nodesTableData, NodeQuerySchema, type Outcomes } from './pages.ts';

const Csrf = { _csrf: Type.Optional(Type.String({ maxLength: 100 })) };
const Str = (max: number, pattern?: string) => Type.Optional(Type.String({ maxLength: max, ...(pattern ? { pattern } : {}) }));
const OneOf = (values: readonly string[]) => Type.Optional(Type.Union(values.map((v) => Type.Literal(v))));
const REVISION = '^([1-9][0-9]{0,8})?$';
const NameParams = Type.Object({ name: Type.String({ pattern: NAME_SOURCE }) });

const BulkBody = Type.Object(
  {
    ...Csrf,
    ...NodeQuerySchema.properties,
    nodes: Type.Optional(Type.Union([Type.String({ pattern: NAME_SOURCE }), Type.Array(Type.String({ pattern: NAME_SOURCE }), { maxItems: MAX_NODES })])),
    all: Str(2),
    do: OneOf(['image', 'netboot', 'power', 'group']),
    group: Str(64, `(${NAME_SOURCE})|^$`),
    image: Str(64, `(${NAME_SOURCE})|^$`),
    revision: Str(10, REVISION),
    netboot: OneOf(NETBOOT_STATES),
    power: OneOf(POWER_ACTIONS),
  },
  { additionalProperties: false },
);

const NodeSetBody = Type.Object(
  { ...Csrf, cloner_image: Str(64, `(${NAME_SOURCE})|^$`), cloner_revision: Str(10, REVISION), netboot: OneOf(NETBOOT_STATES), settings: Str(64 * 1024), power: OneOf(POWER_ACTIONS) },
  { additionalProperties: false },
);

const RollbackBody = Type.Object({ ...Csrf, revision: Type.String({ pattern: '^[1-9][0-9]{0,8}$' }) }, { additionalProperties: false });

const AddBody = Type.Object(
  {
    ...Csrf,
    mac: Type.String({ pattern: '^[0-9a-f]{2}(:[0-9a-f]{2}){5}$' }),
    name: Type.String({ maxLength: 64 }),
    iface: Type.String({ maxLength: 15 }),
    ip: Str(64),
    gateway: Str(64),
    hostname: Str(253),
    groups: Str(1000),
    cloner_image: Str(64, `(${NAME_SOURCE})|^$`),
  },
  { additionalProperties: false },
);

/** A ClonerError as one line of outcome; anything else is a real error. */
function outcomeOf(what: string, err: unknown): Outcome {
  if (err instanceof ClonerError) return { node: what, ok: false, message: `${err.message}${err.hint ? ` (${err.hint})` : ''}` };
  throw err;
}

export async function actionRoutes(app: FastifyInstance, ctx: UiContext): Promise<void> {
  const { store } = ctx;
  const admin = { ui: 'admin' as const };
  const html = (reply: FastifyReply, template: string, data: object) => reply.type('text/html; charset=utf-8').view(template, data);

  // Several nodes at once: the checked rows, or every row the filter shows ("all").
  app.post('/nodes/bulk', { config: admin, bodyLimit: 4 * 1024 * 1024, schema: { body: BulkBody } }, async (req, reply) => {
    const b = req.body as Static<typeof BulkBody>;
    const query = { sel: b.sel, q: b.q, state: b.state, sort: b.sort, desc: b.desc };
    let names = b.nodes === undefined ? [] : Array.isArray(b.nodes) ? b.nodes : [b.nodes];
    if (b.all === '1') names = ((await nodesTableData(ctx, query)) as { rows: Array<{ node: { name: string } }> }).rows.map((r) => r.node.name);
    let outcome: Outcomes;
    if (!names.length) outcome = [{ node: '', ok: false, message: 'no node selected: tick some rows, or "every node shown"' }];
    else if (b.do === 'image') outcome = await setOnNodes(store, names, [`cloner_image=${b.image ?? ''}`, `cloner_revision=${b.revision ?? ''}`]);
    else if (b.do === 'netboot' && b.netboot) outcome = await setOnNodes(store, names, [`netboot=${b.netboot}`]);
    else if (b.do === 'power' && b.power) outcome = await powerNodes(store, names, b.power as PowerAction);
    else if (b.do === 'group' && !b.group) outcome = [{ node: '', ok: false, message: 'name the group to add the nodes to' }];
    else if (b.do === 'group' && b.group) outcome = await groupNodes(store, names, b.group);
    else outcome = [{ node: '', ok: false, message: 'choose what to change' }];
    return html(reply, 'nodes-table.eta', { ...(await nodesTableData(ctx, query)), me: req.uiSession, outcome, checked: new Set(names) });
  });

  app.post('/nodes/:name/set', { config: admin, schema: { params: NameParams, body: NodeSetBody } }, async (req, reply) => {
    const { name } = req.params as Static<typeof NameParams>;
    const b = req.body as Static<typeof NodeSetBody>;
    let outcome: Outcomes;
    if (b.power) {
      outcome = await powerNodes(store, [name], b.power as PowerAction);
    } else {
      const settings = [
        ...(b.cloner_image !== undefined ? [`cloner_image=${b.cloner_image}`] : []),
        ...(b.cloner_revision !== undefined ? [`cloner_revision=${b.cloner_revision}`] : []),
        ...(b.netboot ? [`netboot=${b.netboot}`] : []),
        ...(b.settings ?? '').split(/\r?\n/).map((l) => l.trim()).filter(Boolean),
      ];
      try {
        await changeNode(store, name, settings, false);
        outcome = [{ node: name, ok: true, message: settings.length ? `set ${settings.join(' ')}` : 'nothing to change' }];
      } catch (err) {
        outcome = [outcomeOf(name, err)];
      }
    }
    return html(reply, 'node.eta', await nodePageData(ctx, req, name, outcome));
  });

  app.post('/images/:name/rollback', { config: admin, schema: { params: NameParams, body: RollbackBody } }, async (req, reply) => {
    const { name } = req.params as Static<typeof NameParams>;
    const n = Number((req.body as Static<typeof RollbackBody>).revision);
    let outcome: Outcomes;
    try {
      const rev = await rollbackImage(store, name, n);
      outcome = [{ node: name, ok: true, message: `revision ${rev.n} is now revision ${n}'s data, layout and options` }];
    } catch (err) {
      outcome = [outcomeOf(name, err)];
    }
    return html(reply, 'image.eta', await imagePageData(ctx, req, name, null, outcome));
  });

  app.post('/images/:name/delete', { config: admin, schema: { params: NameParams, body: Type.Object(Csrf, { additionalProperties: false }) } }, async (req, reply) => {
    const { name } = req.params as Static<typeof NameParams>;
    await deleteImage(store, name);
    req.log.info({ image: name }, 'image deleted from the web interface');
    return goTo(req, reply, '/ui/images');
  });

  app.post('/discovered/add', { config: admin, schema: { body: AddBody } }, async (req, reply) => {
    const b = req.body as Static<typeof AddBody>;
    const settings = [`${b.iface}.mac=${b.mac}`];
    if (b.ip) settings.push(`${b.iface}.ip=${b.ip}`);
    if (b.gateway) settings.push(`${b.iface}.gateway=${b.gateway}`);
    if (b.hostname) settings.push(`hostname=${b.hostname}`);
    if (b.groups) settings.push(`groups=${b.groups}`);
    if (b.cloner_image) settings.push(`cloner_image=${b.cloner_image}`);
    let outcome: Outcomes;
    try {
      await changeNode(store, b.name, settings, true);
      outcome = [{ node: b.name, ok: true, message: `node ${b.name} added with ${settings.join(' ')}` }];
    } catch (err) {
      outcome = [outcomeOf(b.name || b.mac, err)];
    }
    return html(reply, 'discovered.eta', await discoveredPageData(ctx, req, outcome));
  });
}

/** After an action that leaves the page: htmx follows HX-Location, a plain form a 303. */
function goTo(req: FastifyRequest, reply: FastifyReply, url: string): FastifyReply {
  if (isHtmx(req)) return reply.header('hx-location', url).code(204).send();
  return reply.redirect(url, 303);
}
