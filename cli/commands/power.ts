/** power: on, off, reset or status of nodes through their BMCs (run by the server, which has the credentials). */
import type { CAC } from 'cac';
import pLimit from 'p-limit';
import { POWER_ACTIONS, type PowerAction } from '../../core/nodes/states.ts';
import { backendOptions, withBackend, type BackendArgs } from '../backend.ts';
import { UsageError } from '../errors.ts';
import { selected } from './nodes.ts';

export function register(cli: CAC): void {
  backendOptions(cli.command('power <action>', `Power nodes through their BMCs: ${POWER_ACTIONS.join(', ')}`))
    .option('--nodes <selector>', 'Nodes: node01,node02, node[01-64], @group')
    .option('--json', 'Print JSON')
    .action(async (action: string, o: BackendArgs & { nodes?: string; json?: boolean }) => {
      if (!POWER_ACTIONS.includes(action as PowerAction)) throw new UsageError(`unknown power action ${action}`, `use ${POWER_ACTIONS.join(', ')}`);
      await withBackend(o, async (backend) => {
        const nodes = await selected(backend, o.nodes);
        const limit = pLimit(8);
        const results = await Promise.all(nodes.map((n) => limit(() => backend.power(n.name, action as PowerAction).then((r) => ({ ...r, error: null as string | null }), (err: Error) => ({ node: n.name, action, state: null, error: err.message })))));
        if (o.json) process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
        else for (const r of results) if (!r.error) process.stdout.write(`${r.node}: ${r.state ?? 'unknown'}\n`);
        const failed = results.filter((r) => r.error);
        for (const f of failed) process.stderr.write(`cloner: error: ${f.error}\n`);
        if (failed.length) throw new UsageError(`power ${action} failed on ${failed.length} of ${results.length} nodes`, 'see the lines above; check each node\'s bmc.* settings and that its BMC is reachable');
      });
    });
}
