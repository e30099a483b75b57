#!/usr/bin/env node
// Drive the demo page in headless Chromium the way a person would: open it, pick an image, read the
// result, switch precision, run again. Prints nothing on success; writes a JSON report.
//
//   node web/browser/run.mjs --url http://127.0.0.1:PORT/ --model face-parsing --image face.png \
//        [--dtypes fp32,q8] [--repeats 3] [--screenshot shot.png] --out report.json
//
// Chromium is the system one (Debian's /usr/bin/chromium); Playwright downloads no browser. Any request
// leaving the page's own origin is refused and reported, which proves the page needs no CDN.

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { chromium } from 'playwright-core';

const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];
const TIMEOUT_MS = 120_000;

function options() {
  const { values } = parseArgs({
    options: {
      url: { type: 'string' },
      model: { type: 'string' },
      image: { type: 'string' },
      dtypes: { type: 'string' },
      repeats: { type: 'string', default: '3' },
      screenshot: { type: 'string' },
      out: { type: 'string' },
      chromium: { type: 'string', default: process.env.CHROMIUM ?? '/usr/bin/chromium' },
    },
  });
  for (const required of ['url', 'model', 'image', 'out']) {
    if (!values[required]) throw new Error(`--${required} is required`);
  }
  return { ...values, repeats: Number(values.repeats) };
}

/** Wait until the page finished one more run than `before` (or reports an error); return its state. */
async function waitForRun(page, before) {
  await page.waitForFunction(
    (n) => Number(document.body.dataset.runs ?? 0) > n || document.body.dataset.state === 'error',
    before,
    { timeout: TIMEOUT_MS },
  );
  const state = await page.evaluate(() => document.body.dataset.state);
  if (state === 'error') throw new Error(`the page reports: ${await page.textContent('#status')}`);
}

const runsSoFar = (page) => page.evaluate(() => Number(document.body.dataset.runs ?? 0));

async function measure(page, dtype, repeats) {
  for (let i = 1; i < repeats; i++) {
    const before = await runsSoFar(page);
    await page.click('#rerun');
    await waitForRun(page, before);
  }
  const last = await page.evaluate(() => window.edgeforge.last());
  if (last.dtype !== dtype) throw new Error(`the page ran ${last.dtype}, expected ${dtype}`);
  const labelMap = await page.evaluate(() => window.edgeforge.labelMapBase64());
  const canvas = await page.evaluate(() => window.edgeforge.canvasBase64());
  // What a person reads: the legend rows (segmentation) or score bars (classification), and the status.
  const legend = await page.$$eval('#legend li', (items) => items.map((item) => ({
    label: item.querySelector('.name').textContent,
    value: item.querySelector('.value').textContent,
    colour: item.querySelector('.swatch') && getComputedStyle(item.querySelector('.swatch')).backgroundColor,
  })));
  return { ...last, label_map: labelMap, canvas_rgba: canvas, legend, status: await page.textContent('#status') };
}

async function main() {
  const args = options();
  const origin = new URL(args.url).origin;
  const userDataDir = await mkdtemp(path.join(os.tmpdir(), 'edgeforge-chromium-'));
  const blocked = [];
  const consoleErrors = [];
  const notFound = [];
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: args.chromium,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1280, height: 820 },
  });
  try {
    await context.route('**/*', (route) => {
      const url = route.request().url();
      if (new URL(url).origin === origin) return route.continue();
      blocked.push(url);
      return route.abort('blockedbyclient');
    });
    const page = await context.newPage();
    page.setDefaultTimeout(TIMEOUT_MS);
    page.on('console', (message) => message.type() === 'error' && consoleErrors.push(message.text()));
    page.on('pageerror', (error) => consoleErrors.push(String(error)));
    page.on('response', (response) => response.status() === 404 && notFound.push(response.url()));

    const started = performance.now();
    await page.goto(`${args.url}?model=${encodeURIComponent(args.model)}`);
    await page.waitForFunction(() => ['ready', 'error'].includes(document.body.dataset.state));
    const pageReadyMs = performance.now() - started;
    const offered = await page.$$eval('#dtype option', (items) => items.map((o) => o.value));
    const dtypes = args.dtypes ? args.dtypes.split(',').filter(Boolean) : offered;
    const missing = dtypes.filter((d) => !offered.includes(d));
    if (missing.length) throw new Error(`the page offers ${offered.join(', ')}; not ${missing.join(', ')}`);

    const results = [];
    for (const [index, dtype] of dtypes.entries()) {
      const before = await runsSoFar(page);
      if (index === 0) {
        await page.selectOption('#dtype', dtype);
        await page.setInputFiles('#file', args.image); // picking the image starts the first run
      } else {
        await page.selectOption('#dtype', dtype); // changing precision re-runs on the same image
      }
      await waitForRun(page, before);
      results.push(await measure(page, dtype, args.repeats));
      if (index === 0 && args.screenshot) await page.screenshot({ path: args.screenshot, fullPage: true });
    }
    const report = {
      chromium: context.browser()?.version() ?? null,
      page_ready_ms: pageReadyMs,
      offered,
      results,
      blocked,
      not_found: notFound,
      console_errors: consoleErrors,
    };
    await writeFile(args.out, JSON.stringify(report));
  } finally {
    await context.close();
    await rm(userDataDir, { recursive: true, force: true });
  }
}

main().catch((error) => {
  console.error(`run.mjs: error: ${error?.stack ?? error}`);
  process.exit(1);
});
