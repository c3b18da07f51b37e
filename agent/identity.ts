/**
 * Node identity on a freshly deployed tree: what makes one image many distinct nodes.
 *
 * Every write, delete, read and copy stays under the target: paths are built from fixed
 * relative names and reached through core/tree/beneath.ts's TargetRoot, whose parent
 * directories are opened with openat2 RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS (or an
 * O_NOFOLLOW walk), so a symlink anywhere on the way (etc/udev -> /etc/udev in a hostile
 * image) is never followed: a file to write below one is refused (IdentityError), a file
 * to remove or read below one is not there for this step (and the report says so). A file
 * is replaced by writing a temporary name (O_CREAT|O_EXCL|O_NOFOLLOW), then renaming it.
 * The operations, after virt-sysprep's identity and network ones:
 *   - /etc/hostname, and /etc/hosts with the golden node's name replaced by this node's;
 *   - a fresh /etc/machine-id (and /var/lib/dbus/machine-id when it is a file), a fresh
 *     systemd random seed;
 *   - interface names pinned to MACs (systemd .link files, or a udev rule without
 *     systemd), the golden node's persistent-net rules removed;
 *   - network configuration for each interface in the format the image uses:
 *     NetworkManager keyfiles, systemd-networkd, ifupdown or ifcfg (static when the
 *     registry gives an address, DHCP otherwise); the golden node's own configuration for
 *     ethernet interfaces is removed first;
 *   - DHCP leases and LVM's system.devices (it names the golden node's disks) removed;
 *   - SSH host keys: the node's own, kept by the server (made on the first deploy);
 *   - /etc/fstab from the layout's new UUIDs.
 * The image's version of every file changed or removed is saved under
 * /var/lib/cloner/image-files (not part of any image): the next deploy finds those chunks
 * on the node, so a re-deploy of an unchanged image fetches nothing.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { constants as fsc } from 'node:fs';
import { ClonerError } from '../core/errors.ts';
import type { NodeInterface, NodeRecord } from '../core/nodes/registry.ts';
import { TargetRoot } from '../core/tree/beneath.ts';
import { decodeName } from '../core/tree/file-names.ts';
import { NODE_STATE_DIR } from '../core/tree/select.ts';

export class IdentityError extends ClonerError {
  override readonly code = 'IDENTITY_FAILED';
}

export type NetworkFormat = 'networkmanager' | 'networkd' | 'ifupdown' | 'ifcfg';

export interface IdentityOptions {
  target: string;
  node: NodeRecord;
  /** The new fstab (from the layout), or null to leave the image's. */
  fstab: string | null;
  /** The node's SSH host keys (file name -> bytes), or null to leave the image without keys. */
  hostKeys: Record<string, Buffer> | null;
}

export interface IdentityReport {
  hostname: string;
  network: NetworkFormat | null;
  changed: string[];
  warnings: string[];
}

/** Tree path ("/etc/hosts") of a target-relative one ("etc/hosts"). */
const treePath = (rel: string) => `/${rel.split('/').filter(Boolean).join('/')}`;

/** Codes openBeneath gives for a symlink (or non-directory) on the way. */
const isBlocked = (err: unknown) => ['ELOOP', 'ENOTDIR', 'EXDEV'].includes((err as NodeJS.ErrnoException).code ?? '');

/** A real directory under the target, created (0755) when missing; a symlink on the way is refused, never followed. */
function ensureDir(root: TargetRoot, rel: string, mode = 0o755): void {
  let current = '';
  for (const part of rel.split('/').filter(Boolean)) {
    current = `${current}/${part}`;
    try {
      root.dirFd(current);
      continue;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw new IdentityError(`${root.path}${current} is not a directory (a symlink in the image?)`, 'identity files are only written into real directories of the target');
      }
    }
    fs.mkdirSync(root.at(current), mode);
    root.dirFd(current);
  }
}

/** Where the image's versions of the files made node-specific are saved (seeds of the next deploy). */
export const IMAGE_FILES_DIR = `${NODE_STATE_DIR.slice(1)}/image-files`;

/** The content of a regular file of the target, or null (missing, not a regular file, or below a symlink). */
function readTargetBytes(root: TargetRoot, rel: string): Buffer | null {
  let fd: number;
  try {
    fd = root.open(treePath(rel), fsc.O_RDONLY | fsc.O_NONBLOCK);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || isBlocked(err)) return null;
    throw err;
  }
  try {
    return fs.fstatSync(fd).isFile() ? fs.readFileSync(fd) : null;
  } finally {
    fs.closeSync(fd);
  }
}

