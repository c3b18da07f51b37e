/**
 * multicast-image: starts a multicast session of an image for the selected nodes (those
 * waiting in cloner-multicast mode; others join if they register before it starts). It
 * waits for --min-receivers of them (default all) or --max-wait seconds, then sends the union of what they lack once and repairs what they report missing;
 * nodes too slow or lossy finish over unicast. `--dry-run` shows who is waiting and the
 * bytes it would send; `--wait` follows the session to its end.
 */
import type { CAC } from 'cac';
import { formatBytes } from '../../core/format.ts';
import { parseRate } from '../../core/multicast/pacer.ts';
import { selectNodes } from '../../core/nodes/selector.ts';
import { backendOptions, withBackend, type BackendArgs } from '../backend.ts';
import { UsageError } from '../errors.ts';
import { serverApi, sessionLines } from './multicast-status.ts';

interface Options extends BackendArgs {
  image?: string;
  nodes?: string;
  minReceivers?: unknown;
  maxWait?: unknown;
  rate?: unknown;
  group?: string;
  interface?: string;
  repair?: string;
  dryRun?: boolean;
  wait?: boolean;
  json?: boolean;
}

function number(value: unknown, flag: string, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || n < min || n > max) throw new UsageError(`${flag} must be a number from ${min} to ${max}`, `e.g. ${flag} ${min}`);
  return n;
}

export function register(cli: CAC): void {
  backendOptions(cli.command('multicast-image', 'Image the selected nodes (waiting in cloner-multicast) from one multicast session'))
    .option('--image <name>', 'Image to send')
    .option('--nodes <selector>', 'Nodes: node01,node02, node[01-64], @group')
    .option('--min-receivers <n>', 'Start as soon as this many are ready (default: all selected)')
    .option('--max-wait <s>', 'Seconds to wait for them; then start with whoever is ready (default 120)')
    .option('--rate <bits>', 'Pace: bits per second, e.g. 400M, 1G (default 400M)')
    .option('--group <addr>', 'Multicast group in 239.0.0.0/8 (default 239.192.87.40)')
    .option('--interface <if>', 'Server interface to send from (default: the one the nodes registered through)')
    .option('--repair <how>', 'Repair lost datagrams with Reed-Solomon parity (one packet fixes a different loss at each node) or resend them (default parity)')
    .option('--dry-run', 'Show who is waiting and what would be sent; start nothing')
    .option('--wait', 'Follow the session until it ends')
    .option('--json', 'Print JSON')
    .action(async (o: Options) => {
      if (!o.image) throw new UsageError('--image is required', 'e.g. cloner multicast-image --image debian --nodes @rack1');
      if (!o.nodes) throw new UsageError('--nodes is required', 'e.g. --nodes node[01-64] or @group');
      let rate: number | undefined;
      try {
        rate = o.rate === undefined ? undefined : parseRate(String(o.rate)) * 8;
      } catch (err) {
        throw new UsageError(`--rate: ${(err as Error).message}`, 'e.g. --rate 400M');
      }
      if (o.repair !== undefined && o.repair !== 'parity' && o.repair !== 'resend') throw new UsageError(`--repair must be parity or resend, not ${JSON.stringify(o.repair)}`, 'e.g. --repair resend');
      await withBackend(o, async (backend) => {
        const { api, API } = await serverApi(backend);
        const nodes = selectNodes(String(o.nodes), await backend.listNodes());
        if (!nodes.length) throw new UsageError(`no node matches ${o.nodes}`, 'see: cloner nodes list');
        const started = await api.call(API.multicastStart, {
          body: {
            image: String(o.image),
            nodes,
            minReceivers: number(o.minReceivers, '--min-receivers', 1, 100_000),
            maxWaitS: number(o.maxWait, '--max-wait', 1, 86_400),
            rate,
            group: o.group,
            interface: o.interface,
            repair: o.repair as 'parity' | 'resend' | undefined,
            dryRun: !!o.dryRun,
          },
        });
        if (o.json && !o.wait) return void process.stdout.write(`${JSON.stringify(started, null, 2)}\n`);
        process.stdout.write(
          `${started.image}@${started.revision}: ${started.waiting.length} of ${nodes.length} selected nodes waiting${started.notWaiting.length ? ` (not waiting: ${started.notWaiting.join(',')})` : ''}; ` +
            `multicast sends ${formatBytes(started.unionBytes)} once, unicast would send ${formatBytes(started.lackingBytes)}\n`,
        );
        if (!started.session) return;
        process.stdout.write(`started session ${started.session.id}\n`);
        if (!o.wait) return;
        // Bounded: the session itself always ends (its every wait is bounded).
        for (;;) {
          await new Promise((r) => setTimeout(r, 1000));
          const s = (await api.call(API.multicastStatus)).sessions.find((x) => x.id === started.session!.id);
          if (!s) throw new UsageError('the session is gone (did the server restart?)', 'see: cloner multicast-status');
          if (s.phase === 'done' || s.phase === 'failed') {
            process.stdout.write(o.json ? `${JSON.stringify(s, null, 2)}\n` : `${sessionLines(s).join('\n')}\n`);
            if (s.phase === 'failed') throw new UsageError(`the session failed: ${s.message ?? ''}`, 'its nodes finish over unicast or keep waiting; see: cloner multicast-status');
            return;
          }
        }
      });
    });
}
