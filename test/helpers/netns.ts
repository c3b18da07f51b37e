/**
 * A small lab of network namespaces for deploy tests: one "server" namespace holding a
 * bridge at 198.18.0.1/24, and one namespace per node whose only interface (eth0, with
 * its own MAC, 198.18.0.11+i/24) is a veth into that bridge. Nothing touches the host's
 * own network. Every process started in the lab is killed and every namespace deleted
 * when `work` ends, pass or fail.
 */
import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { haveTool } from '../../core/tools.ts';
import { sh } from './loop.ts';

export interface LabNode {
  ns: string;
  ip: string;
  mac: string;
  /** The veth end on the server side (tc or link cuts act on it too). */
  peer: string;
}

export interface NetLab {
  serverNs: string;
  serverIp: string;
  nodes: LabNode[];
  /** Starts a process inside a namespace. */
  spawnIn(ns: string, argv: string[], options?: SpawnOptions): ChildProcess;
  /** Runs a command inside a namespace and returns its output (throws on failure). */
  runIn(ns: string, argv: string[]): string;
}

/** Why namespace tests cannot run here, or null. */
export function netnsUnavailable(): string | null {
  if (process.getuid?.() !== 0) return 'network namespaces need root';
  if (!haveTool('ip')) return 'ip (iproute2) is not installed';
  const name = `clprobe${process.pid}`;
  const r = spawnSync('ip', ['netns', 'add', name], { encoding: 'utf8' });
  if (r.status !== 0) return `cannot create a network namespace: ${r.stderr.trim()}`;
  spawnSync('ip', ['netns', 'del', name]);
  return null;
}

const hex = (n: number) => (n & 0xff).toString(16).padStart(2, '0');

export async function withNetLab<T>(nodeCount: number, work: (lab: NetLab) => Promise<T>): Promise<T> {
  const tag = String(process.pid % 100000);
  const serverNs = `cls${tag}`;
  const nodes: LabNode[] = Array.from({ length: nodeCount }, (_, i) => ({
    ns: `cln${tag}x${i + 1}`,
    ip: `198.18.0.${11 + i}`,
    mac: `02:18:${hex(process.pid >> 16)}:${hex(process.pid >> 8)}:${hex(process.pid)}:${hex(i + 1)}`,
    peer: `clv${tag}x${i + 1}`,
  }));
  const children = new Set<ChildProcess>();
  const made: string[] = [];
  try {
    sh(['ip', 'netns', 'add', serverNs]);
    made.push(serverNs);
    const inServer = (...argv: string[]) => sh(['ip', '-n', serverNs, ...argv]);
    inServer('link', 'set', 'lo', 'up');
    inServer('link', 'add', 'br0', 'type', 'bridge');
    inServer('addr', 'add', '198.18.0.1/24', 'dev', 'br0');
    inServer('link', 'set', 'br0', 'up');
    for (const node of nodes) {
      sh(['ip', 'netns', 'add', node.ns]);
      made.push(node.ns);
      sh(['ip', '-n', node.ns, 'link', 'set', 'lo', 'up']);
      sh(['ip', '-n', node.ns, 'link', 'add', 'eth0', 'address', node.mac, 'type', 'veth', 'peer', 'name', node.peer, 'netns', serverNs]);
      sh(['ip', '-n', node.ns, 'addr', 'add', `${node.ip}/24`, 'dev', 'eth0']);
      sh(['ip', '-n', node.ns, 'link', 'set', 'eth0', 'up']);
      inServer('link', 'set', node.peer, 'master', 'br0');
      inServer('link', 'set', node.peer, 'up');
    }
    const lab: NetLab = {
      serverNs,
      serverIp: '198.18.0.1',
      nodes,
      spawnIn(ns, argv, options = {}) {
        const child = spawn('ip', ['netns', 'exec', ns, ...argv], { stdio: ['ignore', 'pipe', 'pipe'], ...options });
        children.add(child);
        child.once('exit', () => children.delete(child));
        return child;
      },
      runIn(ns, argv) {
        return sh(['ip', 'netns', 'exec', ns, ...argv]);
      },
    };
    return await work(lab);
  } finally {
    for (const child of children) child.kill('SIGKILL');
    for (const ns of made) {
      const pids = spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean);
      for (const pid of pids) spawnSync('kill', ['-9', pid]);
    }
    for (const ns of made.reverse()) spawnSync('ip', ['netns', 'del', ns]);
  }
}

/** Runs a process to its end: exit code and all output. */
export function finished(child: ChildProcess): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    let out = '';
    child.stdout?.on('data', (d) => (out += d));
    child.stderr?.on('data', (d) => (out += d));
    child.once('close', (code) => resolve({ code, out }));
  });
}
