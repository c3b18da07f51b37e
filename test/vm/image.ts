/**
 * The test VM's root image: Debian bookworm with the kernel, udev, mdadm, lvm2, the
 * partitioning and mkfs tools, efibootmgr and GRUB's EFI modules, plus the project's own
 * Node 24 binary, made once and cached outside the repo.
 *
 * Algorithm: the recipe (suite, packages, initramfs modules, the baked PID-1 script, the
 * Node version) is hashed into a cache key; `$CLONER_VM_CACHE/<key>/` (default
 * /var/cache/cloner-vm) holds `root.img` (ext4, made with `mkfs.ext4 -d` from the tree,
 * so no loop mount), `vmlinuz` and `initrd.img`. A build runs mmdebstrap (an apt-based
 * debootstrap: ~1 min here against ~5 for debootstrap) into `<key>.tmp`, shrinks the
 * initramfs to the virtio modules the VM boots from, and renames the finished directory
 * into place, so a cache entry is whole or absent. Other keys' entries are removed then.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { haveTool } from '../../core/tools.ts';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, copyFile, mkdir, readdir, rm, writeFile, rename, rmdir, stat } from 'node:fs/promises';
import path from 'node:path';

export const VM_RECIPE = {
  suite: 'bookworm',
  mirror: 'http://deb.debian.org/debian',
  packages: [
    'linux-image-amd64', 'systemd', 'systemd-sysv', 'udev', 'kmod', 'iproute2', 'procps',
    'mdadm', 'lvm2', 'fdisk', 'gdisk', 'dosfstools', 'e2fsprogs', 'xfsprogs', 'btrfs-progs',
    'util-linux', 'efibootmgr', 'grub-efi-amd64-bin', 'grub2-common', 'rsync', 'attr', 'acl',
    // make-installer's dracut path (test/installer/make-installer-dracut.test.ts). dracut-core,
    // unlike `dracut`, does not conflict with initramfs-tools and has no kernel postinst hook, so
    // the golden's own initramfs stays initramfs-tools'; dracut-network holds bookworm's network
    // modules (network-legacy: dhclient from isc-dhcp-client). Its dracut-shutdown.service is a
    // no-op after an initramfs-tools boot (it needs dracut's /run/initramfs/.need_shutdown).
    'dracut-core', 'dracut-network',
  ],
  /** What the initramfs needs to find and mount the virtio root; mdadm and lvm2 add their own. */
  initramfsModules: ['virtio_pci', 'virtio_blk', 'ext4'],
  rootImageSize: '4G',
};

/** PID 1 baked into the image: mounts the job share and hands over to the agent the host put there. */
export const VM_INIT = `#!/bin/sh
# cloner-vm-init: PID 1 of a Cloner test VM. Mounts the host's job share (9p) and runs the
# agent found there; with no share it powers off.
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH
mountpoint -q /proc || mount -t proc proc /proc
mountpoint -q /sys || mount -t sysfs sysfs /sys
mountpoint -q /dev || mount -t devtmpfs devtmpfs /dev
modprobe 9pnet_virtio 2>/dev/null
modprobe 9p 2>/dev/null
mkdir -p /job
if mount -t 9p -o trans=virtio,version=9p2000.L,msize=1048576,cache=none cloner-job /job && [ -f /job/agent.sh ]; then
  exec /bin/bash /job/agent.sh
fi
echo "cloner-vm-init: no job share with an agent; powering off" >/dev/console
echo o >/proc/sysrq-trigger
sleep 60
`;

/**
 * qemu's accelerator arguments for the test VMs under software emulation: single-threaded
 * TCG. With `thread=multi` (one host thread per vCPU), Node in a 2-vCPU guest died of
 * SIGSEGV or SIGTRAP in 5 of 120 short runs on this host (qemu 7.2, mostly in start-up and
 * exit, where V8's threads race over freshly written code); with `thread=single` 0 of 120,
 * and the run took less wall time (843 s against 1012 s) on the 2-core host. `npm run
 * bench:tcg-crash` runs that comparison again.
 */
