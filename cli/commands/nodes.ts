/**
 * nodes: the node registry. `nodes add NAME [key=value...]`, `nodes set --nodes SEL
 * key=value...`, `nodes list [--nodes SEL] [--json]`, `nodes show NAME [--json]`,
 * `nodes remove --nodes SEL`, `nodes import --file CSV` (a header row of keys: name, then
 * any settable key, e.g. name,groups,eth0.mac,eth0.ip), `nodes history NAME [--json]` (its
 * past deploys), `nodes group --nodes SEL GROUP [--remove]` (one group added or taken
 * away, the others kept). Selectors: node01,node02, node[01-64], @group.
 */
import type { CAC } from 'cac';
import { readFile } from 'node:fs/promises';
import { formatBytes, printable } from '../../core/format.ts';
import { selectNodes } from '../../core/nodes/selector.ts';
import type { NodeRecord } from '../../core/nodes/registry.ts';
import { backendOptions, withBackend, type Backend, type BackendArgs } from '../backend.ts';
import { UsageError } from '../errors.ts';
import { confirm } from '../confirm.ts';

interface Options extends BackendArgs {
  nodes?: string;
  remove?: boolean;
  file?: string;
  json?: boolean;
  yes?: boolean;
}

export async function selected(backend: Backend, selector: string | undefined): Promise<NodeRecord[]> {
  if (!selector) throw new UsageError('--nodes is required', 'e.g. --nodes node[01-04] or --nodes @rack1');
  const all = await backend.listNodes();
  const names = selectNodes(String(selector), all);
  return names.map((n) => all.find((x) => x.name === n)!);
}

function describe(n: NodeRecord): string {
  const ifs = n.interfaces.map((i) => `${i.name} ${i.mac}${i.ip ? ` ${i.ip}` : ''}`).join('; ');
  const image = n.cloner_image ? `${n.cloner_image}${n.cloner_revision ? `@${n.cloner_revision}` : ''}` : '-';
  return `${n.name.padEnd(16)} ${image.padEnd(16)} ${n.netboot.padEnd(16)} ${(n.groups.join(',') || '-').padEnd(16)} ${ifs || '-'}`;
}

/** Rows of a CSV file with a header row; quoted fields may hold commas. */
function parseCsv(text: string): Array<Record<string, string>> {
  const rows: string[][] = [];
  for (const line of text.split(/\r?\n/)) {
    if (!line.trim() || line.trimStart().startsWith('#')) continue;
    const cells: string[] = [];
    let cell = '';
    let quoted = false;
    for (let i = 0; i < line.length; i++) {
      const c = line[i];
      if (quoted) {
        if (c === '"' && line[i + 1] === '"') (cell += '"'), i++;
        else if (c === '"') quoted = false;
        else cell += c;
      } else if (c === '"') quoted = true;
      else if (c === ',') (cells.push(cell), (cell = ''));
      else cell += c;
    }
    if (quoted) throw new UsageError(`unterminated quote in line: ${line.slice(0, 60)}`, 'close the quote');
    cells.push(cell);
    rows.push(cells.map((c) => c.trim()));
  }
  const [header, ...body] = rows;
  if (!header?.includes('name')) throw new UsageError('the CSV has no "name" column in its header row', 'e.g. name,groups,eth0.mac,eth0.ip');
  return body.map((cells, i) => {
    if (cells.length !== header.length) throw new UsageError(`row ${i + 2} has ${cells.length} fields, the header ${header.length}`, 'one field per header column');
    return Object.fromEntries(header.map((h, j) => [h, cells[j]]));
  });
}

