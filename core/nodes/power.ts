/**
 * Power control of a node through its BMC, run on the server (where the BMC credentials
 * are): IPMI over LAN with ipmitool (`-I lanplus -C 3`: RMCP+ with cipher suite 3, which
 * BMCs and OpenIPMI's ipmi_sim all speak; the password goes through the environment, `-E`,
 * never the command line). Redfish BMCs are not driven yet.
 */
import { execFile } from 'node:child_process';
import { ClonerError } from '../errors.ts';
import type { NodeRecord } from './registry.ts';

export type PowerAction = 'on' | 'off' | 'reset' | 'status';
export const POWER_ACTIONS: readonly PowerAction[] = ['on', 'off', 'reset', 'status'];

export class PowerError extends ClonerError {
  override readonly code = 'POWER_FAILED';
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

export async function power(node: NodeRecord, action: PowerAction, timeoutMs = 30_000): Promise<PowerResult> {
  if (!node.bmc?.address) throw new PowerError(`${node.name} has no BMC`, 'set it with: cloner nodes set --nodes NAME bmc.type=ipmi bmc.address=... bmc.username=... bmc.password=...');
  if (node.bmc.type !== 'ipmi') throw new PowerError(`${node.name}: ${node.bmc.type} BMCs are not supported yet`, 'use bmc.type=ipmi (IPMI over LAN)');
  if (action !== 'status') await ipmitool(node, ['chassis', 'power', IPMITOOL_VERB[action]], timeoutMs);
  const status = await ipmitool(node, ['chassis', 'power', 'status'], timeoutMs);
  const state = /is on/i.test(status) ? 'on' : /is off/i.test(status) ? 'off' : null;
  return { node: node.name, action, state };
}
