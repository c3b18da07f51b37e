/**
 * The network model of a node record: what HPC nodes have. Each interface is one of
 *   ethernet     a NIC, bound to its MAC (6 bytes)
 *   infiniband   an IPoIB interface, bound to its 20-byte hardware address
 *   bond         ports (interface names) and a mode (802.3ad, active-backup, ...)
 *   vlan         a parent interface and a VLAN id
 *   bridge       ports
 * each with its own per-node address (ip ADDRESS/PREFIX, gateway, dns) or DHCP, and an
 * optional MTU. An interface with a port-of relation (a bond or bridge lists it in ports)
 * carries no address of its own. `setInterfaceField` applies one `IFACE.field=value`
 * setting; `checkInterfaces` checks the whole set (MACs where needed, ports and parents
 * that exist, no loops).
 */
import { isIP } from 'node:net';
import { MAC_PATTERN } from '../names.ts';

export type InterfaceType = 'ethernet' | 'infiniband' | 'bond' | 'vlan' | 'bridge';
export const INTERFACE_TYPES: readonly InterfaceType[] = ['ethernet', 'infiniband', 'bond', 'vlan', 'bridge'];

export interface NodeInterface {
  name: string;
  /** ethernet: 6 bytes; infiniband: 20 bytes; bond, vlan, bridge: '' (none of their own). */
  mac: string;
  /** Default: infiniband for a 20-byte address, else ethernet. */
  type?: InterfaceType;
  ip?: string;
  gateway?: string;
  dns?: string[];
  mtu?: number;
  /** bond and bridge: the interfaces they hold. */
  ports?: string[];
  /** bond: its mode (balance-rr, active-backup, balance-xor, broadcast, 802.3ad, balance-tlb, balance-alb). */
  mode?: string;
  /** vlan: the interface it rides on, and its id. */
  parent?: string;
  vlan?: number;
}

export const IB_MAC_PATTERN = /^[0-9a-f]{2}(:[0-9a-f]{2}){19}$/;
export const IFNAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,14}$/;
export const BOND_MODES = ['balance-rr', 'active-backup', 'balance-xor', 'broadcast', '802.3ad', 'balance-tlb', 'balance-alb'];
export const INTERFACE_FIELDS = ['mac', 'ip', 'gateway', 'dns', 'type', 'ports', 'mode', 'parent', 'vlan', 'mtu'] as const;

/** An interface's type (explicit, else by its hardware address). */
export const typeOf = (i: NodeInterface): InterfaceType => i.type ?? (IB_MAC_PATTERN.test(i.mac) ? 'infiniband' : 'ethernet');

/** Does this type need a hardware address of its own? */
export const hasHardware = (t: InterfaceType) => t === 'ethernet' || t === 'infiniband';

/** The bond or bridge holding `i`, if any (its port carries no address). */
export const controllerOf = (all: NodeInterface[], i: NodeInterface): NodeInterface | undefined => all.find((c) => (c.ports ?? []).includes(i.name));

export function cidr(value: string, key: string, fail: (message: string, hint: string) => never): string {
  const [addr, prefix, extra] = value.split('/');
  const family = isIP(addr ?? '');
  const max = family === 6 ? 128 : 32;
  if (!family || extra !== undefined || prefix === undefined || !/^\d{1,3}$/.test(prefix) || Number(prefix) > max) fail(`${key}: ${JSON.stringify(value)} is not ADDRESS/PREFIX`, 'e.g. eth0.ip=198.18.1.5/24');
  return value;
}

function address(value: string, key: string, fail: (message: string, hint: string) => never): string {
  if (!isIP(value)) fail(`${key}: ${JSON.stringify(value)} is not an IP address`, 'e.g. 198.18.1.1');
  return value;
}

