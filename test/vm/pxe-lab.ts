/**
 * The PXE lab (issue 12): the spec's whole deploy loop on virtual nodes, no fake anywhere.
 *
 * A network namespace `pxe<pid>` holds a bridge (pxebr0, 198.18.0.1/24) and everything the
 * nodes talk to: a cloner-server on 198.18.0.1:8740; dnsmasq running the configuration
 * `cloner netboot dnsmasq-config` prints (proxy DHCP, and TFTP serving Debian's iPXE:
 * undionly.kpxe, ipxe.efi; plus the interface and a log), while the site's own DHCP server
 * (a second dnsmasq: addresses only, one reservation per node) is a host of its own on the
 * bridge (namespace `pxe<pid>d`, 198.18.0.254); and per node an OpenIPMI `ipmi_sim` BMC (LAN at
 * 198.18.0.2+i on the bridge) whose `startcmd` starts the node's qemu, which connects back
 * through `ipmi-bmc-extern` + `isa-ipmi-kcs`, so `cloner power on|off|reset` goes server ->
 * ipmitool -> ipmi_sim -> qemu. A node is qemu (TCG) with one blank disk and a virtio NIC
 * on a tap in the bridge whose option ROM is qemu's iPXE (Debian's ipxe-qemu, BIOS and EFI
 * in one), as on NICs whose firmware is iPXE: under SeaBIOS (its console on the serial port
 * too) and under OVMF (with virtio-rng-pci). Not under test here: OVMF's own PXE fetching
 * ipxe.efi over TFTP: it works, but iPXE then drives the NIC through the firmware's SNP at
 * ~160 KiB/s under TCG, 7 minutes for the installer. SeaBIOS boots the NIC first, the disk
 * second; OVMF keeps its own order (see qemuArgs).
 *
 * `followLab` follows the nodes' serial consoles and dnsmasq's log, noting the first time each
 * milestone shows (qemu start -> DHCP -> installer kernel -> agent -> deploy done -> clone
 * up), for the test and bench:netboot. Everything is torn down whatever happens: the
 * processes of the namespace are killed (qemu runs under setpriv --pdeathsig as well), the
 * namespaces and their bridge and taps deleted, the temporary directory removed; on SIGTERM
 * or SIGINT too (teardownOnSignal).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { haveTool } from '../../core/tools.ts';
import { clonerAgainst } from '../helpers/cli.ts';
import { withServer, type TestServer } from '../helpers/server.ts';
import { cachedVmImage, vmImageBuildBlocker, TCG_ACCEL } from './image.ts';

export const LAB_SERVER_IP = '198.18.0.1';
export const LAB_PORT = 8740;
const OVMF_CODE = '/usr/share/OVMF/OVMF_CODE_4M.fd';
const OVMF_VARS = '/usr/share/OVMF/OVMF_VARS_4M.fd';
/** qemu's default ROM for virtio-net (Debian's ipxe-qemu): iPXE for BIOS and EFI in one (the BIOS node's). */
const VIRTIO_ROM = '/usr/lib/ipxe/qemu/efi-virtio.rom';
const TFTP_FILES = ['/usr/lib/ipxe/undionly.kpxe', '/usr/lib/ipxe/ipxe.efi'];

export type Firmware = 'bios' | 'uefi';

export interface LabNodeSpec {
  name: string;
  firmware: Firmware;
  diskSize?: string;
  memoryMiB?: number;
}

export interface LabNode extends Required<LabNodeSpec> {
  mac: string;
  ip: string;
  bmcAddress: string;
  consoleFile: string;
  /** The serial console so far, across resets and power cycles. */
  console(): string;
}

export interface PxeLab {
  ns: string;
  dir: string;
  server: TestServer;
  /** The URL nodes reach the server at. */
  url: string;
  nodes: LabNode[];
  /** `cloner ARGS` run in the namespace against the server (admin token); throws on failure. */
  cloner(...args: string[]): string;
  /** Starts `cloner ARGS` in the namespace against the server; for --watch. */
  spawnCloner(args: string[]): ChildProcess;
  /** dnsmasq's log so far. */
  dnsmasqLog(): string;
}

