/**
 * Network configuration of a node in the format its image reads, from the registry's
 * interfaces (core/nodes/network.ts): ethernet NICs bound to their MACs, IPoIB interfaces,
 * bonds with their ports, VLANs on a parent, bridges. Each interface with an address gets
 * it statically (gateway, DNS), one without gets DHCP, a port of a bond or bridge gets none.
 * One function per format returns the files to write (target-relative path -> content, mode):
 *   NetworkManager keyfiles   etc/NetworkManager/system-connections/cloner-IF.nmconnection
 *   systemd-networkd          etc/systemd/network/10-cloner-IF.{netdev,network}
 *   ifupdown                  etc/network/interfaces.d/cloner-IF
 *   ifcfg (RHEL)              etc/sysconfig/network-scripts/ifcfg-IF
 *   wicked (SUSE)             etc/sysconfig/network/ifcfg-IF (+ ifroute-IF)
 *   netplan (Ubuntu)          etc/netplan/90-cloner.yaml
 */
import { controllerOf, typeOf, type NodeInterface } from '../../core/nodes/network.ts';

export type NetworkFormat = 'networkmanager' | 'networkd' | 'ifupdown' | 'ifcfg' | 'wicked' | 'netplan';
export interface NetworkFile {
  path: string;
  content: string;
  mode: number;
}

const file = (path: string, content: string, mode = 0o644): NetworkFile => ({ path, content, mode });
const splitIp = (ip: string) => ip.split('/') as [string, string];

function prefixToNetmask(prefix: number): string {
  const bits = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  return [24, 16, 8, 0].map((s) => (bits >>> s) & 0xff).join('.');
}

/** NetworkManager keyfile of one interface (a NIC binds to its MAC). */
export function nmKeyfile(i: NodeInterface, all: NodeInterface[] = [i]): string {
  const t = typeOf(i);
  const nmType = { ethernet: 'ethernet', infiniband: 'infiniband', bond: 'bond', vlan: 'vlan', bridge: 'bridge' }[t];
  const lines = ['[connection]', `id=cloner-${i.name}`, `type=${nmType}`, `interface-name=${i.name}`, 'autoconnect=true'];
  const controller = controllerOf(all, i);
  if (controller) lines.push(`master=${controller.name}`, `slave-type=${typeOf(controller)}`);
  lines.push('');
  if (t === 'ethernet') lines.push('[ethernet]', `mac-address=${i.mac.toUpperCase()}`, ...(i.mtu ? [`mtu=${i.mtu}`] : []), '');
  if (t === 'infiniband') lines.push('[infiniband]', `mac-address=${i.mac.toUpperCase()}`, 'transport-mode=datagram', ...(i.mtu ? [`mtu=${i.mtu}`] : []), '');
  if (t === 'bond') lines.push('[bond]', `mode=${i.mode ?? 'active-backup'}`, 'miimon=100', '');
  if (t === 'vlan') lines.push('[vlan]', `parent=${i.parent}`, `id=${i.vlan}`, '');
  if (t === 'bridge') lines.push('[bridge]', 'stp=false', '');
  if ((t === 'bond' || t === 'vlan' || t === 'bridge') && i.mtu) lines.push('[ethernet]', `mtu=${i.mtu}`, '');
  if (controller) return `${lines.join('\n')}`;
  const v6 = i.ip?.includes(':');
  const manual = [`method=manual`, `address1=${i.ip}${i.gateway ? `,${i.gateway}` : ''}`, ...(i.dns?.length ? [`dns=${i.dns.join(';')};`] : [])];
  lines.push('[ipv4]', ...(i.ip && !v6 ? manual : [i.ip ? 'method=disabled' : 'method=auto']), '');
  lines.push('[ipv6]', ...(v6 ? manual : ['method=ignore']), '');
  return lines.join('\n');
}

function networkdAddress(i: NodeInterface): string[] {
  if (!i.ip) return ['DHCP=yes'];
  return [`Address=${i.ip}`, ...(i.gateway ? [`Gateway=${i.gateway}`] : []), ...(i.dns ?? []).map((d) => `DNS=${d}`)];
}

