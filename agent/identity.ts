/**
 * Node identity on a freshly deployed tree: what makes one image many distinct nodes, and
 * only that: every file is changed where it names the golden node, the rest kept as it was.
 * After virt-sysprep's identity and network operations:
 *   - /etc/hostname; /etc/hosts with the golden's name tokens replaced (identity/hosts.ts);
 *   - a fresh /etc/machine-id (and /var/lib/dbus/machine-id when it is a file), a fresh
 *     systemd random seed;
 *   - interface names pinned to MACs (systemd .link files, or a udev rule without systemd),
 *     the golden node's persistent-net rules removed;
 *   - the golden's network configuration, wherever the image's stacks read it, disabled
 *     (identity/network-find.ts), and the registry's interfaces written in the image's
 *     format (identity/network-write.ts);
 *   - DHCP leases removed; LVM's system.devices (it names the golden node's disks) written
 *     from the node's PVs, or removed;
 *   - SSH host keys: the node's own, kept by the server (made on the first deploy);
 *   - /etc/fstab: the layout's filesystems' entries rewritten (identity/fstab.ts), and every
 *     other golden block-device reference of the boot chain (identity/devices.ts);
 *   - the golden's name, machine-id and per-host secrets in other files (identity/golden-names.ts);
 *   - SELinux labels for what was written, or /.autorelabel (identity/selinux.ts).
 * Every access goes through identity/files.ts (beneath the target, never through a symlink);
 * every change is listed in the report (file, what changed), with the warnings.
 */
import { randomBytes } from 'node:crypto';
import type { NodeRecord } from '../core/nodes/registry.ts';
import { controllerOf, typeOf } from '../core/nodes/network.ts';
import { TargetRoot } from '../core/tree/beneath.ts';
import { TargetFiles, type IdentityChange } from './identity/files.ts';
import { mergeFstab, type NodeFilesystem } from './identity/fstab.ts';
import { bootFiles, rewriteDeviceReferences } from './identity/devices.ts';
import type { NodeDisk, NodePv } from './identity/device-ids.ts';
import { goldenNames } from './identity/golden-names.ts';
import { labelWritten, policyLabeler } from './identity/selinux.ts';
import { hostsFile } from './identity/hosts.ts';
import { cleanIfupdown, detectFormat, disableGoldenNetwork } from './identity/network-find.ts';
import { networkFiles, type NetworkFormat } from './identity/network-write.ts';

export { IdentityError, IMAGE_FILES_DIR, type IdentityChange } from './identity/files.ts';
export { hostsFile } from './identity/hosts.ts';
export { mergeFstab, type NodeFilesystem } from './identity/fstab.ts';
export type { NodeDisk, NodePv } from './identity/device-ids.ts';
export { ifcfgFile, ifupdownStanza, networkdFiles, nmKeyfile, netplanFile, type NetworkFormat } from './identity/network-write.ts';

export interface IdentityOptions {
  target: string;
  node: NodeRecord;
  /** The layout's filesystems on this node (the golden's fstab entries for them are rewritten), or null to leave fstab. */
  filesystems: NodeFilesystem[] | null;
  /** The node's SSH host keys (file name -> bytes), or null to leave the image without keys. */
  hostKeys: Record<string, Buffer> | null;
  /** `mdadm --detail --scan` on the node when the layout made arrays (mdadm.conf's ARRAY lines). */
  mdadmScan?: string | null;
  /** The PVs the layout made on the node (system.devices is written from them; without, it is removed). */
  pvs?: NodePv[] | null;
  /** The layout's disks on the node with their /dev/disk/by-id|by-path names. */
  disks?: NodeDisk[];
}

export interface IdentityReport {
  hostname: string;
  network: NetworkFormat | null;
  changes: IdentityChange[];
  warnings: string[];
  /** A reference to a block device in the boot chain changed: the initramfs and GRUB's config must be made anew. */
  bootChainChanged: boolean;
  /**
   * What of the boot chain the identity step changed, for agent/initramfs.ts: the golden's
   * device references it replaced, and the boot-chain files it changed or removed other than
   * fstab (target-relative; an initramfs may carry copies of them: mdadm.conf, crypttab, ...).
   */
  replacedRefs: string[];
  bootChainFiles: string[];
  /** Files written without an SELinux label that the image's setfiles is to label (tree paths), with its tool and contexts. */
  selinuxToLabel: { files: string[]; setfiles: string; fileContexts: string } | null;
}

