// End-to-end tests of the built page (dist/, from `trunk build --release`) in headless Debian
// Chromium. WebGPU runs on the CPU through SwiftShader, so these tests use the real WebGPU
// path, slowly: they check that things happen, not how fast (measurements go to the report).
//
// Run by `cargo xtask test` (or: `node --test tests/`, after `trunk build --release`).
// Screenshots and tests/artifacts/report.json are written for inspection.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { artifacts, clickLatency, open as openBrowser, serveDist } from './browser.mjs';

const report = {};
let server;

before(async () => {
  await mkdir(artifacts, { recursive: true });
  server = await serveDist();
});

after(async () => {
  server?.close();
  await writeFile(join(artifacts, 'report.json'), JSON.stringify(report, null, 2));
  console.log('e2e report:', JSON.stringify(report));
});

const open = (webgpu, url) => openBrowser(webgpu, server.base + url);

const stepCount = async (page) => Number(await page.textContent('#step'));

async function waitForSteps(page, n, timeout) {
  await page.waitForFunction((n) => Number(document.querySelector('#step')?.textContent) >= n,
    n, { timeout, polling: 250 });
}

test('GPU check: the core trainer runs on WebGPU, its loss falls, its forward pass matches Flex', async () => {
  const { page, errors, close } = await open(true, '?check');
  try {
    await page.waitForSelector('#gpu-check', { timeout: 240_000 });
    const r = JSON.parse(await page.textContent('#gpu-check'));
    report.gpu_check = r;
    assert.equal(r.error, undefined, `check failed: ${r.error}`);
    assert.equal(r.webgpu, true, `not on WebGPU: ${r.device}`);
    assert.match(r.device, /WebGPU/);
    assert.ok(r.losses.length >= 10 && r.losses_finite, `losses: ${r.losses}`);
    assert.ok(r.loss_falls, `loss did not fall: ${r.losses}`);
    assert.ok(r.forward_max_abs_diff <= r.forward_tolerance,
      `forward differs from Flex by ${r.forward_max_abs_diff}`);
    assert.ok(r.ok);
    assert.deepEqual(errors, []);
  } finally {
    await close();
  }
});

test('the page meta-trains on WebGPU: steps, loss plot, accuracy curves, step-through, pause', async () => {
  const { page, errors, close } = await open(true, '');
  try {
    await page.waitForSelector('#backend.webgpu', { timeout: 120_000 });
    const backend = await page.textContent('#backend');
    assert.match(backend, /WebGPU/);
    report.webgpu_backend = backend.trim();

    // Training starts by itself; the counter and the loss plot advance.
    await waitForSteps(page, 2, 240_000);
    report.webgpu_first_step = (await page.textContent('#first-step')).trim();
    await page.waitForSelector('#loss-chart svg path.series', { timeout: 60_000 });
    const s1 = await stepCount(page);
    await waitForSteps(page, s1 + 2, 240_000);

    // The accuracy curve: three series and the chance line.
    await page.waitForSelector('#acc-chart svg', { timeout: 240_000 });
    assert.equal(await page.locator('#acc-chart svg path.series').count(), 3);
    assert.equal(await page.locator('#acc-chart svg line.reference').count(), 1);
    assert.ok((await page.locator('#acc-chart tbody tr').count()) >= 10);

    // Step-through: predictions are shown; feeding an example changes them. The time from
    // the click to the updated text is measured while training runs (reported, not asserted).
    await page.waitForSelector('#walk-bars .bar', { timeout: 240_000 });
    const before = await page.innerHTML('#walk-bars');
    const latency = await clickLatency(page, '#walk-feed');
    report.webgpu_click_to_update_ms = latency;
    const after = await page.innerHTML('#walk-bars');
    assert.notEqual(after, before, 'the prediction bars did not change after feeding an example');
    assert.match(await page.textContent('.walk .toolbar .stat'), /^1 of /);

    // Pause: the steps in flight finish ("paused" shows only then), and the counter stops.
    await page.click('#run-toggle');
    await page.waitForFunction(() => document.querySelector('#state').textContent === 'paused',
      null, { timeout: 300_000, polling: 250 });
    const paused = await stepCount(page);
    await page.waitForTimeout(5000);
    assert.equal(await stepCount(page), paused, 'training went on after pause');
    report.webgpu_steps_at_pause = paused;
    report.webgpu_rate = (await page.locator('#rate').count()) ? await page.textContent('#rate') : null;

    await page.screenshot({ path: join(artifacts, 'page-webgpu.png'), fullPage: true });
    assert.deepEqual(errors, [], 'console errors');
  } finally {
    await close();
  }
});

test('without WebGPU the page says so and trains on the CPU (Flex in WASM)', async () => {
  const { page, errors, close } = await open(false, '');
  try {
    await page.waitForSelector('#fallback', { timeout: 120_000 });
    const note = await page.textContent('#fallback');
    assert.match(note, /CPU/);
    report.fallback_note = note.trim();
    assert.match(await page.textContent('#backend'), /CPU/);
    await waitForSteps(page, 3, 240_000);
    await page.waitForSelector('#loss-chart svg path.series', { timeout: 60_000 });
    report.cpu_first_step = (await page.textContent('#first-step')).trim();
    // After the evaluation at step 20 the history plot shows the curve at steps 0 and 20,
    // and its table has one row per position.
    await page.waitForSelector('#history-chart svg', { timeout: 240_000 });
    assert.ok((await page.locator('#history-chart svg path.series').count()) >= 2);
    assert.equal(await page.locator('#history-chart tbody tr').count(), 30);
    await page.screenshot({ path: join(artifacts, 'page-cpu.png'), fullPage: true });
    assert.deepEqual(errors, [], 'console errors');
  } finally {
    await close();
  }
});
