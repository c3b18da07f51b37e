/**
 * Where the CLI's images live: a cloner server (`--server`, the normal case) or a local
 * store directory (`--store`). Both give the same operations, so commands are written
 * once: chunk I/O (LocalStore or HttpStore), image records, revision commits and layouts.
 *
 * The server comes from --server (host, host:port or URL; port 8740 by default), else
 * CLONER_SERVER, else /etc/cloner/client.json {"server": ..., "tokenFile": ...}. The token
 * from --token-file, else CLONER_TOKEN, else the client config's tokenFile.
 */
import { readFile } from 'node:fs/promises';
import type { ChunkerParams } from '../core/chunker/fastcdc.ts';
import { listLayouts, loadLayout, layoutExists, saveLayout, type StoredLayout } from '../core/layout/store.ts';
import { parseLayout, type Layout } from '../core/layout/model.ts';
import { HttpStore, ServerError } from '../core/store/http.ts';
import type { DeployStatus } from '../core/nodes/deploy-state.ts';
import type { ChunkReader, ChunkWriter } from '../core/store/interfaces.ts';
import { LocalStore } from '../core/store/local.ts';
import { collectGarbage, commitRevision, deleteImage, getImage, imageUsage, listImages, verifyImages, type ImageRecord, type ImageVerifyReport, type Revision, type RevisionStats } from '../core/tree/images.ts';
import { getAttachment, listAttachments, putAttachment, type AttachmentKind } from '../core/tree/attachments.ts';
import type { PruneReport } from '../core/store/interfaces.ts';
import { power, type PowerAction, type PowerResult } from '../core/nodes/power.ts';
import { changeNode, getNode, identifyMac, identifyNode, listNodes, NodeNotFoundError, publicView, removeNode, type Assignment, type NodeRecord } from '../core/nodes/registry.ts';
import { UsageError } from './errors.ts';

export interface RevisionInput {
  tree: string;
  layout?: string | null;
  options?: string | null;
  note?: string;
  stats: RevisionStats;
}

export interface DeployRow {
  node: string;
  netboot: string;
  image: string | null;
  status: DeployStatus | null;
  lastDeploy: NodeRecord['lastDeploy'] | null;
}

export interface Backend {
  /** "server http://head:8740" or "store /srv/images", for messages. */
  readonly where: string;
  readonly chunks: ChunkReader & ChunkWriter;
  readonly chunker: ChunkerParams;
  getImage(name: string): Promise<ImageRecord | undefined>;
  listImages(): Promise<ImageRecord[]>;
  /** Stored bytes per image: only its own chunks, and all it refers to. */
  usage(): Promise<Array<{ name: string; uniqueBytes: number; totalBytes: number }>>;
  commitRevision(name: string, input: RevisionInput, create: boolean): Promise<Revision>;
  layoutExists(name: string): Promise<boolean>;
  loadLayout(name: string, version?: number): Promise<StoredLayout>;
  saveLayout(name: string, layout: Layout | string): Promise<{ name: string; version: number }>;
  listLayouts(): Promise<Array<{ name: string; versions: number; updated: string }>>;
  deleteImage(name: string): Promise<void>;
  putAttachment(image: string, kind: AttachmentKind, item: string, body: Uint8Array): Promise<number>;
  getAttachment(image: string, kind: AttachmentKind, item: string): Promise<{ version: number; body: Buffer }>;
  listAttachments(image: string): Promise<Array<{ kind: AttachmentKind; item: string; versions: number; updated: string }>>;
  gc(): Promise<PruneReport & { liveChunks: number }>;
  listNodes(): Promise<NodeRecord[]>;
  /** Every node's deploy: live status (server only) and last result. */
  deploys(): Promise<DeployRow[]>;
  /** Applies key=value settings to a node (creating it with `create`); the result as clients see it. */
  changeNode(name: string, settings: string[], create: boolean): Promise<NodeRecord>;
  deleteNode(name: string): Promise<void>;
  power(name: string, action: PowerAction): Promise<PowerResult>;
  identify(query: { mac: string } | { node: string }): Promise<Assignment>;
  verify(): Promise<ImageVerifyReport>;
  /** Bytes stored (local) or sent (server) so far, to report what an upload added. */
  bytesMark(): Promise<number>;
  /** What uploads sent and skipped (the server had it); null for a local store. */
  transfer(): { sent: number; alreadyStored: number } | null;
  /** Keeps chunks an upload relies on from a concurrent local GC (a no-op on a server). */
  hold(): { release(): void };
  close(): Promise<void>;
}

