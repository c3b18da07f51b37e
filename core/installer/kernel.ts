/**
 * Kernel versions: the name an installer is kept under, and the version an image's golden
 * node ran, so /boot.ipxe can hand a node an installer whose kernel matches its image.
 *
 * A version is a `uname -r` string (`6.1.0-50-amd64`); anything else (a `/`, `..`, blanks,
 * over 64 characters) is refused, so one is safe as a directory name and in a URL.
 * Versions sort by their numeric runs (`6.1.0-9` < `6.1.0-50`), as `sort -V` does.
 * The golden's version is read from the captured tree itself: the newest of
 * `/usr/lib/modules/*` (or `/lib/modules/*`) that also has `/boot/vmlinuz-V`, else the newest
 * modules directory, else the newest `/boot/vmlinuz-*`.
 */
import { readdirSync, existsSync } from 'node:fs';
import path from 'node:path';
import { UsageError } from '../errors.ts';
import type { ChunkId } from '../store/chunk-id.ts';
import type { ChunkReader } from '../store/interfaces.ts';
import { getJsonObject } from '../store/objects.ts';
import { parseDirectory, type DirectoryObject } from '../tree/manifest.ts';

export const KERNEL_VERSION_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._+~-]{0,63}$';
const KERNEL_VERSION_RE = new RegExp(KERNEL_VERSION_PATTERN);

export function isKernelVersion(value: unknown): value is string {
  return typeof value === 'string' && KERNEL_VERSION_RE.test(value) && !value.includes('..');
}

/** Like `sort -V`: digit runs compare as numbers, the rest as text. */
export function compareKernelVersions(a: string, b: string): number {
  const pa = a.match(/\d+|\D+/g) ?? [];
  const pb = b.match(/\d+|\D+/g) ?? [];
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i];
    const y = pb[i];
    if (x === undefined) return -1;
    if (y === undefined) return 1;
    if (x === y) continue;
    const nx = /^\d/.test(x);
    const ny = /^\d/.test(y);
    if (nx && ny) return Number(x) - Number(y) || x.localeCompare(y);
    return x < y ? -1 : 1;
  }
  return 0;
}

export function newestVersion(versions: Iterable<string>): string | null {
  return [...versions].filter(isKernelVersion).sort(compareKernelVersions).at(-1) ?? null;
}

/** Picks the golden's version from what a root holds: module directories and /boot kernels. */
export function pickGoldenVersion(modules: string[], bootFiles: string[]): string | null {
  const kernels = bootFiles.filter((f) => f.startsWith('vmlinuz-')).map((f) => f.slice('vmlinuz-'.length));
  const both = modules.filter((m) => kernels.includes(m));
  return newestVersion(both) ?? newestVersion(modules) ?? newestVersion(kernels);
}

/** The kernel a directory tree boots: `--kernel-version` checked against it, else the newest with modules. */
export function kernelInRoot(root: string, wanted?: string): { version: string; vmlinuz: string; modules: string } {
  const list = (dir: string) => (existsSync(dir) ? readdirSync(dir) : []);
  const modulesDir = existsSync(path.join(root, 'usr/lib/modules')) ? path.join(root, 'usr/lib/modules') : path.join(root, 'lib/modules');
  const bootFiles = list(path.join(root, 'boot'));
  if (wanted !== undefined && !isKernelVersion(wanted)) throw new UsageError(`--kernel-version ${JSON.stringify(wanted)} is not a kernel version`, 'e.g. --kernel-version 6.1.0-50-amd64 (ls /lib/modules)');
  const version = wanted ?? pickGoldenVersion(list(modulesDir), bootFiles);
  if (!version) throw new UsageError(`no kernel under ${root} (no /boot/vmlinuz-* nor /lib/modules/*)`, 'install the distribution kernel on the golden node, or pass --root at a tree that has one');
  const vmlinuz = path.join(root, 'boot', `vmlinuz-${version}`);
  const modules = path.join(modulesDir, version);
  if (!existsSync(vmlinuz)) throw new UsageError(`${vmlinuz} is missing`, `installed kernels there: ${bootFiles.filter((f) => f.startsWith('vmlinuz-')).join(', ') || 'none'}`);
  if (!existsSync(modules)) throw new UsageError(`${modules} is missing: the kernel ${version} has no modules`, 'reinstall the kernel package on the golden node');
  return { version, vmlinuz, modules };
}

/** The golden kernel version recorded in a captured tree (see the module comment), or null. */
export async function treeKernelVersion(reader: Pick<ChunkReader, 'get' | 'getMany'>, tree: ChunkId): Promise<string | null> {
  const dirAt = async (from: DirectoryObject, names: string[], where: string): Promise<DirectoryObject | null> => {
    let dir = from;
    for (const name of names) {
      const entry = dir.entries.find((e) => e.name === name);
      if (entry?.type !== 'dir') return null;
      dir = parseDirectory(await getJsonObject(reader, entry.tree), `${where}/${name}`);
    }
    return dir;
  };
  const root = parseDirectory(await getJsonObject(reader, tree), '/');
  const modules = (await dirAt(root, ['usr', 'lib', 'modules'], '')) ?? (await dirAt(root, ['lib', 'modules'], ''));
  const boot = await dirAt(root, ['boot'], '');
  return pickGoldenVersion(modules?.entries.filter((e) => e.type === 'dir').map((e) => e.name) ?? [], boot?.entries.map((e) => e.name) ?? []);
}
