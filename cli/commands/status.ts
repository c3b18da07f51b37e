/**
 * status: each selected node's deploy as the server sees it: the phase it is in, how far
 * the restore is (percent, bytes fetched, rate), when it last reported, and its last
 * result (or error). `--watch` redraws every --interval seconds until every selected
 * node is done or failed (or Ctrl-C); `--json` prints the rows.
 */
import type { CAC } from 'cac';
import { formatBytes } from '../../core/format.ts';
import { selectNodes } from '../../core/nodes/selector.ts';
import { backendOptions, withBackend, type BackendArgs, type DeployRow } from '../backend.ts';
import { UsageError } from '../errors.ts';
import { installerWarnings } from '../installer-notes.ts';

function ago(iso: string | undefined, now: number): string {
  if (!iso) return '-';
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  return s < 120 ? `${s}s ago` : s < 7200 ? `${Math.round(s / 60)}m ago` : `${Math.round(s / 3600)}h ago`;
}

export function statusLine(row: DeployRow, now = Date.now()): string {
  const s = row.status;
  const last = row.lastDeploy;
  let phase = s?.phase ?? (last ? (last.ok ? 'done' : 'failed') : '-');
  let detail = '';
  if (s?.phase === 'restore' && s.totalBytes) {
    detail = `${Math.floor((100 * (s.bytes ?? 0)) / s.totalBytes)}% of ${formatBytes(s.totalBytes)}, fetched ${formatBytes(s.fetchedBytes ?? 0)}${s.rate ? ` at ${formatBytes(s.rate)}/s` : ''}`;
  } else if (s?.message && s.phase !== 'done') detail = s.message;
  if (phase === 'failed' || (!s && last && !last.ok)) {
    phase = 'failed';
    detail = `in ${last?.phase ?? s?.phase}: ${last?.message ?? s?.message ?? ''}`;
  } else if (phase === 'done' && last?.ok) detail = `${last.image ?? ''}${last.revision ? ` rev ${last.revision}` : ''} in ${last.seconds ?? '?'} s, fetched ${formatBytes(last.fetchedBytes ?? 0)}`;
  const image = s?.image ? `${s.image}${s.revision ? `@${s.revision}` : ''}` : row.image ?? '-';
  return `${row.node.padEnd(16)} ${row.netboot.padEnd(10)} ${image.padEnd(14)} ${phase.padEnd(13)} ${ago(s?.updated ?? last?.at, now).padEnd(9)} ${detail}`;
}

export function register(cli: CAC): void {
  backendOptions(cli.command('status', 'Deploy status of nodes: phase, progress, rate, last result or error'))
    .option('--nodes <selector>', 'Nodes: node01,node02, node[01-64], @group (default: all)')
    .option('--watch', 'Redraw until every selected node is done or failed')
    .option('--interval <s>', 'Seconds between redraws with --watch', { default: 2 })
    .option('--json', 'Print JSON')
    .action(async (o: BackendArgs & { nodes?: string; watch?: boolean; interval?: unknown; json?: boolean }) => {
      const interval = Number(o.interval);
      if (!Number.isFinite(interval) || interval < 0.2 || interval > 3600) throw new UsageError('--interval must be 0.2 to 3600 seconds', 'e.g. --interval 5');
      await withBackend(o, async (backend) => {
        const wanted = o.nodes ? new Set(selectNodes(String(o.nodes), await backend.listNodes())) : null;
        const read = async () => (await backend.deploys()).filter((r) => !wanted || wanted.has(r.node));
        const header = `${'NODE'.padEnd(16)} ${'NETBOOT'.padEnd(10)} ${'IMAGE'.padEnd(14)} ${'PHASE'.padEnd(13)} ${'UPDATED'.padEnd(9)} DETAIL`;
        const finished = (r: DeployRow) => !r.status || r.status.phase === 'done' || r.status.phase === 'failed';
        if (!o.json) for (const w of await installerWarnings(backend, o, (await backend.listNodes()).filter((n) => !wanted || wanted.has(n.name)))) process.stderr.write(`warning: ${w}\n`);
        for (;;) {
          const rows = await read();
          if (o.json) process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
          else {
            if (o.watch && process.stdout.isTTY) process.stdout.write('\x1b[H\x1b[2J');
            process.stdout.write(`${[header, ...rows.map((r) => statusLine(r))].join('\n')}\n`);
          }
          if (!o.watch || rows.every(finished)) return;
          await new Promise((r) => setTimeout(r, interval * 1000));
        }
      });
    });
}
