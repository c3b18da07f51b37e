/**
 * The deploys page following a real deploy: a real cloner-server with a real store, the
 * real agent (bin/cloner-agent.js) partitioning, formatting and filling a loop disk, and
 * Chromium (playwright-core) showing /ui/deploys the whole time. The node's row must move
 * through the agent's phases as it reports them, with no reload of the page (a marker set
 * in the page before the deploy is still there after it), and end at "done".
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { cloner } from '../helpers/cli.ts';
import { file, makeTree, seededBytes } from '../helpers/fixtures.ts';
import { withServer } from '../helpers/server.ts';
import { chromiumBlocker, screenshot, withBrowser } from '../helpers/browser.ts';
import { loopUnavailable, withLoopDisks } from '../helpers/loop.ts';
import { skipUnless } from '../helpers/skip.ts';
import { TWO_FS_LAYOUT } from '../helpers/deploy-lab.ts';

skipUnless(test, chromiumBlocker() ?? loopUnavailable(), 'the deploys page follows a real agent deploying a loop disk, phase by phase, without a reload', async () => {
  await withServer(async (server) => {
    await withLoopDisks(['1200M'], async ([disk], dir) => {
      const remote = ['--server', server.url, '--token-file', path.join(server.dataDir, 'admin.token')];
      const run = (...args: string[]) => {
        const r = cloner(...args, ...remote);
        if (r.code !== 0) throw new Error(`cloner ${args.join(' ')}: ${r.err}${r.out}`);
      };
      const golden = path.join(dir, 'golden');
      await makeTree(golden, { 'etc/hostname': file('golden\n'), 'usr/bin/app': file(seededBytes(3, 2_000_000), 0o755), 'srv/data/blob': file(seededBytes(4, 8_000_000)) });
      await writeFile(path.join(dir, 'layout.json'), JSON.stringify(TWO_FS_LAYOUT));
      run('disklayout-upload', '--disklayout', 'twofs', '--file', path.join(dir, 'layout.json'));
      run('new-image', '--image', 'golden', '--disklayout', 'twofs', '--root', golden, '--yes');
      run('nodes', 'add', 'node01', 'hostname=node01', 'cloner_image=golden', 'eth0.mac=52:54:00:00:01:01');

      await withBrowser(async (context) => {
        const page = await context.newPage();
        await page.goto(`${server.url}/ui/`);
        await page.fill('#token', server.adminToken);
        await Promise.all([page.waitForURL(`${server.url}/ui/`), page.click('button:has-text("Log in")')]);
        await page.goto(`${server.url}/ui/deploys`);
        await page.evaluate(() => ((window as unknown as { stayed: number }).stayed = 1));

        const agent = spawn('node', ['bin/cloner-agent.js', 'deploy', '--server', server.url, '--token', server.adminToken, '--node', 'node01', '--disks', disk, '--target', path.join(dir, 'target'), '--force', '--no-reboot', '--retry-deadline-s', '30'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, CLONER_PROGRESS_INTERVAL_MS: '200' } });
        let out = '';
        agent.stdout.on('data', (d) => (out += d));
        agent.stderr.on('data', (d) => (out += d));
        const exited = new Promise<number | null>((resolve) => agent.once('close', resolve));
        let code: number | null | undefined;
        void exited.then((c) => (code = c));
        // What the row shows, read from the page every 50 ms until the agent has ended and the row says done (bounded).
        const seen: string[] = [];
        let shot = false;
        const until = Date.now() + 240_000;
        for (;;) {
          const phase = await page.evaluate(() => document.querySelector('#dep-node01 .phase')?.textContent?.trim() ?? null);
          if (phase && seen.at(-1) !== phase) seen.push(phase);
          if (phase === 'restore' && !shot) shot = !!(await screenshot(page, '07c-deploys-real-agent'));
          if ((code !== undefined && phase === 'done') || Date.now() > until) break;
          if (code !== undefined && code !== 0) break;
          await new Promise((r) => setTimeout(r, 50));
        }
        agent.kill();
        await exited;
        assert.is(code, 0, out);
        const phases = seen;
        console.log(`# phases the page showed: ${phases.join(' -> ')}`);
        assert.is(phases.at(-1), 'done', `the row ends at done: ${phases.join(', ')}`);
        assert.ok(phases.filter((p) => p !== 'done').length >= 2, `the row moved through the agent's phases before done: ${phases.join(', ')}`);
        assert.is(await page.evaluate(() => (window as unknown as { stayed?: number }).stayed), 1, 'the page was not reloaded');
        await page.close();
      });
    });
  });
});

test.run();
