/**
 * Real loop-device disks for tests: sparse backing files attached with losetup, always
 * cleaned up (filesystems on them unmounted, partitions dropped, devices detached, files
 * removed), also when the test fails.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdir, open, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { withTempDir } from './fixtures.ts';
import { haveTool } from '../../core/tools.ts';

/** Why loop-device tests cannot run here, or null. */
export function loopUnavailable(): string | null {
  if (process.getuid?.() !== 0) return 'loop devices need root';
  for (const tool of ['losetup', 'sfdisk', 'partx', 'wipefs', 'mkfs.ext4', 'mkfs.xfs', 'mkswap']) {
    if (!haveTool(tool)) return `${tool} is not installed (scripts/setup.sh installs it)`;
  }
  const probe = spawnSync('losetup', ['-f'], { encoding: 'utf8' });
  if (probe.status !== 0) return `no free loop device (${probe.stderr.trim()})`;
  return null;
}

export function sh(argv: string[], input?: string): string {
  return execFileSync(argv[0], argv.slice(1), { encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'] });
}

/** Unmounts everything mounted from a loop device or its partitions, deepest first. */
export function releaseLoop(device: string): void {
  const listed = spawnSync('lsblk', ['-J', '-o', 'PATH,MOUNTPOINTS', device], { encoding: 'utf8' });
  if (listed.status === 0) {
    const mounts: string[] = [];
    const walk = (nodes: Array<{ mountpoints?: (string | null)[]; children?: unknown[] }>) => {
      for (const n of nodes) {
        mounts.push(...(n.mountpoints ?? []).filter((m): m is string => !!m && m !== '[SWAP]'));
        walk((n.children ?? []) as typeof nodes);
      }
    };
    walk(JSON.parse(listed.stdout).blockdevices);
    for (const m of mounts.sort((a, b) => b.length - a.length)) spawnSync('umount', ['-l', m]);
  }
  spawnSync('swapoff', [device]);
  spawnSync('partx', ['-d', device]);
}

/** Attaches a loop device per size (e.g. '1200M'), runs `work`, and always cleans up. */
export async function withLoopDisks<T>(sizes: string[], work: (devices: string[], dir: string) => Promise<T>): Promise<T> {
  return withTempDir(async (dir) => {
    const devices: string[] = [];
    try {
      for (const [i, size] of sizes.entries()) {
        const file = path.join(dir, `disk${i}.img`);
        const m = /^(\d+)([MG])$/.exec(size);
        if (!m) throw new Error(`bad loop disk size ${size}`);
        const handle = await open(file, 'wx');
        await handle.truncate(Number(m[1]) * 1024 ** (m[2] === 'G' ? 3 : 2));
        await handle.close();
        devices.push(sh(['losetup', '-f', '--show', file]).trim());
      }
      return await work(devices, dir);
    } finally {
      for (const device of devices) {
        releaseLoop(device);
        spawnSync('losetup', ['-d', device]);
      }
      await rm(dir, { recursive: true, force: true });
    }
  });
}

/**
 * A golden disk on a loop device: GPT with swap (64 MiB), an ext4 root (400 MiB) and an xfs
 * /data taking the rest, mounted at DIR/golden with an /etc/fstab. Returns the root.
 */
export async function makeGoldenDisk(device: string, dir: string): Promise<string> {
  sh(['sfdisk', '--quiet', device], 'label: gpt\nsize=64MiB, type=swap, name=swap\nsize=400MiB, type=linux, name=root\ntype=linux, name=data\n');
  sh(['partx', '-u', device]);
  sh(['mkswap', '-L', 'gswap', `${device}p1`]);
  sh(['mkfs.ext4', '-q', '-L', 'groot', `${device}p2`]);
  sh(['mkfs.xfs', '-q', '-L', 'gdata', `${device}p3`]);
  const root = path.join(dir, 'golden');
  await mkdir(root);
  sh(['mount', `${device}p2`, root]);
  await mkdir(path.join(root, 'data'));
  sh(['mount', `${device}p3`, path.join(root, 'data')]);
  await mkdir(path.join(root, 'etc'));
  await writeFile(path.join(root, 'etc/fstab'), 'LABEL=groot / ext4 errors=remount-ro 0 1\nLABEL=gdata /data xfs noatime 0 0\nLABEL=gswap none swap sw 0 0\n');
  await writeFile(path.join(root, 'data/payload'), 'golden data\n');
  return root;
}