/** systemd-networkd .network (and .netdev for a bond, VLAN or bridge) files of one interface. */
export function networkdFiles(i: NodeInterface, all: NodeInterface[] = [i]): NetworkFile[] {
  const t = typeOf(i);
  const base = `etc/systemd/network/10-cloner-${i.name}`;
  const out: NetworkFile[] = [];
  if (t === 'bond') out.push(file(`${base}.netdev`, `[NetDev]\nName=${i.name}\nKind=bond\n${i.mtu ? `MTUBytes=${i.mtu}\n` : ''}\n[Bond]\nMode=${i.mode ?? 'active-backup'}\nMIIMonitorSec=100ms\n`));
  if (t === 'vlan') out.push(file(`${base}.netdev`, `[NetDev]\nName=${i.name}\nKind=vlan\n${i.mtu ? `MTUBytes=${i.mtu}\n` : ''}\n[VLAN]\nId=${i.vlan}\n`));
  if (t === 'bridge') out.push(file(`${base}.netdev`, `[NetDev]\nName=${i.name}\nKind=bridge\n`));
  const match = t === 'ethernet' ? `MACAddress=${i.mac}` : `Name=${i.name}`;
  const controller = controllerOf(all, i);
  const lines = ['[Match]', match, '', '[Network]'];
  if (controller) lines.push(`${typeOf(controller) === 'bond' ? 'Bond' : 'Bridge'}=${controller.name}`);
  else lines.push(...networkdAddress(i));
  for (const v of all.filter((v) => typeOf(v) === 'vlan' && v.parent === i.name)) lines.push(`VLAN=${v.name}`);
  if (i.mtu && (t === 'ethernet' || t === 'infiniband')) lines.push('', '[Link]', `MTUBytes=${i.mtu}`);
  out.push(file(`${base}.network`, `${lines.join('\n')}\n`));
  return out;
}

/** ifupdown stanza of one interface. */
export function ifupdownStanza(i: NodeInterface, all: NodeInterface[] = [i]): string {
  const t = typeOf(i);
  const controller = controllerOf(all, i);
  if (controller) return `iface ${i.name} inet manual\n${typeOf(controller) === 'bond' ? `    bond-master ${controller.name}\n` : ''}${i.mtu ? `    mtu ${i.mtu}\n` : ''}`;
  const extra: string[] = [];
  if (t === 'bond') extra.push(`    bond-slaves ${(i.ports ?? []).join(' ')}`, `    bond-mode ${i.mode ?? 'active-backup'}`, '    bond-miimon 100');
  if (t === 'vlan') extra.push(`    vlan-raw-device ${i.parent}`);
  if (t === 'bridge') extra.push(`    bridge_ports ${(i.ports ?? []).join(' ')}`, '    bridge_stp off');
  if (i.mtu) extra.push(`    mtu ${i.mtu}`);
  const family = i.ip?.includes(':') ? 'inet6' : 'inet';
  if (!i.ip) return [`auto ${i.name}`, `iface ${i.name} inet dhcp`, ...extra, ''].join('\n');
  const lines = [`auto ${i.name}`, `iface ${i.name} ${family} static`, `    address ${i.ip}`];
  if (i.gateway) lines.push(`    gateway ${i.gateway}`);
  if (i.dns?.length) lines.push(`    dns-nameservers ${i.dns.join(' ')}`);
  return [...lines, ...extra, ''].join('\n');
}

/** RHEL ifcfg file of one interface. */
export function ifcfgFile(i: NodeInterface, all: NodeInterface[] = [i]): string {
  const t = typeOf(i);
  const lines = [`DEVICE=${i.name}`, `NAME=cloner-${i.name}`];
  if (t === 'ethernet' || t === 'infiniband') lines.push(`HWADDR=${i.mac}`);
  lines.push(`TYPE=${{ ethernet: 'Ethernet', infiniband: 'InfiniBand', bond: 'Bond', vlan: 'Vlan', bridge: 'Bridge' }[t]}`, 'ONBOOT=yes');
  if (t === 'infiniband') lines.push('CONNECTED_MODE=no');
  if (t === 'bond') lines.push('BONDING_MASTER=yes', `BONDING_OPTS="mode=${i.mode ?? 'active-backup'} miimon=100"`);
  if (t === 'vlan') lines.push('VLAN=yes', `PHYSDEV=${i.parent}`, `VLAN_ID=${i.vlan}`);
  if (i.mtu) lines.push(`MTU=${i.mtu}`);
  const controller = controllerOf(all, i);
  if (controller) {
    lines.push(typeOf(controller) === 'bond' ? `MASTER=${controller.name}` : `BRIDGE=${controller.name}`, ...(typeOf(controller) === 'bond' ? ['SLAVE=yes'] : []), 'BOOTPROTO=none');
  } else if (i.ip) {
    const [addr, prefix] = splitIp(i.ip);
    if (addr.includes(':')) lines.push('BOOTPROTO=none', 'IPV6INIT=yes', `IPV6ADDR=${i.ip}`, ...(i.gateway ? [`IPV6_DEFAULTGW=${i.gateway}`] : []));
    else lines.push('BOOTPROTO=none', `IPADDR=${addr}`, `PREFIX=${prefix}`, `NETMASK=${prefixToNetmask(Number(prefix))}`, ...(i.gateway ? [`GATEWAY=${i.gateway}`] : []));
    (i.dns ?? []).forEach((d, n) => lines.push(`DNS${n + 1}=${d}`));
  } else lines.push('BOOTPROTO=dhcp');
  return `${lines.join('\n')}\n`;
}

