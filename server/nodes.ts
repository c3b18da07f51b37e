/**
 * Node registry routes (a fastify plugin): the server applies and checks every setting
 * itself (core/nodes/registry.ts), and never sends a BMC password back.
 *   GET    /v1/nodes                  -> [NodeRecord]                      (read)
 *   GET    /v1/nodes/:name            -> NodeRecord                        (read)
 *   POST   /v1/nodes/:name            {settings: ["k=v"...], create} -> NodeRecord (write)
 *   DELETE /v1/nodes/:name                  (write; its deploy token and SSH host keys go too)
 *   POST   /v1/nodes/:name/power      {action: on|off|reset|status} -> {node, action, state} (write; ipmitool on the server)
 *   GET    /v1/identify?mac=M | ?node=N -> {node, image, revision, layout, netboot} (read)
 */
import type { FastifyInstance } from 'fastify';
import type { LocalStore } from '../core/store/local.ts';
import { dropDeployToken } from './netboot.ts';
import { power, POWER_ACTIONS, type PowerAction } from '../core/nodes/power.ts';
import { changeNode, getNode, identifyMac, identifyNode, listNodes, NodeNotFoundError, publicView, removeNode } from '../core/nodes/registry.ts';

const nameParams = { type: 'object', required: ['name'], properties: { name: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$' } } } as const;

export async function nodeRoutes(app: FastifyInstance, opts: { store: LocalStore }): Promise<void> {
  const { store } = opts;
  app.get('/v1/nodes', { config: { access: 'read' } }, async () => (await listNodes(store)).map(publicView));

  app.get<{ Params: { name: string } }>('/v1/nodes/:name', { config: { access: 'read' }, schema: { params: nameParams } }, async (req) => {
    const node = await getNode(store, req.params.name);
    if (!node) throw new NodeNotFoundError(`no node named ${req.params.name}`, 'add it with: cloner nodes add NAME');
    return publicView(node);
  });

  app.post<{ Params: { name: string }; Body: { settings: string[]; create?: boolean } }>(
    '/v1/nodes/:name',
    {
      config: { access: 'write' },
      schema: {
        params: nameParams,
        body: { type: 'object', required: ['settings'], additionalProperties: false, properties: { settings: { type: 'array', maxItems: 256, items: { type: 'string', maxLength: 1024 } }, create: { type: 'boolean' } } },
      },
    },
    async (req) => publicView(await changeNode(store, req.params.name, req.body.settings, !!req.body.create)),
  );

  app.delete<{ Params: { name: string } }>('/v1/nodes/:name', { config: { access: 'write' }, schema: { params: nameParams } }, async (req) => {
    await removeNode(store, req.params.name);
    // A removed node's deploy token and SSH host keys go with it.
    await dropDeployToken(store, req.params.name);
    await store.casRef(`hostkeys/${req.params.name}`, await store.getRef(`hostkeys/${req.params.name}`), undefined);
    return { deleted: req.params.name };
  });

  app.post<{ Params: { name: string }; Body: { action: PowerAction } }>(
    '/v1/nodes/:name/power',
    { config: { access: 'write' }, schema: { params: nameParams, body: { type: 'object', required: ['action'], additionalProperties: false, properties: { action: { enum: [...POWER_ACTIONS] } } } } },
    async (req) => {
      const node = await getNode(store, req.params.name);
      if (!node) throw new NodeNotFoundError(`no node named ${req.params.name}`, 'list nodes with: cloner nodes list');
      return power(node, req.body.action);
    },
  );

  app.get<{ Querystring: { mac?: string; node?: string } }>(
    '/v1/identify',
    {
      config: { access: 'read' },
      schema: {
        querystring: {
          type: 'object',
          additionalProperties: false,
          minProperties: 1,
          maxProperties: 1,
          properties: { mac: { type: 'string', pattern: '^[0-9A-Fa-f]{2}([:-][0-9A-Fa-f]{2}){5}$' }, node: nameParams.properties.name },
        },
      },
    },
    async (req) => (req.query.mac ? identifyMac(store, req.query.mac) : identifyNode(store, req.query.node!)),
  );
}
