/**
 * status: each selected node's deploy as the server sees it: the phase it is in, how far
 * the restore is (percent, bytes fetched, rate), when it last reported, and its last
 * result (or error; a done deploy's warnings follow its row, one a line). `--watch` redraws
 * every --interval seconds until every selected node is done or failed (a node that has
 * not reported is not), or `--timeout` seconds passed (exit 2), or Ctrl-C; a server that stops
 * answering meanwhile (a restart) is said once on stderr and tried again each interval. Below the rows:
 * when the store was last verified and garbage-collected (core/tree/maintenance.ts) and the
 * multicast sessions with each selected node's part (a server's only). `--json` prints
 * {nodes: rows, maintenance: {gc, verify}, multicast: {sessions} | null}. What nodes
 * reported is shown with control characters escaped.
 */
import type { CAC } from 'cac';
import { formatBytes, printable } from '../../core/format.ts';
import { selectNodes } from '../../core/nodes/selector.ts';
import type { SessionView } from '../../core/multicast/hub.ts';
import type { MaintenanceRun, MaintenanceState } from '../../core/tree/maintenance.ts';
import { backendOptions, withBackend, type Backend, type BackendArgs, type DeployRow } from '../backend.ts';
import { UsageError } from '../errors.ts';

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
  } else if (s?.message && s.phase !== 'done') detail = printable(s.message);
  if (phase === 'failed' || (!s && last && !last.ok)) {
    phase = 'failed';
    detail = `in ${last?.phase ?? s?.phase}: ${printable(last?.message ?? s?.message ?? '')}`;
  } else if (phase === 'done' && last?.ok) {
    const warned = last.warnings?.length ?? 0;
    detail = `${last.image ?? ''}${last.revision ? ` rev ${last.revision}` : ''} in ${last.seconds ?? '?'} s, fetched ${formatBytes(last.fetchedBytes ?? 0)}${warned ? `, ${warned} warning${warned > 1 ? 's' : ''}:` : ''}`;
    // A done deploy's warnings, each on its own line under the row: they are what the admin must read.
    if (warned) detail += last.warnings!.map((w) => `\n${' '.repeat(4)}warning: ${printable(w)}`).join('');
    else if (last.message && /warning/.test(last.message)) detail += `, ${printable(last.message)}`;
  }
  const image = s?.image ? `${s.image}${s.revision ? `@${s.revision}` : ''}` : row.image ?? '-';
  return `${row.node.padEnd(16)} ${row.netboot.padEnd(10)} ${image.padEnd(14)} ${phase.padEnd(13)} ${ago(s?.updated ?? last?.at, now).padEnd(9)} ${detail}`;
}

/** "verify 3h ago (2026-01-31 14:02 UTC, 12 s): ok, 120 chunks checked, all sound", or never. */
export function maintenanceLine(kind: string, run: MaintenanceRun | null, now = Date.now()): string {
  if (!run) return `${kind}: never run on this store`;
  return `${kind}: ${ago(run.at, now)} (${run.at.slice(0, 16).replace('T', ' ')} UTC, ${run.seconds} s): ${run.ok ? 'ok' : 'FAILED'}, ${printable(run.summary)}`;
}

/** The multicast sessions of a server with only the selected nodes' part (null: not a server). */
async function multicastSessions(backend: Backend, wanted: Set<string> | null): Promise<SessionView[] | null> {
  const [{ HttpStore }, { ApiClient }, { API }] = await Promise.all([import('../../core/store/http.ts'), import('../../core/api/client.ts'), import('../../core/api/routes.ts')]);
  if (!(backend.chunks instanceof HttpStore)) return null;
  const { sessions } = await new ApiClient(backend.chunks).call(API.multicastStatus);
  if (!wanted) return sessions;
  return sessions.filter((s) => s.receivers.some((r) => wanted.has(r.node))).map((s) => ({ ...s, receivers: s.receivers.filter((r) => wanted.has(r.node)) }));
}

function footer(maintenance: MaintenanceState, sessions: SessionView[] | null, sessionLines: (s: SessionView) => string[]): string {
  const lines = ['', maintenanceLine('verify', maintenance.verify), maintenanceLine('gc', maintenance.gc)];
  if (sessions) {
    lines.push('', sessions.length ? `multicast sessions: ${sessions.length}` : 'multicast sessions: none');
    for (const s of sessions) lines.push(...sessionLines(s));
  }
  return `${lines.join('\n')}\n`;
}

