/**
 * A real browser for web interface tests and the UI bench: Debian's chromium driven by
 * playwright-core (no browser download), headless, with an empty profile directory that
 * is removed afterwards. `chromiumBlocker()` says why it cannot run here (for skipUnless).
 * Screenshots go to CLONER_UI_SHOTS, else $TMPDIR/cloner-ui-shots: outside the repository.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

export const CHROMIUM = process.env.CLONER_CHROMIUM ?? '/usr/bin/chromium';
export const SHOTS_DIR = process.env.CLONER_UI_SHOTS ?? path.join(tmpdir(), 'cloner-ui-shots');

const ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-dev-shm-usage'];

export function chromiumBlocker(): string | null {
  return existsSync(CHROMIUM) ? null : `no browser at ${CHROMIUM} (apt-get install chromium, as scripts/setup.sh does)`;
}

/** Runs `work` with a fresh headless browser context (1280 x 900); always closes it. */
export async function withBrowser<T>(work: (context: BrowserContext) => Promise<T>): Promise<T> {
  const profile = await mkdtemp(path.join(tmpdir(), 'cloner-chromium-'));
  const context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: ARGS, viewport: { width: 1280, height: 900 }, timeout: 60_000 });
  try {
    return await work(context);
  } finally {
    await context.close().catch(() => {});
    await rm(profile, { recursive: true, force: true });
  }
}

/** Saves a full-page screenshot as SHOTS_DIR/NAME.png; returns its path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  await mkdir(SHOTS_DIR, { recursive: true });
  const file = path.join(SHOTS_DIR, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}
