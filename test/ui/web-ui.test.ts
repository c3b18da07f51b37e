/**
 * The web interface in a real browser (Debian's chromium through playwright-core) against
 * a real cloner-server process with a real store: images captured with the CLI, nodes
 * made through the API. An admin logs in, sees the images (layout drawn, scripts, BIOS
 * settings), rolls one back and deletes another, assigns an image to node[01-03] and
 * switches their netboot, watches deploys move through their phases on the deploys page
 * without a reload (the status and result are posted to the real deploy routes with the
 * admin token, as an agent would; web-ui-agent.test.ts watches a real agent's deploy of a
 * loop disk on the same page), sees a failed deploy's phase and error, turns a discovered MAC
 * into a node, and logs out. Also: the overview's last verify, the golden kernel column,
 * the diff of two revisions, adding node[01-03] to a group, a multicast session shown live
 * on the deploys page (and in `cloner status`), and each node's deploy history. A read token sees no action and its requests are refused;
 * a request without the CSRF token and a cross-site form post change nothing.
 * Screenshots of each page go to SHOTS_DIR (outside the repository).
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createServer, type Server } from 'node:http';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import type { BrowserContext, Page } from 'playwright-core';
import { cloner } from '../helpers/cli.ts';
import { file, makeTree, seededBytes, withTempDir } from '../helpers/fixtures.ts';
import { withServer, type TestServer } from '../helpers/server.ts';
import { chromiumBlocker, screenshot, SHOTS_DIR, withBrowser } from '../helpers/browser.ts';
import { skipUnless } from '../helpers/skip.ts';
import { HttpStore } from '../../core/store/http.ts';
import { canonicalChunks, encodeLacking } from '../../core/multicast/summary.ts';

const BMC_PASSWORD = 'Sup3r-Secret-BMC-pw';
const LAYOUT = {
  format: 'cloner-layout/1',
  disks: [
    { id: 'sysa', match: { transport: 'nvme' }, table: 'gpt', captured: { name: 'nvme0n1', model: 'NVMe A', size: 256 * 1024 ** 3 }, partitions: [{ id: 'esp', size: '512M', type: 'esp' }, { id: 'ra', size: 'grow', type: 'raid' }] },
    { id: 'sysb', match: { transport: 'nvme' }, table: 'gpt', partitions: [{ id: 'bootb', size: '512M', type: 'linux' }, { id: 'rb', size: 'grow', type: 'raid', minSize: '100G' }] },
  ],
  raids: [{ id: 'md0', level: 1, members: ['ra', 'rb'] }],
  volumeGroups: [{ name: 'vg0', pvs: ['md0'], lvs: [{ name: 'root', size: '40G' }, { name: 'swap', size: '8G' }, { name: 'home', size: 'grow' }] }],
  filesystems: [
    { device: 'esp', type: 'vfat', mount: '/boot/efi' },
    { device: 'bootb', type: 'ext4', mount: '/srv' },
    { device: 'vg0/root', type: 'ext4', label: 'root', mount: '/' },
    { device: 'vg0/swap', type: 'swap' },
    { device: 'vg0/home', type: 'xfs', mount: '/home' },
  ],
};

interface Ctx {
  server: TestServer;
  context: BrowserContext;
  api: (method: string, route: string, body?: unknown) => Promise<{ status: number; json: any }>;
}

const ui = suite('web interface');
/** The server and browser the tests share, up from before() until after(). */
const state: { ctx?: Ctx; release?: () => void; done?: Promise<unknown> } = {};

ui.before(async () => {
  if (chromiumBlocker()) return;
  const ready = new Promise<Ctx>((resolve, reject) => {
    state.done = withServer(async (server) => {
      await withTempDir(async (dir) => {
        await setUp(server, dir);
        await withBrowser(async (context) => {
          const api = async (method: string, route: string, body?: unknown) => {
            const r = await fetch(`${server.url}${route}`, { method, headers: { authorization: `Bearer ${server.adminToken}`, ...(body ? { 'content-type': 'application/json' } : {}) }, body: body ? JSON.stringify(body) : undefined });
            return { status: r.status, json: await r.json() };
          };
          resolve({ server, context, api });
          await new Promise<void>((release) => (state.release = release));
        });
      });
    }).catch(reject);
  });
  state.ctx = await ready;
});

ui.after(async () => {
  state.release?.();
  await state.done;
  if (state.ctx) console.log(`screenshots: ${SHOTS_DIR}`);
});