export function register(cli: CAC): void {
  backendOptions(cli.command('status', 'Deploy status of nodes (phase, progress, rate, last result or error), last verify and gc, multicast sessions'))
    .option('--nodes <selector>', 'Nodes: node01,node02, node[01-64], @group (default: all)')
    .option('--watch', 'Redraw until every selected node is done or failed (a node that has not reported yet is not)')
    .option('--timeout <s>', 'With --watch: give up after this many seconds (exit 2)')
    .option('--interval <s>', 'Seconds between redraws with --watch', { default: 2 })
    .option('--json', 'Print JSON')
    .action(async (o: BackendArgs & { nodes?: string; watch?: boolean; interval?: unknown; timeout?: unknown; json?: boolean }) => {
      const interval = Number(o.interval);
      if (!Number.isFinite(interval) || interval < 0.2 || interval > 3600) throw new UsageError('--interval must be 0.2 to 3600 seconds', 'e.g. --interval 5');
      const timeout = o.timeout === undefined ? Infinity : Number(o.timeout);
      if (!(timeout > 0)) throw new UsageError('--timeout must be a positive number of seconds', 'e.g. --timeout 1800');
      const watchStart = Date.now();
      await withBackend(o, async (backend) => {
        const wanted = o.nodes ? new Set(selectNodes(String(o.nodes), await backend.listNodes())) : null;
        const read = async () => (await backend.deploys()).filter((r) => !wanted || wanted.has(r.node));
        const header = `${'NODE'.padEnd(16)} ${'NETBOOT'.padEnd(10)} ${'IMAGE'.padEnd(14)} ${'PHASE'.padEnd(13)} ${'UPDATED'.padEnd(9)} DETAIL`;
        // Finished: a live report of done or failed, or a result recorded since the watch began
        // (a restarted server keeps only results). A node that has not reported is not finished.
        const finished = (r: DeployRow) =>
          r.status ? r.status.phase === 'done' || r.status.phase === 'failed' : !!r.lastDeploy && Date.parse(r.lastDeploy.at) >= watchStart - 1000;
        if (!o.json) for (const w of await (await import('../installer-notes.ts')).installerWarnings(backend, o, (await backend.listNodes()).filter((n) => !wanted || wanted.has(n.name)))) process.stderr.write(`warning: ${w}\n`);
        const { sessionLines } = await import('./multicast-status.ts');
        let outage: number | null = null;
        for (;;) {
          let got;
          try {
            got = await Promise.all([read(), backend.maintenance(), multicastSessions(backend, wanted)]);
          } catch (err) {
            // --watch outlives a server restart: an unreachable server is said once, then tried each interval.
            if (!o.watch || !(await import('../../core/store/http.ts')).isTransient(err)) throw err;
            if (outage === null) process.stderr.write(`cloner: the server does not answer (${(err as Error).message}); still watching\n`);
            outage ??= Date.now();
            if (Date.now() - watchStart >= timeout * 1000) throw new UsageError(`--timeout ${o.timeout} s passed while the server did not answer`, 'check the server: systemctl status cloner-server');
            await new Promise((r) => setTimeout(r, interval * 1000));
            continue;
          }
          if (outage !== null) process.stderr.write(`cloner: the server answers again after ${Math.round((Date.now() - outage) / 1000)} s\n`);
          outage = null;
          const [rows, maintenance, sessions] = got;
          if (o.json) process.stdout.write(`${JSON.stringify({ nodes: rows, maintenance, multicast: sessions ? { sessions } : null }, null, 2)}\n`);
          else {
            if (o.watch && process.stdout.isTTY) process.stdout.write('\x1b[H\x1b[2J');
            process.stdout.write(`${[header, ...rows.map((r) => statusLine(r))].join('\n')}\n${footer(maintenance, sessions, (s) => sessionLines(s))}`);
          }
          if (!o.watch || rows.every(finished)) return;
          if (Date.now() - watchStart >= timeout * 1000) {
            const open = rows.filter((r) => !finished(r)).map((r) => r.node);
            throw new UsageError(`--timeout ${o.timeout} s passed with ${open.length} node(s) not done or failed: ${open.slice(0, 10).join(', ')}${open.length > 10 ? ', ...' : ''}`, 'see where they are with cloner status --nodes ...');
          }
          await new Promise((r) => setTimeout(r, interval * 1000));
        }
      });
    });
}