/** The warnings and changes of a deploy result, trimmed to fit the server's 16 KiB body limit (about 12 KiB of them). */
export function resultLists(warnings: string[], changes: IdentityChange[], budget = 12 * 1024): { warnings: string[]; changes: IdentityChange[] } {
  const cut = (s: string) => (s.length > 1000 ? `${s.slice(0, 997)}...` : s);
  const w: string[] = [];
  const c: IdentityChange[] = [];
  let used = 0;
  for (const x of warnings) {
    if (w.length >= 199 || (used += cut(x).length + 4) > budget / 2) {
      w.push(`... and ${warnings.length - w.length} more warnings (see the agent's log)`);
      break;
    }
    w.push(cut(x));
  }
  used = Math.max(used, 0);
  for (const x of changes) {
    if (c.length >= 199 || (used += cut(x.file).length + cut(x.change).length + 24) > budget) {
      c.push({ file: '...', change: `and ${changes.length - c.length} more changes (see the agent's log)` });
      break;
    }
    c.push({ file: cut(x.file), change: cut(x.change) });
  }
  return { warnings: w, changes: c };
}

/** Writes one file of the target (`rel` relative to it), never through a symlink; returns its tree path. */
export function writeTargetFile(target: string, rel: string, content: string | Buffer, mode = 0o644): string {
  const t = TargetFiles.open(target);
  try {
    return t.write(rel, content, mode);
  } finally {
    t.close();
  }
}

/** The network configuration format of an image. */
export function detectNetworkFormat(target: string): NetworkFormat | null {
  const t = TargetFiles.open(target);
  try {
    return detectFormat(t);
  } finally {
    t.close();
  }
}

export function applyIdentity(o: IdentityOptions): IdentityReport {
  const t = new TargetFiles(TargetRoot.open(o.target));
  try {
    return applyIdentityIn(t, o);
  } finally {
    t.close();
  }
}

function network(t: TargetFiles, node: NodeRecord): NetworkFormat | null {
  const nics = node.interfaces.filter((i) => typeOf(i) === 'ethernet');
  // Interface names pinned to MACs; the golden node's pinning goes.
  t.remove('etc/udev/rules.d/70-persistent-net.rules', "removed (the golden's interface names by MAC)");
  for (const name of t.list('etc/systemd/network')) if (name.startsWith('10-cloner-') && name.endsWith('.link')) t.remove(`etc/systemd/network/${name}`, 'removed (an earlier deploy\'s)');
  if (t.exists('etc/systemd') || t.exists('lib/systemd/systemd-udevd') || t.exists('usr/lib/systemd/systemd-udevd')) {
    for (const i of nics) t.write(`etc/systemd/network/10-cloner-${i.name}.link`, `[Match]\nMACAddress=${i.mac}\n\n[Link]\nName=${i.name}\n`, 0o644, `${i.name} named by its MAC ${i.mac}`);
  } else if (nics.length) {
    t.write('etc/udev/rules.d/70-cloner-net.rules', nics.map((i) => `SUBSYSTEM=="net", ACTION=="add", ATTR{address}=="${i.mac}", NAME="${i.name}"\n`).join(''), 0o644, 'interface names by MAC');
  }
  const format = node.interfaces.length ? detectFormat(t) : null;
  const described = new Set(node.interfaces.map((i) => i.name));
  const scan = disableGoldenNetwork(t, described);
  cleanIfupdown(t, described, format === 'ifupdown');
  if (!format) {
    if (node.interfaces.length) t.warn('the image has no network configuration cloner knows (NetworkManager, systemd-networkd, ifupdown, ifcfg, wicked, netplan); interfaces left unconfigured');
    return null;
  }
  // Files of an earlier deploy that the registry no longer describes.
  const files = networkFiles(format, node.interfaces, scan.netplanRenderer);
  const ours = new Set(files.map((f) => f.path));
  for (const [dir, prefix] of [['etc/NetworkManager/system-connections', 'cloner-'], ['etc/systemd/network', '10-cloner-'], ['etc/network/interfaces.d', 'cloner-']] as const) {
    for (const name of t.list(dir)) if (name.startsWith(prefix) && !name.endsWith('.link') && !ours.has(`${dir}/${name}`)) t.remove(`${dir}/${name}`, 'removed (an interface the registry no longer describes)');
  }
  for (const f of files) {
    const i = node.interfaces.find((x) => f.path.includes(`-${x.name}.`) || f.path.endsWith(`-${x.name}`));
    const what = i ? `${typeOf(i)} ${i.name}: ${controllerOf(node.interfaces, i) ? `port of ${controllerOf(node.interfaces, i)!.name}` : i.ip ?? 'DHCP'}` : `${node.interfaces.map((x) => x.name).join(', ')}`;
    t.write(f.path, f.content, f.mode, what);
  }
  return format;
}

