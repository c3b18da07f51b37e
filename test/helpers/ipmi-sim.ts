/**
 * A real IPMI BMC for tests: OpenIPMI's ipmi_sim on a loopback UDP port, with a chassis
 * control script that keeps the power state in a file and logs every call. Always killed
 * and removed after `work`.
 */
import { spawn, spawnSync } from 'node:child_process';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { withTempDir } from './fixtures.ts';
import { haveTool } from '../../core/tools.ts';

export interface IpmiSim {
  port: number;
  username: string;
  password: string;
  /** "1" on, "0" off, as the chassis script last set it. */
  powerState(): Promise<string>;
  calls(): Promise<string>;
}

export function ipmiSimUnavailable(): string | null {
  for (const tool of ['ipmi_sim', 'ipmitool']) if (!haveTool(tool)) return `${tool} is not installed (scripts/setup.sh installs openipmi and ipmitool)`;
  return null;
}

export async function withIpmiSim<T>(work: (bmc: IpmiSim) => Promise<T>): Promise<T> {
  return withTempDir(async (dir) => {
    const port = 20000 + Math.floor(Math.random() * 20000);
    const script = path.join(dir, 'chassis.sh');
    await writeFile(script, `#!/bin/sh
# chassis control for ipmi_sim: $1 MC address, $2 get|set, then names (get) or name value pairs (set)
echo "$*" >> ${dir}/calls.log
op=$2; shift 2
if [ "$op" = get ]; then
  for p in "$@"; do
    case $p in power) echo "power:$(cat ${dir}/power 2>/dev/null || echo 0)";; boot) echo "boot:default";; esac
  done
else
  while [ $# -gt 1 ]; do
    case $1 in power) echo "$2" > ${dir}/power;; esac
    shift 2
  done
fi
`);
    await chmod(script, 0o755);
    await writeFile(path.join(dir, 'lan.conf'), `name "clonertest"
set_working_mc 0x20
  startlan 1
    addr 127.0.0.1 ${port}
    priv_limit admin
    allowed_auths_callback none md2 md5 straight
    allowed_auths_user none md2 md5 straight
    allowed_auths_operator none md2 md5 straight
    allowed_auths_admin none md2 md5 straight
    guid a123456789abcdefa123456789abcdef
  endlan
  chassis_control "${script} 0x20"
  user 2 true "admin" "bmc-secret" admin 10 none md2 md5 straight
`);
    await writeFile(path.join(dir, 'sim.emu'), 'mc_setbmc 0x20\nmc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr\nsel_enable 0x20 1000 0x0a\nmc_enable 0x20\n');
    await mkdir(path.join(dir, 'state'));
    const sim = spawn('ipmi_sim', ['-c', path.join(dir, 'lan.conf'), '-f', path.join(dir, 'sim.emu'), '-s', path.join(dir, 'state'), '-n'], { stdio: 'ignore' });
    const exited = new Promise((r) => sim.once('exit', r));
    try {
      // Ready when ipmitool gets an answer.
      const until = Date.now() + 15_000;
      for (;;) {
        const probe = spawnSync('ipmitool', ['-I', 'lanplus', '-C', '3', '-H', '127.0.0.1', '-p', String(port), '-U', 'admin', '-P', 'bmc-secret', '-N', '1', '-R', '1', 'chassis', 'power', 'status'], { encoding: 'utf8' });
        if (probe.status === 0) break;
        if (Date.now() > until || sim.exitCode !== null) throw new Error(`ipmi_sim did not answer on port ${port}: ${probe.stderr}`);
        await new Promise((r) => setTimeout(r, 200));
      }
      return await work({
        port,
        username: 'admin',
        password: 'bmc-secret',
        powerState: async () => (await readFile(path.join(dir, 'power'), 'utf8').catch(() => '0')).trim(),
        calls: async () => readFile(path.join(dir, 'calls.log'), 'utf8').catch(() => ''),
      });
    } finally {
      sim.kill('SIGKILL');
      await exited;
    }
  });
}
