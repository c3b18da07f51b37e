/**
 * Node registry routes (a fastify plugin; table in core/api/routes.ts): the server applies
 * and checks every setting itself (core/nodes/registry.ts), and never sends a BMC
 * password back.
 *   GET    /v1/nodes                  -> [NodeRecord]                      (read)
 *   GET    /v1/nodes/:name            -> NodeRecord                        (read)
 *   POST   /v1/nodes/:name            {settings: ["k=v"...], create} -> NodeRecord (write)
 *   DELETE /v1/nodes/:name                  (write; its deploy token and SSH host keys go too)
 *   POST   /v1/nodes/:name/power      {action: on|off|reset|status} -> {node, action, state} (write; the BMC through the server)
 *   GET    /v1/nodes/:name/history    -> [HistoryEntry], newest first      (read)
 *   POST   /v1/nodes/:name/group      {group, remove?} -> NodeRecord       (write; one group added or taken away)
 *   GET    /v1/identify?mac=M | ?node=N -> {node, image, revision, layout, netboot} (read)
 */
import type { FastifyInstance } from 'fastify';
import { API } from '../core/api/routes.ts';
import { addToGroup, removeFromGroup } from '../core/nodes/groups.ts';
import { nodeHistory } from '../core/nodes/history.ts';
import { powerNode } from '../core/nodes/power.ts';
import { changeNode, getNode, identifyMac, identifyNode, listNodes, NodeNotFoundError, publicView, removeNode } from '../core/nodes/registry.ts';
import type { RefStore } from '../core/store/interfaces.ts';
import { serve } from './route.ts';

export async function nodeRoutes(app: FastifyInstance, opts: { store: RefStore }): Promise<void> {
  const { store } = opts;
  serve(app, API.listNodes, async () => (await listNodes(store)).map(publicView));
  serve(app, API.getNode, async (req) => {
    const node = await getNode(store, req.params.name);
    if (!node) throw new NodeNotFoundError(`no node named ${req.params.name}`, 'add it with: cloner nodes add NAME');
    return publicView(node);
  });
  serve(app, API.changeNode, async (req) => publicView(await changeNode(store, req.params.name, req.body.settings, !!req.body.create)));
  serve(app, API.deleteNode, async (req) => {
    await removeNode(store, req.params.name);
    return { deleted: req.params.name };
  });
  serve(app, API.power, async (req) => powerNode(store, req.params.name, req.body.action));
  serve(app, API.nodeHistory, async (req) => {
    if (!(await getNode(store, req.params.name))) throw new NodeNotFoundError(`no node named ${req.params.name}`, 'list nodes with: cloner nodes list');
    return nodeHistory(store, req.params.name);
  });
  serve(app, API.nodeGroup, async (req) => (req.body.remove ? removeFromGroup : addToGroup)(store, req.params.name, req.body.group));
  serve(app, API.identify, async (req) => ('mac' in req.query ? identifyMac(store, req.query.mac) : identifyNode(store, req.query.node)));
}