/** Creates (or replaces) a file by a temporary name and a rename, all beneath the root. */
function replaceFile(root: TargetRoot, rel: string, content: string | Buffer, mode: number): void {
  const file = treePath(rel);
  const temp = `${file}.cloner-new`;
  try {
    fs.unlinkSync(root.at(temp));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const fd = root.open(temp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, mode);
  try {
    fs.writeFileSync(fd, content);
    fs.fchmodSync(fd, mode);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(root.at(temp), root.at(file));
}

/**
 * Saves the image's version of a file about to be changed or removed, so a re-deploy finds
 * its chunks on the node instead of fetching them. The directory is root's only (0700):
 * it holds the image's SSH host keys when the image has them (which every node holding
 * the read token could fetch from the image anyway).
 */
function saveImageVersion(root: TargetRoot, rel: string): void {
  const content = readTargetBytes(root, rel);
  if (content === null) return;
  ensureDir(root, IMAGE_FILES_DIR, 0o700);
  replaceFile(root, `${IMAGE_FILES_DIR}/${rel.replace(/\//g, '%')}`, content, 0o600);
}

function writeFileIn(root: TargetRoot, rel: string, content: string | Buffer, mode = 0o644): string {
  const dir = rel.split('/').filter(Boolean).slice(0, -1).join('/');
  ensureDir(root, dir);
  saveImageVersion(root, rel);
  replaceFile(root, rel, content, mode);
  return treePath(rel);
}

/** Writes one file of the target (`rel` relative to it), never through a symlink; returns its tree path. */
export function writeTargetFile(target: string, rel: string, content: string | Buffer, mode = 0o644): string {
  const root = TargetRoot.open(target);
  try {
    return writeFileIn(root, rel, content, mode);
  } finally {
    root.close();
  }
}

function readTarget(root: TargetRoot, rel: string): string | null {
  return readTargetBytes(root, rel)?.toString('utf8') ?? null;
}

/** The kind of the entry at `rel`, or null when missing or below a symlink (not part of this target). */
function lstatTarget(root: TargetRoot, rel: string): fs.Stats | null {
  try {
    return fs.lstatSync(root.at(treePath(rel)));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || isBlocked(err)) return null;
    throw err;
  }
}

function removeTarget(root: TargetRoot, rel: string, changed: string[], warnings: string[]): void {
  const dir = rel.split('/').filter(Boolean).slice(0, -1).join('/');
  try {
    root.dirFd(treePath(dir));
  } catch (err) {
    if (isBlocked(err)) warnings.push(`/${dir} is a symlink (or below one) in the image: /${rel} left alone`);
    else if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    return;
  }
  const st = lstatTarget(root, rel);
  if (st && !st.isDirectory()) {
    saveImageVersion(root, rel);
    fs.unlinkSync(root.at(treePath(rel)));
    changed.push(`-/${rel}`);
  }
}

function listTarget(root: TargetRoot, rel: string): string[] {
  try {
    return fs.readdirSync(root.dirPath(treePath(rel)), { encoding: 'buffer' }).map(decodeName).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || isBlocked(err)) return [];
    throw err;
  }
}

const exists = (root: TargetRoot, rel: string) => lstatTarget(root, rel) !== null;

/** The network configuration format of an image: the enabled manager first, then what is installed. */
export function detectNetworkFormat(target: string | TargetRoot): NetworkFormat | null {
  if (typeof target === 'string') {
    const root = TargetRoot.open(target);
    try {
      return detectNetworkFormat(root);
    } finally {
      root.close();
    }
  }
  const wants = 'etc/systemd/system/multi-user.target.wants';
  if (exists(target, `${wants}/NetworkManager.service`)) return 'networkmanager';
  if (exists(target, `${wants}/systemd-networkd.service`)) return 'networkd';
  if (exists(target, 'etc/network/interfaces')) return 'ifupdown';
  if (exists(target, 'etc/sysconfig/network-scripts')) return 'ifcfg';
  if (exists(target, 'etc/NetworkManager')) return 'networkmanager';
  if (exists(target, 'etc/systemd/network')) return 'networkd';
  return null;
}

function prefixToNetmask(prefix: number): string {
  const bits = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  return [24, 16, 8, 0].map((s) => (bits >>> s) & 0xff).join('.');
}

/** NetworkManager keyfile of one interface (the connection binds to the MAC). */
export function nmKeyfile(i: NodeInterface): string {
  const lines = ['[connection]', `id=cloner-${i.name}`, 'type=ethernet', `interface-name=${i.name}`, 'autoconnect=true', '', '[ethernet]', `mac-address=${i.mac.toUpperCase()}`, '', '[ipv4]'];
  if (i.ip) {
    lines.push('method=manual', `address1=${i.ip}${i.gateway ? `,${i.gateway}` : ''}`);
    if (i.dns?.length) lines.push(`dns=${i.dns.join(';')};`);
  } else lines.push('method=auto');
  lines.push('', '[ipv6]', 'method=ignore', '');
  return lines.join('\n');
}

