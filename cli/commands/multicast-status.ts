/**
 * multicast-status: the nodes waiting in cloner-multicast mode (image, revision, how long
 * they have waited, bytes they lack, link speed) and the multicast sessions with each
 * node's part in them (state, bytes still lacked, why it was dropped). `--json` prints
 * the server's answer.
 */
import type { CAC } from 'cac';
import type { ApiClient } from '../../core/api/client.ts';
import type { Api } from '../../core/api/routes.ts';
import { formatBytes } from '../../core/format.ts';
import type { MulticastStatus, SessionView } from '../../core/multicast/hub.ts';
import { selectNodes } from '../../core/nodes/selector.ts';
import { backendOptions, withBackend, type Backend, type BackendArgs } from '../backend.ts';
import { UsageError } from '../errors.ts';

/** The protocol client of a server backend (multicast needs a server) and the route table, loaded when a command runs. */
export async function serverApi(backend: Backend): Promise<{ api: ApiClient; API: Api }> {
  const [{ ApiClient }, { API }, { HttpStore }] = await Promise.all([import('../../core/api/client.ts'), import('../../core/api/endpoints.ts'), import('../../core/store/http.ts')]);
  if (!(backend.chunks instanceof HttpStore)) throw new UsageError('multicast needs a cloner server', 'pass --server (not --store)');
  return { api: new ApiClient(backend.chunks), API };
}

const secondsSince = (iso: string, now: number) => `${Math.max(0, Math.round((now - Date.parse(iso)) / 1000))}s`;

export function sessionLines(s: SessionView, now = Date.now()): string[] {
  const mbit = (bytes: number) => Math.round((bytes * 8) / 1e6);
  const rate = `${mbit(s.rate)} Mbit/s${s.maxRate && s.rate < s.maxRate ? ` (of ${mbit(s.maxRate)}: lowered for loss)` : ''}`;
  const head = `session ${s.id} ${s.image}@${s.revision} ${s.phase}${s.round ? ` round ${s.round}` : ''} ${s.group}:${s.port} ${rate}, sent ${formatBytes(s.sent.bytes)} for a union of ${formatBytes(s.unionBytes)}, ${secondsSince(s.created, s.ended ? Date.parse(s.ended) : now)}${s.message ? ` (${s.message})` : ''}`;
  return [head, ...s.receivers.map((r) => `  ${r.node.padEnd(16)} ${r.state.padEnd(10)} ${`${Math.floor((100 * (r.lackingBytes - r.missingBytes)) / Math.max(1, r.lackingBytes))}% of ${formatBytes(r.lackingBytes)}`.padEnd(18)} ${r.reason ?? ''}`.trimEnd())];
}

export function statusText(st: MulticastStatus, now = Date.now()): string {
  const lines = [`${'WAITING'.padEnd(16)} ${'IMAGE'.padEnd(14)} ${'WAITED'.padEnd(8)} ${'LACKS'.padEnd(12)} LINK`];
  for (const w of st.waiting) lines.push(`${w.node.padEnd(16)} ${`${w.image}@${w.revision}`.padEnd(14)} ${secondsSince(w.since, now).padEnd(8)} ${formatBytes(w.lackingBytes).padEnd(12)} ${w.linkMbps ? `${w.linkMbps} Mbit/s` : '-'}`);
  if (!st.waiting.length) lines.push('(no node is waiting)');
  for (const s of st.sessions) lines.push('', ...sessionLines(s, now));
  return `${lines.join('\n')}\n`;
}

export function register(cli: CAC): void {
  backendOptions(cli.command('multicast-status', 'Nodes waiting in cloner-multicast mode, and multicast sessions with each node\'s progress'))
    .option('--nodes <selector>', 'Only these nodes: node01,node02, node[01-64], @group')
    .option('--json', 'Print JSON')
    .action(async (o: BackendArgs & { nodes?: string; json?: boolean }) => {
      await withBackend(o, async (backend) => {
        const { api, API } = await serverApi(backend);
        const st = await api.call(API.multicastStatus);
        if (o.nodes) {
          const wanted = new Set(selectNodes(String(o.nodes), await backend.listNodes()));
          st.waiting = st.waiting.filter((w) => wanted.has(w.node));
          st.sessions = st.sessions.filter((s) => s.receivers.some((r) => wanted.has(r.node))).map((s) => ({ ...s, receivers: s.receivers.filter((r) => wanted.has(r.node)) }));
        }
        process.stdout.write(o.json ? `${JSON.stringify(st, null, 2)}\n` : statusText(st));
      });
    });
}
