/**
 * Deploy routes (a fastify plugin): what the agent on a node being imaged asks and tells.
 * Access 'node' is the admin token or the deploy token that node booted with.
 *   GET  /v1/nodes/:name/deploy          -> {node, image, revision, layout, chunker}   the plan (node)
 *   POST /v1/nodes/:name/deploy/status   DeployStatus -> {ok}                          a phase report (node)
 *   POST /v1/nodes/:name/deploy/result   DeployResult -> NodeRecord                    the end (node)
 *   GET  /v1/deploys                     -> [{node, netboot, status, lastDeploy}]      every node (read)
 *   GET  /v1/nodes/:name/hostkeys        -> {files: {name: base64}} | 404              (node)
 *   PUT  /v1/nodes/:name/hostkeys        {files} -> {stored}; 409 if the node has keys (node)
 * Live status is kept in memory (a restarted server shows the last result only). A result
 * is written into the node record with compare-and-set; a success also sets netboot to
 * `local` in the same write and ends the deploy token, a failure leaves netboot alone so
 * the node tries again at its next boot. SSH host keys are kept per node (ref
 * hostkeys/<node>), never shown in node views, so a re-imaged node keeps its identity.
 */
import type { FastifyInstance } from 'fastify';
import { ImageNotFoundError } from '../core/store/errors.ts';
import type { LocalStore } from '../core/store/local.ts';
import { getImage } from '../core/tree/images.ts';
import { loadLayout } from '../core/layout/store.ts';
import { deployResultSchema, deployStatusSchema, type DeployResult, type DeployStatus } from '../core/nodes/deploy-state.ts';
import { getNode, listNodes, NodeError, NodeNotFoundError, publicView, updateNode } from '../core/nodes/registry.ts';
import { dropDeployToken } from './netboot.ts';

const nameParams = { type: 'object', required: ['name'], properties: { name: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$' } } } as const;
const HOSTKEY_NAME = '^ssh_host_[a-z0-9]{1,16}_key(\\.pub)?$';

export class HostKeysExistError extends NodeError {
  override readonly code = 'HOSTKEYS_EXIST';
}

export async function deployRoutes(app: FastifyInstance, opts: { store: LocalStore }): Promise<void> {
  const { store } = opts;
  const live = new Map<string, DeployStatus>();
  const nodeOrThrow = async (name: string) => {
    const node = await getNode(store, name);
    if (!node) throw new NodeNotFoundError(`no node named ${name}`, 'add it with: cloner nodes add NAME');
    return node;
  };

  app.get<{ Params: { name: string } }>('/v1/nodes/:name/deploy', { config: { access: 'node' }, schema: { params: nameParams } }, async (req) => {
    const node = await nodeOrThrow(req.params.name);
    if (!node.cloner_image) throw new NodeError(`node ${node.name} has no image assigned`, `assign one: cloner nodes set --nodes ${node.name} cloner_image=IMAGE`);
    const image = await getImage(store, node.cloner_image);
    if (!image) throw new ImageNotFoundError(`image ${node.cloner_image} (assigned to ${node.name}) does not exist`, 'list images with: cloner image-list');
    const revision = node.cloner_revision ? image.revisions.find((r) => r.n === node.cloner_revision) : image.revisions.at(-1);
    if (!revision) throw new ImageNotFoundError(`image ${image.name} has no revision ${node.cloner_revision ?? ''}`.trim(), `see: cloner image-details --image ${image.name}`);
    const layoutName = node.cloner_layout ?? revision.layout;
    const layout = layoutName ? await loadLayout(store, layoutName) : null;
    return { node: publicView(node), image: image.name, revision, layout, chunker: store.config.chunker };
  });

  app.post<{ Params: { name: string }; Body: Omit<DeployStatus, 'updated'> }>(
    '/v1/nodes/:name/deploy/status',
    { config: { access: 'node' }, schema: { params: nameParams, body: deployStatusSchema } },
    async (req) => {
      await nodeOrThrow(req.params.name);
      live.set(req.params.name, { ...req.body, updated: new Date().toISOString() });
      return { ok: true };
    },
  );

  app.post<{ Params: { name: string }; Body: DeployResult }>(
    '/v1/nodes/:name/deploy/result',
    { config: { access: 'node' }, schema: { params: nameParams, body: deployResultSchema } },
    async (req) => {
      const result = req.body;
      const node = await updateNode(store, req.params.name, (current) => {
        if (!current) throw new NodeNotFoundError(`no node named ${req.params.name}`, 'add it with: cloner nodes add NAME');
        return { ...current, netboot: result.ok ? 'local' : current.netboot, lastDeploy: { ...result, at: new Date().toISOString() } };
      });
      const before = live.get(req.params.name);
      live.set(req.params.name, { ...before, phase: result.ok ? 'done' : 'failed', message: result.message, updated: new Date().toISOString() });
      if (result.ok) await dropDeployToken(store, req.params.name);
      return publicView(node!);
    },
  );

  app.get('/v1/deploys', { config: { access: 'read' } }, async () =>
    (await listNodes(store)).map((n) => ({ node: n.name, netboot: n.netboot, image: n.cloner_image ?? null, status: live.get(n.name) ?? null, lastDeploy: n.lastDeploy ?? null })),
  );

  app.get<{ Params: { name: string } }>('/v1/nodes/:name/hostkeys', { config: { access: 'node' }, schema: { params: nameParams } }, async (req, reply) => {
    await nodeOrThrow(req.params.name);
    const raw = await store.getRef(`hostkeys/${req.params.name}`);
    if (!raw) return reply.code(404).send({ error: 'HOSTKEYS_NOT_FOUND', message: `no SSH host keys are kept for ${req.params.name}`, hint: 'the first deploy makes them' });
    return JSON.parse(raw);
  });

  app.put<{ Params: { name: string }; Body: { files: Record<string, string> } }>(
    '/v1/nodes/:name/hostkeys',
    {
      config: { access: 'node' },
      bodyLimit: 256 * 1024,
      schema: {
        params: nameParams,
        body: {
          type: 'object',
          required: ['files'],
          additionalProperties: false,
          properties: { files: { type: 'object', minProperties: 1, maxProperties: 16, propertyNames: { pattern: HOSTKEY_NAME }, additionalProperties: { type: 'string', contentEncoding: 'base64', maxLength: 16384, pattern: '^[A-Za-z0-9+/=]*$' } } },
        },
      },
    },
    async (req) => {
      await nodeOrThrow(req.params.name);
      // Keys are made once: a second agent (or a replayed request) cannot swap them.
      if (!(await store.casRef(`hostkeys/${req.params.name}`, undefined, JSON.stringify({ files: req.body.files, created: new Date().toISOString() })))) {
        throw new HostKeysExistError(`${req.params.name} already has SSH host keys`, 'fetch them with GET /v1/nodes/NAME/hostkeys');
      }
      return { stored: Object.keys(req.body.files).length };
    },
  );
}
