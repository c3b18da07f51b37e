/**
 * Builds the cloner installer (a kernel + initrd) from a golden root with the root's own
 * initramfs generator (`chooseGenerator`): initramfs-tools when the root has mkinitramfs:
 * `mkinitramfs -d CONFDIR -o initrd.img VERSION`, where CONFDIR is private
 * (contrib/initramfs/: initramfs.conf, hooks/cloner, scripts/cloner for `boot=cloner`), so
 * the root's own /etc/initramfs-tools is not read; else dracut (RHEL family): the root's
 * /usr/lib/dracut copied to a private dracutbasedir with contrib/dracut/99cloner added, and
 * `dracut --conf /dev/null --confdir (empty) --no-hostonly --add cloner --omit (DRACUT_OMIT)
 * --omit-drivers (unwantedNetDrivers) --kver VERSION` (`dracutArgv`), so the root's
 * /etc/dracut.conf is not read. `--generator` (`pickGenerator`) picks one on a root with both.
 *
 * For `--root /` (run on the golden node, as the spec says) mkinitramfs runs here. For
 * another root (a golden tree, a mounted image, possibly read-only) it runs chrooted into
 * an overlay of that root (lower: the root, upper: a tmpfs), with /proc, /sys and /dev
 * mounted, so the root's own mkinitramfs, kernel modules, tools and libraries go in and
 * nothing is written to the root. The stage (Node, the bundled agent, addons; stage.ts)
 * and the CONFDIR live in the overlay's /run/cloner-installer. Every mount is undone,
 * whatever happens.
 */
