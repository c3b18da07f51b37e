/**
 * The `cloner-agent` command (runs on the node being imaged). Without flags it takes the
 * server, node and deploy token from the kernel command line the netboot endpoint wrote
 * (cloner.server=, cloner.node=, cloner.token=).
 */
import cac from 'cac';
import { readFileSync } from 'node:fs';
import { serverUrl } from '../core/api/url.ts';
import { describeFatal, UsageError } from '../core/errors.ts';
import { splitList } from '../core/format.ts';
import { run } from '../core/tools.ts';
import { deploy } from './deploy.ts';
import { kernelArgs } from './kernel-args.ts';

function positiveSeconds(value: unknown, flag: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new UsageError(`${flag} must be a positive number of seconds`, `e.g. ${flag} 60`);
  return n * 1000;
}

const cli = cac('cloner-agent');
cli
  .command('deploy', 'image this node: layout, tree, identity, boot entries; then reboot')
  .option('--server <url>', 'cloner server (default: cloner.server= on the kernel command line)')
  .option('--token <token>', 'deploy or admin token (default: cloner.token=, CLONER_TOKEN)')
  .option('--token-file <file>', 'read the token from a file')
  .option('--node <name>', 'this node\'s name (default: cloner.node=, else found by this machine\'s MACs)')
  .option('--disks <list>', 'only these disks may be written (comma list of /dev paths)')
  .option('--target <dir>', 'where the new system is mounted while it is written', { default: '/mnt/cloner-target' })
  .option('--force', 'partition even outside the cloner boot environment')
  .option('--checksum', 'read every file already on the disks (default: trust size + mtime, as rsync)')
  .option('--no-reboot', 'do not reboot at the end')
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
    const summary = await deploy({
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
      log: (line) => process.stdout.write(`${line}\n`),
    });
    if (o.reboot !== false) {
      process.stdout.write('rebooting\n');
      await run(['systemctl', 'reboot']).catch(() => run(['reboot', '-f']));
    }
    return summary;
  });
cli.help();

try {
  cli.parse(process.argv, { run: false });
  if (!cli.matchedCommand && !cli.options.help) {
    if (cli.args.length) throw new UsageError(`unknown command ${cli.args[0]}`, 'run cloner-agent --help');
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