export const TCG_ACCEL = ['-accel', 'tcg,thread=single'];

export interface VmImage {
  dir: string;
  rootImage: string;
  kernel: string;
  initrd: string;
}

export function vmCacheRoot(): string {
  return process.env.CLONER_VM_CACHE ?? '/var/cache/cloner-vm';
}

export function projectRoot(): string {
  return path.resolve(new URL('../..', import.meta.url).pathname);
}

function nodeBinary(): string {
  return path.join(projectRoot(), 'node_modules/node/bin/node');
}

export function vmImageKey(): string {
  const nodeVersion = execFileSync(nodeBinary(), ['--version'], { encoding: 'utf8' }).trim();
  const recipe = JSON.stringify({ ...VM_RECIPE, init: VM_INIT, nodeVersion, format: 1 });
  return createHash('sha256').update(recipe).digest('hex').slice(0, 16);
}

/** Why the image cannot be built here, or null. A cached image needs none of this. */
export function vmImageBuildBlocker(): string | null {
  if (process.getuid?.() !== 0) return 'building the VM image needs root (mmdebstrap --mode=root, mkfs.ext4 -d keeping owners)';
  for (const tool of ['mmdebstrap', 'mkfs.ext4']) {
    if (!haveTool(tool)) return `${tool} is not installed (scripts/setup.sh installs it)`;
  }
  if (!existsSync(nodeBinary())) return `the project's Node 24 binary is missing at ${nodeBinary()} (run npm install)`;
  return null;
}

function imageIn(dir: string): VmImage {
  return { dir, rootImage: path.join(dir, 'root.img'), kernel: path.join(dir, 'vmlinuz'), initrd: path.join(dir, 'initrd.img') };
}

export function cachedVmImage(): VmImage | null {
  const image = imageIn(path.join(vmCacheRoot(), vmImageKey()));
  return existsSync(path.join(image.dir, 'recipe.json')) ? image : null;
}

