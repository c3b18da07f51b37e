/**
 * A real OS tree for benches and the full-fidelity test: Debian bookworm minbase plus a
 * few packages, made once by mmdebstrap (or debootstrap) and cached outside the repo
 * ($CLONER_BENCH_CACHE, default /var/cache/cloner-bench). With `extraPackages`, the same
 * tree with those packages installed too (a "package install" update of it), cached apart.
 * `ensureNodeTree` makes the bigger "real node" tree of bench:peers the same way (systemd,
 * openssh-server, build-essential, python3, a kernel, GRUB EFI, vim).
 * Returns its path, or a reason it cannot be made here.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { haveTool } from '../core/tools.ts';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';

export type TreeFound = { tree: string } | { skip: string };

export async function ensureDebianTree(extraPackages: string[] = []): Promise<TreeFound> {
  if (process.env.CLONER_BENCH_TREE && !extraPackages.length) {
    return existsSync(process.env.CLONER_BENCH_TREE) ? { tree: process.env.CLONER_BENCH_TREE } : { skip: `CLONER_BENCH_TREE ${process.env.CLONER_BENCH_TREE} does not exist` };
  }
  return buildTree('bookworm-minbase', ['openssh-server', 'iproute2', 'less', 'vim-tiny', ...extraPackages], extraPackages);
}

/** The packages of bench:peers' node tree (bookworm minbase + these). */
export const NODE_PACKAGES = ['systemd', 'systemd-sysv', 'openssh-server', 'build-essential', 'python3', 'linux-image-amd64', 'grub-efi-amd64-bin', 'vim', 'iproute2', 'less'];

/** bench:peers' node tree, or with `extraPackages` its update (the same plus those). */
export async function ensureNodeTree(extraPackages: string[] = []): Promise<TreeFound> {
  return buildTree('bookworm-node', [...NODE_PACKAGES, ...extraPackages], extraPackages);
}

async function buildTree(name: string, packages: string[], extraPackages: string[]): Promise<TreeFound> {
  const cache = process.env.CLONER_BENCH_CACHE ?? '/var/cache/cloner-bench';
  const tree = path.join(cache, [name, ...extraPackages].join('+'));
  if (existsSync(tree)) return { tree };
  if (process.getuid?.() !== 0) return { skip: 'building the Debian tree needs root' };
  // mmdebstrap makes the same tree as debootstrap in a fifth of the time; either will do.
  const tool = ['mmdebstrap', 'debootstrap'].find(haveTool);
  if (!tool) return { skip: 'neither mmdebstrap nor debootstrap is installed (scripts/setup.sh installs them)' };
  const tmp = `${tree}.tmp`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(cache, { recursive: true });
  const quiet = tool === 'mmdebstrap' ? ['--quiet', '--mode=root'] : [];
  console.error(`building ${tree} with ${tool} (once; cached afterwards)`);
  execFileSync(tool, [...quiet, '--variant=minbase', `--include=${packages.join(',')}`, 'bookworm', tmp, 'http://deb.debian.org/debian'], { stdio: ['ignore', 'ignore', 'inherit'] });
  execFileSync('mv', [tmp, tree]);
  return { tree };
}

/**
 * The node tree `n` times over, for bench:peers `--scale N`: the tree itself at the top
 * (so the agent's boot loader phase finds /boot and /etc as on a node) and n - 1 copies of it
 * under /srv/scale/copy-K. So that the copies are not all duplicate chunks, copy K has every
 * 8th regular file (counted from K) appended a line naming the copy (its last chunk changes)
 * and one file of 16 MiB of its own random bytes. Cached beside the node tree
 * ($CLONER_BENCH_CACHE/bookworm-node-xN); ~1.1 GB a copy: check the disk first (`df`).
 */
export async function ensureScaledTree(base: string, n: number): Promise<TreeFound> {
  const tree = `${base}-x${n}`;
  if (existsSync(tree)) return { tree };
  if (process.getuid?.() !== 0) return { skip: `building the ${n}x tree needs root` };
  const tmp = `${tree}.tmp`;
  await rm(tmp, { recursive: true, force: true });
  console.error(`building ${tree}: ${n} copies of ${base} with variations (once; cached afterwards)`);
  await mkdir(tmp, { recursive: true });
  execFileSync('cp', ['-a', `${base}/.`, tmp], { stdio: 'inherit' });
  for (let k = 1; k < n; k++) {
    const copy = path.join(tmp, 'srv/scale', `copy-${k}`);
    await mkdir(copy, { recursive: true });
    execFileSync('cp', ['-a', `${base}/.`, copy], { stdio: 'inherit' });
    const vary = `find "$1" -xdev -type f -size +0 | awk -v k="$2" 'NR % 8 == k % 8' | while IFS= read -r f; do printf 'scale copy %s\\n' "$2" >> "$f"; done; head -c 16777216 /dev/urandom > "$1/random-$2.bin"`;
    execFileSync('bash', ['-c', vary, 'vary', copy, String(k)], { stdio: 'inherit' });
  }
  execFileSync('mv', [tmp, tree]);
  return { tree };
}
