/**
 * identify: the image, revision and layout assigned to a node. Without --method, for the
 * machine it runs on, by the MAC addresses of its network interfaces (/sys/class/net);
 * `--method mac --macaddr M1,M2` or `--method node --node N1,N2` for others.
 */
import type { CAC } from 'cac';
import { readdir, readFile } from 'node:fs/promises';
import type { Assignment } from '../../core/nodes/registry.ts';
import { backendOptions, withBackend, type BackendArgs } from '../backend.ts';
import { UsageError } from '../errors.ts';
import { splitList } from '../../core/format.ts';

async function localMacs(): Promise<string[]> {
  const macs: string[] = [];
  for (const dev of await readdir('/sys/class/net').catch(() => [] as string[])) {
    const mac = (await readFile(`/sys/class/net/${dev}/address`, 'utf8').catch(() => '')).trim();
    if (mac && mac !== '00:00:00:00:00:00') macs.push(mac);
  }
  return macs;
}

export function register(cli: CAC): void {
  backendOptions(cli.command('identify', 'Show the image, revision and layout assigned to this node (or to others)'))
    .option('--method <method>', 'mac or node')
    .option('--macaddr <macs>', 'With --method mac: comma-separated MAC addresses')
    .option('--node <nodes>', 'With --method node: comma-separated node names')
    .option('--json', 'Print JSON')
    .action(async (o: BackendArgs & { method?: string; macaddr?: string; node?: string; json?: boolean }) => {
      if (o.method !== undefined && o.method !== 'mac' && o.method !== 'node') throw new UsageError(`bad --method ${o.method}`, 'use --method mac or --method node');
      await withBackend(o, async (backend) => {
        const found: Assignment[] = [];
        if (o.method === 'node') {
          const names = splitList(o.node);
          if (!names.length) throw new UsageError('--method node needs --node', 'e.g. --node node01,node02');
          for (const name of names) found.push(await backend.identify({ node: name }));
        } else {
          const macs = o.method === 'mac' ? splitList(o.macaddr) : await localMacs();
          if (!macs.length) throw new UsageError(o.method === 'mac' ? '--method mac needs --macaddr' : 'this machine shows no network interface MAC', 'e.g. --method mac --macaddr 52:54:00:12:34:56');
          for (const mac of macs) {
            try {
              found.push(await backend.identify({ mac }));
            } catch (err) {
              if (o.method === 'mac' || (err as { code?: string }).code !== 'NODE_NOT_FOUND') throw err;
            }
          }
          if (!found.length) throw new UsageError(`none of this machine's MACs (${macs.join(', ')}) belongs to a registered node`, 'register it with: cloner nodes add NAME eth0.mac=...');
        }
        if (o.json) process.stdout.write(`${JSON.stringify(found, null, 2)}\n`);
        else for (const a of found) process.stdout.write(`${a.node}: image ${a.image ?? '-'}${a.image && !a.imageFound ? ' (not on the server)' : ''}, revision ${a.revision ?? '-'}, layout ${a.layout ?? '-'}, netboot ${a.netboot}\n`);
      });
    });
}