/** The cached image, built first if missing (about a minute and a half here). */
export async function ensureVmImage(log: (line: string) => void = () => {}): Promise<VmImage> {
  const cached = cachedVmImage();
  if (cached) return cached;
  const blocker = vmImageBuildBlocker();
  if (blocker) throw new Error(`cannot build the VM image: ${blocker}`);
  const cache = vmCacheRoot();
  await mkdir(cache, { recursive: true });
  const lock = path.join(cache, 'build.lock');
  await acquireLock(lock);
  try {
    const again = cachedVmImage();
    if (again) return again;
    const key = vmImageKey();
    const final = path.join(cache, key);
    const tmp = `${final}.tmp`;
    await rm(tmp, { recursive: true, force: true });
    await mkdir(tmp);
    const tree = path.join(tmp, 'tree');
    const started = performance.now();
    log(`vm image: mmdebstrap ${VM_RECIPE.suite} into ${tree}`);
    // The initramfs settings go in before the kernel is installed, so it is built small once.
    const setup = [
      'mkdir -p "$1/etc/initramfs-tools/conf.d" "$1/etc/initramfs-tools/hooks"',
      'echo MODULES=list > "$1/etc/initramfs-tools/conf.d/cloner-vm"',
      `printf '%s\\n' '#!/bin/sh' '[ "$1" = prereqs ] && exit 0' '. /usr/share/initramfs-tools/hook-functions' 'manual_add_modules ${VM_RECIPE.initramfsModules.join(' ')}' > "$1/etc/initramfs-tools/hooks/cloner-vm"`,
      'chmod 0755 "$1/etc/initramfs-tools/hooks/cloner-vm"',
    ].join(' && ');
    const result = spawnSync('mmdebstrap', [
      '--variant=minbase', '--mode=root', '--quiet',
      `--include=${VM_RECIPE.packages.join(',')}`,
      `--setup-hook=${setup}`,
      VM_RECIPE.suite, tree, VM_RECIPE.mirror,
    ], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20 });
    if (result.status !== 0) throw new Error(`mmdebstrap failed (exit ${result.status}): ${(result.stderr || result.stdout).trim().split('\n').slice(-5).join(' | ')}`);
    await customizeTree(tree);
    const boot = await readdir(path.join(tree, 'boot'));
    const kernel = boot.find((f) => f.startsWith('vmlinuz-'));
    const initrd = boot.find((f) => f.startsWith('initrd.img-'));
    if (!kernel || !initrd) throw new Error(`the VM tree has no kernel or initrd in /boot (found: ${boot.join(', ')})`);
    await copyFile(path.join(tree, 'boot', kernel), path.join(tmp, 'vmlinuz'));
    await copyFile(path.join(tree, 'boot', initrd), path.join(tmp, 'initrd.img'));
    log('vm image: mkfs.ext4 -d');
    execFileSync('mkfs.ext4', ['-q', '-F', '-L', 'cloner-vm', '-d', tree, path.join(tmp, 'root.img'), VM_RECIPE.rootImageSize], { stdio: ['ignore', 'ignore', 'pipe'] });
    await rm(tree, { recursive: true, force: true });
    await writeFile(path.join(tmp, 'recipe.json'), `${JSON.stringify({ key, ...VM_RECIPE, kernel, seconds: Math.round((performance.now() - started) / 1000) }, null, 2)}\n`);
    await rename(tmp, final);
    for (const entry of await readdir(cache)) {
      if (entry !== key && entry !== 'build.lock' && /^[0-9a-f]{16}(\.tmp)?$/.test(entry)) await rm(path.join(cache, entry), { recursive: true, force: true });
    }
    log(`vm image: ready in ${Math.round((performance.now() - started) / 1000)} s (${final})`);
    return imageIn(final);
  } finally {
    await rmdir(lock).catch(() => {});
  }
}

async function customizeTree(tree: string): Promise<void> {
  await mkdir(path.join(tree, 'usr/local/sbin'), { recursive: true });
  await writeFile(path.join(tree, 'usr/local/sbin/cloner-vm-init'), VM_INIT);
  await chmod(path.join(tree, 'usr/local/sbin/cloner-vm-init'), 0o755);
  await copyFile(nodeBinary(), path.join(tree, 'usr/local/bin/node'));
  await chmod(path.join(tree, 'usr/local/bin/node'), 0o755);
  await writeFile(path.join(tree, 'etc/hostname'), 'cloner-vm\n');
  await writeFile(path.join(tree, 'etc/fstab'), 'LABEL=cloner-vm / ext4 rw 0 1\n');
  // Without this mdadm's initramfs hook and udev rules complain on every array change.
  await writeFile(path.join(tree, 'etc/mdadm/mdadm.conf'), 'HOMEHOST <system>\nMAILADDR root\n');
  await rm(path.join(tree, 'usr/share/doc'), { recursive: true, force: true });
  await rm(path.join(tree, 'usr/share/man'), { recursive: true, force: true });
  await rm(path.join(tree, 'var/cache/apt'), { recursive: true, force: true });
  await mkdir(path.join(tree, 'var/cache/apt'), { recursive: true });
}

/** A lock directory; one older than 20 minutes was left by a builder that died, and is taken over. */
async function acquireLock(lock: string): Promise<void> {
  for (;;) {
    try {
      await mkdir(lock);
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const age = await stat(lock).then((s) => Date.now() - s.mtimeMs, () => 0);
      if (age > 20 * 60_000) await rmdir(lock).catch(() => {});
      else await new Promise((r) => setTimeout(r, 1000));
    }
  }
}

export function readRecipe(image: VmImage): unknown {
  return JSON.parse(readFileSync(path.join(image.dir, 'recipe.json'), 'utf8'));
}
