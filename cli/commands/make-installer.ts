/**
 * make-installer: build the cloner installer (kernel + initrd) from the golden node's own
 * kernel with its initramfs generator (initramfs-tools or dracut, --generator to choose when
 * the golden has both: core/installer/build.ts), and upload it to the server
 * keyed by kernel version (or write it to a local boot directory with --store, and/or to
 * --output). Run on the golden node; --root builds from a golden tree or a mounted image.
 */
import type { CAC } from 'cac';
import path from 'node:path';
import { backendOptions, openBackend, type BackendArgs } from '../backend.ts';
import { UsageError } from '../errors.ts';
import { formatBytes } from '../progress.ts';

interface Options extends BackendArgs {
  overwrite?: boolean;
  root: string;
  kernelVersion?: string;
  generator?: string;
  output?: string;
  dryRun?: boolean;
  json?: boolean;
}

export function register(cli: CAC): void {
  backendOptions(cli.command('make-installer', 'Build the cloner installer from this node\'s kernel and upload it to the server'))
    .option('--overwrite', 'Replace the server\'s installer for this kernel version')
    .option('--root <dir>', 'Build from the golden tree at DIR (a mounted image) instead of this system', { default: '/' })
    .option('--kernel-version <version>', 'Kernel version (default: the newest under --root with modules and /boot/vmlinuz-V)')
    .option('--generator <name>', 'initramfs-tools or dracut (default: the golden\'s own; initramfs-tools when it has both)')
    .option('--output <dir>', 'Also write vmlinuz and initrd.img into DIR (alone: no upload)')
    .option('--dry-run', 'Show the kernel, the tools found and missing, and where it would go; build nothing')
    .option('--json', 'Print JSON')
    .action(async (o: Options) => {
      const { planInstaller, buildInstaller, SIZE_GOAL_BYTES } = await import('../../core/installer/build.ts');
      const { LocalInstallers, ServerInstallers, checkOverwrite } = await import('../../core/installer/sink.ts');
      if (typeof o.root !== 'string' || !o.root) throw new UsageError('--root needs a directory', 'e.g. --root /mnt/golden');
      const say = (line: string) => {
        if (!o.json) process.stdout.write(`${line}\n`);
      };
      const warn = (line: string) => process.stderr.write(`warning: ${line}\n`);
      const plan = planInstaller(o.root, o.kernelVersion === undefined ? undefined : String(o.kernelVersion), o.generator === undefined ? undefined : String(o.generator));

      // Where it goes: a server (the default), a local boot directory (--store DATA/store), or only --output.
      const onlyOutput = !!o.output && !o.server && !o.store && !process.env.CLONER_SERVER;
      let sink: InstanceType<typeof ServerInstallers> | InstanceType<typeof LocalInstallers> | null = null;
      let close = async () => {};
      if (o.store) sink = new LocalInstallers(path.join(path.dirname(path.resolve(String(o.store))), 'boot'));
      else if (!onlyOutput) {
        const backend = await openBackend(o);
        close = () => backend.close();
        const { ApiClient } = await import('../../core/api/client.ts');
        const { HttpStore } = await import('../../core/store/http.ts');
        if (!(backend.chunks instanceof HttpStore)) throw new UsageError('make-installer uploads to a server', 'pass --server, or --store DATA/store for a local boot directory');
        sink = new ServerInstallers(new ApiClient(backend.chunks), backend.where);
      }
      try {
        if (sink) await checkOverwrite(sink, plan.kernel.version, !!o.overwrite);
        for (const w of plan.warnings) warn(w);
        if (o.dryRun) {
          const report = { version: plan.kernel.version, generator: plan.generator, vmlinuz: plan.kernel.vmlinuz, tools: plan.tools.found, missing: plan.tools.missing.map((m) => m.tool), to: sink?.where ?? null, output: o.output ?? null };
          if (o.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
          else say(`dry run: would build the installer for kernel ${report.version} (${report.vmlinuz}) with ${report.generator}, ${report.tools.length} deploy tools${report.missing.length ? `, without ${report.missing.join(', ')}` : ''}; to ${[report.to, report.output].filter(Boolean).join(' and ')}`);
          return;
        }
        const { mkdtemp, rm } = await import('node:fs/promises');
        const { tmpdir } = await import('node:os');
        const outDir = o.output ? path.resolve(String(o.output)) : await mkdtemp(path.join(tmpdir(), 'cloner-installer-out-'));
        try {
          const built = await buildInstaller({ root: o.root, kernelVersion: plan.kernel.version, generator: plan.generator, outDir, log: (l) => say(l) });
          for (const w of built.warnings.filter((w) => !plan.warnings.includes(w))) warn(w);
          const total = built.bytes.vmlinuz + built.bytes['initrd.img'];
          if (total > SIZE_GOAL_BYTES) warn(`kernel + initrd are ${formatBytes(total)}, over the ${formatBytes(SIZE_GOAL_BYTES)} goal`);
          const record = sink ? await sink.put(built.version, { vmlinuz: built.vmlinuz, 'initrd.img': built.initrd }, { overwrite: !!o.overwrite, generator: built.generator, buildSeconds: Math.round(built.seconds) }) : null;
          const report = { version: built.version, generator: built.generator, bytes: { ...built.bytes, total }, buildSeconds: Number(built.seconds.toFixed(1)), uploadedTo: sink?.where ?? null, output: o.output ? outDir : null, created: record?.created ?? null, warnings: built.warnings };
          if (o.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
          else say(`installer ${built.version}: vmlinuz ${formatBytes(built.bytes.vmlinuz)} + initrd ${formatBytes(built.bytes['initrd.img'])} = ${formatBytes(total)}, built in ${built.seconds.toFixed(0)} s${sink ? `; stored on ${sink.where}` : ''}${o.output ? `; written to ${outDir}` : ''}`);
        } finally {
          if (!o.output) await rm(outDir, { recursive: true, force: true });
        }
      } finally {
        await close();
      }
    });
}
