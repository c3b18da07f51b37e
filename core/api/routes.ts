/**
 * The cloner protocol (`/v1`), one table: every route's schemas and body limit, added to
 * its method, URL and access level (core/api/endpoints.ts, where the access levels are
 * explained), defined once. The server registers each entry (server/route.ts) and the
 * clients call them by entry (core/api/client.ts: `api.call(API.getImage, {params})`, with
 * `API` from endpoints.ts, typed by this table), so a client's argument and result types
 * come from the schemas the server validates with. Routes whose body or answer is bytes rather than JSON (chunk
 * frames, attachments, boot files, the iPXE script) carry `raw: true` and no response
 * schema; their clients are HttpStore (chunks) and the raw helpers of ApiClient.
 */
import { Type, type Static, type TSchema } from 'typebox';
import { ENDPOINTS as E, type Access, type Method } from './endpoints.ts';
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
  LayoutVersionParams,
  LayoutRollbackBody,
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
  MulticastProgressBody,
  MulticastReportBody,
  MulticastStartBody,
} from './schemas.ts';

export type { Access, Method } from './endpoints.ts';
export { routePath } from './endpoints.ts';

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
  health: def({ ...E.health, response: Type.Object({ ok: Type.Boolean(), version: Type.String() }) }),
  config: def({ ...E.config, response: Record<{ version: string; chunker: ChunkerParams }>() }),

  // Chunks (frames as core/store/wire.ts writes them).
  chunksMissing: def({ ...E.chunksMissing, body: Ids(MAX_BATCH), bodyLimit: IDS_BODY_LIMIT, response: Type.Object({ missing: Type.Array(Type.String()) }) }),
  chunksUpload: def({ ...E.chunksUpload, response: Type.Object({ stored: Count, ids: Type.Array(Type.String()) }) }),
  chunksFetch: def({ ...E.chunksFetch, body: Ids(MAX_BATCH), bodyLimit: IDS_BODY_LIMIT }),
  chunk: def({ ...E.chunk, params: Type.Object({ id: ChunkId }) }),

  // Images, revisions, usage, maintenance.
  listImages: def({ ...E.listImages, response: Record<ImageRecord[]>() }),
  usage: def({ ...E.usage, response: Type.Array(Type.Object({ name: Type.String(), uniqueBytes: Count, totalBytes: Count })) }),
  getImage: def({ ...E.getImage, params: NameParams, response: Record<ImageRecord>() }),
  imageDiff: def({ ...E.imageDiff, params: NameParams, querystring: DiffQuery, response: Record<RevisionDiff>() }),
  commitRevision: def({ ...E.commitRevision, params: NameParams, body: RevisionBody, bodyLimit: 320 * KiB, status: 201, response: Record<Revision>() }),
  deleteImage: def({ ...E.deleteImage, params: NameParams, response: Type.Object({ deleted: Type.String() }) }),
  gc: def({ ...E.gc, response: Record<PruneReport & { liveChunks: number }>() }),
  verify: def({ ...E.verify, response: Record<ImageVerifyReport>() }),
  maintenance: def({ ...E.maintenance, response: Record<MaintenanceState>() }),

  // Layouts (versioned), attachments (scripts, BIOS settings).
  listLayouts: def({ ...E.listLayouts, response: Listed }),
  getLayout: def({ ...E.getLayout, params: NameParams, querystring: LayoutVersionQuery, response: Record<StoredLayout>() }),
  saveLayout: def({ ...E.saveLayout, params: NameParams, body: Type.Unknown(), bodyLimit: 256 * KiB, response: Type.Object({ name: Type.String(), version: Count }) }),
  deleteLayoutVersion: def({ ...E.deleteLayoutVersion, params: LayoutVersionParams, response: Type.Object({ name: Type.String(), deleted: Count, latest: Type.Union([Count, Type.Null()]) }) }),
  rollbackLayout: def({ ...E.rollbackLayout, params: NameParams, body: LayoutRollbackBody, bodyLimit: KiB, response: Type.Object({ name: Type.String(), version: Count, from: Count }) }),
  listAttachments: def({ ...E.listAttachments, params: NameParams, response: Record<Array<{ kind: AttachmentKind; item: string; versions: number; updated: string }>>() }),
  putAttachment: def({ ...E.putAttachment, params: AttachmentParams, response: Type.Object({ version: Count }) }),
  getAttachment: def({ ...E.getAttachment, params: AttachmentParams }),

  // Nodes.
  listNodes: def({ ...E.listNodes, response: Record<NodeRecord[]>() }),
  getNode: def({ ...E.getNode, params: NameParams, response: Record<NodeRecord>() }),
  changeNode: def({ ...E.changeNode, params: NameParams, body: NodeChange, bodyLimit: 512 * KiB, response: Record<NodeRecord>() }),
  deleteNode: def({ ...E.deleteNode, params: NameParams, response: Type.Object({ deleted: Type.String() }) }),
  power: def({ ...E.power, params: NameParams, body: PowerBody, bodyLimit: KiB, response: Record<PowerResult>() }),
  nodeHistory: def({ ...E.nodeHistory, params: NameParams, response: Record<HistoryEntry[]>() }),
  nodeGroup: def({ ...E.nodeGroup, params: NameParams, body: GroupChange, bodyLimit: KiB, response: Record<NodeRecord>() }),
  identify: def({ ...E.identify, querystring: IdentifyQuery, response: Record<Assignment>() }),
  discovered: def({ ...E.discovered, response: Record<Array<{ mac: string; first: string; last: string; from: string }>>() }),

  // Deploys.
  deployPlan: def({ ...E.deployPlan, params: NameParams, response: Record<DeployPlan>() }),
  deployStatus: def({ ...E.deployStatus, params: NameParams, body: DeployStatusBody, bodyLimit: 16 * KiB, response: Type.Object({ ok: Type.Boolean() }) }),
  deployResult: def({ ...E.deployResult, params: NameParams, body: DeployResultBody, bodyLimit: 16 * KiB, response: Record<NodeRecord>() }),
  deploys: def({ ...E.deploys, response: Record<DeployRow[]>() }),
  getHostKeys: def({ ...E.getHostKeys, params: NameParams, response: HostKeys }),
  putHostKeys: def({ ...E.putHostKeys, params: NameParams, body: HostKeys, bodyLimit: 320 * KiB, response: Type.Object({ stored: Count }) }),

  // Multicast (core/multicast/hub.ts): nodes in cloner-multicast mode, sessions.
  multicastRegister: def({ ...E.multicastRegister, params: NameParams, body: MulticastRegisterBody, bodyLimit: 2 * 1024 * 1024, response: Record<MulticastAssignment>() }),
  multicastPoll: def({ ...E.multicastPoll, params: NameParams, response: Record<MulticastAssignment>() }),
  multicastReady: def({ ...E.multicastReady, params: NameParams, body: MulticastReadyBody, response: Record<MulticastAssignment>() }),
  multicastReport: def({ ...E.multicastReport, params: NameParams, body: MulticastReportBody, bodyLimit: 40 * 1024 * 1024, response: Record<MulticastAssignment>() }),
  multicastProgress: def({ ...E.multicastProgress, params: NameParams, body: MulticastProgressBody, response: Record<MulticastAssignment>() }),
  multicastStatus: def({ ...E.multicastStatus, response: Record<MulticastStatus>() }),
  multicastStart: def({ ...E.multicastStart, body: MulticastStartBody, response: Record<MulticastStart>() }),

  // Netboot (no token: firmware has none).
  bootScript: def({ ...E.bootScript, querystring: BootQuery }),
  bootFile: def({ ...E.bootFile, params: BootFileParams }),
  installerBootFile: def({ ...E.installerBootFile, params: InstallerFileParams }),

  // Installers, one per kernel version (cloner make-installer; core/installer/store.ts).
  listInstallers: def({ ...E.listInstallers, response: Record<InstallerRecord[]>() }),
  putInstallerFile: def({ ...E.putInstallerFile, params: InstallerFileParams, bodyLimit: MAX_INSTALLER_FILE_BYTES, response: Type.Object({ bytes: Count }) }),
  commitInstaller: def({ ...E.commitInstaller, params: Type.Object({ version: KernelVersion }), body: InstallerCommitBody, response: Record<InstallerRecord>() }),
} as const;

export type Api = typeof API;

/** What a call of route D takes: its path params, query and body, typed by its schemas. */
export type RouteInput<D extends RouteDef> = (D['params'] extends TSchema ? { params: Static<D['params']> } : { params?: undefined }) &
  (D['querystring'] extends TSchema ? { query: Static<D['querystring']> } : { query?: undefined }) &
  (D['body'] extends TSchema ? { body: Static<D['body']> } : { body?: undefined });

/** What a call of route D answers (JSON routes). */
export type RouteOutput<D extends RouteDef> = D['response'] extends TSchema ? Static<D['response']> : unknown;
