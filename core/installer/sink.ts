/**
 * Where make-installer puts a built installer: a cloner server (the upload routes of
 * core/api/routes.ts) or a boot directory on this machine (`--store DATA/store` writes
 * DATA/boot/, what `cloner-server --data DATA` serves). Both refuse to replace an existing
 * version without `overwrite` (InstallerExistsError: the hint names --overwrite), checked
 * before the upload starts and again at the commit.
 */
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { ApiClient } from '../api/client.ts';
import { API } from '../api/endpoints.ts';
import { commitInstaller, InstallerExistsError, INSTALLER_FILES, listInstallers, receiveInstallerFile, type InstallerRecord } from './store.ts';

export interface InstallerSink {
  readonly where: string;
  list(): Promise<InstallerRecord[]>;
  put(version: string, files: { vmlinuz: string; 'initrd.img': string }, meta: { overwrite: boolean; generator?: 'initramfs-tools' | 'dracut'; buildSeconds?: number }): Promise<InstallerRecord>;
}

/** InstallerExistsError when `version` is there and `overwrite` is off. */
export async function checkOverwrite(sink: InstallerSink, version: string, overwrite: boolean): Promise<void> {
  if (!overwrite && (await sink.list()).some((i) => i.version === version)) {
    throw new InstallerExistsError(`${sink.where} already has an installer for kernel ${version}`, 'pass --overwrite to replace it');
  }
}

export class ServerInstallers implements InstallerSink {
  readonly where: string;
  private readonly api: ApiClient;

  constructor(api: ApiClient, where: string) {
    this.api = api;
    this.where = where;
  }

  list() {
    return this.api.call(API.listInstallers);
  }

  async put(version: string, files: { vmlinuz: string; 'initrd.img': string }, meta: { overwrite: boolean; generator?: 'initramfs-tools' | 'dracut'; buildSeconds?: number }) {
    await checkOverwrite(this, version, meta.overwrite);
    for (const file of INSTALLER_FILES) await this.api.upload(API.putInstallerFile, { params: { version, file } }, await readFile(files[file]));
    return this.api.call(API.commitInstaller, { params: { version }, body: meta });
  }
}

export class LocalInstallers implements InstallerSink {
  readonly where: string;
  private readonly bootDir: string;

  constructor(bootDir: string) {
    this.bootDir = bootDir;
    this.where = `boot directory ${bootDir}`;
  }

  list() {
    return listInstallers(this.bootDir);
  }

  async put(version: string, files: { vmlinuz: string; 'initrd.img': string }, meta: { overwrite: boolean; generator?: 'initramfs-tools' | 'dracut'; buildSeconds?: number }) {
    await checkOverwrite(this, version, meta.overwrite);
    for (const file of INSTALLER_FILES) await receiveInstallerFile(this.bootDir, version, file, createReadStream(files[file]));
    return commitInstaller(this.bootDir, version, meta);
  }
}
