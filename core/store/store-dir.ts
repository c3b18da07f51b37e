/**
 * The on-disk layout of a local store directory, its config file and the durable-write
 * helpers every part of the store uses:
 *
 *   DIR/config.json        format version and chunker parameters (every client cuts alike)
 *   DIR/index/             LevelDB: chunk locations (location-index.ts) and refs (refs.ts)
 *   DIR/packs/ab/<id>.pack pack files (see pack.ts), fanned out by the first byte of the id
 *   DIR/tmp/               packs being written; removed on open (nothing points at them)
 *
 *   DIR/reserve            space given back when the disk is full (space.ts)
 *
 * "Durable" means fsynced, renamed into place, and the directory fsynced, so a crash never
 * leaves a half-written file under its final name.
 *
 * Modes: the store holds image data (a golden node's /etc/shadow), BMC passwords and SSH
 * host private keys, so its directories are 0700 and its files 0600 whatever the umask or
 * the mode a directory was made with; `restrictModes` puts an existing store right.
 */
import * as fs from 'node:fs/promises';
import path from 'node:path';
import { DEFAULT_CHUNKER_PARAMS, validateChunkerParams, type ChunkerParams } from '../chunker/fastcdc.ts';
import { StoreFormatError } from './errors.ts';

export const STORE_FORMAT = 1;

export interface StoreConfig {
  format: number;
  chunker: ChunkerParams;
}

/** A pack id: 16 lowercase hex digits (8 random bytes). */
export type PackId = string;

/** DIR/packs/ab/<pack>.pack */
export function packPath(dir: string, pack: PackId): string {
  return path.join(dir, 'packs', pack.slice(0, 2), `${pack}.pack`);
}

/** The index directory (LevelDB) of the store at `dir`. */
export function indexPath(dir: string): string {
  return path.join(dir, 'index');
}

/** Ids of every pack file under DIR/packs, sorted; other files there are ignored. */
export async function listPacks(dir: string): Promise<PackId[]> {
  const out: PackId[] = [];
  for (const fan of await fs.readdir(path.join(dir, 'packs'))) {
    for (const f of await fs.readdir(path.join(dir, 'packs', fan))) {
      if (/^[0-9a-f]{16}\.pack$/.test(f)) out.push(f.slice(0, 16));
    }
  }
  return out.sort();
}

/**
 * Reads DIR/config.json, or with `create` writes a new one (chunker parameters from
 * `chunker`, default DEFAULT_CHUNKER_PARAMS) when there is none. Then makes sure packs/
 * exists and empties tmp/. Throws StoreFormatError when there is no store and `create`
 * is false, or when the config is not valid JSON or of another format.
 */
export async function prepareStoreDir(dir: string, opts: { create?: boolean; chunker?: ChunkerParams }): Promise<StoreConfig> {
  const configPath = path.join(dir, 'config.json');
  let config: StoreConfig;
  try {
    config = parseConfig(await fs.readFile(configPath, 'utf8'), configPath);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    if (!opts.create) {
      throw new StoreFormatError(`no store at ${dir}`, 'check the path, or create a store with new-image --init');
    }
    config = { format: STORE_FORMAT, chunker: validateChunkerParams({ ...(opts.chunker ?? DEFAULT_CHUNKER_PARAMS) }) };
    await fs.mkdir(path.join(dir, 'packs'), { recursive: true, mode: 0o700 });
    await writeFileDurably(configPath, JSON.stringify(config, null, 2) + '\n');
  }
  await fs.mkdir(path.join(dir, 'packs'), { recursive: true, mode: 0o700 });
  // Packs still in tmp/ were never renamed into place, so nothing points at them. They are
  // unlinked one by one rather than tmp/ re-made, which needs no free block on a full disk.
  const tmp = path.join(dir, 'tmp');
  await fs.mkdir(tmp, { recursive: true, mode: 0o700 });
  for (const f of await fs.readdir(tmp)) await fs.rm(path.join(tmp, f), { recursive: true, force: true });
  return config;
}

/**
 * Sets DIR, its index/, packs/ and tmp/ to 0700 and the files of index/ and config.json
 * to 0600 (the directories alone already keep others out of every file below them).
 */
export async function restrictModes(dir: string): Promise<void> {
  for (const d of [dir, indexPath(dir), path.join(dir, 'packs'), path.join(dir, 'tmp')]) await chmodIfLoose(d, 0o700);
  await chmodIfLoose(path.join(dir, 'config.json'), 0o600);
  for (const f of await fs.readdir(indexPath(dir))) await chmodIfLoose(path.join(indexPath(dir), f), 0o600);
}

async function chmodIfLoose(file: string, mode: number): Promise<void> {
  try {
    if (((await fs.stat(file)).mode & 0o077) !== 0) await fs.chmod(file, mode);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

function parseConfig(text: string, where: string): StoreConfig {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new StoreFormatError(`${where} is not valid JSON`, 'restore it from a backup; it holds the chunker parameters');
  }
  const cfg = value as StoreConfig;
  if (cfg?.format !== STORE_FORMAT) {
    throw new StoreFormatError(`${where}: unsupported store format ${JSON.stringify(cfg?.format)}`, `this cloner reads format ${STORE_FORMAT}`);
  }
  return { format: cfg.format, chunker: validateChunkerParams(cfg.chunker) };
}

/** fsyncs a directory, so the renames and creations in it survive a crash. */
export async function fsyncDir(dir: string): Promise<void> {
  const handle = await fs.open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Writes `file` whole or not at all: a flushed temp file renamed over it, then its directory fsynced. */
export async function writeFileDurably(file: string, content: string | Buffer): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  await fs.writeFile(tmp, content, { flush: true, mode: 0o600 });
  await fs.rename(tmp, file);
  await fsyncDir(path.dirname(file));
}
