/**
 * The cloner protocol (`/v1`), one table: every route's method, URL, access level and
 * schemas, defined once. The server registers each entry (server/route.ts) and the
 * clients call them by entry (core/api/client.ts: `api.call(API.getImage, {params})`), so
 * a path is spelled only here and a client's argument and result types come from the
 * schemas the server validates with.
 *
 * Access: 'public' (no token: health, netboot), 'read' (read.token, a deploy token or the
 * admin token), 'node' (the admin token, or the deploy token of the node named in :name),
 * 'write' (the admin token). Routes whose body or answer is bytes rather than JSON (chunk
 * frames, attachments, boot files, the iPXE script) carry `raw: true` and no response
 * schema; their clients are HttpStore (chunks) and the raw helpers of ApiClient.
 */
import { Type, type Static, type TSchema } from 'typebox';
import type { Assignment, NodeRecord } from '../nodes/registry.ts';
import type { PowerResult } from '../nodes/power.ts';
import type { HistoryEntry } from '../nodes/history.ts';
import type { MaintenanceState } from '../tree/maintenance.ts';
import type { RevisionDiff } from '../tree/diff.ts';
import type { ChunkerParams } from '../chunker/fastcdc.ts';
import type { DeployPlan, DeployRow } from '../nodes/deploy.ts';
import type { PruneReport } from '../store/interfaces.ts';
import type { ImageRecord, ImageVerifyReport, Revision } from '../tree/images.ts';
import type { StoredLayout } from '../layout/store.ts';
import type { AttachmentKind } from '../tree/attachments.ts';
import { MAX_INSTALLER_FILE_BYTES, type InstallerRecord } from '../installer/store.ts';
import type { Assignment as MulticastAssignment, MulticastStart, MulticastStatus } from '../multicast/hub.ts';
import {
  AttachmentParams,
  BootFileParams,
  BootQuery,
  Count,
  DeployResultBody,
  DeployStatusBody,
  HostKeys,
  IdentifyQuery,
  InstallerCommitBody,
  InstallerFileParams,
  KernelVersion,
  Ids,
  LayoutVersionQuery,
  NameParams,
  NodeChange,
  DiffQuery,
  GroupChange,
  PowerBody,
  Record,
  RevisionBody,
  ChunkId,
  MulticastRegisterBody,
  MulticastReadyBody,
  MulticastReportBody,
  MulticastStartBody,
} from './schemas.ts';

export type Access = 'public' | 'read' | 'write' | 'node';
export type Method = 'GET' | 'POST' | 'PUT' | 'DELETE';

export interface RouteDef {
  method: Method;
  url: string;
  access: Access;
  params?: TSchema;
  querystring?: TSchema;
  body?: TSchema;
  /** The success answer's schema (JSON routes). */
  response?: TSchema;
  /** The success status (default 200). */
  status?: number;
  /** Largest accepted body in bytes (default: the server's). */
  bodyLimit?: number;
  /** Body or answer is bytes, not JSON. */
  raw?: boolean;
}

const def = <const D extends RouteDef>(d: D): D => d;

/** Most chunk ids in one missing/fetch request. */
export const MAX_BATCH = 20_000;
/**
 * Body limits, sized to what each route needs (a body over its route's limit is refused
 * with 413 before it is parsed; fastify stops reading at the limit). JSON_BODY_LIMIT is the
 * server's default and the largest JSON body of an ordinary route; NO_BODY_LIMIT applies to
 * every route without a body. Chunk uploads are streamed frame by frame (server/chunks.ts)
 * and attachments have their own limit (MAX_ATTACHMENT_BYTES).
 */
export const JSON_BODY_LIMIT = 1024 * 1024;
export const NO_BODY_LIMIT = 1024;
const KiB = 1024;
/** {"ids": [...]}: 64 hex digits, quotes, a comma and some whitespace per id. */
const IDS_BODY_LIMIT = MAX_BATCH * 70 + KiB;

const Listed = Type.Array(Type.Object({ name: Type.String(), versions: Count, updated: Type.String() }));

