/**
 * Power control of a node through its BMC, run on the server (where the BMC credentials
 * are): IPMI over LAN with ipmitool (`-I lanplus -C 3`: RMCP+ with cipher suite 3, which
 * BMCs and OpenIPMI's ipmi_sim all speak; the password goes through the environment, `-E`,
 * never the command line); or Redfish over HTTPS (DMTF DSP0266: the first member of
 * /redfish/v1/Systems, its PowerState, and the ComputerSystem.Reset action with
 * ResetType On, ForceOff or ForceRestart; HTTP basic auth; the BMC's certificate is
 * checked unless the node says bmc.tls_verify=no, as BMCs mostly carry self-signed ones).
 */
import { execFile } from 'node:child_process';
import https from 'node:https';
import { ClonerError } from '../errors.ts';
import type { RefStore } from '../store/interfaces.ts';
import { getNode, NodeNotFoundError, type NodeRecord } from './registry.ts';

import type { PowerAction } from './states.ts';
export { POWER_ACTIONS, type PowerAction } from './states.ts';

export class PowerError extends ClonerError {
  override readonly code = 'POWER_FAILED';
  /** The BMC (behind the server) failed, not the request. */
  override readonly status = 502;
}

export interface PowerResult {
  node: string;
  action: PowerAction;
  /** "on" or "off" after the action (as the BMC reports it), when it says. */
  state: 'on' | 'off' | null;
}

const IPMITOOL_VERB: Record<PowerAction, string> = { on: 'on', off: 'off', reset: 'reset', status: 'status' };

function ipmitool(node: NodeRecord, args: string[], timeoutMs: number): Promise<string> {
  const bmc = node.bmc!;
  const argv = ['-I', 'lanplus', '-C', '3', '-H', bmc.address, ...(bmc.port ? ['-p', String(bmc.port)] : []), '-U', bmc.username ?? '', '-E', '-N', '2', '-R', '2', ...args];
  return new Promise((resolve, reject) => {
    execFile('ipmitool', argv, { timeout: timeoutMs, env: { ...process.env, IPMI_PASSWORD: bmc.password ?? '' } }, (err, stdout, stderr) => {
      if (err) {
        const why = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'ipmitool is not installed on the server' : (stderr || err.message).trim().split('\n').pop();
        reject(new PowerError(`${node.name}: BMC ${bmc.address}${bmc.port ? `:${bmc.port}` : ''} did not do "power ${args.at(-1)}": ${why}`, 'check the node\'s bmc.address, bmc.username and bmc.password (cloner nodes set), and that the BMC is reachable'));
      } else resolve(stdout);
    });
  });
}

/** One Redfish request: JSON in and out, basic auth, a time limit; errors name the BMC. */
function redfish(node: NodeRecord, method: 'GET' | 'POST', route: string, body: unknown, timeoutMs: number): Promise<Record<string, unknown>> {
  const bmc = node.bmc!;
  const where = `${bmc.address}${bmc.port ? `:${bmc.port}` : ''}`;
  const fail = (why: string) => new PowerError(`${node.name}: Redfish BMC ${where} refused ${method} ${route}: ${why}`, 'check the node\'s bmc.address, bmc.username, bmc.password and bmc.tls_verify (cloner nodes set), and that the BMC is reachable');
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: bmc.address,
        port: bmc.port ?? 443,
        method,
        path: route,
        timeout: timeoutMs,
        rejectUnauthorized: bmc.tls_verify !== false,
        auth: `${bmc.username ?? ''}:${bmc.password ?? ''}`,
        headers: { accept: 'application/json', ...(payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {}) },
      },
      (res) => {
        const parts: Buffer[] = [];
        let size = 0;
        res.on('data', (d: Buffer) => {
          size += d.length;
          if (size > 1 << 20) req.destroy(new Error('answer over 1 MiB'));
          else parts.push(d);
        });
        res.on('end', () => {
          const text = Buffer.concat(parts).toString('utf8');
          if ((res.statusCode ?? 500) >= 300) return reject(fail(`HTTP ${res.statusCode}${text ? ` ${text.slice(0, 200).replace(/\s+/g, ' ')}` : ''}`));
          try {
            resolve(text ? (JSON.parse(text) as Record<string, unknown>) : {});
          } catch {
            reject(fail('the answer is not JSON'));
          }
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer in ${timeoutMs / 1000} s`)));
    req.on('error', (err) => reject(fail((err as NodeJS.ErrnoException).code ?? err.message)));
    req.end(payload);
  });
}

const REDFISH_RESET: Record<Exclude<PowerAction, 'status'>, string> = { on: 'On', off: 'ForceOff', reset: 'ForceRestart' };

async function redfishPower(node: NodeRecord, action: PowerAction, timeoutMs: number): Promise<'on' | 'off' | null> {
  const systems = await redfish(node, 'GET', '/redfish/v1/Systems', undefined, timeoutMs);
  const first = (systems.Members as Array<{ '@odata.id'?: string }> | undefined)?.[0]?.['@odata.id'];
  if (typeof first !== 'string' || !first.startsWith('/redfish/v1/Systems/')) throw new PowerError(`${node.name}: the Redfish BMC lists no computer system`, 'check that bmc.address is the BMC of this node');
  let system = await redfish(node, 'GET', first, undefined, timeoutMs);
  if (action !== 'status') {
    const actions = system.Actions as Record<string, { target?: string }> | undefined;
    const target = actions?.['#ComputerSystem.Reset']?.target ?? `${first}/Actions/ComputerSystem.Reset`;
    if (!target.startsWith('/redfish/v1/')) throw new PowerError(`${node.name}: the Redfish BMC gave a reset target outside /redfish/v1/`, 'check the BMC');
    await redfish(node, 'POST', target, { ResetType: REDFISH_RESET[action] }, timeoutMs);
    system = await redfish(node, 'GET', first, undefined, timeoutMs);
  }
  return system.PowerState === 'On' ? 'on' : system.PowerState === 'Off' ? 'off' : null;
}

export async function power(node: NodeRecord, action: PowerAction, timeoutMs = 30_000): Promise<PowerResult> {
  if (!node.bmc?.address) throw new PowerError(`${node.name} has no BMC`, 'set it with: cloner nodes set --nodes NAME bmc.type=ipmi bmc.address=... bmc.username=... bmc.password=...');
  if (node.bmc.type === 'redfish') return { node: node.name, action, state: await redfishPower(node, action, timeoutMs) };
  if (action !== 'status') await ipmitool(node, ['chassis', 'power', IPMITOOL_VERB[action]], timeoutMs);
  const status = await ipmitool(node, ['chassis', 'power', 'status'], timeoutMs);
  const state = /is on/i.test(status) ? 'on' : /is off/i.test(status) ? 'off' : null;
  return { node: node.name, action, state };
}

/** Powers the registered node `name` through its BMC; NodeNotFoundError when there is none. */
export async function powerNode(store: Pick<RefStore, 'getRef'>, name: string, action: PowerAction, timeoutMs = 30_000): Promise<PowerResult> {
  const node = await getNode(store, name);
  if (!node) throw new NodeNotFoundError(`no node named ${name}`, 'list nodes with: cloner nodes list');
  return power(node, action, timeoutMs);
}
