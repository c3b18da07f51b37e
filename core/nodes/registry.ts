/**
 * The node registry: one record per node under the store ref `node/<name>`, written with
 * compare-and-set. A record holds the node's groups, hostname, interfaces (name, MAC,
 * address/prefix, gateway, DNS; bonds, VLANs, bridges and IPoIB: core/nodes/network.ts), its image assignment (`cloner_image`, optionally pinned
 * `cloner_revision`, layout override `cloner_layout`), its netboot state and its BMC.
 *
 * `applySettings` takes cv-conf style `key=value` pairs (`cloner_image=node`,
 * `netboot=cloner`, `groups=gpu,rack1`, `eth0.mac=52:54:00:..`, `eth0.ip=198.18.1.5/24`,
 * `bmc.address=...`) and checks every value; a bad one is an error naming the key, and
 * nothing of the whole command is written. BMC passwords stay on the server: `publicView`
 * drops them from everything a client is shown.
 *
 * Across nodes, a MAC, an IP address (without its prefix) and a host name (the node's name
 * when it has none; compared without case) belong to one node: a change that gives a node
 * one another node has is refused naming that node (a clash stored before these checks
 * does not block other changes). `changeNode` refuses a `cloner_image` that is not stored
 * (listing the images) and a `cloner_revision` the image does not have.
 */
import { isIP } from 'node:net';
import type { DeployResult } from './deploy-state.ts';
import { ClonerError } from '../errors.ts';
import { NAME_PATTERN, NAME_RULE, normalizeMac } from '../names.ts';
import { checkInterfaces, IFNAME, INTERFACE_FIELDS, setInterfaceField, type NodeInterface } from './network.ts';
import { armDeploy, dropDeployToken } from './deploy-tokens.ts';
import { dropHostKeys } from './hostkeys.ts';
import { dropHistory } from './history.ts';
import type { RefStore } from '../store/interfaces.ts';
import { getImage, getVersions, listImages } from '../tree/images.ts';

import { NETBOOT_STATES, type Netboot } from './states.ts';
export { NETBOOT_STATES, type Netboot } from './states.ts';

export type { NodeInterface, InterfaceType } from './network.ts';

export interface NodeRecord {
  name: string;
  groups: string[];
  hostname?: string;
  interfaces: NodeInterface[];
  cloner_image?: string;
  cloner_revision?: number;
  cloner_layout?: string;
  netboot: Netboot;
  bmc?: { type: 'ipmi' | 'redfish'; address: string; port?: number; username?: string; password?: string; /** Redfish: check the BMC's TLS certificate (default yes). */ tls_verify?: boolean };
  lastDeploy?: DeployResult & { at: string };
}

export class NodeError extends ClonerError {
  override readonly code: string = 'NODE_INVALID';
}

/** A MAC, IP address or host name another node already has (HTTP 409). */
export class NodeClashError extends NodeError {
  override readonly code = 'NODE_CLASH';
  override readonly status = 409;
}

export class NodeNotFoundError extends NodeError {
  override readonly code = 'NODE_NOT_FOUND';
  override readonly status = 404;
}

const NAME = NAME_PATTERN;
const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

export function assertNodeName(name: string): string {
  if (!NAME.test(name)) throw new NodeError(`invalid node name ${JSON.stringify(name)}`, `use ${NAME_RULE}`);
  return name;
}

export function newNode(name: string): NodeRecord {
  return { name: assertNodeName(name), groups: [], interfaces: [], netboot: 'local' };
}

const fail = (message: string, hint: string): never => {
  throw new NodeError(message, hint);
};

