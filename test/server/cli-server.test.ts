/**
 * The CLI against a real cloner-server process on loopback, run as child processes: new-image,
 * update-filesystem (nothing new to send), image-list/-details --json, image-export back to a
 * directory identical under rsync, layouts up and down, a bad token, an unreachable server,
 * and an upload killed midway that leaves no image and is finished by a re-run sending only
 * what the server still lacks.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, spawnSync } from 'node:child_process';
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createServer, type AddressInfo } from 'node:net';
import { file, makeTree, seededBytes, withTempDir } from '../helpers/fixtures.ts';
import { cloner, clonerWithInput } from '../helpers/cli.ts';
import { withServer } from '../helpers/server.ts';
import { FastCdcChunker, type ChunkerParams } from '../../core/chunker/fastcdc.ts';
import { chunkIdOf } from '../../core/store/chunk-id.ts';
import { HttpStore } from '../../core/store/http.ts';

/** One upload batch of the CLI's HttpStore (its default uploadBatchBytes). */
const UPLOAD_BATCH_BYTES = 8 * 1024 * 1024;

/** A loopback port nothing listens on (bound, then released). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Bytes in the server store's pack files. */
async function packBytes(dir: string): Promise<number> {
  let n = 0;
  for (const sub of await readdir(dir).catch(() => [] as string[])) {
    for (const f of await readdir(path.join(dir, sub)).catch(() => [] as string[])) if (f.endsWith('.pack')) n += (await stat(path.join(dir, sub, f)).catch(() => ({ size: 0 }))).size;
  }
  return n;
}

test('new-image, update-filesystem, image-list, image-details, image-export and layouts over HTTP; auth and reachability errors', async () => {
  await withServer(async (server) => {
    await withTempDir(async (dir) => {
      const root = path.join(dir, 'golden');
      await makeTree(root, { 'etc/hostname': file('golden\n'), 'usr/bin/app': file(seededBytes(5, 3_000_000), 0o755), 'usr/share/doc': file('text '.repeat(50_000)) });
      const tokenFile = path.join(server.dataDir, 'admin.token');
      const remote = ['--server', server.url, '--token-file', tokenFile];
      let r = cloner('new-image', ...remote, '--image', 'node', '--root', root, '--yes');
      assert.is(r.code, 0, r.err);
      assert.match(r.out, /image node revision 1: 3 files/);
      r = cloner('new-image', ...remote, '--image', 'node', '--root', root, '--yes');
      assert.is(r.code, 2);
      assert.match(r.err, /already exists\nhint: use update-filesystem/);
      r = cloner('update-filesystem', ...remote, '--image', 'node', '--root', root);
      assert.is(r.code, 0, r.err);
      assert.match(r.out, /revision 2: .*new data stored 0 B/);

      const list = JSON.parse(cloner('image-list', ...remote, '--json').out);
      assert.equal(list.map((i: { name: string; revisions: number }) => [i.name, i.revisions]), [['node', 2]]);
      const details = JSON.parse(cloner('image-details', ...remote, '--image', 'node', '--json').out);
      assert.equal(details.revisions.map((rev: { n: number; parent: number | null }) => [rev.n, rev.parent]), [[1, null], [2, 1]]);

      const out = path.join(dir, 'out');
      await mkdir(out);
      r = cloner('image-export', ...remote, '--image', 'node', '--target', out);
      assert.is(r.code, 0, r.err);
      const diff = spawnSync('rsync', ['-naHAX', '--itemize-changes', `${root}/`, `${out}/`], { encoding: 'utf8' });
      assert.equal(diff.stdout.split('\n').filter(Boolean), []);

      // Layouts: a bad upload is refused locally with the place named, a good one stored.
      const layoutFile = path.join(dir, 'layout.json');
      await writeFile(layoutFile, JSON.stringify({ format: 'cloner-layout/1', disks: [{ id: 'd', table: 'gpt', partitions: [{ id: 'r', size: 'grow', type: 'linux' }] }], filesystems: [{ device: 'r', type: 'ext4', mount: '/' }] }));
      r = cloner('disklayout-upload', ...remote, '--disklayout', 'node', '--file', layoutFile);
      assert.is(r.code, 0, r.err);
      assert.match(r.out, /disk layout node version 1 stored/);
      await writeFile(layoutFile, '{"format":"cloner-layout/1","disks":[]}');
      r = cloner('disklayout-upload', ...remote, '--disklayout', 'node', '--file', layoutFile);
      assert.is(r.code, 2);
      assert.match(r.err, /^cloner: error: disks: must NOT have fewer than 1 items\nhint: /);
      r = cloner('disklayout', ...remote, '--disklayout', 'node');
      assert.is(JSON.parse(r.out).disks[0].id, 'd');

      // Auth and reachability.
      const badToken = path.join(dir, 'bad.token');
      await writeFile(badToken, 'not-the-token-at-all\n');
      r = cloner('image-list', '--server', server.url, '--token-file', badToken);
      assert.is(r.code, 2);
      assert.match(r.err, /^cloner: error: the token is not valid for this server\nhint: .+\n$/);
      r = cloner('image-list', '--server', server.url);
      assert.is(r.code, 2);
      assert.match(r.err, /no token given/);
      const closed = await freePort();
      r = cloner('image-list', '--server', `127.0.0.1:${closed}`, '--token-file', tokenFile);
      assert.is(r.code, 2);
      assert.match(r.err, new RegExp(`^cloner: error: cannot reach the cloner server at http://127\\.0\\.0\\.1:${closed}: ECONNREFUSED\\nhint: check --server`));
      // The server and token from the environment, and from the client config file.
      process.env.CLONER_SERVER = server.url;
      process.env.CLONER_TOKEN = server.adminToken;
      try {
        r = cloner('image-list', '--json');
        assert.is(r.code, 0, r.err);
        assert.is(JSON.parse(r.out)[0].name, 'node');
      } finally {
        delete process.env.CLONER_SERVER;
        delete process.env.CLONER_TOKEN;
      }
      const config = path.join(dir, 'client.json');
      await writeFile(config, JSON.stringify({ server: server.url, tokenFile }));
      process.env.CLONER_CLIENT_CONFIG = config;
      try {
        r = cloner('image-list', '--json');
        assert.is(r.code, 0, r.err);
        assert.is(JSON.parse(r.out)[0].name, 'node');
        await writeFile(config, '{not json');
        r = cloner('image-list');
        assert.is(r.code, 2);
        assert.match(r.err, /cannot read .*client\.json/);
      } finally {
        delete process.env.CLONER_CLIENT_CONFIG;
      }
      r = cloner('image-list', '--server', 'bad host!');
      assert.is(r.code, 2);
      assert.match(r.err, /bad --server/);
    });
  });
});

