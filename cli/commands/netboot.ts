/** netboot: set what nodes boot from the network next: local (their disk), cloner, or cloner-multicast. */
import type { CAC } from 'cac';
import { NETBOOT_STATES } from '../../core/nodes/registry.ts';
import { backendOptions, withBackend, type BackendArgs } from '../backend.ts';
import { UsageError } from '../errors.ts';
import { selected } from './nodes.ts';

export function register(cli: CAC): void {
  backendOptions(cli.command('netboot', 'Set the netboot state of nodes'))
    .option('--nodes <selector>', 'Nodes: node01,node02, node[01-64], @group')
    .option('--set <state>', `One of ${NETBOOT_STATES.join(', ')}`)
    .action(async (o: BackendArgs & { nodes?: string; set?: string }) => {
      if (!o.set || !NETBOOT_STATES.includes(o.set as never)) throw new UsageError(`--set must be one of ${NETBOOT_STATES.join(', ')}`, 'e.g. cloner netboot --nodes node[01-04] --set cloner');
      await withBackend(o, async (backend) => {
        for (const n of await selected(backend, o.nodes)) {
          await backend.changeNode(n.name, [`netboot=${o.set}`], false);
          process.stdout.write(`${n.name}: netboot ${o.set}\n`);
        }
      });
    });
}