/** Applies `key=value` settings to a copy of `node`; throws on the first bad one. */
export function applySettings(node: NodeRecord, settings: string[]): NodeRecord {
  const out: NodeRecord = structuredClone(node);
  for (const setting of settings) {
    const eq = setting.indexOf('=');
    if (eq <= 0) throw new NodeError(`bad setting ${JSON.stringify(setting)}`, 'write key=value, e.g. cloner_image=node');
    const key = setting.slice(0, eq);
    const value = setting.slice(eq + 1);
    const iface = new RegExp(`^([A-Za-z0-9][A-Za-z0-9._-]{0,14})\\.(${INTERFACE_FIELDS.join('|')})$`).exec(key);
    const clear = value === '';
    switch (key) {
      case 'groups':
        out.groups = value.split(',').map((g) => g.trim()).filter(Boolean);
        for (const g of out.groups) if (!NAME.test(g)) throw new NodeError(`groups: invalid group ${JSON.stringify(g)}`, `use ${NAME_RULE}`);
        break;
      case 'hostname':
        if (clear) delete out.hostname;
        else if (!HOSTNAME.test(value)) throw new NodeError(`hostname: ${JSON.stringify(value)} is not a valid host name`, 'letters, digits and dashes, dot-separated');
        else out.hostname = value;
        break;
      case 'cloner_image':
      case 'cloner_layout':
        if (clear) delete out[key];
        else if (!NAME.test(value)) throw new NodeError(`${key}: invalid name ${JSON.stringify(value)}`, 'an image or layout name');
        else out[key] = value;
        break;
      case 'cloner_revision':
        if (clear) delete out.cloner_revision;
        else if (!/^[1-9]\d{0,8}$/.test(value)) throw new NodeError(`cloner_revision: ${JSON.stringify(value)} is not a revision number`, 'e.g. cloner_revision=3, or cloner_revision= for the latest');
        else out.cloner_revision = Number(value);
        break;
      case 'netboot':
        if (!NETBOOT_STATES.includes(value as Netboot)) throw new NodeError(`netboot: ${JSON.stringify(value)} is not one of ${NETBOOT_STATES.join(', ')}`, 'e.g. netboot=cloner');
        out.netboot = value as Netboot;
        break;
      case 'bmc.type':
        if (value !== 'ipmi' && value !== 'redfish') throw new NodeError(`bmc.type: ${JSON.stringify(value)} is not ipmi or redfish`, 'e.g. bmc.type=ipmi');
        out.bmc = { address: '', ...out.bmc, type: value };
        break;
      case 'bmc.port':
        if (!/^[1-9]\d{0,4}$/.test(value) || Number(value) > 65535) throw new NodeError(`bmc.port: ${JSON.stringify(value)} is not a port`, 'e.g. bmc.port=623');
        out.bmc = { type: 'ipmi', address: '', ...out.bmc, port: Number(value) };
        break;
      case 'bmc.tls_verify':
        if (!/^(yes|no)$/.test(value)) throw new NodeError(`bmc.tls_verify: ${JSON.stringify(value)} is not yes or no`, 'bmc.tls_verify=no accepts a self-signed BMC certificate');
        out.bmc = { type: 'redfish', address: '', ...out.bmc, tls_verify: value === 'yes' };
        break;
      case 'bmc.address':
      case 'bmc.username':
      case 'bmc.password': {
        const field = key.slice(4) as 'address' | 'username' | 'password';
        if (field === 'address' && !(isIP(value) || HOSTNAME.test(value))) throw new NodeError(`bmc.address: ${JSON.stringify(value)} is not a host or address`, 'e.g. bmc.address=198.18.2.10');
        if (/[\u0000-\u001f]/.test(value)) throw new NodeError(`${key}: control characters are not allowed`, 'check the value');
        out.bmc = { type: 'ipmi', address: '', ...out.bmc, [field]: value };
        break;
      }
      default: {
        if (!iface) throw new NodeError(`unknown key ${JSON.stringify(key)}`, 'keys: groups, hostname, cloner_image, cloner_revision, cloner_layout, netboot, bmc.type/address/port/username/password/tls_verify, IFACE.mac/ip/gateway/dns/mtu, IFACE.type=bond|vlan|bridge|infiniband with IFACE.ports/mode/parent/vlan');
        const [, name, field] = iface;
        let entry = out.interfaces.find((i) => i.name === name);
        if (!entry) {
          if (!IFNAME.test(name)) throw new NodeError(`invalid interface name ${JSON.stringify(name)}`, 'e.g. eth0');
          entry = { name, mac: '' };
          out.interfaces.push(entry);
        }
        setInterfaceField(entry, field as (typeof INTERFACE_FIELDS)[number], value, key, fail);
      }
    }
  }
  checkInterfaces(out.name, out.interfaces, fail);
  return out;
}

/** What clients are shown: everything but the BMC password. */
export function publicView(node: NodeRecord): NodeRecord {
  if (!node.bmc?.password) return node;
  const { password: _hidden, ...bmc } = node.bmc;
  return { ...node, bmc: { ...bmc } };
}

