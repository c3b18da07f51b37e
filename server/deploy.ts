/**
 * Deploy routes (a fastify plugin; table in core/api/routes.ts; rules in core/nodes/deploy.ts):
 * what the agent on a node being imaged asks and tells. Access 'node' is the admin token
 * or the deploy token that node booted with.
 *   GET  /v1/nodes/:name/deploy          -> {node, image, revision, layout, chunker}   the plan (node)
 *   POST /v1/nodes/:name/deploy/status   DeployStatus -> {ok}                          a phase report (node)
 *   POST /v1/nodes/:name/deploy/result   DeployResult -> NodeRecord                    the end (node)
 *   GET  /v1/deploys                     -> [{node, netboot, status, lastDeploy}]      every node (read)
 *   GET  /v1/nodes/:name/hostkeys        -> {files: {name: base64}} | 404; 403 to a second deploy token of the arm (node)
 *   PUT  /v1/nodes/:name/hostkeys        {files} -> {stored}; 409 if the node has keys (node)
 * Live status is kept in this process's memory (LiveDeploys).
 */
import type { FastifyInstance } from 'fastify';
import { API } from '../core/api/routes.ts';
import type { ChunkerParams } from '../core/chunker/fastcdc.ts';
import { deployPlan, LiveDeploys } from '../core/nodes/deploy.ts';
import { getHostKeys, putHostKeys } from '../core/nodes/hostkeys.ts';
import { claimHostKeys } from '../core/nodes/deploy-tokens.ts';
import { getNode, NodeNotFoundError } from '../core/nodes/registry.ts';
import type { ImageStore } from '../core/tree/images.ts';
import { serve } from './route.ts';

export async function deployRoutes(app: FastifyInstance, opts: { store: ImageStore; chunker: ChunkerParams; live?: LiveDeploys }): Promise<void> {
  const { store } = opts;
  // Shared with the web UI (server/ui) when the app passes one in.
  const live = opts.live ?? new LiveDeploys();
  const mustExist = async (name: string) => {
    if (!(await getNode(store, name))) throw new NodeNotFoundError(`no node named ${name}`, 'add it with: cloner nodes add NAME');
  };

  serve(app, API.deployPlan, async (req) => deployPlan(store, opts.chunker, req.params.name));
  serve(app, API.deployStatus, async (req) => {
    await live.report(store, req.params.name, req.body);
    return { ok: true };
  });
  serve(app, API.deployResult, async (req) => live.finish(store, req.params.name, req.body));
  serve(app, API.deploys, async () => live.rows(store));
  serve(app, API.getHostKeys, async (req) => {
    await mustExist(req.params.name);
    const keys = await getHostKeys(store, req.params.name);
    // A deploy token gets the private keys only if it is the one token of this arm they went
    // to (core/nodes/deploy-tokens.ts): a retried deploy of the same boot gets them again.
    if (req.deployNode) await claimHostKeys(store, req.params.name, /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1] ?? '');
    return keys;
  });
  serve(app, API.putHostKeys, async (req) => {
    await mustExist(req.params.name);
    return { stored: await putHostKeys(store, req.params.name, req.body.files) };
  });
}