export function networkdFile(i: NodeInterface): string {
  const lines = ['[Match]', `MACAddress=${i.mac}`, '', '[Network]'];
  if (i.ip) {
    lines.push(`Address=${i.ip}`);
    if (i.gateway) lines.push(`Gateway=${i.gateway}`);
    for (const d of i.dns ?? []) lines.push(`DNS=${d}`);
  } else lines.push('DHCP=yes');
  return `${lines.join('\n')}\n`;
}

export function ifupdownStanza(i: NodeInterface): string {
  if (!i.ip) return `auto ${i.name}\niface ${i.name} inet dhcp\n`;
  const lines = [`auto ${i.name}`, `iface ${i.name} inet static`, `    address ${i.ip}`];
  if (i.gateway) lines.push(`    gateway ${i.gateway}`);
  if (i.dns?.length) lines.push(`    dns-nameservers ${i.dns.join(' ')}`);
  return `${lines.join('\n')}\n`;
}

export function ifcfgFile(i: NodeInterface): string {
  const lines = [`DEVICE=${i.name}`, `HWADDR=${i.mac}`, 'TYPE=Ethernet', 'ONBOOT=yes'];
  if (i.ip) {
    const [addr, prefix] = i.ip.split('/');
    lines.push('BOOTPROTO=none', `IPADDR=${addr}`, `PREFIX=${prefix}`);
    if (!addr.includes(':')) lines.push(`NETMASK=${prefixToNetmask(Number(prefix))}`);
    if (i.gateway) lines.push(`GATEWAY=${i.gateway}`);
    (i.dns ?? []).forEach((d, n) => lines.push(`DNS${n + 1}=${d}`));
  } else lines.push('BOOTPROTO=dhcp');
  return `${lines.join('\n')}\n`;
}

/** Is a NetworkManager keyfile an ethernet connection (the golden node's own NIC config)? */
const isEthernetKeyfile = (text: string) => /^type=(ethernet|802-3-ethernet)\s*$/m.test(text);

function writeNetwork(target: TargetRoot, format: NetworkFormat, interfaces: NodeInterface[], changed: string[], warnings: string[]): void {
  switch (format) {
    case 'networkmanager': {
      const dir = 'etc/NetworkManager/system-connections';
      for (const name of listTarget(target, dir)) {
        const text = readTarget(target, `${dir}/${name}`);
        if (text !== null && (name.startsWith('cloner-') || isEthernetKeyfile(text))) removeTarget(target, `${dir}/${name}`, changed, warnings);
      }
      for (const i of interfaces) changed.push(writeFileIn(target, `${dir}/cloner-${i.name}.nmconnection`, nmKeyfile(i), 0o600));
      break;
    }
    case 'networkd': {
      const dir = 'etc/systemd/network';
      for (const name of listTarget(target, dir)) {
        if (!name.endsWith('.network')) continue;
        const text = readTarget(target, `${dir}/${name}`) ?? '';
        // The golden node's files for its ethernet interfaces (matched by name or MAC).
        if (name.startsWith('10-cloner-') || /^\s*(MACAddress|Name)\s*=\s*(en|eth|[0-9a-f]{2}:)/m.test(text)) removeTarget(target, `${dir}/${name}`, changed, warnings);
      }
      for (const i of interfaces) changed.push(writeFileIn(target, `${dir}/10-cloner-${i.name}.network`, networkdFile(i)));
      break;
    }
    case 'ifupdown': {
      // The golden node's stanzas go: interfaces keeps loopback and sources interfaces.d.
      changed.push(writeFileIn(target, 'etc/network/interfaces', '# written by cloner: loopback here, each interface in interfaces.d\nsource /etc/network/interfaces.d/*\n\nauto lo\niface lo inet loopback\n'));
      for (const name of listTarget(target, 'etc/network/interfaces.d')) if (name.startsWith('cloner-')) removeTarget(target, `etc/network/interfaces.d/${name}`, changed, warnings);
      for (const i of interfaces) changed.push(writeFileIn(target, `etc/network/interfaces.d/cloner-${i.name}`, ifupdownStanza(i)));
      break;
    }
    case 'ifcfg': {
      const dir = 'etc/sysconfig/network-scripts';
      for (const name of listTarget(target, dir)) if (name.startsWith('ifcfg-') && name !== 'ifcfg-lo') removeTarget(target, `${dir}/${name}`, changed, warnings);
      for (const i of interfaces) changed.push(writeFileIn(target, `${dir}/ifcfg-${i.name}`, ifcfgFile(i)));
      break;
    }
  }
}

