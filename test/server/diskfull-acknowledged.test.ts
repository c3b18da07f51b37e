/**
 * sec-03 and sec-07, a full disk: a real server whose --data is a small loop-mounted ext4
 * (96 MiB). Images of incompressible data are uploaded with the CLI until one is refused:
 * the refusal is one line naming the store and the space needed (HTTP 507 STORE_FULL), and
 * every image acknowledged before it verifies clean and restores byte for byte. Deleting
 * images and running gc through the same server (no restart) makes room, and the refused
 * upload then goes through. Then the disk is filled to the last block from outside: the
 * server still starts (opening in its reserve file), refuses uploads with 507, and, stopped,
 * `cloner gc --store` frees space on the full disk. Root; loop devices.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { cloner } from '../helpers/cli.ts';
import { seededBytes, withTempDir } from '../helpers/fixtures.ts';
import { loopUnavailable, sh } from '../helpers/loop.ts';
import { withServer } from '../helpers/server.ts';
import { skipUnless } from '../helpers/skip.ts';

const MiB = 1024 * 1024;
const free = (dir: string) => Number(sh(['df', '--output=avail', '-B1', dir]).split('\n')[1]);

/** A small ext4 on a loop device mounted at DIR/mnt for `work`; always unmounted and detached. */
async function withSmallFs<T>(dir: string, size: string, work: (mnt: string) => Promise<T>): Promise<T> {
  const img = path.join(dir, 'fs.img');
  sh(['truncate', '-s', size, img]);
  sh(['mkfs.ext4', '-q', '-F', '-m', '0', img]);
  const loop = sh(['losetup', '-f', '--show', img]).trim();
  const mnt = path.join(dir, 'mnt');
  try {
    await mkdir(mnt);
    sh(['mount', loop, mnt]);
    return await work(mnt);
  } finally {
    spawnSync('umount', [mnt]);
    spawnSync('losetup', ['-d', loop]);
  }
}

/** DIR/trees/NAME: four files of 1 MiB of seeded random bytes, different per seed. */
async function makeTree(dir: string, name: string, seed: number): Promise<string> {
  const root = path.join(dir, 'trees', name);
  await mkdir(root, { recursive: true });
  for (let i = 0; i < 4; i++) await writeFile(path.join(root, `f${i}.bin`), seededBytes(seed * 10 + i, MiB));
  return root;
}

/** Restores `image` and checks every file against `tree`. */
async function assertRestores(remote: string[], dir: string, image: string, tree: string): Promise<void> {
  const out = path.join(dir, 'out', image);
  await rm(out, { recursive: true, force: true });
  await mkdir(out, { recursive: true });
  const r = cloner('image-export', '--image', image, '--target', out, ...remote);
  assert.is(r.code, 0, `image-export ${image}: ${r.err}`);
  for (const f of await readdir(tree)) assert.ok((await readFile(path.join(out, f))).equals(await readFile(path.join(tree, f))), `${image}/${f}`);
  await rm(out, { recursive: true });
}

