// What the browser tests and the page benchmark share: a static server over dist/, headless
// Debian Chromium with or without WebGPU (SwiftShader), and the click-latency probe.

import { createServer } from 'node:http';
import { readFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, extname, normalize, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const here = dirname(fileURLToPath(import.meta.url));
export const artifacts = join(here, 'artifacts');
const dist = join(here, '..', 'dist');

const BASE_FLAGS = [
  '--no-sandbox', '--disable-background-networking', '--disable-component-update',
  '--no-first-run', '--disable-sync', '--disable-quic',
];
const WEBGPU_FLAGS = [
  '--enable-unsafe-webgpu', '--enable-features=Vulkan', '--use-vulkan=swiftshader',
  '--use-webgpu-adapter=swiftshader',
];
const NO_WEBGPU_FLAGS = ['--disable-gpu', '--disable-features=WebGPU'];

/** Elements whose first paint the pages time (read as `window.__painted[name]`). */
const PAINT_WATCH = { pretrained: '#pretrained-chart svg path.series' };

const TYPES = {
  '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm',
  '.css': 'text/css', '.gz': 'application/octet-stream', '.png': 'image/png',
};

/** Serves dist/ on a free loopback port; returns its base URL and a close function. */
export async function serveDist() {
  const server = createServer(async (req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url, 'http://x').pathname));
    const file = join(dist, path.endsWith('/') ? path + 'index.html' : path);
    if (!file.startsWith(dist)) { res.writeHead(403).end(); return; }
    try {
      const body = await readFile(file);
      res.writeHead(200, { 'content-type': TYPES[extname(file)] || 'application/octet-stream' });
      res.end(body);
    } catch {
      res.writeHead(404).end('not found');
    }
  });
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  return { base: `http://127.0.0.1:${server.address().port}/`, close: () => server.close() };
}

/** Opens `url` in a fresh browser profile, with or without WebGPU; the page records errors. */
export async function open(webgpu, url) {
  const profile = await mkdtemp(join(tmpdir(), 'gpicl-browser-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: [...BASE_FLAGS, ...(webgpu ? WEBGPU_FLAGS : NO_WEBGPU_FLAGS)],
    viewport: { width: 1280, height: 1400 },
  });
  // Times when the page first paints what `PAINT_WATCH` names (the frame after the element
  // appears), on the page's own clock, so a busy main thread later does not blur it.
  await context.addInitScript((watch) => {
    window.__painted = {};
    new MutationObserver(() => {
      for (const [name, selector] of Object.entries(watch)) {
        if (!(name in window.__painted) && document.querySelector(selector)) {
          window.__painted[name] = null;
          requestAnimationFrame(() => { window.__painted[name] = performance.now(); });
        }
      }
    }).observe(document, { childList: true, subtree: true });
  }, PAINT_WATCH);
  const page = context.pages()[0] ?? await context.newPage();
  const errors = [];
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(url);
  const close = async () => { await context.close(); await rm(profile, { recursive: true, force: true }); };
  return { page, errors, close };
}

/** Clicks `selector` and returns the milliseconds until the step-through shows the learner's
 *  new prediction (its verdict line changes). */
export function clickLatency(page, selector) {
  return page.evaluate((selector) => new Promise((done) => {
    const walk = document.querySelector('.walk');
    const verdict = () => document.querySelector('#walk-verdict')?.textContent;
    const text = verdict();
    const t0 = performance.now();
    const observer = new MutationObserver(() => {
      if (verdict() && verdict() !== text) { observer.disconnect(); done(performance.now() - t0); }
    });
    observer.observe(walk, { childList: true, characterData: true, subtree: true });
    document.querySelector(selector).click();
  }), selector);
}