/** Why the lab cannot run here (a line for the skip message), or null. */
export function pxeLabUnavailable(): string | null {
  if (process.env.CLONER_SKIP_VM && process.env.CI !== 'true') return 'CLONER_SKIP_VM is set';
  if (process.getuid?.() !== 0) return 'needs root (network namespace, taps, loop and overlay mounts)';
  for (const [tool, pkg] of [['qemu-system-x86_64', 'qemu-system-x86'], ['dnsmasq', 'dnsmasq'], ['ipmi_sim', 'openipmi'], ['ipmitool', 'ipmitool'], ['ip', 'iproute2'], ['setpriv', 'util-linux']]) {
    if (!haveTool(tool)) return `${tool} is not installed (scripts/setup.sh installs ${pkg})`;
  }
  for (const f of [OVMF_CODE, OVMF_VARS, VIRTIO_ROM, ...TFTP_FILES]) if (!existsSync(f)) return `${f} is missing (scripts/setup.sh installs ovmf, ipxe and ipxe-qemu)`;
  if (!existsSync('/usr/lib/grub/i386-pc/boot.img')) return 'GRUB for BIOS (grub-pc-bin) is not installed: the BIOS node\'s golden needs it (scripts/setup.sh installs it)';
  if (!cachedVmImage()) return vmImageBuildBlocker();
  return null;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Teardowns that must run even when the test process is told to stop (the runner's time
 * limit, Ctrl-C): run newest first on SIGTERM/SIGINT, then the process exits.
 */
const onSignal: Array<() => void> = [];
function handleSignal(signal: NodeJS.Signals): void {
  for (const undo of onSignal.splice(0).reverse()) {
    try {
      undo();
    } catch {}
  }
  process.exit(signal === 'SIGINT' ? 130 : 143);
}
/** Registers a synchronous teardown for a signal; call the returned function once it ran normally. */
export function teardownOnSignal(undo: () => void): () => void {
  if (!onSignal.length) for (const s of ['SIGTERM', 'SIGINT'] as const) process.on(s, handleSignal);
  onSignal.push(undo);
  return () => {
    const i = onSignal.indexOf(undo);
    if (i >= 0) onSignal.splice(i, 1);
    if (!onSignal.length) for (const s of ['SIGTERM', 'SIGINT'] as const) process.off(s, handleSignal);
  };
}

/** Kills every process in a namespace and deletes it. */
function dropNamespace(ns: string): void {
  for (let round = 0; round < 5; round++) {
    const pids = spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean);
    if (!pids.length) break;
    for (const pid of pids) spawnSync('kill', ['-9', pid]);
    spawnSync('sleep', ['0.3']);
  }
  spawnSync('ip', ['netns', 'del', ns]);
}
const read = (file: string) => (existsSync(file) ? readFileSync(file, 'latin1') : '');

/** The qemu command line of a node (run by its BMC's startcmd). */
function qemuArgs(node: LabNode, tap: string, dir: string, ipmiPort: number): string[] {
  const args = [
    '-nodefaults', '-no-user-config', '-display', 'none', '-monitor', 'none',
    '-machine', 'q35', ...TCG_ACCEL, '-cpu', 'max', '-smp', '2', '-m', String(node.memoryMiB),
    '-chardev', `file,id=con,path=${node.consoleFile},append=on`, '-serial', 'chardev:con',
    '-drive', `file=${path.join(dir, `${node.name}.disk`)},format=raw,if=none,id=d0,cache=unsafe`,
    // SeaBIOS: the NIC first, the disk second. OVMF: its own order (a qemu boot order makes
    // it drop boot entries it cannot match, such as the agent's HD() entry, and the disk's
    // removable path was not tried after a reset either): the NIC's PXE while the disk is
    // blank, then the entry the agent put first.
    '-device', `virtio-blk-pci,drive=d0,serial=TARGET${node.firmware === 'bios' ? ',bootindex=2' : ''}`,
    '-netdev', `tap,id=n0,ifname=${tap},script=no,downscript=no`,
    '-device', `virtio-net-pci,netdev=n0,mac=${node.mac}${node.firmware === 'bios' ? ',bootindex=1' : ''}`,
    '-chardev', `socket,id=ipmi0,host=127.0.0.1,port=${ipmiPort},reconnect=2`,
    '-device', 'ipmi-bmc-extern,id=bmc0,chardev=ipmi0', '-device', 'isa-ipmi-kcs,bmc=bmc0',
  ];
  // SeaBIOS shows itself and the option ROM (iPXE) on the serial port too (its sercon: the port, little-endian).
  if (node.firmware === 'bios') args.push('-fw_cfg', `name=etc/sercon-port,file=${path.join(dir, 'sercon-port')}`);
  if (node.firmware === 'uefi') {
    args.push('-drive', `if=pflash,format=raw,unit=0,readonly=on,file=${OVMF_CODE}`);
    args.push('-drive', `if=pflash,format=raw,unit=1,file=${path.join(dir, `${node.name}.vars`)}`);
    args.push('-device', 'virtio-rng-pci');
  }
  return args;
}