/** Applies one `IFACE.field=value` to `entry` (a value of '' clears the field). */
export function setInterfaceField(entry: NodeInterface, field: (typeof INTERFACE_FIELDS)[number], value: string, key: string, fail: (message: string, hint: string) => never): void {
  const clear = value === '';
  switch (field) {
    case 'mac': {
      const mac = value.toLowerCase().replace(/-/g, ':');
      if (!MAC_PATTERN.test(mac) && !IB_MAC_PATTERN.test(mac)) fail(`${key}: ${JSON.stringify(value)} is not a MAC address`, 'e.g. 52:54:00:12:34:56 (or 20 bytes for IPoIB)');
      entry.mac = mac;
      break;
    }
    case 'ip':
      entry.ip = clear ? undefined : cidr(value, key, fail);
      break;
    case 'gateway':
      entry.gateway = clear ? undefined : address(value, key, fail);
      break;
    case 'dns':
      entry.dns = clear ? undefined : value.split(',').map((d) => address(d.trim(), key, fail));
      break;
    case 'type':
      if (clear) delete entry.type;
      else if (!INTERFACE_TYPES.includes(value as InterfaceType)) fail(`${key}: ${JSON.stringify(value)} is not one of ${INTERFACE_TYPES.join(', ')}`, 'e.g. bond0.type=bond');
      else entry.type = value as InterfaceType;
      break;
    case 'ports': {
      const ports = value.split(',').map((p) => p.trim()).filter(Boolean);
      for (const p of ports) if (!IFNAME.test(p)) fail(`${key}: invalid interface name ${JSON.stringify(p)}`, 'e.g. bond0.ports=eno1,eno2');
      entry.ports = clear ? undefined : ports;
      break;
    }
    case 'mode':
      if (clear) delete entry.mode;
      else if (!BOND_MODES.includes(value)) fail(`${key}: ${JSON.stringify(value)} is not a bond mode`, `one of ${BOND_MODES.join(', ')}`);
      else entry.mode = value;
      break;
    case 'parent':
      if (clear) delete entry.parent;
      else if (!IFNAME.test(value)) fail(`${key}: invalid interface name ${JSON.stringify(value)}`, 'e.g. vlan100.parent=bond0');
      else entry.parent = value;
      break;
    case 'vlan':
      if (clear) delete entry.vlan;
      else if (!/^\d{1,4}$/.test(value) || Number(value) < 1 || Number(value) > 4094) fail(`${key}: ${JSON.stringify(value)} is not a VLAN id (1-4094)`, 'e.g. vlan100.vlan=100');
      else entry.vlan = Number(value);
      break;
    case 'mtu':
      if (clear) delete entry.mtu;
      else if (!/^\d{3,5}$/.test(value) || Number(value) < 68 || Number(value) > 65520) fail(`${key}: ${JSON.stringify(value)} is not an MTU (68-65520)`, 'e.g. ib0.mtu=65520');
      else entry.mtu = Number(value);
      break;
  }
  // Drop undefined fields so records compare and print cleanly.
  for (const k of Object.keys(entry) as Array<keyof NodeInterface>) if (entry[k] === undefined) delete entry[k];
}

/** Checks a node's interfaces as a whole; throws (through `fail`) on the first problem. */
export function checkInterfaces(node: string, all: NodeInterface[], fail: (message: string, hint: string) => never): void {
  const names = new Set(all.map((i) => i.name));
  for (const i of all) {
    const t = typeOf(i);
    if (t === 'ethernet' && !MAC_PATTERN.test(i.mac)) fail(`interface ${i.name} of ${node} has no MAC`, `set ${i.name}.mac=... (or ${i.name}.type=bond/vlan/bridge)`);
    if (t === 'infiniband' && !IB_MAC_PATTERN.test(i.mac)) fail(`interface ${i.name} of ${node} is infiniband without a 20-byte hardware address`, `set ${i.name}.mac=80:00:00:48:fe:80:00:00:00:00:00:00:...`);
    if (!hasHardware(t) && i.mac) fail(`interface ${i.name} of ${node} is a ${t}: it has no MAC of its own`, `clear it: ${i.name}.mac=`);
    if ((t === 'bond' || t === 'bridge') && !i.ports?.length) fail(`${t} ${i.name} of ${node} has no ports`, `set ${i.name}.ports=eno1,eno2`);
    if (t !== 'bond' && t !== 'bridge' && i.ports?.length) fail(`interface ${i.name} of ${node} is a ${t}: only a bond or bridge has ports`, `set ${i.name}.type=bond (or bridge)`);
    if (t === 'vlan' && (!i.parent || !i.vlan)) fail(`vlan ${i.name} of ${node} needs a parent and an id`, `set ${i.name}.parent=bond0 ${i.name}.vlan=100`);
    if (i.mode && t !== 'bond') fail(`interface ${i.name} of ${node} has a bond mode but is a ${t}`, `set ${i.name}.type=bond`);
    for (const p of [...(i.ports ?? []), ...(i.parent ? [i.parent] : [])]) {
      if (!names.has(p)) fail(`${i.name} of ${node} names ${p}, which is not one of its interfaces`, `describe it: ${p}.mac=...`);
      if (p === i.name) fail(`${i.name} of ${node} names itself`, 'a port or parent is another interface');
    }
    const holders = all.filter((c) => (c.ports ?? []).includes(i.name));
    if (holders.length > 1) fail(`${i.name} of ${node} is a port of ${holders.map((h) => h.name).join(' and ')}`, 'an interface is a port of one bond or bridge');
    if (holders.length && (i.ip || i.gateway)) fail(`${i.name} of ${node} is a port of ${holders[0].name}: its address belongs on ${holders[0].name}`, `set ${holders[0].name}.ip=... and ${i.name}.ip=`);
  }
  // No loops through ports and parents.
  const below = (i: NodeInterface) => [...(i.ports ?? []), ...(i.parent ? [i.parent] : [])];
  for (const start of all) {
    const seen = new Set<string>();
    const walk = (n: string): void => {
      if (n === start.name && seen.size) fail(`${start.name} of ${node} is part of a loop of ports and parents`, 'ports and parents form a tree');
      if (seen.has(n)) return;
      seen.add(n);
      const i = all.find((x) => x.name === n);
      if (i) for (const b of below(i)) walk(b);
    };
    walk(start.name);
  }
  const macs = all.filter((i) => i.mac).map((i) => i.mac);
  if (new Set(macs).size !== macs.length) fail(`${node} lists one MAC on two interfaces`, 'each interface has its own MAC');
}