test('an upload killed midway leaves no image; the re-run sends only what the server lacks', async () => {
  await withServer(async (server) => {
    await withTempDir(async (dir) => {
      const root = path.join(dir, 'big');
      const files: Record<string, ReturnType<typeof file>> = {};
      for (let i = 0; i < 24; i++) files[`data/f${i}`] = file(seededBytes(100 + i, 4 * 1024 * 1024));
      await makeTree(root, files);
      const total = 24 * 4 * 1024 * 1024;
      const args = ['bin/cloner.js', 'new-image', '--server', server.url, '--token-file', path.join(server.dataDir, 'admin.token'), '--image', 'big', '--root', root, '--yes'];
      // The project's Node 24 itself, so the kill reaches the uploading process (the launcher
      // of an older default node would leave its Node 24 child running).
      const child = spawn(process.execPath, args, { stdio: 'ignore' });
      const exited = new Promise((resolve) => child.once('exit', resolve));
      const packs = path.join(server.dataDir, 'store', 'packs');
      const until = Date.now() + 60_000;
      // Killed once a fifth of the data is stored on the server.
      while ((await packBytes(packs)) < total / 5 && Date.now() < until && child.exitCode === null) await new Promise((res) => setTimeout(res, 20));
      child.kill('SIGKILL');
      await exited;
      assert.ok((await packBytes(packs)) >= total / 5, 'not enough was uploaded before the kill');
      const listed = JSON.parse(cloner('image-list', '--server', server.url, '--token-file', path.join(server.dataDir, 'admin.token'), '--json').out);
      assert.equal(listed, [], 'a killed upload left an image');
      // What the server lacks now, found independently of the CLI: the files cut with the
      // server's chunker parameters, their ids asked of the server.
      const http = new HttpStore({ url: server.url, token: server.adminToken });
      const { chunker } = await http.requestJson<{ chunker: ChunkerParams }>('/v1/config');
      const chunks = new Map<string, number>();
      for (const f of Object.values(files)) {
        const data = f.kind === 'file' ? Buffer.from(f.content) : Buffer.alloc(0);
        const cdc = new FastCdcChunker(chunker);
        for (let pos = 0; pos < data.length; ) {
          let cut = cdc.nextSplitPoint(data.subarray(pos));
          if (cut < 0) cut = data.length - pos;
          chunks.set(chunkIdOf(data.subarray(pos, pos + cut)), cut);
          pos += cut;
        }
      }
      const ids = [...chunks.keys()];
      const present = await http.hasMany(ids);
      const missingBytes = ids.reduce((sum, id, i) => sum + (present[i] ? 0 : chunks.get(id)! + 41), 0); // + its frame header
      assert.ok(missingBytes < total * 0.85, `the server has too little of the tree for this test (${missingBytes} of ${total} bytes missing)`);

      process.env.CLONER_PROGRESS_INTERVAL_MS = '100';
      let r;
      try {
        r = cloner(...args.slice(1));
      } finally {
        delete process.env.CLONER_PROGRESS_INTERVAL_MS;
      }
      assert.is(r.code, 0, r.err);
      // Plain progress lines (not a terminal): files, bytes of the total, rate, ETA, and the share the server already had.
      assert.match(r.err, /^capture: \d+ of \d+ files, [\d.]+ [KMG]?i?B of 96\.0 MiB \(\d+%\), [\d.]+ [KMG]?i?B\/s, ETA \d+s, \d+ unchanged, [\d.]+ [KMG]?i?B sent, [1-9]\d*% already on the server$/m);
      const sent = /new data stored ([\d.]+) (MiB|KiB|B)/.exec(r.out)!;
      const sentBytes = Number(sent[1]) * (sent[2] === 'MiB' ? 1024 ** 2 : sent[2] === 'KiB' ? 1024 : 1);
      // Only what was missing crosses the wire (incompressible data: stored as is), plus at
      // most one batch of slack (the directory manifests, a batch the killed upload had
      // in flight that the server stored after it was counted missing, rounding of the
      // printed size).
      assert.ok(sentBytes <= missingBytes + UPLOAD_BATCH_BYTES, `the re-run sent ${sent[0]} but only ${(missingBytes / 1024 ** 2).toFixed(1)} MiB were missing`);
      assert.ok(sentBytes >= missingBytes - UPLOAD_BATCH_BYTES, `the re-run sent ${sent[0]}, less than the ${(missingBytes / 1024 ** 2).toFixed(1)} MiB missing`);
    });
  });
});