const key = (name: string) => `node/${assertNodeName(name)}`;

export async function getNode(store: Pick<RefStore, 'getRef'>, name: string): Promise<NodeRecord | undefined> {
  const raw = await store.getRef(key(name));
  return raw ? (JSON.parse(raw) as NodeRecord) : undefined;
}

export async function listNodes(store: Pick<RefStore, 'listRefs'>): Promise<NodeRecord[]> {
  return (await store.listRefs('node/')).map(([, raw]) => JSON.parse(raw) as NodeRecord);
}

/**
 * Reads, changes and writes one node with compare-and-set (a racing writer makes it
 * re-read and re-apply). `change` returns the new record, or undefined to delete it.
 * A MAC already used by another node is refused.
 */
export async function updateNode(store: RefStore, name: string, change: (current: NodeRecord | undefined) => NodeRecord | undefined): Promise<NodeRecord | undefined> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const before = await store.getRef(key(name));
    const next = change(before ? (JSON.parse(before) as NodeRecord) : undefined);
    if (next) {
      if (next.name !== name) throw new NodeError(`a record for ${name} names ${next.name}`, 'internal: keep the name');
      const others = (await listNodes(store)).filter((n) => n.name !== name);
      const taken = new Map(others.flatMap((n) => n.interfaces.filter((i) => i.mac).map((i) => [i.mac, n.name] as const)));
      for (const i of next.interfaces) if (i.mac && taken.has(i.mac)) throw new NodeError(`MAC ${i.mac} of ${name} is already ${taken.get(i.mac)}'s`, 'a MAC identifies one node; fix or remove the other one');
      checkClashes(next, before ? (JSON.parse(before) as NodeRecord) : undefined, others);
    }
    if (await store.casRef(key(name), before, next ? JSON.stringify(next) : undefined)) return next;
  }
  throw new NodeError(`node ${name} is being changed by too many writers at once`, 'retry');
}

const addressOf = (ip: string) => ip.split('/')[0].toLowerCase();
const hostnameOf = (n: NodeRecord) => (n.hostname ?? n.name).toLowerCase();

/** NodeClashError when `next` takes an IP address or host name another node has (values `before` had are not checked again). */
function checkClashes(next: NodeRecord, before: NodeRecord | undefined, others: NodeRecord[]): void {
  const had = new Set((before?.interfaces ?? []).filter((i) => i.ip).map((i) => addressOf(i.ip!)));
  const owners = new Map(others.flatMap((n) => n.interfaces.filter((i) => i.ip).map((i) => [addressOf(i.ip!), `${n.name}'s (${i.name})`] as const)));
  for (const i of next.interfaces) {
    const address = i.ip ? addressOf(i.ip) : '';
    if (address && !had.has(address) && owners.has(address)) throw new NodeClashError(`IP address ${address} of ${next.name} (${i.name}) is already ${owners.get(address)}`, 'an address belongs to one node; give this one another, or clear the other\'s first (IFACE.ip=)');
  }
  const host = hostnameOf(next);
  if (before && hostnameOf(before) === host) return;
  const holder = others.find((n) => hostnameOf(n) === host);
  if (holder) throw new NodeClashError(`host name ${host} of ${next.name} is already ${holder.name}'s${holder.hostname ? '' : ' (its node name)'}`, 'a host name belongs to one node; set another with hostname=NAME');
}

/** The node owning a MAC address, for netboot and identify. */
export async function nodeByMac(store: RefStore, mac: string): Promise<NodeRecord | undefined> {
  const wanted = normalizeMac(mac);
  if (!wanted) return undefined;
  return (await listNodes(store)).find((n) => n.interfaces.some((i) => i.mac === wanted));
}

export interface Assignment {
  node: string;
  image: string | null;
  imageFound: boolean;
  revision: number | null;
  layout: string | null;
  netboot: Netboot;
}