/** Images golden (2 revisions, a layout with RAID and LVM, a post-script, BIOS settings) and scratch; nodes node01-05; one discovered MAC. */
async function setUp(server: TestServer, dir: string): Promise<void> {
  const remote = ['--server', server.url, '--token-file', path.join(server.dataDir, 'admin.token')];
  const run = (...args: string[]) => {
    const r = cloner(...args, ...remote);
    if (r.code !== 0) throw new Error(`cloner ${args.join(' ')}: ${r.err}${r.out}`);
  };
  const root = path.join(dir, 'golden');
  await makeTree(root, { 'boot/vmlinuz-6.1.0-42-amd64': file('kernel'), 'lib/modules/6.1.0-42-amd64/modules.dep': file(''), 'etc/hostname': file('golden\n'), 'usr/bin/app': file(seededBytes(7, 300_000), 0o755), 'usr/share/doc/readme': file('docs '.repeat(20_000)) });
  await writeFile(path.join(dir, 'layout.json'), JSON.stringify(LAYOUT));
  run('disklayout-upload', '--disklayout', 'raid-lvm', '--file', path.join(dir, 'layout.json'));
  run('new-image', '--image', 'golden', '--disklayout', 'raid-lvm', '--root', root, '--yes', '--note', 'first capture');
  await writeFile(path.join(root, 'etc/motd'), 'welcome\n');
  run('update-filesystem', '--image', 'golden', '--root', root);
  await writeFile(path.join(dir, 'post.sh'), '#!/bin/sh\necho "post-script for $CLONER_NODE" <b>\n');
  run('script', '--image', 'golden', '--type', 'post', '--set', path.join(dir, 'post.sh'));
  await writeFile(path.join(dir, 'bios.ini'), '[BIOS]\nHyperThreading=Enabled\n');
  run('biossettings-upload', '--image', 'golden', '--biossettings', 'defaults', '--file', path.join(dir, 'bios.ini'));
  run('new-image', '--image', 'scratch', '--root', path.join(root, 'etc'), '--yes');
  for (let i = 1; i <= 5; i++) {
    const name = `node0${i}`;
    const settings = [`eth0.mac=52:54:00:00:00:0${i}`, `eth0.ip=198.18.1.${10 + i}/24`, `hostname=${name}`, `groups=${i <= 3 ? 'rack1' : 'rack2'}`, 'bmc.type=redfish', 'bmc.address=127.0.0.1', 'bmc.port=1', 'bmc.username=admin', `bmc.password=${BMC_PASSWORD}`];
    const r = await fetch(`${server.url}/v1/nodes/${name}`, { method: 'POST', headers: { authorization: `Bearer ${server.adminToken}`, 'content-type': 'application/json' }, body: JSON.stringify({ settings, create: true }) });
    if (r.status !== 200) throw new Error(`node ${name}: ${await r.text()}`);
  }
  await fetch(`${server.url}/boot.ipxe?mac=52:54:00:aa:00:99`);
  run('verify');
}

async function logIn(page: Page, ctx: Ctx, token: string): Promise<void> {
  await page.goto(`${ctx.server.url}/ui/`);
  assert.match(page.url(), /\/ui\/login$/, 'a page without a session sends the browser to the login form');
  await page.fill('#token', token);
  await Promise.all([page.waitForURL(`${ctx.server.url}/ui/`), page.click('button:has-text("Log in")')]);
}

/** Posts a form from inside the page (same origin, with the page's session cookie). */
function postFromPage(page: Page, route: string, fields: Record<string, string>, csrf: boolean): Promise<number> {
  return page.evaluate(async ({ route, fields, csrf }) => {
    const token = JSON.parse(document.body.getAttribute('hx-headers') ?? '{}')['X-CSRF-Token'];
    const r = await fetch(route, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...(csrf ? { 'x-csrf-token': token } : {}) }, body: new URLSearchParams(fields).toString() });
    return r.status;
  }, { route, fields, csrf });
}

const netboots = async (ctx: Ctx) => Object.fromEntries(((await ctx.api('GET', '/v1/nodes')).json as Array<{ name: string; netboot: string }>).map((n) => [n.name, n.netboot]));