skipUnless(test, loopUnavailable(), 'diskfull-acknowledged: uploads until the disk is full lose nothing; the server recovers without a restart; a full disk still starts and gc frees it', async () => {
  await withTempDir(async (dir) => {
    await withSmallFs(dir, '96M', async (mnt) => {
      const dataDir = path.join(mnt, 'data');
      const acknowledged: Array<{ image: string; tree: string }> = [];
      let refused: { image: string; tree: string } | null = null;
      let ackedTotal = 0;
      await withServer(
        async (server) => {
          const remote = ['--server', server.url, '--token-file', path.join(dataDir, 'admin.token')];
          for (let n = 1; n <= 40 && !refused; n++) {
            const image = `img${n}`;
            const tree = await makeTree(dir, image, n);
            const r = cloner('new-image', '--image', image, '--root', tree, '--yes', ...remote);
            if (r.code === 0) {
              acknowledged.push({ image, tree });
              ackedTotal++;
            }
            else {
              refused = { image, tree };
              const lines = r.err.trim().split('\n');
              assert.match(lines[0], new RegExp(`^cloner: error: no space for the store in ${dataDir}/store: [0-9.]+ MiB free, [0-9.]+ MiB needed`), r.err);
              assert.match(lines[1], /^hint: free space on that filesystem/);
              assert.is(lines.length, 2, 'one line and a hint, no stack trace');
            }
          }
          assert.ok(refused, 'the disk filled up');
          assert.ok(acknowledged.length >= 8, `${acknowledged.length} images acknowledged`);
          const verify = JSON.parse(cloner('verify', '--json', ...remote).out);
          assert.equal([verify.ok, verify.missing, verify.corrupt, verify.incomplete, verify.damagedPacks], [true, [], [], [], []]);
          await assertRestores(remote, dir, acknowledged.at(-1)!.image, acknowledged.at(-1)!.tree);

          // Room again without a restart: delete three images, gc, and the refused upload goes through.
          for (const a of acknowledged.splice(0, 3)) assert.is(cloner('image-delete', '--image', a.image, '--yes', ...remote).code, 0);
          // gc frees the deleted images at once (their chunks were committed, so the upload grace
          // no longer holds them); loop a little in case a refused upload's fresh chunks are still held.
          let freed = 0;
          for (let t0 = Date.now(); freed < 10 * MiB && Date.now() - t0 < 15_000; ) {
            await new Promise((r) => setTimeout(r, 1000));
            const gc = cloner('gc', '--json', ...remote);
            assert.is(gc.code, 0, gc.err);
            freed += JSON.parse(gc.out).freedBytes;
          }
          assert.ok(freed >= 10 * MiB, `gc freed ${freed} bytes`);
          const retry = cloner('new-image', '--image', refused!.image, '--root', refused!.tree, '--yes', ...remote);
          assert.is(retry.code, 0, retry.err);
          acknowledged.push(refused!);
          assert.is(JSON.parse(cloner('verify', '--json', ...remote).out).ok, true);
          for (const a of acknowledged) await assertRestores(remote, dir, a.image, a.tree);
          // Delete one more image now (its space is freed by the gc --store below).
          assert.is(cloner('image-delete', '--image', acknowledged.shift()!.image, '--yes', ...remote).code, 0);
        },
        ['--upload-grace-s', '1'],
        { dataDir },
      );

      // sec-07: the disk filled to the last block by something else, server stopped.
      spawnSync('fallocate', ['-l', String(free(mnt)), path.join(mnt, 'filler')]);
      spawnSync('sync');
      assert.ok(free(mnt) < MiB, `${free(mnt)} bytes free`);
      await withServer(
        async (server) => {
          const remote = ['--server', server.url, '--token-file', path.join(dataDir, 'admin.token')];
          assert.is((await fetch(`${server.url}/v1/health`)).status, 200, 'the server starts on a full disk');
          const tree = await makeTree(dir, 'late', 99);
          const r = cloner('new-image', '--image', 'late', '--root', tree, '--yes', ...remote);
          assert.is(r.code, 2);
          assert.match(r.err, /no space for the store in/);
          await assertRestores(remote, dir, acknowledged[0].image, acknowledged[0].tree);
        },
        [],
        { dataDir },
      );
      const before = free(mnt);
      const gc = cloner('gc', '--store', path.join(dataDir, 'store'), '--json');
      assert.is(gc.code, 0, `gc --store on a full disk: ${gc.err}`);
      assert.ok(JSON.parse(gc.out).freedBytes >= 3 * MiB, gc.out);
      assert.ok(free(mnt) > before + 3 * MiB, `free ${before} -> ${free(mnt)}`);
      const verify = JSON.parse(cloner('verify', '--json', '--store', path.join(dataDir, 'store')).out);
      assert.is(verify.ok, true);
      console.log(`# ${ackedTotal} images acknowledged before the disk was full (${acknowledged.length} kept at the end) on a 96 MiB disk, none lost; gc --store on the full disk freed ${(JSON.parse(gc.out).freedBytes / MiB).toFixed(1)} MiB`);
    });
  });
});

test.run();