/** The BMC of node i: LAN on its own bridge address, its VM on a loopback port, qemu as startcmd. */
async function startBmc(lab: { ns: string; dir: string }, node: LabNode, i: number, tap: string, children: Set<ChildProcess>): Promise<void> {
  const ipmiPort = 9100 + i;
  const bmcDir = path.join(lab.dir, `bmc-${node.name}`);
  await mkdir(path.join(bmcDir, 'state'), { recursive: true });
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const startScript = path.join(bmcDir, 'start-qemu.sh');
  await writeFile(startScript, `#!/bin/sh\necho "$(date +%s.%N) qemu start" >> ${q(path.join(bmcDir, 'starts.log'))}\nexec setpriv --pdeathsig KILL -- qemu-system-x86_64 ${qemuArgs(node, tap, lab.dir, ipmiPort).map(q).join(' ')} 2>>${q(path.join(bmcDir, 'qemu.err'))}\n`);
  await chmod(startScript, 0o755);
  await writeFile(path.join(bmcDir, 'lan.conf'), `name "pxebmc${i}"
set_working_mc 0x20
  startlan 1
    addr ${node.bmcAddress} 623
    priv_limit admin
    allowed_auths_callback none md2 md5 straight
    allowed_auths_user none md2 md5 straight
    allowed_auths_operator none md2 md5 straight
    allowed_auths_admin none md2 md5 straight
    guid a123456789abcdefa123456789abcd0${i}
  endlan
  serial 15 127.0.0.1 ${ipmiPort} codec VM
  startcmd "${startScript}"
  startnow false
  poweroff_wait 5
  kill_wait 5
  user 2 true "admin" "bmc-secret" admin 10 none md2 md5 straight
`);
  await writeFile(path.join(bmcDir, 'sim.emu'), 'mc_setbmc 0x20\nmc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr\nsel_enable 0x20 1000 0x0a\nmc_enable 0x20\n');
  const sim = spawn('ip', ['netns', 'exec', lab.ns, 'ipmi_sim', '-c', path.join(bmcDir, 'lan.conf'), '-f', path.join(bmcDir, 'sim.emu'), '-s', path.join(bmcDir, 'state'), '-n'], { stdio: 'ignore' });
  children.add(sim);
  const until = Date.now() + 15_000;
  for (;;) {
    const probe = spawnSync('ip', ['netns', 'exec', lab.ns, 'ipmitool', '-I', 'lanplus', '-C', '3', '-H', node.bmcAddress, '-U', 'admin', '-P', 'bmc-secret', '-N', '1', '-R', '1', 'chassis', 'power', 'status'], { encoding: 'utf8' });
    if (probe.status === 0) return;
    if (Date.now() > until || sim.exitCode !== null) throw new Error(`ipmi_sim for ${node.name} did not answer at ${node.bmcAddress}: ${probe.stderr}`);
    await sleep(200);
  }
}

