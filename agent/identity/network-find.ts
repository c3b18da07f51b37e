/**
 * The golden node's network configuration, wherever the image's network stacks read it, and
 * the format the node's own is written in.
 *
 * Every stack's places are searched, not only the detected one's (NetworkManager reads ifcfg
 * files through its ifcfg-rh plugin, ifupdown reads whatever `source`/`source-directory`
 * include, netplan generates NetworkManager or networkd files at boot):
 *   NetworkManager   etc/NetworkManager/system-connections/* (keyfiles)
 *   ifcfg            etc/sysconfig/network-scripts/ifcfg-* (+ route-, route6-, rule-)
 *   wicked/SUSE      etc/sysconfig/network/ifcfg-* (+ ifroute-), etc/wicked/ifconfig/*.xml
 *   networkd         etc/systemd/network/*.network and *.netdev
 *   ifupdown         etc/network/interfaces and what its source directives include
 *   netplan          etc/netplan/*.yaml
 * A configuration is the golden node's when it binds an interface (by name or hardware
 * address), defines a bond, VLAN, bridge or team, or holds a static address; loopback and
 * catch-all DHCP files (networkd `Name=en*`) stay. Each golden one is disabled (moved aside,
 * where no stack reads it): replaced when the registry describes its interface, and otherwise
 * also reported as a warning. An ifupdown file holding loopback keeps it, the other stanzas
 * are taken out.
 */
import type { TargetFiles } from './files.ts';
import type { NetworkFormat } from './network-write.ts';

const WANTS = 'etc/systemd/system/multi-user.target.wants';

/** The network configuration format of an image: the enabled manager first, then what is installed. */
export function detectFormat(t: TargetFiles): NetworkFormat | null {
  const enabled = (unit: string) => t.exists(`${WANTS}/${unit}`) || t.exists(`etc/systemd/system/network-online.target.wants/${unit}`);
  const netplanYaml = t.list('etc/netplan').some((n) => /\.ya?ml$/.test(n));
  if (netplanYaml && (t.exists('usr/sbin/netplan') || t.exists('usr/share/netplan') || t.exists('lib/netplan'))) return 'netplan';
  if (enabled('NetworkManager.service')) return 'networkmanager';
  if (enabled('systemd-networkd.service')) return 'networkd';
  if (enabled('wicked.service') || enabled('wickedd.service')) return 'wicked';
  if (t.exists('etc/network/interfaces')) return 'ifupdown';
  if (t.exists('etc/sysconfig/network-scripts')) return 'ifcfg';
  if (t.exists('etc/NetworkManager')) return 'networkmanager';
  if (t.exists('etc/systemd/network')) return 'networkd';
  if (netplanYaml) return 'netplan';
  if (t.exists('etc/sysconfig/network')) return 'wicked';
  return null;
}

/** Sections and keys of an ini-like file (NetworkManager keyfile, systemd unit). */
function ini(text: string): Map<string, Map<string, string[]>> {
  const out = new Map<string, Map<string, string[]>>();
  let section = out.get('') ?? new Map<string, string[]>();
  out.set('', section);
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith(';')) continue;
    const s = /^\[(.+)\]$/.exec(line);
    if (s) {
      section = out.get(s[1]) ?? new Map();
      out.set(s[1], section);
      continue;
    }
    const eq = line.indexOf('=');
    if (eq < 0) continue;
    const k = line.slice(0, eq).trim();
    section.set(k, [...(section.get(k) ?? []), line.slice(eq + 1).trim()]);
  }
  return out;
}
const get = (f: ReturnType<typeof ini>, section: string, key: string) => f.get(section)?.get(key)?.[0];