test('options: stored with the image, reused, conflicts settled by prompt, server and commandline; update-options, config, dry runs', async () => {
  await withServer(async (server) => {
    await withTempDir(async (dir) => {
      const root = path.join(dir, 'golden');
      await makeTree(root, { 'etc/hostname': file('golden\n'), 'skip/big': file(seededBytes(9, 500_000)), 'other/x': file('x') });
      const remote = ['--server', server.url, '--token-file', path.join(server.dataDir, 'admin.token')];
      const excludes = async () => JSON.parse(cloner('config', ...remote, '--image', 'node', '--json').out).image.options.excludePaths;

      // A dry run scans and reports, and sends nothing.
      const packs = path.join(server.dataDir, 'store', 'packs');
      let r = cloner('new-image', ...remote, '--image', 'node', '--root', root, '--dry-run');
      assert.is(r.code, 0, r.err);
      assert.match(r.out, /dry run: image node would have 3 files, .*; \d+ new chunks, .* to send \(0 B already on the server\); nothing was sent/);
      assert.equal(JSON.parse(cloner('image-list', ...remote, '--json').out), []);
      assert.is(await packBytes(packs), 0);

      r = cloner('new-image', ...remote, '--image', 'node', '--root', root, '--exclude-paths', '/skip', '--yes');
      assert.is(r.code, 0, r.err);
      assert.match(r.out, /revision 1: 2 files/);
      assert.equal(await excludes(), ['/skip']);
      r = cloner('update-filesystem', ...remote, '--image', 'node', '--root', root);
      assert.match(r.out, /revision 2: 2 files/, 'the stored excludes apply when none is given');

      r = cloner('update-filesystem', ...remote, '--image', 'node', '--root', root, '--exclude-paths', '/other', '--update-conflict', 'server');
      assert.match(r.out, /revision 3: 2 files/);
      assert.equal(await excludes(), ['/skip']);
      r = clonerWithInput('n\n', 'update-filesystem', ...remote, '--image', 'node', '--root', root, '--exclude-paths', '/other');
      assert.match(r.err, /--exclude-paths: the image has "\/skip", the command line "\/other"\. Use the command line's\? \[y\/N\] n/);
      assert.equal(await excludes(), ['/skip']);
      r = clonerWithInput('y\n', 'update-filesystem', ...remote, '--image', 'node', '--root', root, '--exclude-paths', '/other');
      assert.is(r.code, 0, r.err);
      assert.match(r.out, /revision 5: 2 files/);
      assert.equal(await excludes(), ['/other']);
      r = cloner('update-filesystem', ...remote, '--image', 'node', '--root', root, '--exclude-paths', '/nothing', '--update-conflict', 'commandline');
      assert.match(r.out, /revision 6: 3 files/);
      assert.equal(await excludes(), ['/nothing']);
      r = cloner('update-filesystem', ...remote, '--image', 'node', '--root', root, '--exclude-paths', '/skip');
      assert.is(r.code, 2, 'a prompt without an answer fails');
      assert.match(r.err, /standard input has no answer\nhint: .*--update-conflict/);
      r = cloner('update-filesystem', ...remote, '--image', 'node', '--root', root, '--update-conflict', 'sometimes');
      assert.is(r.code, 2);
      assert.match(r.err, /bad --update-conflict sometimes/);

      r = cloner('update-options', ...remote, '--image', 'node', '--exclude-paths', '/skip,/other');
      assert.is(r.code, 0, r.err);
      assert.equal(await excludes(), ['/skip', '/other']);
      const details = JSON.parse(cloner('image-details', ...remote, '--image', 'node', '--json').out);
      assert.is(details.revisions.at(-1).tree, details.revisions.at(-2).tree, 'update-options keeps the data');
      r = cloner('config', ...remote, '--image', 'node');
      assert.match(r.out, /image node \(revision 7\)\n  disk layout: -\n  exclude paths: \/skip, \/other\n/);
      r = cloner('image-rollback', ...remote, '--image', 'node', '--revision', '1');
      assert.is(r.code, 0, r.err);
      assert.match(r.out, /image node revision 8 = revision 1/);
      assert.equal(await excludes(), ['/skip']);
      const rolled = JSON.parse(cloner('image-details', ...remote, '--image', 'node', '--json').out);
      assert.is(rolled.revisions[7].tree, rolled.revisions[0].tree);
      assert.is(cloner('image-rollback', ...remote, '--image', 'node', '--revision', '99').code, 2);
    });
  });
});

test('scripts and BIOS settings with an image; verify, image-delete and gc on the server; a read token cannot write', async () => {
  await withServer(async (server) => {
    await withTempDir(async (dir) => {
      const root = path.join(dir, 'golden');
      await makeTree(root, { 'etc/hostname': file('golden\n'), 'opt/blob': file(seededBytes(11, 2_000_000)) });
      const remote = ['--server', server.url, '--token-file', path.join(server.dataDir, 'admin.token')];
      assert.is(cloner('new-image', ...remote, '--image', 'node', '--root', root, '--yes').code, 0);
      const post = path.join(dir, 'post.sh');
      await writeFile(post, '#!/bin/sh\necho configured > /etc/motd\n');
      let r = cloner('script', ...remote, '--image', 'node', '--type', 'post', '--set', post);
      assert.is(r.code, 0, r.err);
      assert.match(r.out, /post-script of image node: version 1 stored/);
      r = cloner('script', ...remote, '--image', 'node', '--type', 'post', '--get');
      assert.is(r.out, '#!/bin/sh\necho configured > /etc/motd\n');
      const saved = path.join(dir, 'saved.sh');
      r = cloner('script', ...remote, '--image', 'node', '--type', 'post', '--get', '--output', saved);
      assert.is(await readFile(saved, 'utf8'), '#!/bin/sh\necho configured > /etc/motd\n');
      assert.is((await stat(saved)).mode & 0o777, 0o600);
      r = cloner('script', ...remote, '--image', 'node', '--type', 'pre', '--get');
      assert.is(r.code, 2);
      assert.match(r.err, /image node has no pre-script\nhint: upload one with/);
      r = cloner('script', ...remote, '--image', 'node', '--type', 'mid', '--get');
      assert.is(r.code, 2);
      const huge = path.join(dir, 'huge.sh');
      await writeFile(huge, Buffer.alloc(1024 * 1024 + 1, 65));
      r = cloner('script', ...remote, '--image', 'node', '--type', 'pre', '--set', huge);
      assert.is(r.code, 2);
      assert.match(r.err, /over 1048576 for a script/);

      const bios = path.join(dir, 'bios.ini');
      await writeFile(bios, '[BIOS::Processor]\nIntel(R) Hyper-Threading Tech=Disabled\n');
      r = cloner('biossettings-upload', ...remote, '--image', 'node', '--biossettings', 's2600', '--file', bios);
      assert.is(r.code, 0, r.err);
      assert.match(r.out, /BIOS settings s2600 of image node: version 1 stored/);
      assert.is(cloner('biossettings', ...remote, '--image', 'node', '--biossettings', 's2600').out, '[BIOS::Processor]\nIntel(R) Hyper-Threading Tech=Disabled\n');
      r = cloner('biossettings-upload', ...remote, '--image', 'node', '--biossettings', '../x', '--file', bios);
      assert.is(r.code, 2);
      r = cloner('biossettings-upload', ...remote, '--image', 'nosuch', '--biossettings', 's2600', '--file', bios);
      assert.is(r.code, 2);
      assert.match(r.err, /no image named nosuch/);
      r = cloner('script', '--server', server.url, '--token-file', path.join(server.dataDir, 'read.token'), '--image', 'node', '--type', 'pre', '--set', post);
      assert.is(r.code, 2);
      assert.match(r.err, /this token may only read\nhint: writes need the admin token/);

      r = cloner('image-details', ...remote, '--image', 'node');
      assert.match(r.out, /  scripts: post\n  BIOS settings: s2600\n/);
      r = cloner('verify', ...remote);
      assert.is(r.code, 0, r.err);
      assert.match(r.out, /checked \d+ chunks: 0 missing, 0 corrupt/);
      assert.is(cloner('image-delete', ...remote, '--image', 'node', '--yes').code, 0);
      assert.is(cloner('biossettings', ...remote, '--image', 'node', '--biossettings', 's2600').code, 2, 'its BIOS settings went with the image');
      // The image's chunks were committed, so the upload grace no longer holds them: the
      // next gc frees them at once (the grace is the default 30 minutes here).
      r = cloner('gc', ...remote, '--json');
      assert.is(r.code, 0, r.err);
      const gc = JSON.parse(r.out);
      assert.ok(gc.deletedChunks > 0 && gc.freedBytes > 1_000_000, r.out);
    });
  });
});

test('8 concurrent CLI uploads (6 new images, 2 updates of one image) all succeed; the store verifies', async () => {
  await withServer(async (server) => {
    await withTempDir(async (dir) => {
      const remote = ['--server', server.url, '--token-file', path.join(server.dataDir, 'admin.token')];
      const roots: string[] = [];
      for (let i = 0; i < 7; i++) {
        const root = path.join(dir, `tree${i}`);
        // Overlapping content: every tree shares `common`, each has its own `own`.
        await makeTree(root, { common: file(seededBytes(1, 1_500_000)), own: file(seededBytes(50 + i, 700_000)) });
        roots.push(root);
      }
      assert.is(cloner('new-image', ...remote, '--image', 'shared', '--root', roots[6], '--yes').code, 0);
      const run = (args: string[]) =>
        new Promise<{ code: number | null; err: string }>((resolve) => {
          const child = spawn(process.execPath, ['bin/cloner.js', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
          let err = '';
          child.stderr!.on('data', (d) => (err += d));
          child.once('exit', (code) => resolve({ code, err }));
        });
      const results = await Promise.all([
        ...roots.slice(0, 6).map((root, i) => run(['new-image', ...remote, '--image', `img${i}`, '--root', root, '--yes'])),
        run(['update-filesystem', ...remote, '--image', 'shared', '--root', roots[0]]),
        run(['update-filesystem', ...remote, '--image', 'shared', '--root', roots[1]]),
      ]);
      for (const r of results) assert.is(r.code, 0, r.err);
      const images = JSON.parse(cloner('image-list', ...remote, '--json').out) as Array<{ name: string; revisions: number }>;
      assert.equal(images.map((i) => [i.name, i.revisions]).sort(), [['img0', 1], ['img1', 1], ['img2', 1], ['img3', 1], ['img4', 1], ['img5', 1], ['shared', 3]]);
      // Stored bytes only each image uses: its own 700 KB file (random, so stored as is) and its
      // manifests; img0 and img1 share theirs with revisions 2 and 3 of "shared", so they have none.
      const rows = JSON.parse(cloner('image-list', ...remote, '--json').out) as Array<{ name: string; uniqueStoredBytes: number; storedBytes: number }>;
      for (const row of rows) {
        if (row.name === 'img0' || row.name === 'img1') assert.is(row.uniqueStoredBytes, 0, row.name);
        else assert.ok(row.uniqueStoredBytes >= 700_000 && row.uniqueStoredBytes < 720_000, `${row.name}: ${row.uniqueStoredBytes}`);
        assert.ok(row.storedBytes >= 2_200_000, `${row.name}: ${row.storedBytes}`);
      }
      const verify = cloner('verify', ...remote, '--json');
      assert.is(verify.code, 0, verify.out);
      assert.ok(JSON.parse(verify.out).ok);
    });
  });
});

test.run();