/** Sets up the lab with these nodes (powered off, blank disks), runs `work`, tears everything down. */
export async function withPxeLab<T>(specs: LabNodeSpec[], work: (lab: PxeLab) => Promise<T>): Promise<T> {
  const ns = `pxe${process.pid % 100000}`;
  const dhcpNs = `${ns}d`;
  const dir = await mkdtemp(path.join(tmpdir(), 'pxe-lab-'));
  await chmod(dir, 0o755); // dnsmasq's TFTP runs as nobody
  const children = new Set<ChildProcess>();
  const made: string[] = [];
  const teardown = () => {
    for (const child of children) child.kill('SIGKILL');
    for (const n of made.splice(0).reverse()) dropNamespace(n);
    spawnSync('rm', ['-rf', dir]);
  };
  const ran = teardownOnSignal(teardown);
  try {
    const inNs = (...argv: string[]) => {
      const r = spawnSync('ip', ['-n', ns, ...argv], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`ip -n ${ns} ${argv.join(' ')}: ${r.stderr.trim()}`);
    };
    for (const n of [ns, dhcpNs]) {
      const add = spawnSync('ip', ['netns', 'add', n], { encoding: 'utf8' });
      if (add.status !== 0) throw new Error(`ip netns add ${n}: ${add.stderr.trim()}`);
      made.push(n);
    }
    inNs('link', 'set', 'lo', 'up');
    inNs('link', 'add', 'pxebr0', 'type', 'bridge', 'forward_delay', '0');
    inNs('addr', 'add', `${LAB_SERVER_IP}/24`, 'dev', 'pxebr0');
    // The site's own DHCP server (addresses only), on a host of its own on the bridge.
    inNs('link', 'add', 'pxedhcp', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', dhcpNs);
    inNs('link', 'set', 'pxedhcp', 'master', 'pxebr0');
    inNs('link', 'set', 'pxedhcp', 'up');
    for (const argv of [['link', 'set', 'lo', 'up'], ['addr', 'add', '198.18.0.254/24', 'dev', 'eth0'], ['link', 'set', 'eth0', 'up']]) {
      const r = spawnSync('ip', ['-n', dhcpNs, ...argv], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`ip -n ${dhcpNs} ${argv.join(' ')}: ${r.stderr.trim()}`);
    }
    const nodes: LabNode[] = specs.map((s, i) => {
      const consoleFile = path.join(dir, `${s.name}.console`);
      return { diskSize: '2G', memoryMiB: 1536, ...s, mac: `52:54:00:18:00:${(0x0a + i).toString(16).padStart(2, '0')}`, ip: `198.18.0.${11 + i}`, bmcAddress: `198.18.0.${2 + i}`, consoleFile, console: () => read(consoleFile) };
    });
    for (const [i, node] of nodes.entries()) {
      inNs('addr', 'add', `${node.bmcAddress}/24`, 'dev', 'pxebr0');
      inNs('tuntap', 'add', 'dev', `pxet${i}`, 'mode', 'tap');
      inNs('link', 'set', `pxet${i}`, 'master', 'pxebr0');
      inNs('link', 'set', `pxet${i}`, 'up');
      const disk = spawnSync('truncate', ['-s', node.diskSize, path.join(dir, `${node.name}.disk`)]);
      if (disk.status !== 0) throw new Error(`truncate ${node.name}.disk failed`);
      if (node.firmware === 'uefi') await copyFile(OVMF_VARS, path.join(dir, `${node.name}.vars`));
    }
    inNs('link', 'set', 'pxebr0', 'up');

    await writeFile(path.join(dir, 'sercon-port'), Buffer.from([0xf8, 0x03]));
    const tftp = path.join(dir, 'tftp');
    await mkdir(tftp, { mode: 0o755 });
    for (const f of TFTP_FILES) await copyFile(f, path.join(tftp, path.basename(f)));
    const url = `http://${LAB_SERVER_IP}:${LAB_PORT}`;

    return await withServer(
      async (server) => {
        const remote = ['--server', url, '--token-file', path.join(server.dataDir, 'admin.token')];
        const prefix = ['ip', 'netns', 'exec', ns];
        const cloner = clonerAgainst(remote, prefix);
        // The site's dnsmasq: the snippet cloner prints, then the site's own lines.
        const snippet = spawnSync(prefix[0], [...prefix.slice(1), 'node', 'bin/cloner.js', 'netboot', 'dnsmasq-config', '--server', url, '--subnet', '198.18.0.0', '--tftp-root', tftp], { encoding: 'utf8' });
        if (snippet.status !== 0) throw new Error(`netboot dnsmasq-config failed: ${snippet.stderr}`);
        const log = `log-facility=${path.join(dir, 'dnsmasq.log')}`;
        await writeFile(path.join(dir, 'dnsmasq.conf'), `${snippet.stdout}\n# the lab's own lines\ninterface=pxebr0\nbind-interfaces\nlog-dhcp\n${log}\npid-file=\n`);
        // The site's DHCP server: an address per node (reserved), no PXE; it logs to the same file.
        const site = ['port=0', 'interface=eth0', 'bind-interfaces', 'dhcp-range=198.18.0.100,198.18.0.199,255.255.255.0,1h', ...nodes.map((n) => `dhcp-host=${n.mac},${n.ip}`), `dhcp-leasefile=${path.join(dir, 'leases')}`, 'log-dhcp', log, 'pid-file='];
        await writeFile(path.join(dir, 'site-dhcp.conf'), `${site.join('\n')}\n`);
        for (const [where, conf] of [[ns, 'dnsmasq.conf'], [dhcpNs, 'site-dhcp.conf']]) {
          const dnsmasq = spawn('ip', ['netns', 'exec', where, 'dnsmasq', '-k', '-C', path.join(dir, conf)], { stdio: ['ignore', 'ignore', 'pipe'] });
          children.add(dnsmasq);
          let dnsmasqErr = '';
          dnsmasq.stderr!.on('data', (d) => (dnsmasqErr += d));
          await sleep(500);
          if (dnsmasq.exitCode !== null) throw new Error(`dnsmasq (${conf}) exited (${dnsmasq.exitCode}): ${dnsmasqErr}`);
        }
        for (const [i, node] of nodes.entries()) await startBmc({ ns, dir }, node, i, `pxet${i}`, children);
        return await work({
          ns,
          dir,
          server,
          url,
          nodes,
          cloner,
          spawnCloner: (args) => {
            const child = spawn(prefix[0], [...prefix.slice(1), 'node', 'bin/cloner.js', ...args, ...remote], { stdio: ['ignore', 'pipe', 'pipe'] });
            children.add(child);
            return child;
          },
          dnsmasqLog: () => read(path.join(dir, 'dnsmasq.log')),
        });
      },
      ['--log-level', 'info'],
      { listen: `${LAB_SERVER_IP}:${LAB_PORT}`, spawner: (argv) => spawn('ip', ['netns', 'exec', ns, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] }) },
    );
  } finally {
    // Whatever else runs in the namespaces (qemu started by a BMC) goes too.
    teardown();
    ran();
    await rm(dir, { recursive: true, force: true });
  }
}