import { createReadStream, createWriteStream, existsSync, readdirSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { constants, createGunzip, createZstdCompress } from 'node:zlib';
import { copyFile, cp, mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ClonerError, UsageError } from '../errors.ts';
import { run } from '../tools.ts';
import { kernelInRoot } from './kernel.ts';
import { findTools, projectDir, stageAgent } from './stage.ts';

export interface BuildOptions {
  root: string;
  kernelVersion?: string;
  /** initramfs-tools or dracut; default: the root's own (chooseGenerator). */
  generator?: Generator;
  /** Where vmlinuz and initrd.img are written. */
  outDir: string;
  log?: (line: string) => void;
}

export type Generator = 'initramfs-tools' | 'dracut';

export interface BuildResult {
  version: string;
  generator: Generator;
  vmlinuz: string;
  initrd: string;
  bytes: { vmlinuz: number; 'initrd.img': number };
  seconds: number;
  warnings: string[];
}

/** The size goal of kernel + initrd (FOG's boot image is about 67 MB). */
export const SIZE_GOAL_BYTES = 80_000_000;

export class InstallerBuildError extends ClonerError {
  override readonly code = 'INSTALLER_BUILD_FAILED';
  override readonly status = 500;
}

const has = (root: string, ...paths: string[]) => paths.some((p) => existsSync(path.join(root, p)));

/**
 * The initramfs generator of a golden root: initramfs-tools when it has mkinitramfs (Debian,
 * Ubuntu; also when both are there), else dracut when it has dracut and its module tree
 * (RHEL family). InstallerBuildError when it has neither.
 */
export function chooseGenerator(root: string): Generator {
  if (hasGenerator(root, 'initramfs-tools')) return 'initramfs-tools';
  if (hasGenerator(root, 'dracut')) return 'dracut';
  throw new InstallerBuildError(`${root} has neither mkinitramfs (initramfs-tools) nor dracut`, 'install the distribution\'s initramfs generator on the golden node (initramfs-tools or dracut)');
}

export const GENERATORS: readonly Generator[] = ['initramfs-tools', 'dracut'];

/** Whether a root has a generator: mkinitramfs; or dracut with its module tree. */
export function hasGenerator(root: string, generator: Generator): boolean {
  if (generator === 'initramfs-tools') return has(root, 'usr/sbin/mkinitramfs', 'sbin/mkinitramfs');
  return has(root, 'usr/bin/dracut', 'usr/sbin/dracut', 'sbin/dracut') && has(root, 'usr/lib/dracut/modules.d');
}

/**
 * The generator asked for (`--generator`), checked against the root; none asked: the
 * root's own (`chooseGenerator`). UsageError for a name that is not a generator or one the
 * root lacks.
 */
export function pickGenerator(root: string, wanted?: string): Generator {
  if (wanted === undefined) return chooseGenerator(root);
  if (!(GENERATORS as readonly string[]).includes(wanted)) throw new UsageError(`--generator ${JSON.stringify(wanted)} is not an initramfs generator`, `use --generator ${GENERATORS.join(' or --generator ')}, or leave it out for the golden's own`);
  const generator = wanted as Generator;
  if (!hasGenerator(root, generator)) {
    const what = generator === 'dracut' ? 'dracut (dracut and /usr/lib/dracut/modules.d)' : 'mkinitramfs (initramfs-tools)';
    const pkg = generator === 'dracut' ? 'dracut-core and dracut-network on Debian/Ubuntu, dracut and dracut-network on the RHEL family' : 'initramfs-tools';
    throw new UsageError(`--generator ${generator}: ${root} has no ${what}`, `install ${pkg} on the golden node, or leave --generator out to use its own`);
  }
  return generator;
}

/** What a build would use, without building: the generator, the kernel and the tools found and missing. */
export function planInstaller(root: string, kernelVersion?: string, wantedGenerator?: string) {
  const kernel = kernelInRoot(root, kernelVersion);
  const tools = findTools(root);
  const generator = pickGenerator(root, wantedGenerator);
  const warnings = tools.missing.map((m) => `${m.tool} is not on the golden node: the installer cannot do ${m.without}`);
  return { generator, kernel, tools, warnings };
}

/**
 * dracut modules left out of the installer: systemd in the initrd (dracut's shell init runs
 * the hooks) and plymouth; kernel-modules(-extra), which in a generic image bring every
 * file system and block driver of the kernel (~30 MB more: 99cloner names the drivers, as
 * hooks/cloner does for initramfs-tools); and what only a root to boot needs (crypt,
 * resume, nvdimm, overlay-root, virtiofs, usrmount, lunmask).
 */
export const DRACUT_OMIT = [
  'systemd', 'systemd-initrd', 'systemd-networkd', 'dracut-systemd', 'plymouth',
  'kernel-modules', 'kernel-modules-extra', 'crypt', 'resume', 'nvdimm', 'overlay-root', 'virtiofs', 'usrmount', 'lunmask',
  // dracut's return to the initramfs at shutdown: the installer never leaves it, and its
  // reboot/poweroff are systemctl with libsystemd-shared on a systemd golden (~5 MB).
  'shutdown', 'terminfo',
];

/**
 * Network drivers no cluster node deploys over (dial-up, radio, USB modems and adapters,
 * old LANs): left out by both generators (contrib/initramfs/hooks/cloner removes these
 * directories, given as CLONER_UNWANTED_NET_DIRS; dracut gets their modules' names).
 */
export const UNWANTED_NET_DIRS = ['usb', 'wwan', 'wireless', 'ieee802154', 'fddi', 'plip', 'slip', 'ppp', 'hamradio', 'arcnet', 'wan'];

/** The names of the kernel modules under `<modules>/kernel/drivers/net/<UNWANTED_NET_DIRS>`, as dracut's --omit-drivers takes them. */
export function unwantedNetDrivers(modules: string): string[] {
  const names = new Set<string>();
  for (const d of UNWANTED_NET_DIRS) {
    const dir = path.join(modules, 'kernel/drivers/net', d);
    if (!existsSync(dir)) continue;
    for (const f of readdirSync(dir, { recursive: true, encoding: 'utf8' })) {
      const m = /(?:^|\/)([^/]+)\.ko(?:\.[a-z0-9]+)?$/.exec(f);
      if (m) names.add(m[1]!.replace(/-/g, '_'));
    }
  }
  return [...names].sort();
}

/**
 * dracut's command line for the installer: a private base directory (with 99cloner), no
 * configuration of the golden's own, not host-only (the nodes' hardware, not the golden's),
 * without DRACUT_OMIT, gzip -1 (recompressed with zstd afterwards), no early microcode cpio
 * in front.
 */
export function dracutArgv(o: { baseDir: string; confDir: string; out: string; version: string; omitDrivers?: string[] }): string[] {
  return [
    'env', `dracutbasedir=${o.baseDir}`, 'dracut', '--force', '--conf', '/dev/null', '--confdir', o.confDir, '--no-hostonly', '--no-early-microcode',
    '--add', 'cloner', '--omit', DRACUT_OMIT.join(' '), ...(o.omitDrivers?.length ? ['--omit-drivers', o.omitDrivers.join(' ')] : []),
    '--compress', 'gzip -1', '--kver', o.version, o.out,
  ];
}

export async function buildInstaller(o: BuildOptions): Promise<BuildResult> {
  const started = performance.now();
  const log = o.log ?? (() => {});
  const root = path.resolve(o.root);
  const { generator, kernel, tools, warnings } = planInstaller(root, o.kernelVersion, o.generator);
  if (root !== '/' && process.getuid?.() !== 0) throw new InstallerBuildError(`building from ${root} needs root (an overlay mount and chroot)`, 'run make-installer as root');
  const work = await mkdtemp(path.join(tmpdir(), 'cloner-installer-'));
  const mounts: string[] = [];
  const mount = async (argv: string[], at: string) => {
    await run(['mount', ...argv, at]);
    mounts.push(at);
  };
  try {
    // Where mkinitramfs runs, and the stage's path as mkinitramfs sees it.
    let chroot: string | null = null;
    let stage: string;
    if (root === '/') {
      stage = path.join(work, 'stage');
    } else {
      const ovl = path.join(work, 'overlay');
      await mkdir(ovl);
      await mount(['-t', 'tmpfs', '-o', 'mode=0755', 'cloner-installer'], ovl);
      for (const d of ['upper', 'work', 'merged']) await mkdir(path.join(ovl, d));
      chroot = path.join(ovl, 'merged');
      await mount(['-t', 'overlay', '-o', `lowerdir=${root},upperdir=${ovl}/upper,workdir=${ovl}/work`, 'cloner-installer'], chroot);
      for (const d of ['proc', 'sys', 'dev', 'run', 'tmp', 'var/tmp']) await mkdir(path.join(chroot, d), { recursive: true });
      await mount(['-t', 'proc', 'proc'], path.join(chroot, 'proc'));
      await mount(['-t', 'sysfs', 'sysfs'], path.join(chroot, 'sys'));
      await mount(['--bind', '/dev'], path.join(chroot, 'dev'));
      stage = path.join(chroot, 'run/cloner-installer');
    }
    await mkdir(stage, { recursive: true });
    log(`staging Node and the agent (esbuild) for kernel ${kernel.version}`);
    warnings.push(...(await stageAgent(stage)));
    const conf = path.join(stage, 'conf');
    const inside = (p: string) => (chroot ? `/${path.relative(chroot, p)}` : p);
    const env = { CLONER_STAGE: inside(stage), CLONER_TOOLS: tools.found.join(' '), CLONER_UNWANTED_NET_DIRS: UNWANTED_NET_DIRS.join(' ') };
    const out = path.join(stage, 'initrd.img');
    let argv: string[];
    if (generator === 'initramfs-tools') {
      await cp(path.join(projectDir(), 'contrib/initramfs'), conf, { recursive: true });
      for (const d of ['conf.d', 'scripts/init-top', 'scripts/init-premount', 'scripts/init-bottom', 'scripts/local-top', 'scripts/local-premount', 'scripts/local-bottom', 'scripts/nfs-top', 'scripts/panic']) await mkdir(path.join(conf, d), { recursive: true });
      await writeModulesFile(conf);
      argv = ['mkinitramfs', '-d', inside(conf), '-o', inside(out), kernel.version];
    } else {
      // The golden's dracut modules plus ours, in a base directory of the build's own.
      const base = path.join(stage, 'dracut');
      await cp(path.join(chroot ?? '/', 'usr/lib/dracut'), base, { recursive: true, verbatimSymlinks: true });
      await cp(path.join(projectDir(), 'contrib/dracut/99cloner'), path.join(base, 'modules.d/99cloner'), { recursive: true });
      await mkdir(conf, { recursive: true });
      argv = dracutArgv({ baseDir: inside(base), confDir: inside(conf), out: inside(out), version: kernel.version, omitDrivers: unwantedNetDrivers(kernel.modules) });
    }
    log(`${generator} ${kernel.version}${chroot ? ` (chrooted into an overlay of ${root})` : ''}`);
    const envArgs = Object.entries(env).map(([k, v]) => `${k}=${v}`);
    const result = await run(chroot ? ['chroot', chroot, '/usr/bin/env', ...envArgs, 'PATH=/usr/sbin:/usr/bin:/sbin:/bin', ...argv] : ['env', ...envArgs, ...argv]).catch((err) => {
      throw new InstallerBuildError(`${argv[0] === 'env' ? 'dracut' : 'mkinitramfs'} failed: ${(err as Error).message}`, `see the message above; the golden node's ${generator} must be able to build its own initramfs`, { cause: err });
    });
    for (const line of `${result.stderr}`.split('\n')) if (/^W: /.test(line) && !/Possible missing firmware|mdadm|MD subsystem/.test(line)) warnings.push(`mkinitramfs: ${line.slice(3)}`);
    await mkdir(o.outDir, { recursive: true });
    const vmlinuz = path.join(o.outDir, 'vmlinuz');
    const initrd = path.join(o.outDir, 'initrd.img');
    await copyFile(kernel.vmlinuz, vmlinuz);
    log(`recompressing the initrd with zstd -${ZSTD_LEVEL}`);
    await recompress(out, initrd);
    return {
      version: kernel.version,
      generator,
      vmlinuz,
      initrd,
      bytes: { vmlinuz: (await stat(vmlinuz)).size, 'initrd.img': (await stat(initrd)).size },
      seconds: (performance.now() - started) / 1000,
      warnings,
    };
  } finally {
    for (const at of mounts.reverse()) await run(['umount', at]).catch(() => run(['umount', '-l', at]).catch(() => {}));
    await rm(work, { recursive: true, force: true });
  }
}

/**
 * zstd level of the initrd. On this machine's 250 MB of initrd contents (Node ~104 MB,
 * modules ~110 MB): -9 gives ~71 MB in ~10 s; -15 ~70 MB in ~110 s; -19 ~63 MB in ~5 min
 * (xz -6: ~57 MB in ~3 min). -9 keeps a build short; the kernel unpacks every level alike.
 */
const ZSTD_LEVEL = 9;

/** gzip (what mkinitramfs wrote, at level 1) -> zstd. An initrd that is not one gzip stream (an early microcode cpio first) is copied as it is. */
async function recompress(from: string, to: string): Promise<void> {
  const head = Buffer.alloc(2);
  const fd = await open(from);
  await fd.read(head, 0, 2, 0);
  await fd.close();
  if (head[0] !== 0x1f || head[1] !== 0x8b) {
    await copyFile(from, to);
    return;
  }
  await pipeline(createReadStream(from), createGunzip(), createZstdCompress({ params: { [constants.ZSTD_c_compressionLevel]: ZSTD_LEVEL, [constants.ZSTD_c_checksumFlag]: 1 } }), createWriteStream(to));
}

/** CONFDIR/modules: none beyond the hook's (an empty file keeps the root's list out). */
async function writeModulesFile(conf: string): Promise<void> {
  await writeFile(path.join(conf, 'modules'), '# modules of the cloner installer: see hooks/cloner\n');
}
