// What the browser tests and the page benchmark share: a static server over dist/, headless
// Debian Chromium with or without WebGPU (SwiftShader), and the click-latency probe.

import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { readFile, readdir, mkdtemp, rm } from 'node:fs/promises';
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
  '.json': 'application/json', '.svg': 'image/svg+xml',
};

/** Serves dist/ on a free loopback port as a compressing static host does: a file's
 *  precompressed `FILE.br` or `FILE.gz` (made by `cargo xtask dist`) when the browser accepts
 *  it, else the file itself. Returns its base URL, a close function, `sent()`: the bytes of
 *  every response body so far ({ bytes, files: [[path, bytes, encoding]] }), and `quiet()`. */
export async function serveDist() {
  const log = [];
  const server = createServer(async (req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url, 'http://x').pathname));
    const file = join(dist, path.endsWith('/') ? path + 'index.html' : path);
    if (!file.startsWith(dist)) { res.writeHead(403).end(); return; }
    const accepts = String(req.headers['accept-encoding'] ?? '');
    const type = TYPES[extname(file)] || 'application/octet-stream';
    for (const [encoding, ext] of [['br', '.br'], ['gzip', '.gz']]) {
      if (!accepts.includes(encoding) || file.endsWith('.gz')) continue;
      try {
        const body = await readFile(file + ext);
        res.writeHead(200, { 'content-type': type, 'content-encoding': encoding, vary: 'accept-encoding' });
        res.end(body);
        log.push([path, body.length, encoding]);
        return;
      } catch { /* no precompressed copy: serve the file */ }
    }
    try {
      const body = await readFile(file);
      res.writeHead(200, { 'content-type': type });
      res.end(body);
      log.push([path, body.length, 'identity']);
    } catch {
      res.writeHead(404).end('not found');
    }
  });
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  const sent = () => ({ bytes: log.reduce((a, [, b]) => a + b, 0), files: log.slice() });
  return {
    base: `http://127.0.0.1:${server.address().port}/`,
    close: () => server.close(),
    sent,
    /** Waits until no request has come for `ms` (checked on `page`'s clock); returns `sent()`. */
    quiet: async (page, ms = 3000) => {
      for (let before = sent(); ;) {
        await page.waitForTimeout(ms);
        const now = sent();
        if (now.files.length === before.files.length) return now;
        before = now;
      }
    },
  };
}

/** The Chromium processes of the profile `profile` (Linux /proc: the browser started with it
 *  and its descendants), each `{ pid, type, rss }`: `type` is the helper's `--type=` (null for
 *  the browser process itself), `rss` its resident memory (MiB, VmRSS). */
export async function profileProcesses(profile) {
  const procs = [];
  for (const pid of await readdir('/proc').catch(() => [])) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      // Chromium rewrites its helpers' command lines into one space-separated string.
      const cmd = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split(/[\0 ]/);
      const status = await readFile(`/proc/${pid}/status`, 'utf8');
      const ppid = Number(status.match(/^PPid:\s+(\d+)/m)?.[1]);
      const rss = Number(status.match(/^VmRSS:\s+(\d+) kB/m)?.[1] ?? 0) / 1024;
      procs.push({ pid: Number(pid), ppid, cmd, rss });
    } catch { /* gone meanwhile */ }
  }
  const root = procs.find((p) => p.cmd.some((a) => a === `--user-data-dir=${profile}`)
    && !p.cmd.some((a) => a.startsWith('--type=')));
  if (!root) return [];
  const mine = new Set([root.pid]);
  for (let grew = true; grew;) {
    grew = false;
    for (const p of procs) if (!mine.has(p.pid) && mine.has(p.ppid)) { mine.add(p.pid); grew = true; }
  }
  return procs.filter((p) => mine.has(p.pid)).map((p) => ({
    pid: p.pid,
    type: p.cmd.find((a) => a.startsWith('--type='))?.slice(7) ?? null,
    rss: p.rss,
  }));
}

