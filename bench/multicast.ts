/**
 * bench:multicast — N nodes (CLONER_BENCH_NODES, default 4) in network namespaces on one
 * bridge, each imaged with the Debian tree in turn, in one run:
 *   multicast  agents in multicast mode register what they lack; one `multicast-image`,
 *              once per repair mode (CLONER_BENCH_REPAIR, default "parity,resend")
 *   solo       the same with node1 alone (8 nodes against one; CLONER_BENCH_SOLO=0 skips it)
 *   unicast    the same agents deploying at once over HTTP (the ordinary deploy)
 *   udpcast    Debian's udp-sender/udp-receiver, twice: "files" sends an lz4'd tar of the
 *              tree that each receiver unpacks onto its node (lz4 -d | tar -x: the same
 *              work as an agent, so the times compare like for like); "wire" sends a file
 *              of the union's size (what multicast had to send) to /dev/null
 * Nodes restore into directories (no layout: the bench measures the network, not mkfs).
 * For each: wall time, bytes the server sent (tx of its bridge, br0, i.e. its egress)
 * and the ratios; for multicast also what the datagrams carried (payload, headers, parity,
 * per round), the rest of the egress (HTTP: polls, reports), the datagrams the nodes'
 * kernels dropped for full receive buffers, the rate's changes (core/multicast/rate.ts),
 * the agents' and the udpcast receivers' CPU seconds (/usr/bin/time), the server's and
 * udp-sender's, what that allows on this machine's cores (8 nodes against one), and the
 * load average before and after (the machine may be shared: compare ratios within one run).
 * Loss: CLONER_MULTICAST_TEST_LOSS=0.01 makes every receiver drop 1% (no sch_netem here).
 * The multicast and unicast times include what every deploy does after the
 * network (decompressing, writing and placing ~7,800 files per node on 2 shared cores), as
 * does udpcast "files". Needs root, iproute2, lz4 and udpcast (apt-get install udpcast lz4).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';
import { ensureDebianTree } from './debian-tree.ts';
import { haveTool } from '../core/tools.ts';
import type { MulticastStatus, SessionView } from '../core/multicast/hub.ts';
import { clonerAgainst } from '../test/helpers/cli.ts';
import { finished, netnsUnavailable, withNetLab, type NetLab } from '../test/helpers/netns.ts';
import { withServer, type TestServer } from '../test/helpers/server.ts';

const N = Number(process.env.CLONER_BENCH_NODES ?? 4);
const RATE = process.env.CLONER_BENCH_RATE ?? '400M';
const REPAIRS = (process.env.CLONER_BENCH_REPAIR ?? 'parity,resend').split(',').filter(Boolean);
const SOLO = process.env.CLONER_BENCH_SOLO !== '0';
/** Ethernet (14) and IPv4/UDP (28) bytes around each datagram on the bridge's counter. */
const FRAME_OVERHEAD = 42;
/** udpcast's rendezvous group (the sessions' groups are the default, 239.192.87.40). */
const UDPCAST_RDV = '239.192.87.41';
const blocker = netnsUnavailable();
if (blocker) {
  console.log(`bench:multicast skipped: ${blocker}`);
  process.exit(0);
}
const found = await ensureDebianTree();
if ('skip' in found) {
  console.log(`bench:multicast skipped: ${found.skip}`);
  process.exit(0);
}
const debian = found;
const work = await mkdtemp(path.join(process.env.CLONER_BENCH_WORK ?? '/var/tmp', 'cloner-bench-multicast-'));
const MiB = (n: number) => `${(n / 1048576).toFixed(1)} MiB`;

try {
  await withNetLab(N, (lab) => withServer((server) => bench(lab, server), [], { listen: `${lab.serverIp}:8740`, spawner: (argv) => lab.spawnIn(lab.serverNs, argv) }));
} finally {
  await rm(work, { recursive: true, force: true });
}