/** What a node is to get: its image (and revision: pinned, else the latest) and layout. */
export async function assignmentOf(store: RefStore, node: NodeRecord): Promise<Assignment> {
  const image = node.cloner_image ? await getImage(store, node.cloner_image) : undefined;
  const revision = image ? (node.cloner_revision ? image.revisions.find((r) => r.n === node.cloner_revision) : image.revisions.at(-1)) : undefined;
  return {
    node: node.name,
    image: node.cloner_image ?? null,
    imageFound: !!image,
    revision: revision?.n ?? null,
    layout: node.cloner_layout ?? revision?.layout ?? null,
    netboot: node.netboot,
  };
}

/** Applies settings to a node (a new one with `create`, which must not exist yet; else it must). */
export async function changeNode(store: RefStore, name: string, settings: string[], create: boolean): Promise<NodeRecord> {
  await checkAssignment(store, name, settings);
  const node = await updateNode(store, name, (current) => {
    if (create && current) throw new NodeError(`node ${name} already exists`, `change it with: cloner nodes set --nodes ${name} key=value`);
    if (!create && !current) throw new NodeNotFoundError(`no node named ${name}`, 'add it with: cloner nodes add NAME');
    return applySettings(current ?? newNode(name), settings);
  });
  // Setting netboot (to cloner: again too) starts a new arm, the one boot that may get a deploy token.
  if (settings.some((s) => s.startsWith('netboot='))) await (node!.netboot === 'local' ? dropDeployToken(store, name) : armDeploy(store, name));
  return node!;
}

/** The last value `settings` give `key`, if any. */
const lastSetting = (settings: string[], key: string) => settings.filter((s) => s.startsWith(`${key}=`)).at(-1)?.slice(key.length + 1);

/** NodeError when the settings assign an image or a layout that is not stored, or a revision the image lacks. */
async function checkAssignment(store: RefStore, name: string, settings: string[]): Promise<void> {
  const layout = lastSetting(settings, 'cloner_layout');
  if (layout && NAME.test(layout) && !(await getVersions(store, 'layout', layout))?.versions.length) {
    throw new NodeError(`cloner_layout: no layout named ${layout}`, 'upload it first with cloner disklayout-upload, or list layouts with cloner disklayout --json');
  }
  const imageName = lastSetting(settings, 'cloner_image');
  const revision = lastSetting(settings, 'cloner_revision');
  if (!imageName && !revision) return;
  const wanted = imageName ?? (NAME.test(name) ? (await getNode(store, name))?.cloner_image : undefined);
  if (!wanted || !NAME.test(wanted)) return; // applySettings reports a bad name; a revision without an image is checked at deploy
  const image = await getImage(store, wanted);
  if (!image) {
    const names = (await listImages(store)).map((i) => i.name).sort();
    throw new NodeError(`cloner_image: no image named ${wanted}${names.length ? ` (images: ${names.slice(0, 10).join(', ')}${names.length > 10 ? `, and ${names.length - 10} more` : ''})` : ' (the store has no images yet)'}`, 'capture it first with cloner new-image, or pick one listed by cloner image-list');
  }
  if (revision && /^[1-9]\d{0,8}$/.test(revision) && !image.revisions.some((r) => r.n === Number(revision))) {
    throw new NodeError(`cloner_revision: image ${wanted} has no revision ${revision} (revisions: ${image.revisions.map((r) => r.n).join(', ')})`, 'pick one listed by cloner image-details, or cloner_revision= for the latest');
  }
}

/** Removes a node, and with it its deploy token, kept SSH host keys and deploy history. */
export async function removeNode(store: RefStore, name: string): Promise<void> {
  await updateNode(store, name, (current) => {
    if (!current) throw new NodeNotFoundError(`no node named ${name}`, 'list nodes with: cloner nodes list');
    return undefined;
  });
  await dropDeployToken(store, name);
  await dropHostKeys(store, name);
  await dropHistory(store, name);
}

/** The assignment of the node owning `mac`. */
export async function identifyMac(store: RefStore, mac: string): Promise<Assignment> {
  const node = await nodeByMac(store, mac);
  if (!node) throw new NodeNotFoundError(`no node has MAC ${mac}`, 'register it with: cloner nodes set --nodes NAME eth0.mac=...');
  return assignmentOf(store, node);
}

/** The assignment of a node by name. */
export async function identifyNode(store: RefStore, name: string): Promise<Assignment> {
  const node = await getNode(store, name);
  if (!node) throw new NodeNotFoundError(`no node named ${name}`, 'list nodes with: cloner nodes list');
  return assignmentOf(store, node);
}