skipUnless(ui, chromiumBlocker(), 'admin: log in, images, rollback and delete, node[01-03] image and netboot, live deploys, discovered MAC, log out', async () => {
  const c = state.ctx!;
  const page = await c.context.newPage();
  const dialogs: string[] = [];
  page.on('dialog', (d) => {
    dialogs.push(d.message());
    void d.accept();
  });
  await page.goto(`${c.server.url}/ui/nodes`);
  await screenshot(page, '01-login');
  await logIn(page, c, c.server.adminToken);
  const cookie = (await c.context.cookies()).find((k) => k.name === 'cloner_ui');
  assert.ok(cookie && cookie.httpOnly && cookie.sameSite === 'Strict' && cookie.path === '/ui', 'HttpOnly, SameSite=Strict session cookie');
  assert.not.match(page.url(), c.server.adminToken);
  await page.waitForSelector('text=Dedup ratio');
  assert.match(await page.textContent('main') ?? '', /golden/);
  const upkeep = await page.textContent('#maintenance') ?? '';
  assert.match(upkeep, /Last verify\s*\d+ s ago .*took .* s\): ok, \d+ chunks checked, all sound/s, upkeep);
  assert.match(upkeep, /Last gc\s*never run on this store/);
  await screenshot(page, '02-overview');

  // Images: both captured images listed, stored sizes filled in afterwards.
  await page.click('nav >> text=Images');
  await page.waitForSelector('#image-rows:not([hx-get])');
  const list = await page.textContent('#image-rows') ?? '';
  assert.match(list, /golden/);
  assert.match(list, /scratch/);
  assert.match(list, /\d+(\.\d)? (B|KiB|MiB)/);
  assert.match(list, /golden[\s\S]*6\.1\.0-42-amd64/, 'the golden kernel column');
  await screenshot(page, '03-images');
  await page.click('#image-rows >> text=golden');
  const imageText = await page.textContent('main') ?? '';
  for (const shown of ['RAID md0', 'VG vg0', '/boot/efi', 'post-script', 'defaults', 'first capture', 'LV root']) assert.ok(imageText.includes(shown), `image page shows ${shown}`);
  assert.ok(await page.locator('svg.disk-bar').count() === 2, 'each disk drawn');
  assert.ok(imageText.includes('echo "post-script for $CLONER_NODE" <b>'), 'script shown as text, escaped');
  await screenshot(page, '04-image');
  await page.click('tr:has(td:text-is("1")) >> button:has-text("Roll back to this")');
  await page.waitForSelector('.outcome.all-ok');
  assert.match(await page.textContent('.outcome') ?? '', /revision 3 is now revision 1/);
  const golden = (await c.api('GET', '/v1/images/golden')).json;
  assert.equal(golden.revisions.map((r: { note: string }) => r.note).at(-1), 'rollback to revision 1');
  assert.is(golden.revisions[2].tree, golden.revisions[0].tree);
  await page.goto(`${c.server.url}/ui/images/scratch`);
  await Promise.all([page.waitForURL(`${c.server.url}/ui/images`), page.click('button:has-text("Delete image scratch")')]);
  assert.ok(dialogs.some((d) => d.startsWith('Delete image scratch')), 'delete asked for confirmation');
  assert.is((await c.api('GET', '/v1/images/scratch')).status, 404);

  // The diff of two revisions, from the image page (the core function image-diff uses).
  await page.goto(`${c.server.url}/ui/images/golden`);
  await page.selectOption('.diff-form select[name=from]', '1');
  await page.selectOption('.diff-form select[name=to]', '2');
  await Promise.all([page.waitForURL(/\/ui\/images\/golden\/diff\?from=1&to=2$/), page.click('button:has-text("Show the changes")')]);
  assert.match(await page.textContent('tr.diff-added:has(code:text-is("/etc/motd"))') ?? '', /added\s*file\s*\/etc\/motd\s*–\s*8 B/);
  assert.match(await page.textContent('.diff-totals') ?? '', /Added\s*1\s*1 files\s*8 B\s*Removed\s*0/);
  await screenshot(page, '04b-image-diff');
  await page.goto(`${c.server.url}/ui/images/golden/diff?from=1&to=9`);
  assert.match(await page.textContent('main') ?? '', /image golden has no revision 9/);

  // Nodes: select node[01-03] with the CLI's selector, set their image, then their netboot.
  await page.click('nav >> text=Nodes');
  await page.fill('input[name=sel]', 'node[01-03]');
  await page.press('input[name=sel]', 'Enter');
  await page.waitForFunction(() => document.querySelectorAll('#nodes-table tbody tr').length === 3);
  assert.match(page.url(), /sel=node%5B01-03%5D/, 'the filter is in the address bar');
  await page.check('[data-check-all]');
  await page.selectOption('select[name=image]', 'golden');
  await page.click('button:has-text("Set image")');
  await page.waitForSelector('.outcome >> text=3 of 3 done');
  await page.selectOption('select[name=netboot]', 'cloner');
  await page.click('button:has-text("Set netboot")');
  await page.waitForSelector('.outcome >> text=netboot=cloner');
  await page.fill('#bulk input[name=group]', 'gpu');
  await page.click('button:has-text("Add to group")');
  await page.waitForSelector('.outcome >> text=in group gpu: groups=rack1,gpu');
  const nodes = (await c.api('GET', '/v1/nodes')).json as Array<{ name: string; cloner_image?: string; netboot: string }>;
  assert.equal(nodes.map((n) => [n.name, n.cloner_image ?? null, n.netboot]), [
    ['node01', 'golden', 'cloner'], ['node02', 'golden', 'cloner'], ['node03', 'golden', 'cloner'], ['node04', null, 'local'], ['node05', null, 'local'],
  ]);
  assert.equal((nodes as unknown as Array<{ groups: string[] }>).map((n) => n.groups.join(',')), ['rack1,gpu', 'rack1,gpu', 'rack1,gpu', 'rack2', 'rack2']);
  await page.fill('input[name=sel]', '@rack1,node05');
  await page.press('input[name=sel]', 'Enter');
  await page.waitForFunction(() => document.querySelectorAll('#nodes-table tbody tr').length === 4);
  await page.fill('input[name=sel]', 'node[01-09]');
  await page.press('input[name=sel]', 'Enter');
  await page.waitForSelector('#nodes-table .error >> text=unknown nodes node06');
  await page.fill('input[name=sel]', '');
  await page.press('input[name=sel]', 'Enter');
  await page.waitForFunction(() => document.querySelectorAll('#nodes-table tbody tr').length === 5);
  // The rows are laid out as grids (bench:ui) but stay a table to assistive technology.
  assert.is(await page.getByRole('table').getByRole('row').count(), 6);
  assert.is(await page.getByRole('row', { name: /node03/ }).getByRole('cell').count(), 10);
  assert.is(await page.getByRole('columnheader', { name: 'MAC' }).count(), 1);
  await screenshot(page, '05-nodes');

  // One node: never its BMC password; power goes to the BMC through the server.
  await page.click('#nodes-table >> text=node01');
  assert.not.ok((await page.content()).includes(BMC_PASSWORD), 'the BMC password is not on the page');
  await page.click('.node-actions button:text-is("status")');
  await page.waitForSelector('.outcome.has-failures >> text=Redfish BMC 127.0.0.1:1');
  await screenshot(page, '06-node');

  // Deploys: rows move through phases as reports come, with no reload.
  await page.click('nav >> text=Deploys');
  await page.evaluate(() => ((window as unknown as { marker: string }).marker = 'same page'));
  const report = (node: string, body: object) => c.api('POST', `/v1/nodes/${node}/deploy/status`, body);
  await report('node01', { phase: 'layout', image: 'golden', revision: 3 });
  await page.waitForSelector('#dep-node01 .phase:text-is("layout")');
  await report('node02', { phase: 'restore', image: 'golden', revision: 3, bytes: 0, totalBytes: 2 * 1024 ** 3 });
  await report('node01', { phase: 'restore', image: 'golden', revision: 3, bytes: 512 * 1024 ** 2, totalBytes: 1024 ** 3, fetchedBytes: 300 * 1024 ** 2, rate: 100 * 1024 ** 2 });
  await page.waitForSelector('#dep-node01 >> text=50 %');
  const row = await page.textContent('#dep-node01') ?? '';
  for (const shown of ['restore', '512.0 MiB of 1.0 GiB', '300.0 MiB', '100.0 MiB/s']) assert.ok(row.includes(shown), `row shows ${shown}: ${row}`);
  await page.waitForSelector('#deploy-summary >> text=2 nodes deploying');
  await screenshot(page, '07-deploys-running');
  assert.is((await c.api('POST', '/v1/nodes/node02/deploy/result', { ok: false, phase: 'restore', message: 'chunk 5f3a… failed its BLAKE3 check', image: 'golden', revision: 3 })).status, 200);
  await page.waitForSelector('#dep-node02 >> text=failed in restore');
  assert.match(await page.textContent('#dep-node02') ?? '', /failed its BLAKE3 check/);
  await report('node01', { phase: 'bootloader', image: 'golden', revision: 3 });
  await page.waitForSelector('#dep-node01 .phase:text-is("bootloader")');
  await c.api('POST', '/v1/nodes/node01/deploy/result', { ok: true, phase: 'report', image: 'golden', revision: 3, seconds: 42, fetchedBytes: 300 * 1024 ** 2 });
  await page.waitForSelector('#dep-node01 .phase:text-is("done")');
  await page.waitForSelector('#dep-node01 td:text-is("local")');
  await page.waitForSelector('#deploy-summary >> text=1 failed');

  // Multicast, live: node04 waits in cloner-multicast mode, a session takes it, and fails
  // when it never gets ready (no datagram is sent: a session sends only to ready nodes).
  const tree = (await c.api('GET', '/v1/images/golden')).json.revisions[2].tree;
  // What node04 lacks, as an agent says it: a bitmap over the revision's chunk ids (core/multicast/summary.ts).
  const reader = new HttpStore({ url: c.server.url, token: c.server.adminToken });
  const summary = encodeLacking(await canonicalChunks(reader, tree).finally(() => reader.close()), [tree]);
  assert.is((await c.api('POST', '/v1/multicast/nodes/node04', { image: 'golden', revision: 3, ...summary, linkMbps: 1000 })).status, 200);
  await page.waitForSelector('#multicast tr:has-text("node04") >> text=golden @3');
  assert.is((await c.api('POST', '/v1/multicast/sessions', { image: 'golden', nodes: ['node04'], maxWaitS: 1 })).status, 200);
  assert.is((await c.api('GET', '/v1/multicast/nodes/node04')).json.state, 'joining');
  await page.waitForSelector('#multicast .mc-rx:has-text("node04") >> text=joining');
  await screenshot(page, '07b-deploys-multicast');
  await page.waitForSelector('#multicast .mc-phase:text-is("failed")');
  assert.match(await page.textContent('#multicast') ?? '', /no receiver was ready after 1 s[\s\S]*node04\s*unicast[\s\S]*the session did not start/);
  const status = cloner('status', '--server', c.server.url, '--token-file', path.join(c.server.dataDir, 'admin.token'));
  assert.match(status.out, /session [0-9a-f]{16} golden@3 failed/, status.err);
  assert.match(status.out, /verify: \d+s ago .*: ok/);
  assert.is(await page.evaluate(() => (window as unknown as { marker: string }).marker), 'same page', 'updated without a reload');
  await screenshot(page, '08-deploys');

  // Each node's history: the deploys just reported, newest first.
  await page.goto(`${c.server.url}/ui/nodes/node02`);
  assert.match(await page.textContent('#history tbody') ?? '', /golden @3\s*failed in restore[\s\S]*failed its BLAKE3 check/);
  await page.goto(`${c.server.url}/ui/nodes/node01`);
  const history = await page.textContent('#history tbody tr') ?? '';
  assert.match(history, /UTC.*UTC.*golden @3\s*ok\s*42 s\s*300\.0 MiB/s, history);
  await screenshot(page, '08b-node-history');

  // A discovered MAC becomes a node.
  await page.click('nav >> text=Discovered MACs');
  assert.match(await page.textContent('main') ?? '', /52:54:00:aa:00:99/);
  await screenshot(page, '09-discovered');
  await page.fill('form.add-node input[name=name]', 'node09');
  await page.fill('form.add-node input[name=ip]', '198.18.1.19/24');
  await page.selectOption('form.add-node select[name=cloner_image]', 'golden');
  await page.click('form.add-node button');
  await page.waitForSelector('.outcome.all-ok >> text=node node09 added');
  const added = (await c.api('GET', '/v1/nodes/node09')).json;
  assert.equal([added.interfaces[0].mac, added.interfaces[0].ip, added.cloner_image], ['52:54:00:aa:00:99', '198.18.1.19/24', 'golden']);
  assert.is(await page.locator('table code:text-is("52:54:00:aa:00:99")').count(), 0, 'a MAC that became a node is no longer waiting');

  // A bad value is refused by the registry's own check, shown with its hint.
  await page.goto(`${c.server.url}/ui/nodes/node04`);
  await page.fill('#settings', 'eth0.ip=not-an-address');
  await page.click('button:has-text("Apply")');
  await page.waitForSelector('.outcome.has-failures >> text=is not ADDRESS/PREFIX');

  // Log out: the session is gone on the server too.
  const before = (await c.context.cookies()).find((k) => k.name === 'cloner_ui')!.value;
  await Promise.all([page.waitForURL(`${c.server.url}/ui/login`), page.click('button:has-text("Log out")')]);
  await page.goto(`${c.server.url}/ui/nodes`);
  assert.match(page.url(), /\/ui\/login$/);
  const replay = await fetch(`${c.server.url}/ui/nodes`, { headers: { cookie: `cloner_ui=${before}` }, redirect: 'manual' });
  assert.is(replay.status, 303, 'the old cookie no longer opens a page');
  await page.close();
});