async function bench(lab: NetLab, server: TestServer): Promise<void> {
  const load0 = loadavg()[0].toFixed(1);
  const url = `http://${lab.serverIp}:8740`;
  const timed = existsSync('/usr/bin/time') ? ['/usr/bin/time', '-f', 'cloner-bench-cpu %U %S'] : [];
  const tokenFile = path.join(server.dataDir, 'admin.token');
  const cloner = clonerAgainst(['--server', url, '--token-file', tokenFile], ['ip', 'netns', 'exec', lab.serverNs]);
  const txBytes = () => Number(lab.runIn(lab.serverNs, ['cat', '/sys/class/net/br0/statistics/tx_bytes']));
  // Datagrams the nodes' kernels dropped for a full socket receive buffer (Udp RcvbufErrors, per namespace).
  const rcvbufErrors = () => lab.nodes.reduce((n, node) => {
    const udp = lab.runIn(node.ns, ['cat', '/proc/net/snmp']).split('\n').filter((l) => l.startsWith('Udp: '));
    return n + Number(udp[1].split(' ')[udp[0].split(' ').indexOf('RcvbufErrors')]);
  }, 0);
  // The server's CPU seconds so far (user + system; /proc/PID/stat counts clock ticks of 1/100 s).
  const serverCpu = () => {
    const fields = readFileSync(`/proc/${server.pid}/stat`, 'latin1').split(') ')[1].split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  };
  cloner('new-image', '--image', 'debian', '--root', debian.tree, '--yes');
  lab.nodes.forEach((n, i) => cloner('nodes', 'add', `node${i + 1}`, `eth0.mac=${n.mac}`, 'cloner_image=debian', 'groups=lab'));
  const target = (i: number) => path.join(work, `node${i + 1}`);
  const agents = async (extra: string[], count = N) => {
    for (let i = 0; i < count; i++) {
      await rm(target(i), { recursive: true, force: true });
      await mkdir(target(i));
    }
    return lab.nodes.slice(0, count).map((n, i) => finished(lab.spawnIn(n.ns, [...timed, 'node', 'bin/cloner-agent.js', 'deploy', '--server', url, '--token-file', tokenFile, '--node', `node${i + 1}`, '--target', target(i), '--no-reboot', ...extra])));
  };
  const check = (runs: Array<{ code: number | null; out: string }>, what: string) => {
    runs.forEach((r, i) => {
      if (r.code !== 0) throw new Error(`${what}: node${i + 1} failed:\n${r.out}`);
    });
    // The agents' CPU seconds (user + system), where /usr/bin/time ran them.
    return runs.reduce((n, r) => {
      const m = /cloner-bench-cpu (\S+) (\S+)/.exec(r.out);
      return n + (m ? Number(m[1]) + Number(m[2]) : Number.NaN);
    }, 0);
  };

  // Multicast: the session's time from multicast-image to the last node done.
  let phases = 0;
  const multicast = async (repair: string, count: number) => {
    // A fresh server for each session: the hub takes a node that was in a session lately and
    // registers again for one that restarted (hub.ts), and tells it to go unicast.
    if (phases++) await server.restart();
    const runs = await agents(['--multicast', '--poll-s', '1'], count);
    // An agent that ends before the session (it failed) says why at once, not after the wait.
    let ended: string | null = null;
    runs.forEach((run, i) => void run.then((r) => (ended ??= `node${i + 1} ended (${r.code}) before its session:\n${r.out.slice(-3000)}`)));
    for (const until = Date.now() + (Number(process.env.CLONER_BENCH_REGISTER_S) || 300) * 1000; ; ) {
      const st = JSON.parse(cloner('multicast-status', '--json')) as MulticastStatus;
      if (st.waiting.length === count) break;
      if (ended) throw new Error(ended);
      if (Date.now() > until) throw new Error(`the nodes did not all register:\n${server.stderr().slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 300));
    }
    const tx0 = txBytes();
    const drops0 = rcvbufErrors();
    const server0 = serverCpu();
    const t0 = performance.now();
    const nodes = count === N ? '@lab' : lab.nodes.slice(0, count).map((_, i) => `node${i + 1}`).join(',');
    const start = JSON.parse(cloner('multicast-image', '--image', 'debian', '--nodes', nodes, '--rate', RATE, '--repair', repair, '--json')) as { unionBytes: number; lackingBytes: number; session: SessionView };
    const cpu = check(await Promise.all(runs), `multicast (${repair}, ${count} nodes)`);
    const result = { seconds: (performance.now() - t0) / 1000, bytes: txBytes() - tx0, rcvbufDrops: rcvbufErrors() - drops0, cpu, serverCpu: serverCpu() - server0 };
    const session = (JSON.parse(cloner('multicast-status', '--json')) as MulticastStatus).sessions.find((s) => s.id === start.session.id)!;
    for (const r of session.receivers) if (r.state !== 'done') console.error(`multicast (${repair}, ${count} nodes): ${r.node} fell back: ${r.reason ?? r.state}`);
    return { ...result, start, session, fellBack: session.receivers.filter((r) => r.state !== 'done').length };
  };
  const mcs = [];
  for (const repair of REPAIRS) mcs.push({ repair, ...(await multicast(repair, N)) });
  const solo = SOLO && N > 1 ? await multicast(REPAIRS[0] ?? 'parity', 1) : null;
  const mc = mcs[0];
  const { start } = mc;

  // Unicast: the same nodes deploying at once.
  const ucStart = await agents([]);
  const tx0 = txBytes();
  const server0 = serverCpu();
  const t0 = performance.now();
  const ucCpu = check(await Promise.all(ucStart), 'unicast');
  const uc = { seconds: (performance.now() - t0) / 1000, bytes: txBytes() - tx0, cpu: ucCpu, serverCpu: serverCpu() - server0 };

  // udpcast, twice: "files" sends an lz4'd tar of the image's tree and each receiver unpacks it onto its
  // node (lz4 -d | tar -x, the same work as the agents: the like-for-like time); "wire" sends a file of
  // the union's size to /dev/null (the network alone).
  const udp: Record<'files' | 'wire', { seconds: number; bytes: number; fileBytes: number; cpu: number; senderCpu: number } | null> = { files: null, wire: null };
  if (haveTool('udp-sender') && haveTool('udp-receiver') && haveTool('lz4')) {
    const archive = path.join(work, 'tree.tar.lz4');
    execFileSync('sh', ['-c', `tar -C '${debian.tree}' -cf - . | lz4 -q -1 - '${archive}'`]);
    const file = path.join(work, 'union.bin');
    execFileSync('sh', ['-c', `head -c ${start.unionBytes} /dev/urandom > '${file}'`]);
    const rdv = ['--mcast-rdv-address', UDPCAST_RDV];
    const cast = async (what: 'files' | 'wire', source: string) => {
      const receiver = (i: number) => (what === 'files' ? `udp-receiver --interface eth0 --nokbd --nosync ${rdv.join(' ')} | lz4 -q -d | tar -C '${target(i)}' -xpf -` : `udp-receiver --interface eth0 --file /dev/null --nokbd --nosync ${rdv.join(' ')}`);
      for (let i = 0; i < N; i++) {
        await rm(target(i), { recursive: true, force: true });
        await mkdir(target(i));
      }
      const receivers = lab.nodes.map((n, i) => finished(lab.spawnIn(n.ns, [...timed, 'sh', '-c', receiver(i)])));
      await new Promise((r) => setTimeout(r, 1000));
      const tx0 = txBytes();
      const t0 = performance.now();
      const sender = await finished(lab.spawnIn(lab.serverNs, [...timed, 'udp-sender', '--interface', 'br0', '--file', source, '--min-receivers', String(N), '--nokbd', '--ttl', '1', '--max-bitrate', RATE.toLowerCase(), ...rdv]));
      const cpu = check(await Promise.all(receivers), `udpcast (${what})`);
      if (sender.code !== 0) throw new Error(`udp-sender failed:\n${sender.out}`);
      udp[what] = { seconds: (performance.now() - t0) / 1000, bytes: txBytes() - tx0, fileBytes: statSync(source).size, cpu, senderCpu: check([sender], 'udp-sender') };
    };
    await cast('files', archive);
    await cast('wire', file);
  } else console.log('udpcast skipped: udp-sender/udp-receiver or lz4 not installed (apt-get install udpcast lz4)');

  console.log(`bench:multicast, ${N} nodes, Debian tree ${debian.tree}, rate ${RATE}; load average ${load0} at the start, ${loadavg()[0].toFixed(1)} at the end (${availableParallelism()} CPUs)`);
  console.log(`  union of chunks lacked: ${MiB(start.unionBytes)} stored; unicast owes ${MiB(start.lackingBytes)}`);
  const cpuNote = (r: { cpu?: number }, who = "agents'") => (r.cpu !== undefined && Number.isFinite(r.cpu) ? `; ${who} CPU ${r.cpu.toFixed(1)} s (user + system)` : '');
  // Each round's datagram bytes, time and pace (datagrams with IP/UDP headers, Mbit/s).
  const rounds = (s: SessionView) => s.rounds.map((r) => `#${r.round} ${MiB(r.bytes)}${r.parityBytes ? ` (parity ${MiB(r.parityBytes)})` : ''} ${r.seconds} s${r.seconds >= 1 ? ` (${Math.round(((r.bytes + 28 * r.datagrams) * 8) / r.seconds / 1e6)} Mbit/s)` : ''}`).join(', ');
  const row = (name: string, r: { seconds: number; bytes: number; cpu?: number }, note = '', who?: string) => console.log(`  ${name.padEnd(13)} ${r.seconds.toFixed(1).padStart(6)} s  ${MiB(r.bytes).padStart(12)} sent by the server  ${(r.bytes / start.unionBytes).toFixed(3)}x the union${note}${cpuNote(r, who)}`);
  for (const m of mcs) {
    const s = m.session;
    const sessionSeconds = (Date.parse(s.ended!) - Date.parse(s.created)) / 1000;
    row(`mc ${m.repair}`, m, `  (session ${sessionSeconds.toFixed(1)} s from start to its last node done; ${s.round} rounds, ${m.fellBack} fell back to unicast)`);
    for (const r of s.receivers) if (r.state !== 'done') console.log(`             ${r.node} fell back: ${r.reason ?? r.state}`);
    const u = s.unionBytes;
    const frames = s.sent.datagrams * FRAME_OVERHEAD;
    const pct = (n: number) => `${((100 * n) / u).toFixed(1)}%`;
    const resent = s.sent.bytes - s.sent.headerBytes - s.sent.parityBytes - u;
    console.log(`             of the union: wire ${(m.bytes / u).toFixed(3)}x = the union once 100% + parity ${pct(s.sent.parityBytes)} + data resent ${pct(resent)} + wire headers ${pct(s.sent.headerBytes)} + Ethernet/IP/UDP ${pct(frames)} + the rest (HTTP) ${pct(m.bytes - s.sent.bytes - frames)}`);
    console.log(`             datagrams: ${s.sent.datagrams} sent; ${m.rcvbufDrops} dropped by the nodes' full receive buffers (${((100 * m.rcvbufDrops) / Math.max(1, s.sent.datagrams * N)).toFixed(1)}% of all they were sent)`);
    const mbit = (bytes: number) => `${Math.round((bytes * 8) / 1e6)}`;
    console.log(`             rate: ${s.rateChanges.length ? `${s.rateChanges.length} changes (${s.rateChanges.map((c) => `${mbit(c.rate)} at ${(100 * c.loss).toFixed(1)}%`).join(', ')}), ended at ${mbit(s.rate)}` : 'unchanged'} Mbit/s`);
    console.log(`             rounds: ${rounds(s)}; server CPU ${m.serverCpu.toFixed(1)} s`);
  }
  if (solo) {
    row('solo', solo, `  (node1 alone, ${mc.repair}; ${solo.session.round} rounds)`);
    console.log(`             rounds: ${rounds(solo.session)}; server CPU ${solo.serverCpu.toFixed(1)} s`);
  }
  row('unicast', uc, `; server CPU ${uc.serverCpu.toFixed(1)} s`);
  const files = udp.files;
  const wire = udp.wire;
  if (files) row('udpcast files', files, `  (tar | lz4 -1 of the tree: ${MiB(files.fileBytes)}, ${(files.bytes / files.fileBytes).toFixed(3)}x it; each node unpacks it, lz4 -d | tar -x); udp-sender CPU ${files.senderCpu.toFixed(1)} s`, "udp-receivers' and unpackers'");
  if (wire) row('udpcast wire', wire, `  (a file of the union's size to /dev/null: ${(wire.bytes / wire.fileBytes).toFixed(3)}x it); udp-sender CPU ${wire.senderCpu.toFixed(1)} s`, "udp-receivers'");
  // The agents' work is CPU-bound here: N nodes need N times one node's CPU from the same cores.
  const cores = availableParallelism();
  const perNode = (r: { cpu: number }, n: number) => r.cpu / n;
  if (solo) console.log(`  ${N} nodes/1 node (multicast ${mc.repair}): time ${(mc.seconds / solo.seconds).toFixed(2)}; CPU per node ${perNode(mc, N).toFixed(1)} s (${N} nodes) vs ${perNode(solo, 1).toFixed(1)} s (alone), server ${mc.serverCpu.toFixed(1)} vs ${solo.serverCpu.toFixed(1)} s: ${N} nodes need at least ${((mc.cpu + mc.serverCpu) / cores).toFixed(1)} s on ${cores} cores, one node ${((solo.cpu + solo.serverCpu) / Math.min(cores, 2)).toFixed(1)} s, so ${cores} cores allow ${((mc.cpu + mc.serverCpu) / cores / solo.seconds).toFixed(2)} at best`);
  console.log(`  multicast/unicast: time ${(mc.seconds / uc.seconds).toFixed(2)}, server egress ${(mc.bytes / uc.bytes).toFixed(3)} (1/${N} = ${(1 / N).toFixed(3)})`);
  if (files) console.log(`  multicast/udpcast files (both write the tree on every node): time ${(mc.seconds / files.seconds).toFixed(2)}, bytes ${(mc.bytes / files.bytes).toFixed(3)}, nodes' CPU ${(mc.cpu / files.cpu).toFixed(2)} (${perNode(mc, N).toFixed(1)} vs ${perNode(files, N).toFixed(1)} s per node)`);
  if (wire) console.log(`  multicast/udpcast wire (udpcast to /dev/null): time ${(mc.seconds / wire.seconds).toFixed(2)}, bytes ${(mc.bytes / wire.bytes).toFixed(3)}`);
}
