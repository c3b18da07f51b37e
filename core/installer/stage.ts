/**
 * What the installer carries besides the golden node's kernel, modules and tools, staged
 * in a directory tree the initramfs hook copies as it is (`<stage>/opt/cloner/...`):
 *
 *   opt/cloner/bin/node                     the project's Node 24 runtime, stripped
 *   opt/cloner/dist/agent/cloner-agent.mjs  agent/main.ts bundled by esbuild into one file,
 *                                           beside it the files its modules read (AGENT_ASSETS)
 *   opt/cloner/build/Release/fsx.node       the project's addon (core/native/fsx.ts loads
 *                                           it as ../../build/Release/fsx.node from the bundle)
 *   opt/cloner/node_modules/...             the npm packages with native code the bundle
 *                                           leaves external, with their installed platform packages
 *
 * And the deploy tools: each is looked up under the golden root's sbin/bin directories; a
 * missing one is left out with a warning naming what a deploy then cannot do.
 */
import { existsSync, readFileSync } from 'node:fs';
import { chmod, copyFile, cp, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { ClonerError } from '../errors.ts';
import { haveTool, run } from '../tools.ts';

/** npm packages with native addons: not bundled, copied with their platform packages. */
export const NATIVE_PACKAGES = ['@napi-rs/blake-hash'];

/** Files modules read beside themselves (`new URL(import.meta.url)`): beside the bundle. */
export const AGENT_ASSETS = ['core/layout/layout.schema.json'];

/** The tools a deploy runs, and what cannot be done without each. */
export const DEPLOY_TOOLS: Array<{ tool: string; without: string }> = [
  { tool: 'sfdisk', without: 'every layout (partition tables)' },
  { tool: 'wipefs', without: 'every layout (clearing old signatures)' },
  { tool: 'partx', without: 'every layout (re-reading partitions)' },
  { tool: 'blkid', without: 'every layout (file system UUIDs for fstab)' },
  { tool: 'lsblk', without: 'every layout (finding the disks)' },
  { tool: 'mount', without: 'every deploy (mounting the target)' },
  { tool: 'umount', without: 'every deploy (unmounting the target)' },
  { tool: 'chroot', without: 'post-scripts and the boot loader (they run inside the new system)' },
  { tool: 'ip', without: 'every deploy (the network)' },
  { tool: 'udevadm', without: 'every layout (waiting for new partitions)' },
  { tool: 'mkfs.ext4', without: 'layouts with ext2/3/4 file systems' },
  { tool: 'mkfs.xfs', without: 'layouts with xfs file systems' },
  { tool: 'mkfs.vfat', without: 'layouts with vfat file systems (EFI system partitions)' },
  { tool: 'mkfs.btrfs', without: 'layouts with btrfs file systems' },
  { tool: 'mkswap', without: 'layouts with swap' },
  { tool: 'mdadm', without: 'layouts with software RAID' },
  { tool: 'lvm', without: 'layouts with LVM volume groups' },
  { tool: 'efibootmgr', without: 'UEFI boot entries (layouts with an EFI system partition)' },
  { tool: 'ssh-keygen', without: 'making SSH host keys for a node that has none kept' },
  { tool: 'sync', without: 'nothing (the agent syncs through the file systems too)' },
];

const TOOL_DIRS = ['usr/sbin', 'usr/bin', 'sbin', 'bin'];

export interface ToolLookup {
  /** Absolute paths as seen inside the root. */
  found: string[];
  missing: Array<{ tool: string; without: string }>;
}

export function findTools(root: string): ToolLookup {
  const out: ToolLookup = { found: [], missing: [] };
  for (const t of DEPLOY_TOOLS) {
    const dir = TOOL_DIRS.find((d) => existsSync(path.join(root, d, t.tool)));
    if (dir) out.found.push(`/${dir}/${t.tool}`);
    else out.missing.push(t);
  }
  return out;
}

/** The project directory this code runs from (the agent, Node and the addons come from it). */
export function projectDir(): string {
  return path.resolve(new URL('../..', import.meta.url).pathname);
}

/** Copies an installed npm package and, recursively, its installed dependencies and platform packages. */
async function copyPackage(fromModules: string, name: string, toModules: string, seen: Set<string>): Promise<void> {
  if (seen.has(name)) return;
  seen.add(name);
  const dir = path.join(fromModules, name);
  const manifest = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { dependencies?: Record<string, string>; optionalDependencies?: Record<string, string> };
  await cp(dir, path.join(toModules, name), { recursive: true, dereference: true });
  for (const dep of Object.keys({ ...manifest.dependencies, ...manifest.optionalDependencies })) {
    if (existsSync(path.join(fromModules, dep, 'package.json'))) await copyPackage(fromModules, dep, toModules, seen);
  }
}

/** Bundles the agent with esbuild (one file; the native packages stay external). */
export async function bundleAgent(project: string, outfile: string): Promise<void> {
  let esbuild: typeof import('esbuild');
  try {
    esbuild = await import('esbuild');
  } catch (err) {
    throw new ClonerError('esbuild is not installed', `run npm ci in ${project}`, { cause: err });
  }
  await esbuild.build({
    entryPoints: [path.join(project, 'agent/main.ts')],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node24',
    external: [...NATIVE_PACKAGES, '*.node'],
    // CommonJS code inside an ES module bundle still calls require() for Node's built-ins.
    banner: { js: "import { createRequire as __clonerRequire } from 'node:module'; const require = __clonerRequire(import.meta.url);" },
    logLevel: 'silent',
    legalComments: 'none',
  });
}

/** Fills `stage` (see the module comment); returns warnings. */
export async function stageAgent(stage: string, project = projectDir()): Promise<string[]> {
  const warnings: string[] = [];
  const opt = path.join(stage, 'opt/cloner');
  await mkdir(path.join(opt, 'bin'), { recursive: true });
  await mkdir(path.join(opt, 'build/Release'), { recursive: true });
  await bundleAgent(project, path.join(opt, 'dist/agent/cloner-agent.mjs'));
  for (const asset of AGENT_ASSETS) await copyFile(path.join(project, asset), path.join(opt, 'dist/agent', path.basename(asset)));
  const node = path.join(project, 'node_modules/node/bin/node');
  if (!existsSync(node)) throw new ClonerError(`the project's Node 24 binary is missing at ${node}`, `run npm ci in ${project}`);
  await copyFile(node, path.join(opt, 'bin/node'));
  await chmod(path.join(opt, 'bin/node'), 0o755);
  // Node ships with its symbols (~20 MB of the ~120); the installer does not need them.
  if (haveTool('strip')) await run(['strip', '--strip-all', path.join(opt, 'bin/node')]);
  else warnings.push('strip is not installed (binutils): Node goes into the installer unstripped, about 20 MB larger');
  const fsx = path.join(project, 'build/Release/fsx.node');
  if (!existsSync(fsx)) throw new ClonerError(`the fsx addon is not built (${fsx})`, `run npm ci in ${project}`);
  await copyFile(fsx, path.join(opt, 'build/Release/fsx.node'));
  const seen = new Set<string>();
  for (const name of NATIVE_PACKAGES) await copyPackage(path.join(project, 'node_modules'), name, path.join(opt, 'node_modules'), seen);
  return warnings;
}
