/**
 * Where the CLI's images live: a cloner server (`--server`, the normal case) or a local
 * store directory (`--store`). Both give the same operations, so commands are written
 * once: chunk I/O (LocalStore or HttpStore), image records, revision commits and layouts.
 *
 * The server comes from --server (host, host:port or URL; port 8740 by default), else
 * CLONER_SERVER, else /etc/cloner/client.json {"server": ..., "tokenFile": ...}. The token
 * from --token-file, else CLONER_TOKEN, else the client config's tokenFile.
 *
 * This file is what every command loads to parse its flags, so it holds only types and the
 * choice of backend: the implementations (backend-local.ts: LevelDB and the whole core;
 * backend-remote.ts: the API client) are imported when a command opens one, which keeps
 * `cloner --help` and `cloner image-list` from loading LevelDB (bench/startup.ts).
 */
import { readFile } from 'node:fs/promises';
import type { ChunkerParams } from '../core/chunker/fastcdc.ts';
import type { StoredLayout } from '../core/layout/store.ts';
import type { Layout } from '../core/layout/model.ts';
import type { DeployRow } from '../core/nodes/deploy.ts';
import type { ChunkReader, ChunkWriter, PruneReport } from '../core/store/interfaces.ts';
import type { ImageRecord, ImageVerifyReport, LeftOutPath, Revision, RevisionStats } from '../core/tree/images.ts';
import type { AttachmentKind } from '../core/tree/attachments.ts';
import type { PowerAction, PowerResult } from '../core/nodes/power.ts';
import type { Assignment, NodeRecord } from '../core/nodes/registry.ts';
import type { HistoryEntry } from '../core/nodes/history.ts';
import type { MaintenanceState } from '../core/tree/maintenance.ts';
import { UsageError } from './errors.ts';

export interface RevisionInput {
  tree: string;
  layout?: string | null;
  options?: string | null;
  note?: string;
  stats: RevisionStats;
  leftOut?: LeftOutPath[];
}

/** Capturing and restoring image data: chunk I/O and revisions. */
export interface ImageData {
  /** "server http://head:8740" or "store /srv/images", for messages. */
  readonly where: string;
  readonly chunks: ChunkReader & ChunkWriter;
  readonly chunker: ChunkerParams;
  getImage(name: string): Promise<ImageRecord | undefined>;
  commitRevision(name: string, input: RevisionInput, create: boolean): Promise<Revision>;
  /** Bytes stored (local) or sent (server) so far, to report what an upload added. */
  bytesMark(): Promise<number>;
  /** What uploads sent (bytes on the wire, and the raw bytes of those chunks) and skipped as the server had it (raw bytes); null for a local store. */
  transfer(): { sent: number; sentRaw: number; alreadyStored: number } | null;
  /** Keeps chunks an upload relies on from a concurrent local GC (a no-op on a server). */
  hold(): { release(): void };
}

/** The image catalogue and its attachments (scripts, BIOS settings). */
export interface ImageCatalogue {
  listImages(): Promise<ImageRecord[]>;
  /** Stored bytes per image: only its own chunks, and all it refers to. */
  usage(): Promise<Array<{ name: string; uniqueBytes: number; totalBytes: number }>>;
  deleteImage(name: string): Promise<void>;
  putAttachment(image: string, kind: AttachmentKind, item: string, body: Uint8Array): Promise<number>;
  getAttachment(image: string, kind: AttachmentKind, item: string): Promise<{ version: number; body: Buffer }>;
  listAttachments(image: string): Promise<Array<{ kind: AttachmentKind; item: string; versions: number; updated: string }>>;
}

/** Versioned disk layouts. */
export interface Layouts {
  layoutExists(name: string): Promise<boolean>;
  loadLayout(name: string, version?: number): Promise<StoredLayout>;
  saveLayout(name: string, layout: Layout | string): Promise<{ name: string; version: number }>;
  listLayouts(): Promise<Array<{ name: string; versions: number; updated: string }>>;
  /** Deletes one version (the layout with its last one, unless an image or node uses it). */
  deleteLayoutVersion(name: string, version: number): Promise<{ name: string; deleted: number; latest: number | null }>;
  /** Makes an earlier version the latest again (a new version with its content). */
  rollbackLayout(name: string, version: number): Promise<{ name: string; version: number; from: number }>;
}

/** The node registry, power and deploys. */
export interface Nodes {
  listNodes(): Promise<NodeRecord[]>;
  /** Every node's deploy: live status (a server's only) and last result. */
  deploys(): Promise<DeployRow[]>;
  /** Applies key=value settings to a node (creating it with `create`); the result as clients see it. */
  changeNode(name: string, settings: string[], create: boolean): Promise<NodeRecord>;
  /** Removes a node with its deploy token and SSH host keys. */
  deleteNode(name: string): Promise<void>;
  power(name: string, action: PowerAction): Promise<PowerResult>;
  /** A node's past deploys, newest first. */
  history(name: string): Promise<HistoryEntry[]>;
  /** Puts a node in a group, or takes it out (`remove`); the node as clients see it. */
  group(name: string, group: string, remove: boolean): Promise<NodeRecord>;
  identify(query: { mac: string } | { node: string }): Promise<Assignment>;
}

/** Store maintenance. */
export interface Maintenance {
  gc(): Promise<PruneReport & { liveChunks: number }>;
  verify(): Promise<ImageVerifyReport>;
  /** When gc and verify last ran, and what they found. */
  maintenance(): Promise<MaintenanceState>;
}

/**
 * Where the CLI's images live, as one object: each command uses the part it needs
 * (ImageData, ImageCatalogue, Layouts, Nodes, Maintenance). The local implementation calls
 * the same core functions the server's routes call; the remote one the typed API client.
 */
export interface Backend extends ImageData, ImageCatalogue, Layouts, Nodes, Maintenance {
  close(): Promise<void>;
}

export type { DeployRow };

export interface BackendArgs {
  store?: string;
  server?: string;
  tokenFile?: string;
  init?: boolean;
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
  if (args.store) {
    const [{ LocalStore }, { localBackend }] = await Promise.all([import('../core/store/local.ts'), import('./backend-local.ts')]);
    return localBackend(await LocalStore.open(String(args.store), { create: !!args.init }), String(args.store));
  }
  const config = await clientConfig();
  const server = args.server ?? process.env.CLONER_SERVER ?? config.server;
  if (!server) throw new UsageError('no server given', 'pass --server HOST (or set CLONER_SERVER, or /etc/cloner/client.json); --store DIR uses a local store');
  const tokenFile = args.tokenFile ?? (process.env.CLONER_TOKEN ? undefined : config.tokenFile);
  const token = tokenFile ? await readToken(String(tokenFile)) : process.env.CLONER_TOKEN;
  const [{ HttpStore }, { serverUrl }, { remoteBackend }] = await Promise.all([import('../core/store/http.ts'), import('../core/api/url.ts'), import('./backend-remote.ts')]);
  return remoteBackend(new HttpStore({ url: serverUrl(String(server)), token }));
}

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