function applyIdentityIn(t: TargetFiles, o: IdentityOptions): IdentityReport {
  const { node } = o;
  const hostname = node.hostname ?? node.name;

  const golden = t.read('etc/hostname')?.trim() || null;
  const goldenMachineId = t.read('etc/machine-id')?.trim() || null;
  t.write('etc/hostname', `${hostname.split('.')[0]}\n`, 0o644, `${golden ?? '(none)'} -> ${hostname.split('.')[0]}`);
  const primary = node.interfaces.find((i) => i.ip && !i.ip.includes(':') && !controllerOf(node.interfaces, i));
  t.write('etc/hosts', hostsFile(t.read('etc/hosts'), golden, hostname, primary?.ip?.split('/')[0] ?? null), 0o644, `${golden ?? 'the golden'}'s names -> ${hostname}`);

  const machineId = randomBytes(16).toString('hex');
  t.write('etc/machine-id', `${machineId}\n`, 0o444, 'a new machine-id');
  if (t.lstat('var/lib/dbus/machine-id')?.isFile()) t.write('var/lib/dbus/machine-id', `${machineId}\n`, 0o444, 'a new machine-id');
  if (t.exists('var/lib/systemd')) t.write('var/lib/systemd/random-seed', randomBytes(512), 0o600, 'a new random seed');

  const format = network(t, node);

  for (const dir of ['var/lib/dhcp', 'var/lib/dhclient', 'var/lib/NetworkManager']) {
    for (const name of t.list(dir)) if (/\.lease(s)?$/.test(name) || name.startsWith('dhclient')) t.remove(`${dir}/${name}`, "removed (the golden's DHCP lease)");
  }
  // LVM's devices file names the golden's disks: written anew from the node's PVs (identity/devices.ts), else removed.
  if (o.filesystems === null || !o.pvs?.length) t.remove('etc/lvm/devices/system.devices', "removed (it names the golden's disks)");

  if (t.exists('etc/ssh')) {
    for (const name of t.list('etc/ssh')) if (/^ssh_host_.*_key(\.pub)?$/.test(name) && !o.hostKeys?.[name]) t.remove(`etc/ssh/${name}`, "removed (the golden's SSH host key)");
    if (o.hostKeys) {
      for (const [name, body] of Object.entries(o.hostKeys)) t.write(`etc/ssh/${name}`, body, name.endsWith('.pub') ? 0o644 : 0o600, "the node's own SSH host key");
    } else t.warn('no SSH host keys for this node; sshd makes its own at first start (if the image does that)');
  }
  let bootChainChanged = false;
  const replacedRefs = new Set<string>();
  if (o.filesystems !== null) {
    const goldenFstab = t.read('etc/fstab');
    const merged = mergeFstab(goldenFstab, o.filesystems);
    merged.warnings.forEach((w) => t.warn(w));
    const before = t.changes.length;
    t.write('etc/fstab', merged.text, 0o644, merged.notes.join('; ') || 'unchanged');
    const devices = rewriteDeviceReferences(t, { filesystems: o.filesystems, mdadmScan: o.mdadmScan ?? null, pvs: o.pvs, disks: o.disks, node: hostname }, t.changes.length > before, goldenFstab);
    bootChainChanged = devices.changed;
    for (const ref of [...merged.replaced, ...devices.replaced]) replacedRefs.add(ref);
  }
  const chain = new Set([...bootFiles(t), 'etc/mdadm/mdadm.conf', 'etc/mdadm.conf', 'etc/lvm/devices/system.devices']);
  const bootChainFiles = [...new Set(t.changes.map((c) => c.file.slice(1)).filter((rel) => chain.has(rel)))];
  goldenNames(t, golden, goldenMachineId, hostname, machineId, new Set(t.changes.map((c) => c.file.slice(1))));
  const toLabel = labelWritten(t);
  const labeler = policyLabeler(t);
  return { hostname, network: format, changes: t.changes, warnings: t.warnings, bootChainChanged, replacedRefs: [...replacedRefs], bootChainFiles, selinuxToLabel: toLabel.length && labeler ? { files: toLabel, ...labeler } : null };
}