/** Resident memory (MiB, VmRSS) of the Chromium processes of the profile `profile`
 *  ([`profileProcesses`]): `page`, the largest renderer (the page's: it holds the WebAssembly
 *  memory; the others are the blank first tab's and a spare), and by kind: `renderer` (all of
 *  them), `gpu-process`, `browser`, `other` (zygotes, utilities). */
export async function processMemory(profile) {
  const out = { page: 0, renderer: 0, 'gpu-process': 0, browser: 0, other: 0 };
  for (const p of await profileProcesses(profile)) {
    const kind = !p.type ? 'browser' : p.type in out ? p.type : 'other';
    out[kind] += p.rss;
    if (kind === 'renderer') out.page = Math.max(out.page, p.rss);
  }
  return out;
}

/** Opens `url` in a fresh browser profile, with or without WebGPU; the page records errors.
 *  Options: `mobile` (a 390 × 844 touch phone), `mbps` (network throughput, Chromium's
 *  network emulation, set before navigating). */
export async function open(webgpu, url, { mobile = false, mbps = null } = {}) {
  const profile = await mkdtemp(join(tmpdir(), 'gpicl-browser-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: [...BASE_FLAGS, ...(webgpu ? WEBGPU_FLAGS : NO_WEBGPU_FLAGS)],
    ...(mobile
      ? { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 3 }
      : { viewport: { width: 1280, height: 1400 } }),
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
  if (mbps) {
    const cdp = await context.newCDPSession(page);
    await cdp.send('Network.enable');
    await cdp.send('Network.emulateNetworkConditions', {
      offline: false, latency: 20, downloadThroughput: (mbps * 1e6) / 8, uploadThroughput: (mbps * 1e6) / 8,
    });
  }
  await page.goto(url);
  const close = async () => { await context.close(); await rm(profile, { recursive: true, force: true }); };
  return { page, errors, close, profile };
}

/** Opens `url` in Chromium with no DevTools client attached, with or without WebGPU, as a
 *  visitor's browser holds it: a DevTools session (Playwright's) keeps a copy of every response
 *  body in the renderer (here ~22 MiB: the WebAssembly module, the weights, the training data),
 *  which a visitor's renderer does not. Nothing reads the page but the tab title that the
 *  remote-debugging port's `/json/list` lists (the page puts the run's step there). Returns the
 *  profile (for `processMemory`), `title()` and `close()`. */
export async function openBare(webgpu, url) {
  const profile = await mkdtemp(join(tmpdir(), 'gpicl-bare-'));
  const port = await new Promise((ok) => {
    const s = createNetServer().listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => ok(p)); });
  });
  const chrome = spawn(process.env.CHROMIUM || '/usr/bin/chromium', [
    ...BASE_FLAGS, ...(webgpu ? WEBGPU_FLAGS : NO_WEBGPU_FLAGS), '--headless',
    `--remote-debugging-port=${port}`, `--user-data-dir=${profile}`, '--window-size=1280,1400', url,
  ], { stdio: 'ignore' });
  const title = async () => {
    try {
      const targets = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json();
      return targets.find((t) => t.type === 'page' && t.url.startsWith(url))?.title ?? '';
    } catch { return ''; }
  };
  const close = async () => {
    chrome.kill('SIGKILL');
    await new Promise((ok) => (chrome.exitCode !== null ? ok() : chrome.once('exit', ok)));
    await rm(profile, { recursive: true, force: true });
  };
  return { profile, title, close };
}

/** Opens the figure `id`'s folded "Numbers" (the page makes the table only while they are
 *  open, as a visitor opens them) and returns its header and rows, one string per cell. */
export async function numbers(page, id) {
  await page.evaluate((id) => { document.querySelector(`#${id} details`).open = true; }, id);
  await page.waitForSelector(`#${id} tbody tr`);
  return page.$eval(`#${id} table`, (t) => ({
    header: [...t.tHead.rows[0].cells].map((c) => c.textContent),
    rows: [...t.tBodies[0].rows].map((r) => [...r.cells].map((c) => c.textContent)),
  }));
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