export const API = {
  health: def({ method: 'GET', url: '/v1/health', access: 'public', response: Type.Object({ ok: Type.Boolean(), version: Type.String() }) }),
  config: def({ method: 'GET', url: '/v1/config', access: 'read', response: Record<{ version: string; chunker: ChunkerParams }>() }),

  // Chunks (frames as core/store/wire.ts writes them).
  chunksMissing: def({ method: 'POST', url: '/v1/chunks/missing', access: 'read', body: Ids(MAX_BATCH), bodyLimit: IDS_BODY_LIMIT, response: Type.Object({ missing: Type.Array(Type.String()) }) }),
  chunksUpload: def({ method: 'POST', url: '/v1/chunks', access: 'write', raw: true, response: Type.Object({ stored: Count, ids: Type.Array(Type.String()) }) }),
  chunksFetch: def({ method: 'POST', url: '/v1/chunks/fetch', access: 'read', body: Ids(MAX_BATCH), bodyLimit: IDS_BODY_LIMIT, raw: true }),
  chunk: def({ method: 'GET', url: '/v1/chunks/:id', access: 'read', params: Type.Object({ id: ChunkId }), raw: true }),

  // Images, revisions, usage, maintenance.
  listImages: def({ method: 'GET', url: '/v1/images', access: 'read', response: Record<ImageRecord[]>() }),
  usage: def({ method: 'GET', url: '/v1/usage', access: 'read', response: Type.Array(Type.Object({ name: Type.String(), uniqueBytes: Count, totalBytes: Count })) }),
  getImage: def({ method: 'GET', url: '/v1/images/:name', access: 'read', params: NameParams, response: Record<ImageRecord>() }),
  imageDiff: def({ method: 'GET', url: '/v1/images/:name/diff', access: 'read', params: NameParams, querystring: DiffQuery, response: Record<RevisionDiff>() }),
  commitRevision: def({ method: 'POST', url: '/v1/images/:name/revisions', access: 'write', params: NameParams, body: RevisionBody, bodyLimit: 320 * KiB, status: 201, response: Record<Revision>() }),
  deleteImage: def({ method: 'DELETE', url: '/v1/images/:name', access: 'write', params: NameParams, response: Type.Object({ deleted: Type.String() }) }),
  gc: def({ method: 'POST', url: '/v1/gc', access: 'write', response: Record<PruneReport & { liveChunks: number }>() }),
  verify: def({ method: 'POST', url: '/v1/verify', access: 'write', response: Record<ImageVerifyReport>() }),
  maintenance: def({ method: 'GET', url: '/v1/maintenance', access: 'read', response: Record<MaintenanceState>() }),

  // Layouts (versioned), attachments (scripts, BIOS settings).
  listLayouts: def({ method: 'GET', url: '/v1/layouts', access: 'read', response: Listed }),
  getLayout: def({ method: 'GET', url: '/v1/layouts/:name', access: 'read', params: NameParams, querystring: LayoutVersionQuery, response: Record<StoredLayout>() }),
  saveLayout: def({ method: 'POST', url: '/v1/layouts/:name', access: 'write', params: NameParams, body: Type.Unknown(), bodyLimit: 256 * KiB, response: Type.Object({ name: Type.String(), version: Count }) }),
  listAttachments: def({ method: 'GET', url: '/v1/images/:name/attachments', access: 'read', params: NameParams, response: Record<Array<{ kind: AttachmentKind; item: string; versions: number; updated: string }>>() }),
  putAttachment: def({ method: 'PUT', url: '/v1/images/:name/attachments/:kind/:item', access: 'write', params: AttachmentParams, raw: true, response: Type.Object({ version: Count }) }),
  getAttachment: def({ method: 'GET', url: '/v1/images/:name/attachments/:kind/:item', access: 'read', params: AttachmentParams, raw: true }),

  // Nodes.
  listNodes: def({ method: 'GET', url: '/v1/nodes', access: 'read', response: Record<NodeRecord[]>() }),
  getNode: def({ method: 'GET', url: '/v1/nodes/:name', access: 'read', params: NameParams, response: Record<NodeRecord>() }),
  changeNode: def({ method: 'POST', url: '/v1/nodes/:name', access: 'write', params: NameParams, body: NodeChange, bodyLimit: 512 * KiB, response: Record<NodeRecord>() }),
  deleteNode: def({ method: 'DELETE', url: '/v1/nodes/:name', access: 'write', params: NameParams, response: Type.Object({ deleted: Type.String() }) }),
  power: def({ method: 'POST', url: '/v1/nodes/:name/power', access: 'write', params: NameParams, body: PowerBody, bodyLimit: KiB, response: Record<PowerResult>() }),
  nodeHistory: def({ method: 'GET', url: '/v1/nodes/:name/history', access: 'read', params: NameParams, response: Record<HistoryEntry[]>() }),
  nodeGroup: def({ method: 'POST', url: '/v1/nodes/:name/group', access: 'write', params: NameParams, body: GroupChange, bodyLimit: KiB, response: Record<NodeRecord>() }),
  identify: def({ method: 'GET', url: '/v1/identify', access: 'read', querystring: IdentifyQuery, response: Record<Assignment>() }),
  discovered: def({ method: 'GET', url: '/v1/discovered', access: 'read', response: Record<Array<{ mac: string; first: string; last: string; from: string }>>() }),

  // Deploys.
  deployPlan: def({ method: 'GET', url: '/v1/nodes/:name/deploy', access: 'node', params: NameParams, response: Record<DeployPlan>() }),
  deployStatus: def({ method: 'POST', url: '/v1/nodes/:name/deploy/status', access: 'node', params: NameParams, body: DeployStatusBody, bodyLimit: 16 * KiB, response: Type.Object({ ok: Type.Boolean() }) }),
  deployResult: def({ method: 'POST', url: '/v1/nodes/:name/deploy/result', access: 'node', params: NameParams, body: DeployResultBody, bodyLimit: 16 * KiB, response: Record<NodeRecord>() }),
  deploys: def({ method: 'GET', url: '/v1/deploys', access: 'read', response: Record<DeployRow[]>() }),
  getHostKeys: def({ method: 'GET', url: '/v1/nodes/:name/hostkeys', access: 'node', params: NameParams, response: HostKeys }),
  putHostKeys: def({ method: 'PUT', url: '/v1/nodes/:name/hostkeys', access: 'node', params: NameParams, body: HostKeys, bodyLimit: 320 * KiB, response: Type.Object({ stored: Count }) }),

  // Multicast (core/multicast/hub.ts): nodes in cloner-multicast mode, sessions.
  multicastRegister: def({ method: 'POST', url: '/v1/multicast/nodes/:name', access: 'node', params: NameParams, body: MulticastRegisterBody, bodyLimit: 40 * 1024 * 1024, response: Record<MulticastAssignment>() }),
  multicastPoll: def({ method: 'GET', url: '/v1/multicast/nodes/:name', access: 'node', params: NameParams, response: Record<MulticastAssignment>() }),
  multicastReady: def({ method: 'POST', url: '/v1/multicast/nodes/:name/ready', access: 'node', params: NameParams, body: MulticastReadyBody, response: Record<MulticastAssignment>() }),
  multicastReport: def({ method: 'POST', url: '/v1/multicast/nodes/:name/report', access: 'node', params: NameParams, body: MulticastReportBody, bodyLimit: 40 * 1024 * 1024, response: Record<MulticastAssignment>() }),
  multicastStatus: def({ method: 'GET', url: '/v1/multicast', access: 'read', response: Record<MulticastStatus>() }),
  multicastStart: def({ method: 'POST', url: '/v1/multicast/sessions', access: 'write', body: MulticastStartBody, response: Record<MulticastStart>() }),

  // Netboot (no token: firmware has none).
  bootScript: def({ method: 'GET', url: '/boot.ipxe', access: 'public', querystring: BootQuery, raw: true }),
  bootFile: def({ method: 'GET', url: '/v1/boot/:file', access: 'public', params: BootFileParams, raw: true }),
  installerBootFile: def({ method: 'GET', url: '/v1/boot/:version/:file', access: 'public', params: InstallerFileParams, raw: true }),

  // Installers, one per kernel version (cloner make-installer; core/installer/store.ts).
  listInstallers: def({ method: 'GET', url: '/v1/installers', access: 'read', response: Record<InstallerRecord[]>() }),
  putInstallerFile: def({ method: 'PUT', url: '/v1/installers/:version/:file', access: 'write', params: InstallerFileParams, bodyLimit: MAX_INSTALLER_FILE_BYTES, raw: true, response: Type.Object({ bytes: Count }) }),
  commitInstaller: def({ method: 'POST', url: '/v1/installers/:version', access: 'write', params: Type.Object({ version: KernelVersion }), body: InstallerCommitBody, response: Record<InstallerRecord>() }),
} as const;

