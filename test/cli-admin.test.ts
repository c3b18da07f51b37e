/**
 * What the admin meant, and nothing dangerous by default (issue 15), through the real CLI and
 * agent as child processes: image-delete and nodes remove say what they remove and ask (or
 * take --yes); disklayout/disklayout-apply take --layout-version (the global --version is the
 * program's); image-export creates its target and refuses a non-empty one; output piped into
 * a reader that goes away ends quietly; nodes --help lists actions and keys; status --watch
 * waits for nodes that have not reported, until --timeout; the agent's --dry-run prints every
 * phase and does nothing, and its --force refusal comes before the image's pre-script runs.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { cloner, clonerWithInput } from './helpers/cli.ts';
import { file, makeTree, withTempDir } from './helpers/fixtures.ts';
import { withServer } from './helpers/server.ts';

const LAYOUT = {
  format: 'cloner-layout/1',
  disks: [{ id: 'sys', match: { transport: 'nvme', rotational: false }, table: 'gpt', partitions: [{ id: 'root', size: 'grow', minSize: '1G', type: 'linux' }] }],
  raids: [],
  volumeGroups: [],
  filesystems: [{ device: 'root', type: 'ext4', label: 'root', mount: '/' }],
};

async function storeWithImage(dir: string): Promise<string> {
  const store = path.join(dir, 'store');
  const root = path.join(dir, 'root');
  await makeTree(root, { 'etc/hostname': file('n1\n'), 'usr/bin/tool': file('x'.repeat(5000)) });
  const r = cloner('new-image', '--store', store, '--init', '--image', 'node', '--root', root, '--yes');
  assert.is(r.code, 0, r.err);
  return store;
}

test('image-delete and nodes remove say what they remove and ask; --yes does not', async () => {
  await withTempDir(async (dir) => {
    const store = await storeWithImage(dir);
    let r = clonerWithInput('n\n', 'image-delete', '--store', store, '--image', 'node');
    assert.is(r.code, 0, r.err);
    assert.match(r.out, /image node: 1 revision\(s\), latest 1 \(\d+ files/);
    assert.match(r.err, /Delete image node\? \[y\/N\]/);
    assert.match(r.out, /nothing deleted/);
    r = cloner('image-delete', '--store', store, '--image', 'node');
    assert.is(r.code, 2);
    assert.match(r.err, /--yes/);
    assert.is(JSON.parse(cloner('image-list', '--store', store, '--json').out).length, 1);
    r = clonerWithInput('y\n', 'image-delete', '--store', store, '--image', 'node');
    assert.is(r.code, 0, r.err);
    assert.match(r.out, /deleted image node/);
    assert.equal(JSON.parse(cloner('image-list', '--store', store, '--json').out), []);

    for (const n of ['n1', 'n2']) assert.is(cloner('nodes', 'add', '--store', store, n).code, 0);
    r = cloner('nodes', 'remove', '--store', store, '--nodes', 'n[1-2]');
    assert.is(r.code, 2);
    assert.match(r.out, /removes 2 node\(s\) with their deploy tokens and SSH host keys: n1, n2/);
    r = clonerWithInput('no\n', 'nodes', 'remove', '--store', store, '--nodes', 'n1');
    assert.match(r.out, /nothing removed/);
    r = cloner('nodes', 'remove', '--store', store, '--nodes', 'n1', '--yes');
    assert.is(r.code, 0, r.err);
    assert.equal(JSON.parse(cloner('nodes', 'list', '--store', store, '--json').out).map((n: { name: string }) => n.name), ['n2']);
  });
});

test('--layout-version, image-export --target creation, EPIPE, nodes --help', async () => {
  await withTempDir(async (dir) => {
    const store = await storeWithImage(dir);
    const layoutFile = path.join(dir, 'layout.json');
    await writeFile(layoutFile, JSON.stringify(LAYOUT));
    for (let i = 0; i < 2; i++) assert.is(cloner('disklayout-upload', '--store', store, '--disklayout', 'L', '--file', layoutFile).code, 0);
    let r = cloner('disklayout', '--store', store, '--disklayout', 'L', '--layout-version', '1');
    assert.is(r.code, 0, r.err);
    assert.is(JSON.parse(r.out).format, 'cloner-layout/1');
    r = cloner('disklayout', '--help');
    assert.match(r.out, /--layout-version <n>/);
    r = cloner('disklayout', '--store', store, '--disklayout', 'L', '--layout-version', 'x');
    assert.is(r.code, 2);
    assert.match(r.err, /bad --layout-version x/);
    assert.match(cloner('disklayout-apply', '--help').out, /--layout-version <n>/);

    const target = path.join(dir, 'new', 'deeper');
    r = cloner('image-export', '--store', store, '--image', 'node', '--target', target);
    assert.is(r.code, 0, r.err);
    assert.ok(existsSync(path.join(target, 'etc/hostname')));
    r = cloner('image-export', '--store', store, '--image', 'node', '--target', target);
    assert.is(r.code, 2);
    assert.match(r.err, /is not empty/);
    const empty = path.join(dir, 'empty');
    await mkdir(empty);
    assert.is(cloner('image-export', '--store', store, '--image', 'node', '--target', empty).code, 0);

    // The reader is gone before cloner writes: EPIPE, which ends the output quietly.
    for (const args of [['image-details', '--store', store, '--image', 'node'], ['config', '--store', store, '--image', 'node'], ['nodes', '--help']]) {
      const p = spawnSync('bash', ['-c', `node bin/cloner.js ${args.join(' ')} | true; echo "status \${PIPESTATUS[0]}" >&2`], { encoding: 'utf8' });
      assert.not.match(p.stderr, /EPIPE|\n\s+at /, p.stderr);
      assert.match(p.stderr, /status 0/, `${args.join(' ')}: ${p.stderr}`);
    }

    r = cloner('nodes', '--help');
    for (const want of [/Actions:/, /remove --nodes SEL/, /import --file CSV/, /Keys:/, /cloner_image/, /bmc\.address/, /IFACE\.ip/, /@group/]) assert.match(r.out, want);
  });
});

test('status --watch waits for nodes that have not reported, until --timeout', async () => {
  await withTempDir(async (dir) => {
    const store = await storeWithImage(dir);
    assert.is(cloner('nodes', 'add', '--store', store, 'n1', 'cloner_image=node').code, 0);
    const started = Date.now();
    const r = cloner('status', '--store', store, '--watch', '--interval', '0.2', '--timeout', '1');
    assert.is(r.code, 2, r.err);
    assert.match(r.err, /--timeout 1 s passed with 1 node\(s\) not done or failed: n1/);
    assert.ok(Date.now() - started >= 1000);
    assert.match(cloner('status', '--store', store, '--watch', '--timeout', '0').err, /--timeout must be a positive/);
  });
});

test('status --watch outlives a server restart: the outage is said once, the watch goes on until --timeout', async () => {
  await withServer(async (server) => {
    const remote = ['--server', server.url, '--token-file', path.join(server.dataDir, 'admin.token')];
    assert.is(cloner('nodes', 'add', 'n1', ...remote).code, 0);
    const watch = spawn('node', ['bin/cloner.js', 'status', '--watch', '--interval', '0.3', '--timeout', '6', ...remote], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    watch.stdout.on('data', (d) => (out += d));
    watch.stderr.on('data', (d) => (err += d));
    const code = new Promise<number | null>((resolve) => watch.once('close', resolve));
    try {
      for (let i = 0; i < 100 && !/n1\s/.test(out); i++) await new Promise((r) => setTimeout(r, 100));
      await server.stop();
      await new Promise((r) => setTimeout(r, 1500));
      await server.restart();
      assert.is(await code, 2, err);
      assert.is(err.match(/the server does not answer \(.*ECONNREFUSED.*\); still watching/g)?.length, 1, err);
      assert.match(err, /the server answers again after \d+ s/);
      assert.match(err, /--timeout 6 s passed with 1 node\(s\) not done or failed: n1/);
    } finally {
      watch.kill();
    }
  });
});

test('agent: deploy --dry-run prints every phase and does nothing; the --force refusal comes before the pre-script', async () => {
  await withServer(async (server) => {
    await withTempDir(async (dir) => {
      const remote = ['--server', server.url, '--token-file', path.join(server.dataDir, 'admin.token')];
      const root = path.join(dir, 'root');
      await makeTree(root, { 'etc/hostname': file('golden\n'), 'etc/motd': file('hi\n') });
      const layoutFile = path.join(dir, 'layout.json');
      await writeFile(layoutFile, JSON.stringify(LAYOUT));
      const marker = path.join(dir, 'pre-script-ran');
      await writeFile(path.join(dir, 'pre.sh'), `#!/bin/sh\ntouch ${marker}\n`);
      for (const args of [
        ['new-image', '--image', 'plain', '--root', root, '--yes'],
        ['disklayout-upload', '--disklayout', 'L', '--file', layoutFile],
        ['new-image', '--image', 'laid', '--disklayout', 'L', '--root', root, '--yes'],
        ['script', '--image', 'laid', '--type', 'pre', '--set', path.join(dir, 'pre.sh')],
        ['nodes', 'add', 'n1', 'cloner_image=plain', 'hostname=n1', 'eth0.mac=52:54:00:00:00:01', 'eth0.ip=198.18.1.11/24'],
        ['nodes', 'add', 'n2', 'cloner_image=laid'],
      ]) {
        const r = cloner(...args, ...remote);
        assert.is(r.code, 0, `${args.join(' ')}: ${r.err}`);
      }
      const agent = (...args: string[]) => spawnSync('node', ['bin/cloner-agent.js', 'deploy', '--server', server.url, '--token', server.adminToken, '--retry-deadline-s', '5', ...args], { encoding: 'utf8' });
      const target = path.join(dir, 'target');
      await mkdir(target);
      let r = agent('--node', 'n1', '--target', target, '--dry-run');
      assert.is(r.status, 0, r.stderr);
      for (const phase of ['identify', 'pre-scripts', 'layout', 'restore', 'identity', 'post-scripts', 'bootloader', 'bios', 'report']) assert.match(r.stdout, new RegExp(`\\(dry run\\) \\[${phase}\\]`));
      assert.match(r.stdout, /interface eth0 52:54:00:00:00:01 198\.18\.1\.11\/24/);
      assert.match(r.stdout, /would not reboot/);
      assert.equal(await readdir(target), []);
      const status = JSON.parse(cloner('status', ...remote, '--json').out).nodes.find((row: { node: string }) => row.node === 'n1');
      assert.is(status.status, null, 'a dry run reports nothing');

      r = agent('--node', 'n2', '--target', target, '--disks', '/dev/null-disk');
      assert.is(r.status, 2, r.stdout + r.stderr);
      assert.match(r.stderr, /not the cloner boot environment/);
      assert.match(r.stderr, /hint: add --force if you mean it; --dry-run prints every step first/);
      assert.not.ok(existsSync(marker), 'the pre-script ran before the refusal');
    });
  });
});

test.run();