/** Shell-style KEY=value of an ifcfg file. */
function shellVars(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of text.matchAll(/^\s*([A-Za-z0-9_]+)=(.*)$/gm)) out.set(m[1], m[2].trim().replace(/^(["'])(.*)\1$/, '$2'));
  return out;
}

interface Golden {
  rel: string;
  /** The interface it configures, when it names one. */
  iface: string | null;
  what: string;
}

const WIRED = new Set(['ethernet', '802-3-ethernet', 'bond', 'vlan', 'bridge', 'infiniband', 'team', 'bond-slave', 'bridge-slave', 'team-slave', 'macvlan', 'ip-tunnel']);

function nmKeyfiles(t: TargetFiles): Golden[] {
  const dir = 'etc/NetworkManager/system-connections';
  const out: Golden[] = [];
  for (const name of t.list(dir)) {
    if (name.startsWith('cloner-')) continue;
    const text = t.read(`${dir}/${name}`);
    if (text === null) continue;
    const f = ini(text);
    const type = get(f, 'connection', 'type') ?? '';
    const iface = get(f, 'connection', 'interface-name') ?? null;
    const static4 = get(f, 'ipv4', 'method') === 'manual' || [...(f.get('ipv4')?.keys() ?? [])].some((k) => /^address\d*$/.test(k));
    const static6 = get(f, 'ipv6', 'method') === 'manual';
    if (type === 'loopback' || iface === 'lo') continue;
    if (WIRED.has(type) || static4 || static6) out.push({ rel: `${dir}/${name}`, iface, what: `NetworkManager ${type || 'profile'}${static4 || static6 ? ' with a static address' : ''}` });
  }
  return out;
}

function ifcfgFiles(t: TargetFiles, dir: string, routePrefixes: string[]): Golden[] {
  const out: Golden[] = [];
  for (const name of t.list(dir)) {
    const m = /^ifcfg-(.+)$/.exec(name);
    if (m && m[1] !== 'lo' && !/\.(bak|orig|rpmnew|rpmsave)$|~$/.test(m[1])) {
      const vars = shellVars(t.read(`${dir}/${name}`) ?? '');
      if (vars.get('NAME')?.startsWith('cloner-')) continue;
      const iface = vars.get('DEVICE') ?? m[1];
      out.push({ rel: `${dir}/${name}`, iface, what: `ifcfg ${vars.get('IPADDR') ? `with a static address (${vars.get('IPADDR')})` : 'profile'}` });
    }
    const r = new RegExp(`^(${routePrefixes.join('|')})-(.+)$`).exec(name);
    if (r && r[2] !== 'lo') out.push({ rel: `${dir}/${name}`, iface: r[2], what: 'routes' });
  }
  return out;
}

function networkdFiles(t: TargetFiles): Golden[] {
  const dir = 'etc/systemd/network';
  const out: Golden[] = [];
  for (const name of t.list(dir)) {
    if (name.startsWith('10-cloner-') || !/\.(network|netdev)$/.test(name)) continue;
    const f = ini(t.read(`${dir}/${name}`) ?? '');
    if (name.endsWith('.netdev')) {
      const kind = get(f, 'NetDev', 'Kind');
      if (kind && ['bond', 'vlan', 'bridge', 'team', 'macvlan', 'vxlan'].includes(kind)) out.push({ rel: `${dir}/${name}`, iface: get(f, 'NetDev', 'Name') ?? null, what: `networkd ${kind}` });
      continue;
    }
    const names = (f.get('Match')?.get('Name') ?? []).flatMap((v) => v.split(/\s+/));
    if (names.length === 1 && names[0] === 'lo') continue;
    const exact = names.filter((n) => !/[*?[]/.test(n));
    const byMac = !!get(f, 'Match', 'MACAddress') || !!get(f, 'Match', 'PermanentMACAddress');
    const statics = [...(f.get('Network')?.get('Address') ?? []), ...(f.get('Address')?.get('Address') ?? [])];
    if (exact.length || byMac || statics.length) out.push({ rel: `${dir}/${name}`, iface: exact[0] ?? null, what: `networkd configuration${statics.length ? ` with a static address (${statics.join(', ')})` : ''}` });
  }
  return out;
}

export interface NetworkScan {
  /** The renderer the golden's netplan files named. */
  netplanRenderer: string | null;
}

/**
 * Disables every golden network configuration; those of interfaces the registry does not
 * describe (or that name none) are warnings. ifupdown files are handled by `cleanIfupdown`.
 */
export function disableGoldenNetwork(t: TargetFiles, described: Set<string>): NetworkScan {
  const found = [
    ...nmKeyfiles(t),
    ...ifcfgFiles(t, 'etc/sysconfig/network-scripts', ['route', 'route6', 'rule', 'rule6']),
    ...ifcfgFiles(t, 'etc/sysconfig/network', ['ifroute']),
    ...networkdFiles(t),
    ...t.list('etc/wicked/ifconfig').filter((n) => n.endsWith('.xml')).map((n) => ({ rel: `etc/wicked/ifconfig/${n}`, iface: null, what: 'wicked interface configuration' })),
  ];
  let netplanRenderer: string | null = null;
  for (const name of t.list('etc/netplan')) {
    if (!/\.ya?ml$/.test(name) || name === '90-cloner.yaml') continue;
    const text = t.read(`etc/netplan/${name}`) ?? '';
    netplanRenderer ??= /^\s*renderer:\s*(\S+)/m.exec(text)?.[1] ?? null;
    if (/^\s*(ethernets|bonds|vlans|bridges|wifis|tunnels|infiniband|addresses)\s*:/m.test(text)) found.push({ rel: `etc/netplan/${name}`, iface: null, what: 'netplan configuration' });
  }
  for (const g of found) {
    const mine = g.iface !== null && described.has(g.iface);
    if (t.disable(g.rel, mine ? `the golden's ${g.what} for ${g.iface}: replaced by cloner's` : `the golden's ${g.what}${g.iface ? ` for ${g.iface}` : ''}`) && !mine) {
      t.warn(`${g.rel.replace(/^/, '/')}: the golden's ${g.what}${g.iface ? ` for ${g.iface}, an interface the registry does not describe` : ''}: disabled (moved to /var/lib/cloner/disabled)`);
    }
  }
  // NetworkManager's record of the golden's last used profiles.
  t.remove('var/lib/NetworkManager/timestamps', "removed (the golden's NetworkManager profile history)");
  return { netplanRenderer };
}

const STANZA = /^\s*(iface|mapping|auto|allow-[A-Za-z0-9-]+|source|source-directory|rename|no-auto-down|no-scripts)\b/;

/** The files ifupdown reads: interfaces and what its source/source-directory lines include (globs, relative to etc/network). */
function ifupdownFiles(t: TargetFiles, rel: string, seen: Set<string>): string[] {
  if (seen.has(rel) || seen.size > 200) return [];
  seen.add(rel);
  const text = t.read(rel);
  if (text === null) return [];
  const out = [rel];
  for (const m of text.matchAll(/^\s*(source|source-directory)\s+(\S+)/gm)) {
    const pattern = m[2].startsWith('/') ? m[2].slice(1) : `etc/network/${m[2]}`;
    if (m[1] === 'source-directory') {
      for (const n of t.list(pattern)) if (/^[A-Za-z0-9_-]+$/.test(n)) out.push(...ifupdownFiles(t, `${pattern}/${n}`, seen));
      continue;
    }
    const dir = pattern.split('/').slice(0, -1).join('/');
    const glob = new RegExp(`^${pattern.split('/').at(-1)!.replace(/[.+^${}()|\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
    for (const n of t.list(dir)) if (glob.test(n)) out.push(...ifupdownFiles(t, `${dir}/${n}`, seen));
  }
  return out;
}

/**
 * ifupdown: every stanza for an interface other than loopback, in every file interfaces(5)
 * reads, is the golden's. A file of only such stanzas is disabled; one that also holds
 * loopback or source lines keeps those, the golden's stanzas taken out (the whole file as it
 * was set aside in /var/lib/cloner/disabled). Returns whether
 * etc/network/interfaces includes interfaces.d/cloner-* after this (else it sources them).
 */
export function cleanIfupdown(t: TargetFiles, described: Set<string>, writing: boolean): void {
  if (!t.exists('etc/network/interfaces') && !writing) return;
  const files = ifupdownFiles(t, 'etc/network/interfaces', new Set());
  let includesOurs = false;
  for (const rel of files) {
    if (/\/cloner-[^/]+$/.test(rel)) continue;
    const text = t.read(rel) ?? '';
    const lines = text.split('\n');
    let inGolden = false;
    const ifaces = new Set<string>();
    let kept = 0;
    const DROP = '\0drop';
    const out = lines.map((line) => {
      const m = STANZA.exec(line);
      if (m) {
        const words = line.trim().split(/\s+/);
        const kw = words[0];
        if (kw === 'source' || kw === 'source-directory') {
          if (/interfaces\.d(\/\*)?\/?$/.test(words[1] ?? '') || /interfaces\.d\/cloner-\*$/.test(words[1] ?? '')) includesOurs = true;
          inGolden = false;
          kept++;
          return line;
        }
        const names = kw === 'iface' || kw === 'mapping' || kw === 'rename' ? [words[1]] : words.slice(1);
        const others = names.filter((n) => n && n !== 'lo' && !n.startsWith('lo:'));
        others.forEach((n) => ifaces.add(n.split(/[=:]/)[0]));
        inGolden = kw === 'iface' || kw === 'mapping' ? others.length > 0 : false;
        if (!others.length) {
          kept++;
          return line;
        }
        if (kw.startsWith('allow-') || kw === 'auto' || kw.startsWith('no-')) {
          const loOnly = names.filter((n) => !others.includes(n));
          if (loOnly.length) kept++;
          return loOnly.length ? `${kw} ${loOnly.join(' ')}` : DROP;
        }
        return DROP;
      }
      if (inGolden && line.trim() && !line.trim().startsWith('#')) return DROP;
      return line;
    });
    if (!ifaces.size) continue;
    const mine = [...ifaces].filter((n) => described.has(n));
    const others = [...ifaces].filter((n) => !described.has(n));
    const why = `the golden's stanzas for ${[...ifaces].join(', ')}${mine.length ? ' (replaced by cloner\'s)' : ''}`;
    if (!kept && rel !== 'etc/network/interfaces') t.disable(rel, why);
    else {
      // The golden's stanzas go (a copy of the whole file is set aside); loopback and source lines stay.
      const aside = t.setAside(rel);
      const first = out.indexOf(DROP);
      const text = out.map((l, n) => (n === first ? `# cloner: the golden's stanzas for ${[...ifaces].join(', ')} were here (the file as it was: ${aside})` : l)).filter((l) => l !== DROP).join('\n');
      t.write(rel, text, t.lstat(rel)?.mode ? t.lstat(rel)!.mode & 0o7777 : 0o644, `${why}: taken out (the file as it was: ${aside})`);
    }
    if (others.length) t.warn(`/${rel}: the golden's stanzas for ${others.join(', ')}, interfaces the registry does not describe: disabled`);
  }
  if (writing && !includesOurs) {
    const main = t.read('etc/network/interfaces') ?? 'auto lo\niface lo inet loopback\n';
    t.write('etc/network/interfaces', `${main.replace(/\n*$/, '\n')}\n# cloner: this node's interfaces\nsource /etc/network/interfaces.d/cloner-*\n`, 0o644, 'sources interfaces.d/cloner-*');
  }
}