export type Api = typeof API;

/** What a call of route D takes: its path params, query and body, typed by its schemas. */
export type RouteInput<D extends RouteDef> = (D['params'] extends TSchema ? { params: Static<D['params']> } : { params?: undefined }) &
  (D['querystring'] extends TSchema ? { query: Static<D['querystring']> } : { query?: undefined }) &
  (D['body'] extends TSchema ? { body: Static<D['body']> } : { body?: undefined });

/** What a call of route D answers (JSON routes). */
export type RouteOutput<D extends RouteDef> = D['response'] extends TSchema ? Static<D['response']> : unknown;

/** The path of a route with its :params filled in (each URI-encoded) and its query. */
export function routePath(d: RouteDef, params?: { [key: string]: string | number }, query?: { [key: string]: string | number | undefined }): string {
  const filled = d.url.replace(/:([A-Za-z]+)/g, (_, key: string) => {
    const value = params?.[key];
    if (value === undefined) throw new TypeError(`route ${d.url} needs :${key}`);
    return encodeURIComponent(String(value));
  });
  const pairs = Object.entries(query ?? {}).filter((e): e is [string, string | number] => e[1] !== undefined);
  return pairs.length ? `${filled}?${new URLSearchParams(pairs.map(([k, v]) => [k, String(v)]))}` : filled;
}