export interface BackendArgs {
  store?: string;
  server?: string;
  tokenFile?: string;
  init?: boolean;
}

export const DEFAULT_PORT = 8740;

/** "head", "head:9000", "http://head:9000/" or "https://..." as a base URL. */
export function serverUrl(value: string): string {
  const text = value.trim();
  if (/^https?:\/\//.test(text)) {
    try {
      const u = new URL(text);
      return `${u.protocol}//${u.host}`;
    } catch {
      // fall through to the error below
    }
  } else if (/^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?$/.test(text)) {
    return `http://${text.includes(':') && !text.startsWith('[') ? text : `${text}:${DEFAULT_PORT}`}`;
  }
  throw new UsageError(`bad --server ${JSON.stringify(value)}`, 'give a host, host:port or URL, e.g. --server head or --server http://head:8740');
}

async function clientConfig(): Promise<{ server?: string; tokenFile?: string }> {
  const file = process.env.CLONER_CLIENT_CONFIG ?? '/etc/cloner/client.json';
  try {
    return JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new UsageError(`cannot read ${file}: ${(err as Error).message}`, 'fix or remove the client config');
  }
}

async function readToken(file: string): Promise<string> {
  try {
    return (await readFile(file, 'utf8')).trim();
  } catch (err) {
    throw new UsageError(`cannot read the token file ${file}: ${(err as NodeJS.ErrnoException).code}`, 'copy admin.token from the server\'s data directory, or set CLONER_TOKEN');
  }
}

export async function openBackend(args: BackendArgs): Promise<Backend> {
  if (args.store && args.server) throw new UsageError('--store and --server exclude each other', 'use --server for a cloner server, --store for a local store directory');
  if (args.store) return localBackend(await LocalStore.open(String(args.store), { create: !!args.init }), String(args.store));
  const config = await clientConfig();
  const server = args.server ?? process.env.CLONER_SERVER ?? config.server;
  if (!server) throw new UsageError('no server given', 'pass --server HOST (or set CLONER_SERVER, or /etc/cloner/client.json); --store DIR uses a local store');
  const tokenFile = args.tokenFile ?? (process.env.CLONER_TOKEN ? undefined : config.tokenFile);
  const token = tokenFile ? await readToken(String(tokenFile)) : process.env.CLONER_TOKEN;
  return remoteBackend(new HttpStore({ url: serverUrl(String(server)), token }));
}

export function localBackend(store: LocalStore, dir: string): Backend {
  return {
    where: `store ${dir}`,
    chunks: store,
    chunker: store.config.chunker,
    getImage: (name) => getImage(store, name),
    listImages: () => listImages(store),
    usage: () => imageUsage(store),
    commitRevision: (name, input, create) => commitRevision(store, name, input, { create }),
    layoutExists: (name) => layoutExists(store, name),
    loadLayout: (name, version) => loadLayout(store, name, version),
    saveLayout: (name, layout) => saveLayout(store, name, layout),
    listLayouts: () => listLayouts(store),
    deleteImage: (name) => deleteImage(store, name),
    putAttachment: (image, kind, item, body) => putAttachment(store, store.config.chunker, image, kind, item, body),
    getAttachment: (image, kind, item) => getAttachment(store, image, kind, item),
    listAttachments: (image) => listAttachments(store, image),
    gc: () => collectGarbage(store),
    listNodes: async () => (await listNodes(store)).map(publicView),
    deploys: async () => (await listNodes(store)).map((n) => ({ node: n.name, netboot: n.netboot, image: n.cloner_image ?? null, status: null, lastDeploy: n.lastDeploy ?? null })),
    changeNode: async (name, settings, create) => publicView(await changeNode(store, name, settings, create)),
    deleteNode: (name) => removeNode(store, name),
    power: async (name, action) => {
      const node = await getNode(store, name);
      if (!node) throw new NodeNotFoundError(`no node named ${name}`, 'list nodes with: cloner nodes list');
      return power(node, action);
    },
    identify: (query) => ('mac' in query ? identifyMac(store, query.mac) : identifyNode(store, query.node)),
    verify: () => verifyImages(store),
    bytesMark: async () => (await store.stats()).packBytes,
    transfer: () => null,
    hold: () => store.guard(),
    close: () => store.close(),
  };
}