skipUnless(ui, chromiumBlocker(), 'read token: no action buttons, every change refused; no CSRF token or a cross-site post changes nothing', async () => {
  const c = state.ctx!;
  await c.context.clearCookies();
  const page = await c.context.newPage();
  await logIn(page, c, c.server.readToken);
  assert.is(await page.textContent('.who'), 'read-only');
  await page.goto(`${c.server.url}/ui/nodes`);
  assert.is(await page.locator('#bulk button').count(), 0);
  assert.is(await page.locator('input[name=nodes]').count(), 0);
  await screenshot(page, '10-nodes-read-only');
  await page.goto(`${c.server.url}/ui/nodes/node03`);
  assert.is(await page.locator('.node-actions').count(), 0);
  await page.goto(`${c.server.url}/ui/images/golden`);
  assert.is(await page.locator('main button:not(.diff-form button)').count(), 0, 'only the compare form (a GET) has a button');
  const states = await netboots(c);
  assert.is(await postFromPage(page, '/ui/nodes/bulk', { do: 'netboot', netboot: 'local', nodes: 'node03' }, true), 403);
  assert.is(await postFromPage(page, '/ui/images/golden/delete', {}, true), 403);
  assert.is(await postFromPage(page, '/ui/nodes/bulk', { do: 'group', group: 'evil', nodes: 'node03' }, true), 403);
  assert.not.ok(((await c.api('GET', '/v1/nodes/node03')).json.groups as string[]).includes('evil'));
  assert.is(await postFromPage(page, '/ui/nodes/node03/set', { netboot: 'local' }, true), 403);
  assert.equal(await netboots(c), states);
  assert.is((await c.api('GET', '/v1/images/golden')).status, 200);
  await Promise.all([page.waitForURL(`${c.server.url}/ui/login`), page.click('button:has-text("Log out")')]);

  // An admin session: same-origin without the CSRF token is refused.
  await logIn(page, c, c.server.adminToken);
  await page.goto(`${c.server.url}/ui/nodes`);
  assert.is(await postFromPage(page, '/ui/nodes/bulk', { do: 'netboot', netboot: 'local', nodes: 'node03' }, false), 403);
  assert.equal(await netboots(c), states);

  // A form on another site (localhost is another site than 127.0.0.1) and on another
  // origin of the same site (another port) posts to the UI: both refused, nothing changes.
  const evil: Server = createServer((_req, res) => {
    res.setHeader('content-type', 'text/html');
    res.end(`<!doctype html><form id="f" method="post" action="${c.server.url}/ui/nodes/bulk"><input name="do" value="netboot"><input name="netboot" value="local"><input name="all" value="1"></form><script>document.getElementById('f').submit()</script>`);
  });
  await new Promise<void>((resolve) => evil.listen(0, '127.0.0.1', resolve));
  try {
    const port = (evil.address() as AddressInfo).port;
    for (const origin of [`http://localhost:${port}/`, `http://127.0.0.1:${port}/`]) {
      const answer = page.waitForResponse((r) => r.url().endsWith('/ui/nodes/bulk'));
      await page.goto(origin);
      const response = await answer;
      assert.is(response.status(), 403, `post from ${origin}`);
      await page.waitForLoadState();
      assert.match(await page.textContent('body') ?? '', /cross-site request may not change anything|CSRF/);
      assert.equal(await netboots(c), states, `nothing changed by ${origin}`);
    }
    await screenshot(page, '11-cross-site-refused');
  } finally {
    evil.closeAllConnections(); // the browser keeps its connection alive; close() would wait for it
    await new Promise((resolve) => evil.close(resolve));
  }
  await page.close();
});

ui.run();
