/**
 * The `cloner-agent` command (runs on the node being imaged). Without flags it takes the
 * server, node and deploy token from the kernel command line the netboot endpoint wrote
 * (cloner.server=, cloner.node=, cloner.token=).
 *
 * Nothing dangerous by default: it reboots at the end only in the cloner boot environment
 * (kernel command line with cloner.server=) unless --no-reboot, and elsewhere only with
 * --reboot; partitioning outside it needs --force, refused before anything runs;
 * --dry-run prints every step and does none.
 */
import cac from 'cac';
import { readFileSync } from 'node:fs';
import { serverUrl } from '../core/api/url.ts';
import { describeFatal, UsageError } from '../core/errors.ts';
import { CLONER_VERSION } from '../core/version.ts';
import { splitList } from '../core/format.ts';
import { run } from '../core/tools.ts';
import { kernelArgs } from './kernel-args.ts';

function positiveSeconds(value: unknown, flag: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new UsageError(`${flag} must be a positive number of seconds`, `e.g. ${flag} 60`);
  return n * 1000;
}

const cli = cac('cloner-agent');
const deployCommand = cli
  .command('deploy', 'Image this node: layout, tree, identity, boot entries; then reboot (in the cloner boot environment only)')
  .option('--server <url>', 'cloner server (default: cloner.server= on the kernel command line)')
  .option('--token <token>', 'deploy or admin token (default: cloner.token=, CLONER_TOKEN)')
  .option('--token-file <file>', 'read the token from a file')
  .option('--node <name>', 'this node\'s name (default: cloner.node=, else found by this machine\'s MACs)')
  .option('--disks <list>', 'only these disks may be written (comma list of /dev paths)')
  .option('--target <dir>', 'where the new system is mounted while it is written', { default: '/mnt/cloner-target' })
  .option('--force', 'partition even outside the cloner boot environment (checked before anything runs)')
  .option('--dry-run', 'print every step (layout commands, files, identity, scripts) and do none of them')
  .option('--checksum', 'read every file already on the disks (default: trust size + mtime, as rsync)')
  .option('--reboot', 'reboot at the end even outside the cloner boot environment')
  .option('--no-reboot', 'do not reboot at the end (default outside the cloner boot environment)')
  .option('--retry-deadline-s <s>', 'keep retrying a lost server for this long', { default: 600 })
  .option('--stall-s <s>', 'a fetch with no data for this long is retried', { default: 30 })
  .option('--multicast', 'receive the image from a multicast session (default: when booted as cloner-multicast)')
  .option('--poll-s <s>', 'multicast: seconds between polls for a session', { default: 30 })
  .option('--multicast-wait-s <s>', 'multicast: deploy over unicast after waiting this long for a session', { default: 86400 })
  .action(async (o: Record<string, unknown>) => {
    const boot = kernelArgs(readFileSync('/proc/cmdline', 'utf8'));
    const server = (o.server as string | undefined) ?? boot.server;
    if (!server) throw new UsageError('no cloner server given', 'pass --server URL (the boot environment passes cloner.server=)');
    let token: string | undefined = (o.token as string | undefined) ?? (o.tokenFile ? readFileSync(String(o.tokenFile), 'utf8').trim() : undefined) ?? boot.token ?? process.env.CLONER_TOKEN;
    if (token === '') token = undefined;
    const disks = o.disks === undefined ? undefined : splitList(o.disks);
    if (disks) for (const d of disks) if (!d.startsWith('/dev/')) throw new UsageError(`--disks: ${d} is not a /dev path`, 'e.g. --disks /dev/sda,/dev/sdb');
    const multicast = o.multicast || boot.mode === 'multicast' ? { pollMs: positiveSeconds(o.pollS, '--poll-s', 30), maxWaitMs: positiveSeconds(o.multicastWaitS, '--multicast-wait-s', 86400) } : undefined;
    // cac gives --no-reboot a default of true, so what was typed is read from argv.
    const argv = process.argv.slice(2);
    const reboot = argv.includes('--no-reboot') ? false : argv.includes('--reboot') ? true : !!boot.server;
    const options = {
      server: serverUrl(server),
      token,
      node: (o.node as string | undefined) ?? boot.node,
      disks,
      target: String(o.target),
      force: !!o.force,
      checksum: !!o.checksum,
      retryDeadlineMs: positiveSeconds(o.retryDeadlineS, '--retry-deadline-s', 600),
      stallMs: positiveSeconds(o.stallS, '--stall-s', 30),
      progressIntervalMs: Number(process.env.CLONER_PROGRESS_INTERVAL_MS) || 5000,
      multicast,
      log: (line: string) => process.stdout.write(`${line}\n`),
    };
    if (o.dryRun) return (await import('./dry-run.ts')).dryRunDeploy({ ...options, reboot });
    const { deploy } = await import('./deploy.ts');
    const summary = await deploy(options);
    if (reboot) {
      process.stdout.write('rebooting\n');
      await run(['systemctl', 'reboot']).catch(() => run(['reboot', '-f']));
    }
    return summary;
  });
// cac gives a --no-X flag the default true and prints it, which reads backwards here: the
// default depends on where the agent runs (see reboot above).
for (const option of deployCommand.options) if (option.rawName === '--no-reboot') delete option.config.default;
cli.help();
cli.version(CLONER_VERSION);

try {
  cli.parse(process.argv, { run: false });
  if (!cli.matchedCommand && !cli.options.help && !cli.options.version) {
    if (cli.args.length) throw new UsageError(`unknown command ${cli.args[0]}`, 'run cloner-agent --help');
    const flag = Object.keys(cli.options).find((k) => k !== '--');
    if (flag) throw new UsageError(`unknown flag --${flag.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`, 'run cloner-agent --help');
    cli.outputHelp();
    process.exit(0);
  }
  await cli.runMatchedCommand();
} catch (err) {
  // The agent is its own program: it decides its exit code (2 for a reported error, 1 for a bug).
  const { text, exitCode } = describeFatal('cloner-agent', err);
  process.stderr.write(text);
  process.exit(exitCode);
}
