/**
 * The image's pre- and post-scripts on a node being deployed. A script runs with its own
 * #! line (else /bin/sh), a 30-minute limit, and an environment naming the node, its image
 * and each interface (CLONER_NODE, CLONER_HOSTNAME, CLONER_IMAGE, CLONER_REVISION,
 * CLONER_SERVER, CLONER_TARGET, CLONER_INTERFACES, CLONER_IF_<NAME>_MAC/IP/GATEWAY); its
 * output goes to the agent's log line by line. The pre-script runs on the boot
 * environment; the post-script chrooted into the new system, with /dev, /proc, /sys (and
 * efivarfs when the node booted through EFI) mounted inside it.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import path from 'node:path';
import type { DeployPlan } from '../core/nodes/deploy.ts';
import { run } from '../core/tools.ts';
import { DeployError } from './errors.ts';

/** Environment of pre- and post-scripts: the node, its image and each interface. */
export function scriptEnv(plan: DeployPlan, target: string, server: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    HOME: '/root',
    LANG: 'C.UTF-8',
    CLONER_NODE: plan.node.name,
    CLONER_HOSTNAME: plan.node.hostname ?? plan.node.name,
    CLONER_IMAGE: plan.image,
    CLONER_REVISION: String(plan.revision.n),
    CLONER_SERVER: server,
    CLONER_TARGET: target,
    CLONER_INTERFACES: plan.node.interfaces.map((i) => i.name).join(' '),
  };
  for (const i of plan.node.interfaces) {
    const key = i.name.toUpperCase().replace(/[^A-Z0-9]/g, '_');
    env[`CLONER_IF_${key}_MAC`] = i.mac;
    if (i.ip) env[`CLONER_IF_${key}_IP`] = i.ip;
    if (i.gateway) env[`CLONER_IF_${key}_GATEWAY`] = i.gateway;
  }
  return env;
}

/** Runs a script (its own #! line, else /bin/sh), its output going to the log line by line. */
export function runScript(argv: string[], env: NodeJS.ProcessEnv, log: (line: string) => void, what: string, timeoutMs = 30 * 60_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0], argv.slice(1), { env, stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs, killSignal: 'SIGKILL' });
    let pending = '';
    const onData = (data: Buffer) => {
      const lines = (pending + data.toString('utf8')).split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) log(`${what}: ${line}`);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('error', (err) => reject(new DeployError(`${what} could not start: ${err.message}`, 'check the script\'s #! line')));
    child.on('close', (code, signal) => {
      if (pending) log(`${what}: ${pending}`);
      if (code === 0) resolve();
      else reject(new DeployError(`${what} failed (${signal ? `killed by ${signal}` : `exit ${code}`})`, 'see its output above; fix it with: cloner script --image IMAGE --type pre|post --set FILE'));
    });
  });
}

export const withShebang = (body: Buffer) => (body.subarray(0, 2).toString() === '#!' ? body : Buffer.concat([Buffer.from('#!/bin/sh\n'), body]));

/** /dev, /proc and /sys of the boot environment inside the target, for chrooted work. */
export async function withChrootMounts<T>(target: string, work: () => Promise<T>): Promise<T> {
  const mounted: string[] = [];
  try {
    for (const [what, args] of [['dev', ['--bind', '/dev']], ['proc', ['-t', 'proc', 'proc']], ['sys', ['-t', 'sysfs', 'sysfs']], ['sys/firmware/efi/efivars', ['-t', 'efivarfs', 'efivarfs']]] as const) {
      const where = path.join(target, what);
      if (what.includes('efivars') && !fs.existsSync('/sys/firmware/efi/efivars')) continue;
      const st = fs.lstatSync(where, { throwIfNoEntry: false });
      if (!st) fs.mkdirSync(where, { recursive: true });
      else if (!st.isDirectory()) throw new DeployError(`${where} is not a directory`, 'the image\'s /dev, /proc and /sys must be directories');
      await run(['mount', ...args, where]);
      mounted.push(where);
    }
    return await work();
  } finally {
    for (const where of mounted.reverse()) await run(['umount', '-l', where]).catch(() => {});
  }
}