/** A milestone: its name and the first text (console or dnsmasq log) that shows it. */
export interface Milestone {
  name: string;
  source: 'console' | 'dnsmasq';
  pattern: RegExp;
}

/** Seconds from `t0` at which each milestone first showed, per node; null while it has not. */
export type Timeline = Record<string, Record<string, number | null>>;

/**
 * Follows the lab (every 250 ms) until `done(timeline)` or `timeoutMs`; fills `timeline`
 * with the first time each node's milestones showed. A dnsmasq milestone's pattern is
 * matched against the log lines naming the node's MAC.
 */
export async function followLab(lab: PxeLab, milestones: Milestone[], t0: number, timeline: Timeline, until: (timeline: Timeline) => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (const n of lab.nodes) timeline[n.name] ??= Object.fromEntries(milestones.map((m) => [m.name, null]));
  for (;;) {
    const log = lab.dnsmasqLog();
    for (const n of lab.nodes) {
      const con = n.console();
      const mine = log.split('\n').filter((l) => l.toLowerCase().includes(n.mac)).join('\n');
      for (const m of milestones) {
        if (timeline[n.name][m.name] !== null) continue;
        if (m.pattern.test(m.source === 'console' ? con : mine)) timeline[n.name][m.name] = Number(((performance.now() - t0) / 1000).toFixed(1));
      }
    }
    if (await until(timeline)) return;
    if (Date.now() > end) throw new Error(`the lab did not get there in ${timeoutMs / 1000} s: ${JSON.stringify(timeline)}\n${lab.nodes.map((n) => `--- ${n.name} console (end):\n${n.console().slice(-2500)}`).join('\n')}`);
    await sleep(250);
  }
}
