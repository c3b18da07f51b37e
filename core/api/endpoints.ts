/**
 * Where each route of the cloner protocol is: its method, URL, access level and whether its
 * body or answer is bytes (`raw`): the part of the route table a client needs at run time.
 * core/api/routes.ts adds each route's schemas (TypeBox) to its entry here, for the server
 * to validate with and for the clients' types; the clients (core/api/client.ts, HttpStore,
 * the CLI, the agent) import `API` from this module, typed by routes.ts, so a client start
 * does not build the schemas (TypeBox and the schema table cost ~15 ms of CPU of a ~60 ms
 * `cloner image-list`, bench/startup.ts). A path is spelled only here.
 *
 * Access: 'public' (no token: health, netboot), 'read' (read.token, a deploy token or the
 * admin token), 'node' (the admin token, or the deploy token of the node named in :name),
 * 'write' (the admin token).
 */
import type { Api } from './routes.ts';

export type Access = 'public' | 'read' | 'write' | 'node';
export type Method = 'GET' | 'POST' | 'PUT' | 'DELETE';

export interface Endpoint {
  method: Method;
  url: string;
  access: Access;
  /** Body or answer is bytes, not JSON. */
  raw?: boolean;
}

export const ENDPOINTS = {
  health: { method: 'GET', url: '/v1/health', access: 'public' },
  config: { method: 'GET', url: '/v1/config', access: 'read' },
  chunksMissing: { method: 'POST', url: '/v1/chunks/missing', access: 'read' },
  chunksUpload: { method: 'POST', url: '/v1/chunks', access: 'write', raw: true },
  chunksFetch: { method: 'POST', url: '/v1/chunks/fetch', access: 'read', raw: true },
  chunk: { method: 'GET', url: '/v1/chunks/:id', access: 'read', raw: true },
  listImages: { method: 'GET', url: '/v1/images', access: 'read' },
  usage: { method: 'GET', url: '/v1/usage', access: 'read' },
  getImage: { method: 'GET', url: '/v1/images/:name', access: 'read' },
  imageDiff: { method: 'GET', url: '/v1/images/:name/diff', access: 'read' },
  maintenance: { method: 'GET', url: '/v1/maintenance', access: 'read' },
  commitRevision: { method: 'POST', url: '/v1/images/:name/revisions', access: 'write' },
  deleteImage: { method: 'DELETE', url: '/v1/images/:name', access: 'write' },
  gc: { method: 'POST', url: '/v1/gc', access: 'write' },
  verify: { method: 'POST', url: '/v1/verify', access: 'write' },
  listLayouts: { method: 'GET', url: '/v1/layouts', access: 'read' },
  getLayout: { method: 'GET', url: '/v1/layouts/:name', access: 'read' },
  saveLayout: { method: 'POST', url: '/v1/layouts/:name', access: 'write' },
  deleteLayoutVersion: { method: 'DELETE', url: '/v1/layouts/:name/versions/:version', access: 'write' },
  rollbackLayout: { method: 'POST', url: '/v1/layouts/:name/rollback', access: 'write' },
  listAttachments: { method: 'GET', url: '/v1/images/:name/attachments', access: 'read' },
  putAttachment: { method: 'PUT', url: '/v1/images/:name/attachments/:kind/:item', access: 'write', raw: true },
  getAttachment: { method: 'GET', url: '/v1/images/:name/attachments/:kind/:item', access: 'read', raw: true },
  listNodes: { method: 'GET', url: '/v1/nodes', access: 'read' },
  getNode: { method: 'GET', url: '/v1/nodes/:name', access: 'read' },
  changeNode: { method: 'POST', url: '/v1/nodes/:name', access: 'write' },
  deleteNode: { method: 'DELETE', url: '/v1/nodes/:name', access: 'write' },
  power: { method: 'POST', url: '/v1/nodes/:name/power', access: 'write' },
  nodeHistory: { method: 'GET', url: '/v1/nodes/:name/history', access: 'read' },
  nodeGroup: { method: 'POST', url: '/v1/nodes/:name/group', access: 'write' },
  identify: { method: 'GET', url: '/v1/identify', access: 'read' },
  discovered: { method: 'GET', url: '/v1/discovered', access: 'read' },
  deployPlan: { method: 'GET', url: '/v1/nodes/:name/deploy', access: 'node' },
  deployStatus: { method: 'POST', url: '/v1/nodes/:name/deploy/status', access: 'node' },
  deployResult: { method: 'POST', url: '/v1/nodes/:name/deploy/result', access: 'node' },
  deploys: { method: 'GET', url: '/v1/deploys', access: 'read' },
  getHostKeys: { method: 'GET', url: '/v1/nodes/:name/hostkeys', access: 'node' },
  putHostKeys: { method: 'PUT', url: '/v1/nodes/:name/hostkeys', access: 'node' },
  multicastRegister: { method: 'POST', url: '/v1/multicast/nodes/:name', access: 'node' },
  multicastPoll: { method: 'GET', url: '/v1/multicast/nodes/:name', access: 'node' },
  multicastReady: { method: 'POST', url: '/v1/multicast/nodes/:name/ready', access: 'node' },
  multicastReport: { method: 'POST', url: '/v1/multicast/nodes/:name/report', access: 'node' },
  multicastProgress: { method: 'POST', url: '/v1/multicast/nodes/:name/progress', access: 'node' },
  multicastStatus: { method: 'GET', url: '/v1/multicast', access: 'read' },
  multicastStart: { method: 'POST', url: '/v1/multicast/sessions', access: 'write' },
  bootScript: { method: 'GET', url: '/boot.ipxe', access: 'public', raw: true },
  bootFile: { method: 'GET', url: '/v1/boot/:file', access: 'public', raw: true },
  installerBootFile: { method: 'GET', url: '/v1/boot/:version/:file', access: 'public', raw: true },
  listInstallers: { method: 'GET', url: '/v1/installers', access: 'read' },
  putInstallerFile: { method: 'PUT', url: '/v1/installers/:version/:file', access: 'write', raw: true },
  commitInstaller: { method: 'POST', url: '/v1/installers/:version', access: 'write' },
} as const satisfies { [name: string]: Endpoint };

/**
 * The route table as clients use it: typed as routes.ts's (a call's arguments and answer
 * come from the route's schemas), while at run time each entry holds only what a client
 * reads (method, url, access, raw). Compiles only while both tables name the same routes.
 */
export const API: Api = sameRoutes(ENDPOINTS);

function sameRoutes<E extends { [K in keyof Api]: Endpoint }>(table: E & { [K in Exclude<keyof E, keyof Api>]: never }): Api {
  return table as unknown as Api;
}

/** The path of a route with its :params filled in (each URI-encoded) and its query. */
export function routePath(d: Endpoint, params?: { [key: string]: string | number }, query?: { [key: string]: string | number | undefined }): string {
  const filled = d.url.replace(/:([A-Za-z]+)/g, (_, key: string) => {
    const value = params?.[key];
    if (value === undefined) throw new TypeError(`route ${d.url} needs :${key}`);
    return encodeURIComponent(String(value));
  });
  const pairs = Object.entries(query ?? {}).filter((e): e is [string, string | number] => e[1] !== undefined);
  return pairs.length ? `${filled}?${new URLSearchParams(pairs.map(([k, v]) => [k, String(v)]))}` : filled;
}