/** /etc/hosts with every line naming the golden host renamed, and this node's address. */
export function hostsFile(previous: string | null, goldenName: string | null, hostname: string, address: string | null): string {
  const short = hostname.split('.')[0];
  const names = hostname === short ? short : `${hostname} ${short}`;
  const lines = (previous ?? '127.0.0.1\tlocalhost\n').split('\n').filter((line) => {
    if (line.trim().startsWith('#') || !line.trim()) return true;
    const fields = line.trim().split(/\s+/);
    // The golden node's own line (127.0.1.1 golden), and any earlier line for this node.
    return !(goldenName && fields.slice(1).some((f) => f === goldenName || f.split('.')[0] === goldenName.split('.')[0])) && !fields.slice(1).includes(short);
  });
  while (lines.length && !lines.at(-1)!.trim()) lines.pop();
  lines.push(`${address ?? '127.0.1.1'}\t${names}`);
  return `${lines.join('\n')}\n`;
}

export function applyIdentity(o: IdentityOptions): IdentityReport {
  const root = TargetRoot.open(o.target);
  try {
    return applyIdentityIn(root, o);
  } finally {
    root.close();
  }
}

function applyIdentityIn(target: TargetRoot, o: IdentityOptions): IdentityReport {
  const { node } = o;
  const changed: string[] = [];
  const warnings: string[] = [];
  const hostname = node.hostname ?? node.name;

  const golden = readTarget(target, 'etc/hostname')?.trim() || null;
  changed.push(writeFileIn(target, 'etc/hostname', `${hostname.split('.')[0]}\n`));
  const primary = node.interfaces.find((i) => i.ip && !i.ip.includes(':'));
  changed.push(writeFileIn(target, 'etc/hosts', hostsFile(readTarget(target, 'etc/hosts'), golden, hostname, primary?.ip?.split('/')[0] ?? null)));

  const machineId = randomBytes(16).toString('hex');
  changed.push(writeFileIn(target, 'etc/machine-id', `${machineId}\n`, 0o444));
  if (lstatTarget(target, 'var/lib/dbus/machine-id')?.isFile()) changed.push(writeFileIn(target, 'var/lib/dbus/machine-id', `${machineId}\n`, 0o444));
  if (exists(target, 'var/lib/systemd')) changed.push(writeFileIn(target, 'var/lib/systemd/random-seed', randomBytes(512), 0o600));

  // Interface names pinned to MACs; the golden node's pinning goes.
  removeTarget(target, 'etc/udev/rules.d/70-persistent-net.rules', changed, warnings);
  for (const name of listTarget(target, 'etc/systemd/network')) if (name.startsWith('10-cloner-') && name.endsWith('.link')) removeTarget(target, `etc/systemd/network/${name}`, changed, warnings);
  if (exists(target, 'etc/systemd') || exists(target, 'lib/systemd/systemd-udevd') || exists(target, 'usr/lib/systemd/systemd-udevd')) {
    for (const i of node.interfaces) changed.push(writeFileIn(target, `etc/systemd/network/10-cloner-${i.name}.link`, `[Match]\nMACAddress=${i.mac}\n\n[Link]\nName=${i.name}\n`));
  } else if (node.interfaces.length) {
    changed.push(writeFileIn(target, 'etc/udev/rules.d/70-cloner-net.rules', node.interfaces.map((i) => `SUBSYSTEM=="net", ACTION=="add", ATTR{address}=="${i.mac}", NAME="${i.name}"\n`).join('')));
  }

  const network = node.interfaces.length ? detectNetworkFormat(target) : null;
  if (network) writeNetwork(target, network, node.interfaces, changed, warnings);
  else if (node.interfaces.length) warnings.push('the image has no network configuration cloner knows (NetworkManager, systemd-networkd, ifupdown, ifcfg); interfaces left unconfigured');

  for (const dir of ['var/lib/dhcp', 'var/lib/dhclient', 'var/lib/NetworkManager']) {
    for (const name of listTarget(target, dir)) if (/\.lease(s)?$/.test(name) || name.startsWith('dhclient')) removeTarget(target, `${dir}/${name}`, changed, warnings);
  }
  removeTarget(target, 'etc/lvm/devices/system.devices', changed, warnings);

  if (exists(target, 'etc/ssh')) {
    for (const name of listTarget(target, 'etc/ssh')) if (/^ssh_host_.*_key(\.pub)?$/.test(name)) removeTarget(target, `etc/ssh/${name}`, changed, warnings);
    if (o.hostKeys) {
      for (const [name, body] of Object.entries(o.hostKeys)) changed.push(writeFileIn(target, `etc/ssh/${name}`, body, name.endsWith('.pub') ? 0o644 : 0o600));
    } else warnings.push('no SSH host keys for this node; sshd makes its own at first start (if the image does that)');
  }
  if (o.fstab !== null) changed.push(writeFileIn(target, 'etc/fstab', o.fstab));
  return { hostname, network, changed, warnings };
}