async function remoteBackend(http: HttpStore): Promise<Backend> {
  const { chunker } = await http.requestJson<{ chunker: ChunkerParams }>('/v1/config');
  const notFound = (err: unknown) => err instanceof ServerError && err.status === 404;
  return {
    where: `server ${http.url}`,
    chunks: http,
    chunker,
    getImage: async (name) => http.requestJson<ImageRecord>(`/v1/images/${encodeURIComponent(name)}`).catch((err) => (notFound(err) && (err as ServerError).code === 'IMAGE_NOT_FOUND' ? undefined : Promise.reject(err))),
    listImages: () => http.requestJson<ImageRecord[]>('/v1/images'),
    usage: () => http.requestJson('/v1/usage'),
    commitRevision: async (name, input, create) => {
      await http.flush();
      return http.requestJson<Revision>(`/v1/images/${encodeURIComponent(name)}/revisions`, 'POST', { ...input, layout: input.layout ?? null, options: input.options ?? null, create });
    },
    layoutExists: async (name) => http.requestJson(`/v1/layouts/${encodeURIComponent(name)}`).then(() => true, (err) => (notFound(err) ? false : Promise.reject(err))),
    loadLayout: (name, version) => http.requestJson<StoredLayout>(`/v1/layouts/${encodeURIComponent(name)}${version ? `?version=${version}` : ''}`),
    // Checked here first for a precise local error; the server checks again.
    saveLayout: (name, layout) => http.requestJson(`/v1/layouts/${encodeURIComponent(name)}`, 'POST', parseLayout(layout)),
    listLayouts: () => http.requestJson('/v1/layouts'),
    deleteImage: async (name) => void (await http.request(`/v1/images/${encodeURIComponent(name)}`, { method: 'DELETE' })),
    putAttachment: async (image, kind, item, body) =>
      ((await (await http.request(attachmentRoute(image, kind, item), { method: 'PUT', body: new Uint8Array(body), headers: { 'content-type': 'application/octet-stream' } })).json()) as { version: number }).version,
    getAttachment: async (image, kind, item) => {
      const response = await http.request(attachmentRoute(image, kind, item));
      return { version: Number(response.headers.get('x-cloner-version')), body: Buffer.from(await response.arrayBuffer()) };
    },
    listAttachments: (image) => http.requestJson(`/v1/images/${encodeURIComponent(image)}/attachments`),
    gc: () => http.requestJson('/v1/gc', 'POST'),
    listNodes: () => http.requestJson('/v1/nodes'),
    deploys: () => http.requestJson('/v1/deploys'),
    changeNode: (name, settings, create) => http.requestJson(`/v1/nodes/${encodeURIComponent(name)}`, 'POST', { settings, create }),
    deleteNode: async (name) => void (await http.request(`/v1/nodes/${encodeURIComponent(name)}`, { method: 'DELETE' })),
    power: (name, action) => http.requestJson(`/v1/nodes/${encodeURIComponent(name)}/power`, 'POST', { action }),
    identify: (query) => http.requestJson(`/v1/identify?${new URLSearchParams(query)}`),
    verify: () => http.requestJson('/v1/verify', 'POST'),
    bytesMark: async () => http.uploadedBytes,
    transfer: () => ({ sent: http.uploadedBytes, alreadyStored: http.alreadyStoredBytes }),
    hold: () => ({ release: () => {} }),
    close: () => http.close(),
  };
}

const attachmentRoute = (image: string, kind: string, item: string) => `/v1/images/${encodeURIComponent(image)}/attachments/${kind}/${encodeURIComponent(item)}`;

/** Opens the backend, runs `work`, always closes it. */
export async function withBackend<T>(args: BackendArgs, work: (backend: Backend) => Promise<T>): Promise<T> {
  const backend = await openBackend(args);
  try {
    return await work(backend);
  } finally {
    await backend.close();
  }
}

/** The options every image command takes to find its images. */
export function backendOptions<T extends { option(raw: string, description: string): T }>(command: T): T {
  return command
    .option('--server <server>', 'Cloner server: host, host:port or URL (default: CLONER_SERVER or /etc/cloner/client.json)')
    .option('--token-file <file>', 'File with the server token (default: CLONER_TOKEN or the client config)')
    .option('--store <dir>', 'A local store directory instead of a server');
}