export function register(cli: CAC): void {
  backendOptions(cli.command('nodes <action> [...args]', 'Node registry: add NAME k=v..., set --nodes SEL k=v..., list, show NAME, remove --nodes SEL, import --file CSV, history NAME, group --nodes SEL G'))
    .usage(`nodes <action> [...args] [options]

Actions:
  add NAME [KEY=VALUE...]           add a node
  set --nodes SEL KEY=VALUE...      change nodes (each is checked before any is changed)
  list [--nodes SEL] [--json]       list nodes
  show NAME                         one node as JSON
  remove --nodes SEL [--yes]        remove nodes with their deploy tokens and SSH host keys (asks first)
  import --file CSV                 add or update nodes from a CSV with a header row of keys
  history NAME [--json]             the node's past deploys (last 50): when, image@revision, result, duration
  group --nodes SEL GROUP [--remove]  put nodes in GROUP (their other groups kept), or take them out

Keys:
  groups=a,b  hostname=NAME  cloner_image=NAME  cloner_revision=N (empty: the latest)
  cloner_layout=NAME  netboot=local|cloner|cloner-multicast
  bmc.type=ipmi|redfish  bmc.address  bmc.port  bmc.username  bmc.password  bmc.tls_verify=yes|no
  IFACE.mac  IFACE.ip=ADDR/PREFIX  IFACE.gateway  IFACE.dns   (e.g. eth0.ip=198.18.1.5/24)

Selectors: node01,node02  node[01-64]  @group`)
    .option('--nodes <selector>', 'Nodes: node01,node02, node[01-64], @group')
    .option('--file <csv>', 'With import: a CSV file with a header row of keys')
    .option('--json', 'Print JSON')
    .option('--yes', 'With remove: do not ask')
    .option('--remove', 'With group: take the nodes out of the group')
    .action(async (action: string, args: string[], o: Options) => {
      const { applySettings } = await import('../../core/nodes/registry.ts');
      await withBackend(o, async (backend) => {
        switch (action) {
          case 'add': {
            const [name, ...settings] = args;
            if (!name) throw new UsageError('nodes add needs a name', 'e.g. cloner nodes add node01 eth0.mac=52:54:00:12:34:56 groups=rack1');
            const node = await backend.changeNode(name, settings, true);
            process.stdout.write(o.json ? `${JSON.stringify(node, null, 2)}\n` : `added ${describe(node)}\n`);
            return;
          }
          case 'set': {
            if (!args.length) throw new UsageError('nodes set needs key=value settings', 'e.g. cloner nodes set --nodes node[01-04] cloner_image=node');
            // Every node is selected and the settings checked on each before any is changed
            // (the server checks again, and alone knows about MACs of other nodes).
            const nodes = await selected(backend, o.nodes);
            for (const n of nodes) applySettings(n, args);
            for (const n of nodes) {
              const node = await backend.changeNode(n.name, args, false);
              process.stdout.write(`set ${describe(node)}\n`);
            }
            return;
          }
          case 'list': {
            const nodes = o.nodes ? await selected(backend, o.nodes) : await backend.listNodes();
            if (o.json) process.stdout.write(`${JSON.stringify(nodes, null, 2)}\n`);
            else {
              process.stdout.write(`${'NODE'.padEnd(16)} ${'IMAGE'.padEnd(16)} ${'NETBOOT'.padEnd(16)} ${'GROUPS'.padEnd(16)} INTERFACES\n`);
              for (const n of nodes) process.stdout.write(`${describe(n)}\n`);
            }
            return;
          }
          case 'show': {
            const [name] = args;
            const node = (await backend.listNodes()).find((n) => n.name === name);
            if (!node) throw new UsageError(`no node named ${name ?? '(none given)'}`, 'list nodes with: cloner nodes list');
            process.stdout.write(`${JSON.stringify(node, null, 2)}\n`);
            return;
          }
          case 'remove': {
            const nodes = await selected(backend, o.nodes);
            process.stdout.write(`removes ${nodes.length} node(s) with their deploy tokens and SSH host keys: ${nodes.map((n) => n.name).join(', ')}\n`);
            if (!(await confirm(`Remove ${nodes.length} node(s)?`, o.yes))) {
              process.stdout.write('nothing removed\n');
              return;
            }
            for (const n of nodes) {
              await backend.deleteNode(n.name);
              process.stdout.write(`removed ${n.name}\n`);
            }
            return;
          }
          case 'import': {
            if (!o.file) throw new UsageError('nodes import needs --file CSV', 'a header row of keys, e.g. name,groups,eth0.mac,eth0.ip');
            const rows = parseCsv(await readFile(String(o.file), 'utf8'));
            const existing = new Set((await backend.listNodes()).map((n) => n.name));
            for (const row of rows) {
              const { name, ...rest } = row;
              const settings = Object.entries(rest).filter(([, v]) => v !== '').map(([k, v]) => `${k}=${v}`);
              const node = await backend.changeNode(name, settings, !existing.has(name));
              process.stdout.write(`${existing.has(name) ? 'updated' : 'added'} ${describe(node)}\n`);
            }
            return;
          }
          case 'history': {
            const [name] = args;
            if (!name) throw new UsageError('nodes history needs a node name', 'e.g. cloner nodes history node01');
            const entries = await backend.history(name);
            if (o.json) process.stdout.write(`${JSON.stringify(entries, null, 2)}\n`);
            else {
              process.stdout.write(`${'ENDED'.padEnd(20)} ${'IMAGE'.padEnd(16)} ${'RESULT'.padEnd(18)} ${'TOOK'.padEnd(8)} ${'FETCHED'.padEnd(10)} MESSAGE\n`);
              for (const e of entries) {
                const result = e.ok ? `ok${e.warnings ? ` (${e.warnings} warn)` : ''}` : `failed in ${e.phase}`;
                process.stdout.write(`${e.at.slice(0, 19).replace('T', ' ').padEnd(20)} ${`${e.image ?? '-'}${e.revision ? `@${e.revision}` : ''}`.padEnd(16)} ${result.padEnd(18)} ${(e.seconds !== null ? `${Math.round(e.seconds)} s` : '-').padEnd(8)} ${(e.fetchedBytes !== null ? formatBytes(e.fetchedBytes) : '-').padEnd(10)} ${printable(e.message ?? '')}\n`);
              }
              if (!entries.length) process.stdout.write(`(${name} has no deploy recorded)\n`);
            }
            return;
          }
          case 'group': {
            const [group] = args;
            if (!group || args.length > 1) throw new UsageError('nodes group needs one group name', 'e.g. cloner nodes group --nodes node[01-04] gpu  (or --remove)');
            (await import('../../core/nodes/groups.ts')).assertGroupName(group);
            const nodes = await selected(backend, o.nodes);
            for (const n of nodes) process.stdout.write(`${o.remove ? 'took out of' : 'put in'} ${group}: ${describe(await backend.group(n.name, group, !!o.remove))}\n`);
            return;
          }
          default:
            throw new UsageError(`unknown nodes action ${action}`, 'use add, set, list, show, remove, import, history or group');
        }
      });
    });
}