/** SUSE wicked ifcfg file (and ifroute for a gateway) of one interface. */
export function wickedFiles(i: NodeInterface, all: NodeInterface[] = [i]): NetworkFile[] {
  const t = typeOf(i);
  const controller = controllerOf(all, i);
  const lines = [`NAME='cloner-${i.name}'`, `STARTMODE='${controller ? 'hotplug' : 'auto'}'`];
  if (t === 'ethernet' || t === 'infiniband') lines.push(`LLADDR='${i.mac}'`);
  if (t === 'infiniband') lines.push("IPOIB_MODE='datagram'");
  if (t === 'bond') lines.push("BONDING_MASTER='yes'", `BONDING_MODULE_OPTS='mode=${i.mode ?? 'active-backup'} miimon=100'`, ...(i.ports ?? []).map((p, n) => `BONDING_SLAVE_${n}='${p}'`));
  if (t === 'vlan') lines.push(`ETHERDEVICE='${i.parent}'`, `VLAN_ID='${i.vlan}'`);
  if (t === 'bridge') lines.push("BRIDGE='yes'", `BRIDGE_PORTS='${(i.ports ?? []).join(' ')}'`, "BRIDGE_STP='off'");
  if (i.mtu) lines.push(`MTU='${i.mtu}'`);
  if (controller) lines.push("BOOTPROTO='none'");
  else if (i.ip) lines.push("BOOTPROTO='static'", `IPADDR='${i.ip}'`);
  else lines.push("BOOTPROTO='dhcp'");
  const out = [file(`etc/sysconfig/network/ifcfg-${i.name}`, `${lines.join('\n')}\n`)];
  if (i.gateway && i.ip && !controller) out.push(file(`etc/sysconfig/network/ifroute-${i.name}`, `default ${i.gateway} - ${i.name}\n`));
  return out;
}

/** One netplan file for every interface; `renderer` is kept from the golden's files. */
export function netplanFile(all: NodeInterface[], renderer: string | null): string {
  const groups: Record<string, string[]> = { ethernets: [], bonds: [], vlans: [], bridges: [] };
  for (const i of all) {
    const t = typeOf(i);
    const body: string[] = [];
    if (t === 'ethernet') body.push('match:', `  macaddress: "${i.mac}"`, `set-name: ${i.name}`);
    if (t === 'bond') body.push(`interfaces: [${(i.ports ?? []).join(', ')}]`, 'parameters:', `  mode: ${i.mode ?? 'active-backup'}`, '  mii-monitor-interval: 100');
    if (t === 'bridge') body.push(`interfaces: [${(i.ports ?? []).join(', ')}]`, 'parameters:', '  stp: false');
    if (t === 'vlan') body.push(`id: ${i.vlan}`, `link: ${i.parent}`);
    if (t === 'infiniband') body.push('infiniband-mode: datagram');
    if (i.mtu) body.push(`mtu: ${i.mtu}`);
    if (controllerOf(all, i)) body.push('dhcp4: false', 'dhcp6: false');
    else if (i.ip) {
      body.push('dhcp4: false', `addresses: ["${i.ip}"]`);
      if (i.gateway) body.push('routes:', `  - to: default`, `    via: ${i.gateway}`);
      if (i.dns?.length) body.push('nameservers:', `  addresses: [${i.dns.join(', ')}]`);
    } else body.push('dhcp4: true');
    const group = t === 'infiniband' ? 'ethernets' : `${t === 'bridge' ? 'bridge' : t === 'bond' ? 'bond' : t === 'vlan' ? 'vlan' : 'ethernet'}s`;
    groups[group].push(`    ${i.name}:`, ...body.map((l) => `      ${l}`));
  }
  const lines = ['# written by cloner from the node registry', 'network:', '  version: 2', ...(renderer ? [`  renderer: ${renderer}`] : [])];
  for (const [name, body] of Object.entries(groups)) if (body.length) lines.push(`  ${name}:`, ...body);
  return `${lines.join('\n')}\n`;
}

/** Every file of the node's network configuration in `format`. */
export function networkFiles(format: NetworkFormat, all: NodeInterface[], netplanRenderer: string | null = null): NetworkFile[] {
  switch (format) {
    case 'networkmanager':
      return all.map((i) => file(`etc/NetworkManager/system-connections/cloner-${i.name}.nmconnection`, nmKeyfile(i, all), 0o600));
    case 'networkd':
      return all.flatMap((i) => networkdFiles(i, all));
    case 'ifupdown':
      return all.map((i) => file(`etc/network/interfaces.d/cloner-${i.name}`, ifupdownStanza(i, all)));
    case 'ifcfg':
      return all.map((i) => file(`etc/sysconfig/network-scripts/ifcfg-${i.name}`, ifcfgFile(i, all)));
    case 'wicked':
      return all.flatMap((i) => wickedFiles(i, all));
    case 'netplan':
      return [file('etc/netplan/90-cloner.yaml', netplanFile(all, netplanRenderer), 0o600)];
  }
}
