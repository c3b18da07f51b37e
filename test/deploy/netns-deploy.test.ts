/**
 * Deploys over a real network: the cloner server in one network namespace, four nodes in
 * their own (each with one veth eth0 and its own MAC, 198.18.0.0/24) and a loop-device
 * disk each. The agents find themselves by MAC, take the one-boot token /boot.ipxe gives
 * them, partition (GPT: ext4 / and xfs /srv) and restore the Debian tree at once; each
 * tree is compared with the golden one (rsync itemize) and each node's identity checked.
 * Each node's pre-script sees its CLONER_* environment; a fifth disk that fits the layout
 * but is in no agent's --disks is never written. Then: a re-deploy after update-filesystem
 * fetches at most the new chunks, and a second one nothing; a link cut mid-deploy is waited
 * out and the deploy completes, fetching again no more than what was in flight; a chunk
 * corrupted in the server's pack fails the deploy loudly and the node stays in `cloner`.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdir, open, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ensureDebianTree } from '../../bench/debian-tree.ts';
import { rsyncDifferences, seededBytes } from '../helpers/fixtures.ts';
import { loopUnavailable, sh, withLoopDisks } from '../helpers/loop.ts';
import { finished, netnsUnavailable, withNetLab, type NetLab } from '../helpers/netns.ts';
import { withServer, type TestServer } from '../helpers/server.ts';
import { IDENTITY_EXCLUDES, putPlaceholderInstaller, TWO_FS_LAYOUT, withTwoFsMounted } from '../helpers/deploy-lab.ts';
import { clonerAgainst } from '../helpers/cli.ts';


const debian = await ensureDebianTree();
const blocker = netnsUnavailable() ?? loopUnavailable() ?? ('skip' in debian ? debian.skip : null);
if (blocker) {
  console.log(`skipped: deploys over network namespaces: ${blocker}`);
  test.skip('deploys over network namespaces', () => {});
} else {
  const debianTree = (debian as { tree: string }).tree;

  test('four nodes deploy one image at once; re-deploys fetch only what changed; a link cut resumes; a corrupt chunk fails loudly', async () => {
    await withNetLab(4, async (lab) => {
      await withLoopDisks(['1200M', '1200M', '1200M', '1200M', '1200M'], async (disks, dir) => {
        await withServer(
          async (server) => {
            await scenario(lab, server, disks, dir);
          },
          [],
          { listen: `${lab.serverIp}:8740`, spawner: (argv) => lab.spawnIn(lab.serverNs, argv) },
        );
      });
    });
  });

  async function scenario(lab: NetLab, server: TestServer, disks: string[], dir: string): Promise<void> {
    const url = `http://${lab.serverIp}:8740`;
    const remote = ['--server', url, '--token-file', path.join(server.dataDir, 'admin.token')];
    // The admin's CLI runs in the server's namespace (the lab is not reachable from outside).
    const cloner = clonerAgainst(remote, ['ip', 'netns', 'exec', lab.serverNs]);
    const nodeName = (i: number) => `node${i + 1}`;

    // The golden tree: the Debian tree plus an ifupdown config, an sshd config and /srv content.
    const golden = path.join(dir, 'golden');
    sh(['cp', '-a', debianTree, golden]);
    await mkdir(path.join(golden, 'etc/network'), { recursive: true });
    await writeFile(path.join(golden, 'etc/network/interfaces'), 'auto lo\niface lo inet loopback\n\nauto eth0\niface eth0 inet static\n    address 10.9.9.9/24\n');
    await writeFile(path.join(golden, 'etc/ssh/sshd_config'), 'PermitRootLogin prohibit-password\n');
    await writeFile(path.join(golden, 'etc/hostname'), 'golden\n');
    await writeFile(path.join(golden, 'etc/hosts'), '127.0.0.1\tlocalhost\n127.0.1.1\tgolden\n');
    await mkdir(path.join(golden, 'srv/data'), { recursive: true });
    await writeFile(path.join(golden, 'srv/data/payload.bin'), seededBytes(7, 3 << 20));
    await writeFile(path.join(dir, 'layout.json'), JSON.stringify(TWO_FS_LAYOUT));

    cloner('disklayout-upload', '--disklayout', 'twofs', '--file', path.join(dir, 'layout.json'));
    cloner('new-image', '--image', 'debian', '--root', golden, '--disklayout', 'twofs', '--yes');
    lab.nodes.forEach((n, i) => cloner('nodes', 'add', nodeName(i), `eth0.mac=${n.mac}`, `eth0.ip=${n.ip}/24`, 'eth0.gateway=198.18.0.1', 'eth0.dns=198.18.0.1', 'cloner_image=debian', 'groups=lab', `hostname=${nodeName(i)}.cluster`));
    cloner('netboot', '--nodes', '@lab', '--set', 'cloner');

    // An installer on the server (as make-installer leaves one): /boot.ipxe hands out tokens only with one.
    await putPlaceholderInstaller(server.dataDir);
    /** What the netboot endpoint gives the node's installer: its one-boot token. */
    const bootToken = (i: number) => {
      const ipxe = lab.runIn(lab.nodes[i].ns, ['node', '-e', `fetch('${url}/boot.ipxe?mac=${lab.nodes[i].mac}').then(r => r.text()).then(t => process.stdout.write(t))`]);
      const token = /cloner\.token=(\S+)/.exec(ipxe)?.[1];
      assert.ok(token, ipxe);
      return token!;
    };
    const agent = (i: number, retryDeadlineS = 60, env: NodeJS.ProcessEnv = {}) =>
      finished(lab.spawnIn(lab.nodes[i].ns, ['node', 'bin/cloner-agent.js', 'deploy', '--server', url, '--token', bootToken(i), '--disks', disks[i], '--target', path.join(dir, `target${i}`), '--force', '--no-reboot', '--retry-deadline-s', String(retryDeadlineS), '--stall-s', '2'], { env: { ...process.env, CLONER_PROGRESS_INTERVAL_MS: '300', ...env } }));
    const deploys = () => JSON.parse(cloner('status', '--json')).nodes as Array<{ node: string; netboot: string; status: { phase: string; fetchedBytes?: number } | null; lastDeploy: { ok: boolean; phase: string; message?: string; fetchedBytes?: number } | null }>;
    const mounted = <T>(i: number, work: (root: string) => Promise<T>): Promise<T> => withTwoFsMounted(disks[i], path.join(dir, `check${i}`), work);
    const excludes = IDENTITY_EXCLUDES;

    // A fifth disk that fits the layout but is in no agent's --disks: it must never be written.
    const bystander = disks[4];
    const bystanderMark = seededBytes(5, 4 << 20);
    await writeFile(bystander, bystanderMark);
    // A pre-script that records the environment it ran with, per node.
    const preEnv = path.join(dir, 'pre-env');
    await mkdir(preEnv);
    await writeFile(path.join(dir, 'pre.sh'), `#!/bin/sh\nenv | grep '^CLONER_' | sort > ${preEnv}/$CLONER_NODE.env\n`);
    cloner('script', '--image', 'debian', '--type', 'pre', '--set', path.join(dir, 'pre.sh'));

    // BIOS settings with the image: node1 has (a fake) syscfg, the others none.
    await writeFile(path.join(dir, 'bios.ini'), '[BIOS::Advanced]\nHyper-Threading Technology=Disable\n');
    cloner('biossettings-upload', '--image', 'debian', '--biossettings', 'tuned', '--file', path.join(dir, 'bios.ini'));
    const syscfgLog = path.join(dir, 'syscfg.log');
    const withFakeSyscfg = { PATH: `${path.resolve('test/helpers/fake-syscfg')}:${process.env.PATH}`, FAKE_SYSCFG_LOG: syscfgLog };

    // 1. Four nodes at once, each finding itself by MAC.
    const results = await Promise.all(lab.nodes.map((_, i) => (i === 0 ? agent(i, 60, withFakeSyscfg) : agent(i))));
    results.forEach((r, i) => assert.is(r.code, 0, `${nodeName(i)}:\n${r.out}`));
    const hostKeys = new Set<string>();
    for (const [i, n] of lab.nodes.entries()) {
      assert.match(results[i].out, new RegExp(`\\[identify\\] node ${nodeName(i)}\\b`), results[i].out);
      await mounted(i, async (root) => {
        assert.equal(rsyncDifferences(golden, root, excludes), [], `${nodeName(i)}'s tree equals the golden one`);
        assert.is(await readFile(path.join(root, 'etc/hostname'), 'utf8'), `${nodeName(i)}\n`);
        const hosts = await readFile(path.join(root, 'etc/hosts'), 'utf8');
        assert.match(hosts, new RegExp(`^${n.ip.replace(/\./g, '\\.')}\\t${nodeName(i)}\\.cluster ${nodeName(i)}$`, 'm'));
        assert.not.match(hosts, /golden/);
        assert.match(await readFile(path.join(root, `etc/network/interfaces.d/cloner-eth0`), 'utf8'), new RegExp(`address ${n.ip}/24\\n\\s+gateway 198\\.18\\.0\\.1\\n\\s+dns-nameservers 198\\.18\\.0\\.1`));
        assert.not.match(await readFile(path.join(root, 'etc/network/interfaces'), 'utf8'), /10\.9\.9\.9/, 'the golden address is gone');
        assert.match(await readFile(path.join(root, 'etc/systemd/network/10-cloner-eth0.link'), 'utf8'), new RegExp(`MACAddress=${n.mac}\\n\\n\\[Link\\]\\nName=eth0`));
        const fstab = await readFile(path.join(root, 'etc/fstab'), 'utf8');
        const uuid = (part: number) => sh(['blkid', '-p', '-s', 'UUID', '-o', 'value', `${disks[i]}p${part}`]).trim();
        assert.match(fstab, new RegExp(`^UUID=${uuid(1)} / ext4 `, 'm'));
        assert.match(fstab, new RegExp(`^UUID=${uuid(2)} /srv xfs `, 'm'));
        assert.match(await readFile(path.join(root, 'etc/machine-id'), 'utf8'), /^[0-9a-f]{32}\n$/);
        hostKeys.add(await readFile(path.join(root, 'etc/ssh/ssh_host_ed25519_key.pub'), 'utf8'));
        assert.is((await stat(path.join(root, 'etc/ssh/ssh_host_ed25519_key'))).mode & 0o777, 0o600);
      });
    }
    assert.is(hostKeys.size, 4, 'each node has its own SSH host keys');
    for (const [i, n] of lab.nodes.entries()) {
      assert.is(
        await readFile(path.join(preEnv, `${nodeName(i)}.env`), 'utf8'),
        [
          `CLONER_HOSTNAME=${nodeName(i)}.cluster`,
          `CLONER_IF_ETH0_GATEWAY=198.18.0.1`,
          `CLONER_IF_ETH0_IP=${n.ip}/24`,
          `CLONER_IF_ETH0_MAC=${n.mac}`,
          'CLONER_IMAGE=debian',
          'CLONER_INTERFACES=eth0',
          `CLONER_NODE=${nodeName(i)}`,
          'CLONER_REVISION=1',
          `CLONER_SERVER=${url}`,
          `CLONER_TARGET=${path.join(dir, `target${i}`)}`,
          '',
        ].join('\n'),
        `${nodeName(i)}'s pre-script environment`,
      );
    }
    assert.match(await readFile(syscfgLog, 'utf8'), /^\/r \S+bios-tuned\.ini \/b\n\[BIOS::Advanced\]\nHyper-Threading Technology=Disable\n$/, 'syscfg restored the settings on node1');
    assert.match(results[1].out, /warning: the image has BIOS settings \(tuned\) but syscfg is not on this node; skipped/);
    for (const row of deploys()) {
      assert.is(row.netboot, 'local', `${row.node} boots from disk after a good deploy`);
      assert.is(row.lastDeploy?.ok, true);
      assert.is(row.status?.phase, 'done');
    }
    const machineIds = new Set<string>();
    for (const i of [0, 1, 2, 3]) await mounted(i, async (root) => void machineIds.add(await readFile(path.join(root, 'etc/machine-id'), 'utf8')));
    assert.is(machineIds.size, 4);

    // 2. update-filesystem, then a re-deploy of node1 keeps its file systems and fetches only new chunks.
    const firstKey = await mounted(0, (root) => readFile(path.join(root, 'etc/ssh/ssh_host_ed25519_key'), 'utf8'));
    await mkdir(path.join(golden, 'opt/newpkg'), { recursive: true });
    await writeFile(path.join(golden, 'opt/newpkg/blob.bin'), seededBytes(8, 2 << 20));
    await writeFile(path.join(golden, 'etc/motd'), 'revision two\n');
    await rm(path.join(golden, 'srv/data/payload.bin'));
    cloner('update-filesystem', '--image', 'debian', '--root', golden);
    const image = JSON.parse(cloner('image-details', '--image', 'debian', '--json')) as { revisions: Array<{ n: number; tree: string }> };
    const [rev1, rev2] = image.revisions;
    const newChunkBytes = await (async () => {
      // Measured from the server's namespace: what rev2 has that rev1 has not.
      const r = spawnSync('ip', ['netns', 'exec', lab.serverNs, process.execPath, '--input-type=module', '-e', `
        const { HttpStore } = await import('${path.resolve('core/store/http.ts')}');
        const { treeChunkIds } = await import('${path.resolve('core/tree/images.ts')}');
        const s = new HttpStore({ url: '${url}', token: '${server.adminToken}' });
        const old = await treeChunkIds(s, '${rev1.tree}');
        const fresh = [...await treeChunkIds(s, '${rev2.tree}')].filter((id) => !old.has(id));
        let bytes = 0; for await (const [, data] of s.getMany(fresh)) bytes += data.length;
        process.stdout.write(String(bytes));`], { encoding: 'utf8' });
      assert.is(r.status, 0, r.stderr);
      return Number(r.stdout);
    })();
    /** Bytes of every distinct chunk of a revision (what a blank disk fetches at most). */
    const treeBytes = (tree: string) => {
      const r = spawnSync('ip', ['netns', 'exec', lab.serverNs, process.execPath, '--input-type=module', '-e', `
        const { HttpStore } = await import('${path.resolve('core/store/http.ts')}');
        const { treeChunkIds } = await import('${path.resolve('core/tree/images.ts')}');
        const s = new HttpStore({ url: '${url}', token: '${server.adminToken}' });
        let bytes = 0; for await (const [, data] of s.getMany(await treeChunkIds(s, '${tree}'))) bytes += data.length;
        process.stdout.write(String(bytes));`], { encoding: 'utf8' });
      assert.is(r.status, 0, r.stderr);
      return Number(r.stdout);
    };
    cloner('netboot', '--nodes', 'node1', '--set', 'cloner');
    let again = await agent(0);
    assert.is(again.code, 0, again.out);
    assert.match(again.out, /already carry the layout: keeping their file systems/);
    const fetched = deploys().find((d) => d.node === 'node1')!.lastDeploy!.fetchedBytes!;
    assert.ok(fetched > 0 && fetched <= newChunkBytes, `re-deploy fetched ${fetched} bytes; rev2's new chunks are ${newChunkBytes}`);
    await mounted(0, async (root) => {
      assert.equal(rsyncDifferences(golden, root, [...excludes, '--delete']), [], 'node1 has revision two');
      assert.is(await readFile(path.join(root, 'etc/ssh/ssh_host_ed25519_key'), 'utf8'), firstKey, 'a re-imaged node keeps its SSH host keys');
    });
    cloner('netboot', '--nodes', 'node1', '--set', 'cloner');
    again = await agent(0);
    assert.is(again.code, 0, again.out);
    assert.is(deploys().find((d) => d.node === 'node1')!.lastDeploy!.fetchedBytes, 0, 'an unchanged re-deploy fetches nothing');

    // 3. node2 from a blank disk, slowed to ~80 Mbit/s; its link goes down for 4 s mid-restore.
    sh(['wipefs', '-a', '-q', disks[1]]);
    sh(['partx', '-d', disks[1]]);
    cloner('netboot', '--nodes', 'node2', '--set', 'cloner');
    lab.runIn(lab.serverNs, ['tc', 'qdisc', 'add', 'dev', lab.nodes[1].peer, 'root', 'tbf', 'rate', '80mbit', 'burst', '64kb', 'latency', '100ms']);
    const cutRun = agent(1);
    const until = Date.now() + 120_000;
    let cutAt = 0;
    while (Date.now() < until) {
      const s = deploys().find((d) => d.node === 'node2')!.status;
      if (s?.phase === 'restore' && (s.fetchedBytes ?? 0) > 10 << 20) {
        cutAt = s.fetchedBytes!;
        break;
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.ok(cutAt > 0, 'node2 reached the restore phase');
    lab.runIn(lab.nodes[1].ns, ['ip', 'link', 'set', 'eth0', 'down']);
    await new Promise((r) => setTimeout(r, 4000));
    lab.runIn(lab.nodes[1].ns, ['ip', 'link', 'set', 'eth0', 'up']);
    const cut = await cutRun;
    assert.is(cut.code, 0, cut.out);
    assert.match(cut.out, /retry \d+ of fetching chunks/, 'the agent retried');
    await mounted(1, async (root) => assert.equal(rsyncDifferences(golden, root, excludes), [], 'node2 complete after the cut'));
    assert.is(deploys().find((d) => d.node === 'node2')!.netboot, 'local');
    // What the cut cost: at most the fetches in flight when the link went down (4 requests
    // of 256 chunks, 64 KiB on average: 64 MiB) on top of the revision's own chunks; what
    // was already written is not fetched again.
    const cutFetched = deploys().find((d) => d.node === 'node2')!.lastDeploy!.fetchedBytes!;
    const rev2Bytes = treeBytes(rev2.tree);
    assert.ok(cutFetched <= rev2Bytes + (64 << 20), `after the cut node2 fetched ${cutFetched} bytes; the revision holds ${rev2Bytes}`);

    // 4. A corrupt chunk in the server's pack: the deploy fails in restore, node3 stays in cloner.
    const bad = path.join(dir, 'bad');
    await mkdir(path.join(bad, 'etc'), { recursive: true });
    await writeFile(path.join(bad, 'etc/hostname'), 'bad\n');
    await writeFile(path.join(bad, 'unique.bin'), seededBytes(99, 1 << 20));
    cloner('new-image', '--image', 'bad', '--root', bad, '--disklayout', 'twofs', '--yes');
    const packs = path.join(server.dataDir, 'store/packs');
    const newest = (await readdir(packs, { recursive: true }))
      .map((f) => path.join(packs, String(f)))
      .filter((f) => f.endsWith('.pack'));
    const byTime = await Promise.all(newest.map(async (f) => [f, (await stat(f)).mtimeMs] as const));
    const pack = byTime.sort((a, b) => b[1] - a[1])[0][0];
    const bytes = await readFile(pack);
    for (let at = Math.floor(bytes.length / 3); at < bytes.length - 64; at += 4096) bytes[at] ^= 0xff;
    await writeFile(pack, bytes);
    cloner('nodes', 'set', '--nodes', 'node3', 'cloner_image=bad', 'netboot=cloner');
    const corrupt = await agent(2, 5);
    assert.is.not(corrupt.code, 0, corrupt.out);
    assert.match(corrupt.out, /\[failed\] in restore: .*(corrupt|does not match|damaged)/i, corrupt.out);
    const row = deploys().find((d) => d.node === 'node3')!;
    assert.is(row.netboot, 'cloner', 'a failed deploy leaves the node in cloner');
    assert.is(row.lastDeploy?.ok, false);
    assert.is(row.lastDeploy?.phase, 'restore');
    assert.match(cloner('status', '--nodes', 'node3'), /node3\s+cloner\s+bad\S*\s+failed/);
    const after = Buffer.alloc(bystanderMark.length);
    const handle = await open(bystander, 'r');
    try {
      await handle.read(after, 0, after.length, 0);
    } finally {
      await handle.close();
    }
    assert.ok(after.equals(bystanderMark), 'the disk in no agent\'s --disks was never written');
  }
}

test.run();
