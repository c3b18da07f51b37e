/**
 * The installers a server keeps, one per kernel version, under its boot directory
 * (DATA/boot/):
 *
 *   <version>/vmlinuz, <version>/initrd.img, <version>/installer.json  {version, created, bytes, ...}
 *   .incoming-<version>/                                              an upload not yet committed
 *
 * An upload writes each file into the incoming directory (streamed, at most
 * MAX_INSTALLER_FILE_BYTES, to a temp name renamed when whole), then `commitInstaller`
 * renames the incoming directory into place: a version is whole or absent. An existing
 * version is replaced only with `overwrite` (InstallerExistsError names the flag).
 *
 * `pickInstaller` chooses what a node boots: the installer of its image's golden kernel,
 * else the newest one with a warning (the nodes then run another kernel than their image
 * was captured with; drivers usually still match), else none.
 */
import { createWriteStream, existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ClonerError, ConflictError, NotFoundError, UsageError } from '../errors.ts';
import { isKernelVersion, newestVersion } from './kernel.ts';

export const INSTALLER_FILES = ['vmlinuz', 'initrd.img'] as const;
export type InstallerFile = (typeof INSTALLER_FILES)[number];
/** Largest kernel or initrd accepted (the size goal of both together is 80 MB). */
export const MAX_INSTALLER_FILE_BYTES = 512 * 1024 * 1024;

export interface InstallerRecord {
  version: string;
  created: string;
  bytes: { vmlinuz: number; 'initrd.img': number };
  /** What built it (initramfs-tools, dracut) and how long it took, as make-installer reported. */
  generator?: string;
  buildSeconds?: number;
}

export class InstallerExistsError extends ConflictError {
  override readonly code = 'INSTALLER_EXISTS';
}

export class InstallerNotFoundError extends NotFoundError {
  override readonly code = 'INSTALLER_NOT_FOUND';
}

export class InstallerTooLargeError extends ClonerError {
  override readonly code = 'INSTALLER_TOO_LARGE';
  override readonly status = 413;
}

function checkVersion(version: string): string {
  if (!isKernelVersion(version)) throw new UsageError(`${JSON.stringify(String(version).slice(0, 80))} is not a kernel version`, 'e.g. 6.1.0-50-amd64');
  return version;
}

export async function listInstallers(bootDir: string): Promise<InstallerRecord[]> {
  const names = existsSync(bootDir) ? await readdir(bootDir) : [];
  const out: InstallerRecord[] = [];
  for (const name of names.filter(isKernelVersion)) {
    const record = await readFile(path.join(bootDir, name, 'installer.json'), 'utf8').then((t) => JSON.parse(t) as InstallerRecord, () => null);
    if (record?.version === name) out.push(record);
  }
  return out;
}

export interface InstallerChoice {
  version: string;
  /** Set when the node gets another kernel than its image's golden one. */
  warning?: string;
}

/** The installer a node whose image was captured from kernel `wanted` boots (see the module comment). */
export function pickInstaller(versions: string[], wanted: string | null | undefined): InstallerChoice | null {
  if (wanted && versions.includes(wanted)) return { version: wanted };
  const newest = newestVersion(versions);
  if (!newest) return null;
  return { version: newest, warning: wanted ? `no installer for the image's kernel ${wanted}; using ${newest} (run cloner make-installer on the golden node)` : `the image records no golden kernel; using the installer ${newest}` };
}

/** Path of a committed installer file; InstallerNotFoundError when absent. */
export function installerFile(bootDir: string, version: string, file: InstallerFile): string {
  const p = path.join(bootDir, checkVersion(version), file);
  if (!existsSync(path.join(bootDir, version, 'installer.json')) || !existsSync(p)) {
    throw new InstallerNotFoundError(`no installer ${version} on this server`, 'build and upload one: cloner make-installer (on the golden node)');
  }
  return p;
}

/** Streams one file of an upload into the incoming directory; InstallerTooLargeError past the limit. */
export async function receiveInstallerFile(bootDir: string, version: string, file: InstallerFile, body: Readable, limit = MAX_INSTALLER_FILE_BYTES): Promise<number> {
  const dir = path.join(bootDir, `.incoming-${checkVersion(version)}`);
  await mkdir(dir, { recursive: true });
  const tmp = path.join(dir, `.${file}.${process.pid}.${Date.now()}`);
  let bytes = 0;
  const count = new Transform({
    transform(chunk: Buffer, _enc, done) {
      bytes += chunk.length;
      if (bytes > limit) done(new InstallerTooLargeError(`${file} is over ${limit} bytes`, 'an installer kernel or initrd this large is not one make-installer builds'));
      else done(null, chunk);
    },
  });
  try {
    await pipeline(body, count, createWriteStream(tmp, { mode: 0o644 }));
    await rename(tmp, path.join(dir, file));
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  return bytes;
}

/** Is there a committed installer for this version? */
export function haveInstaller(bootDir: string, version: string): boolean {
  return existsSync(path.join(bootDir, checkVersion(version), 'installer.json'));
}

/** Makes the uploaded files of `version` the installer for it (see the module comment). */
export async function commitInstaller(bootDir: string, version: string, meta: { overwrite: boolean; generator?: string; buildSeconds?: number }): Promise<InstallerRecord> {
  const incoming = path.join(bootDir, `.incoming-${checkVersion(version)}`);
  const final = path.join(bootDir, version);
  if (!meta.overwrite && haveInstaller(bootDir, version)) {
    throw new InstallerExistsError(`the server already has an installer for kernel ${version}`, 'pass --overwrite to replace it');
  }
  const bytes = { vmlinuz: 0, 'initrd.img': 0 };
  for (const file of INSTALLER_FILES) {
    const s = await stat(path.join(incoming, file)).catch(() => null);
    if (!s) throw new UsageError(`the upload of installer ${version} lacks ${file}`, 'upload vmlinuz and initrd.img, then commit');
    bytes[file] = s.size;
  }
  const record: InstallerRecord = { version, created: new Date().toISOString(), bytes, generator: meta.generator, buildSeconds: meta.buildSeconds };
  await writeFile(path.join(incoming, 'installer.json'), `${JSON.stringify(record)}\n`);
  const old = path.join(bootDir, `.old-${version}-${Date.now()}`);
  if (existsSync(final)) await rename(final, old);
  await rename(incoming, final);
  await rm(old, { recursive: true, force: true });
  return record;
}
