// End-to-end tests of reproducible, shareable, resilient experiments (issue 5), on WebGPU
// (SwiftShader) in headless Chromium: a share link opened in a fresh profile replays to the
// same curves; a reload resumes at the autosaved step; a destroyed GPU device is recovered from
// the autosave; a corrupted checkpoint is refused without touching the run; checkpoints move
// between the page and the CLI (`GPICL_BIN`, set by `cargo xtask test`) with the same curves.
//
// The runs use the `tiny` preset through a link (fast steps), which is also the link format's
// test: every setting is written out.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { artifacts, here, open as openBrowser, serveDist } from './browser.mjs';

const report = {};
let server;
let scratch;

before(async () => {
  await mkdir(artifacts, { recursive: true });
  server = await serveDist();
  scratch = await mkdtemp(join(tmpdir(), 'gpicl-e2e-'));
});

after(async () => {
  server?.close();
  await rm(scratch, { recursive: true, force: true });
  await writeFile(join(artifacts, 'report-experiments.json'), JSON.stringify(report, null, 2));
  console.log('experiments report:', JSON.stringify(report));
});

/** The `tiny` preset as a link (no replay), with some fields changed. */
function tinyLink(changes = {}) {
  const fields = {
    v: 1, name: 'tiny', seed: 5, arch: 'transformer', din: 16, classes: 10, d: 32, layers: 2,
    heads: 2, ff: 64, tasks: 'all', bias: 0, fmt: 'pair', T: 12, pool: 4, cps: 'all', cur: 'none',
    steps: 1000, batch: 8, lr: '1e-3', warmup: 5, cosine: 0, b1: 0.9, b2: 0.999, eps: '1e-8',
    clip: 1, every: 10, evalseq: 16, evalseed: 1234, ...changes,
  };
  return '#' + Object.entries(fields).map(([k, v]) => `${k}=${v}`).join('&');
}

const open = (url) => openBrowser(true, server.base + url);
const data = join(here, '..', 'web', 'data');

/** Runs this build's `gpicl` (cargo xtask test sets GPICL_BIN) and returns its output. */
function gpicl(...args) {
  assert.ok(process.env.GPICL_BIN, 'GPICL_BIN must name the gpicl binary (cargo xtask test sets it)');
  return execFileSync(process.env.GPICL_BIN, [...args, '--data-dir', data], { encoding: 'utf8' });
}
const stepCount = async (page) => Number(await page.textContent('#step'));
const waitFor = (page, fn, arg, timeout = 240_000) =>
  page.waitForFunction(fn, arg, { timeout, polling: 250 });

async function pauseAndSettle(page) {
  await page.click('#run-toggle');
  await waitFor(page, () => document.querySelector('#state').textContent === 'paused');
  const step = await stepCount(page);
  // The evaluation at the paused step, and the autosave made on pause.
  await waitFor(page, (s) => document.querySelector('#acc-chart svg title')?.textContent.endsWith(`step ${s}`), step);
  await waitFor(page, (s) => document.querySelector('#autosave').textContent === `autosaved at step ${s}`, step);
  return step;
}

async function download(page, selector, name) {
  const [file] = await Promise.all([page.waitForEvent('download'), page.click(selector)]);
  const path = join(scratch, name);
  await file.saveAs(path);
  return path;
}

/** Mean accuracy of each curve. */
const means = (curves) => curves.map((c) => c.accuracy.reduce((a, b) => a + b, 0) / c.accuracy.length);

function assertCurvesClose(a, b, what) {
  const [ma, mb] = [means(a), means(b)];
  const diff = Math.max(...ma.map((m, i) => Math.abs(m - mb[i])));
  report[what] = { means_page: ma, means_cli: mb, max_mean_diff: diff };
  // The replay tolerance (gpicl_core::share::REPLAY_TOLERANCE): 3 points of mean accuracy.
  assert.ok(diff <= 0.03, `${what}: mean accuracies differ by ${diff}`);
}

test('a share link opens in a fresh profile with the same settings and its replay reproduces', async () => {
  const a = await open(tinyLink({ seed: 7 }));
  let url;
  try {
    await a.page.waitForSelector('#link-info', { timeout: 120_000 });
    await a.page.waitForSelector('#backend.webgpu', { timeout: 120_000 });
    await waitFor(a.page, () => Number(document.querySelector('#step')?.textContent) >= 12);
    const step = await pauseAndSettle(a.page);
    await a.page.click('#share');
    url = await (await a.page.waitForSelector('#share-url')).inputValue();
    assert.match(url, /#v=1&/);
    assert.match(url, /&seed=7&/);
    assert.match(url, new RegExp(`&replay=${step}\\.[0-9a-f]{16}\\.`));
    report.share_link = url;
    report.share_link_chars = url.length;
    assert.deepEqual(a.errors, [], 'console errors (profile A)');
  } finally {
    await a.close();
  }
  // A fresh profile: nothing saved, nothing cached.
  const b = await openBrowser(true, url);
  try {
    await b.page.waitForSelector('#link-info', { timeout: 120_000 });
    assert.equal(await b.page.locator('#link-problems').count(), 0, 'the link decodes without problems');
    assert.equal(await b.page.inputValue('#seed'), '7');
    assert.equal(await b.page.inputValue('#batch-size'), '8');
    await waitFor(b.page, () => document.querySelector('#replay-status')?.dataset.outcome !== 'pending', null, 300_000);
    const outcome = await b.page.textContent('#replay-status');
    report.replay_outcome = outcome;
    assert.equal(await b.page.getAttribute('#replay-status', 'data-outcome'), 'reproduced', outcome);
    assert.deepEqual(b.errors, [], 'console errors (profile B)');
  } finally {
    await b.close();
  }
});

test('a hand-edited link that asks for too much memory names the field and falls back', async () => {
  const { page, close } = await openBrowser(false, server.base + tinyLink({ batch: 100000, T: 200, heads: 'x' }));
  try {
    await page.waitForSelector('#link-problems', { timeout: 120_000 });
    const problems = await page.textContent('#link-problems');
    assert.match(problems, /batch: "100000" is not a whole number in 1\.\.=512/);
    assert.match(problems, /heads: "x"/);
    assert.equal(await page.inputValue('#batch-size'), '32', 'the default batch');
    const broken = await openBrowser(false, server.base + '#not-a-link');
    try {
      await broken.page.waitForSelector('#io-error', { timeout: 120_000 });
      assert.match(await broken.page.textContent('#io-error'), /does not hold a gpicl link/);
    } finally {
      await broken.close();
    }
  } finally {
    await close();
  }
});

test('reloading after step N offers the autosave and resumes at step N', async () => {
  const { page, errors, close } = await open(tinyLink({ seed: 3 }));
  try {
    await page.waitForSelector('#backend.webgpu', { timeout: 120_000 });
    await waitFor(page, () => Number(document.querySelector('#step')?.textContent) >= 12);
    const n = await pauseAndSettle(page);
    report.reload_saved_step = n;
    await page.reload();
    await page.waitForSelector('#resume-offer', { timeout: 120_000 });
    assert.match(await page.textContent('#resume-offer'), new RegExp(`saved at step ${n}\\.`));
    // Nothing trains (or overwrites the save) until the user answers.
    await page.waitForTimeout(2000);
    assert.equal(await stepCount(page), 0);
    await page.click('#resume');
    await waitFor(page, (n) => Number(document.querySelector('#step').textContent) === n, n, 30_000);
    assert.match(await page.textContent('#notice'), new RegExp(`Resumed the run saved at step ${n}`));
    // Its curves and losses came back with it, and it trains on from N.
    await page.waitForSelector('#loss-chart svg path.series');
    await page.click('#run-toggle');
    await waitFor(page, (n) => Number(document.querySelector('#step').textContent) >= n + 2, n);
    assert.deepEqual(errors, [], 'console errors');
  } finally {
    await close();
  }
});

/** Draws a stroke across the pad (canvas coordinates 0–280) and adds it to the context. */
async function padExample(page, x) {
  await page.locator('#pad').scrollIntoViewIfNeeded();
  const box = await page.locator('#pad').boundingBox();
  const at = (px, py) => [box.x + px * box.width / 280, box.y + py * box.height / 280];
  await page.mouse.move(...at(x, 40));
  await page.mouse.down();
  await page.mouse.move(...at(x, 240), { steps: 8 });
  await page.mouse.up();
  const n = await page.locator('#pad-context figure').count();
  await page.click('#pad-add:not([disabled])');
  await waitFor(page, (n) => document.querySelectorAll('#pad-context figure').length === n + 1, n, 30_000);
}

test('a destroyed GPU device restarts the worker and restores the run from its autosave, without reloading the page', async () => {
  const { page, errors, close } = await open(tinyLink({ seed: 4 }));
  try {
    await page.waitForSelector('#backend.webgpu', { timeout: 120_000 });
    // The page's own state: a marker, two examples on the drawing pad.
    await page.evaluate(() => { window.__marker = 'still here'; });
    await page.waitForSelector('#pad', { timeout: 120_000 });
    await padExample(page, 100);
    await padExample(page, 180);
    await waitFor(page, () => /autosaved at step \d+/.test(document.querySelector('#autosave')?.textContent ?? ''));
    const saved = Number((await page.textContent('#autosave')).match(/\d+/)[0]);
    const [worker] = page.workers();
    assert.ok(worker, 'no training worker');
    const devices = await worker.evaluate(() => {
      const d = self.gpiclDevices ?? [];
      d.forEach((x) => x.destroy());
      return d.length;
    });
    assert.ok(devices >= 1, 'the worker requested no WebGPU device');
    await waitFor(page, () => /device was lost/.test(document.querySelector('#notice')?.textContent ?? ''), null, 180_000);
    const notice = await page.textContent('#notice');
    report.device_lost_notice = notice;
    assert.match(notice, /The WebGPU device was lost \(reason: destroyed/);
    const restored = Number(notice.match(/autosave at step (\d+)/)[1]);
    assert.ok(restored >= saved, `restored step ${restored} < saved ${saved}`);
    await page.waitForSelector('#backend.webgpu', { timeout: 120_000 });
    await waitFor(page, (n) => Number(document.querySelector('#step').textContent) >= n + 2, restored);
    // Not reloaded: the marker, the pad's examples, one (new) worker.
    assert.equal(await page.evaluate(() => window.__marker), 'still here', 'the page was reloaded');
    assert.equal(await page.locator('#pad-context figure').count(), 2, "the pad's drawings are gone");
    assert.ok(!page.workers().includes(worker), 'the old worker still runs');
    assert.equal(page.workers().length, 1);
    assert.deepEqual(errors.filter((e) => !/lost|destroy/i.test(e)), [], 'console errors');
  } finally {
    await close();
  }
});

test('a crashed worker is restarted and the run restored from its autosave, the page untouched', async () => {
  const { page, close } = await openBrowser(false, server.base + tinyLink({ seed: 6 }));
  try {
    await page.evaluate(() => { window.__marker = 'still here'; });
    await waitFor(page, () => /autosaved at step \d+/.test(document.querySelector('#autosave')?.textContent ?? ''));
    const saved = Number((await page.textContent('#autosave')).match(/\d+/)[0]);
    const [worker] = page.workers();
    // A failure the worker's code does not catch (as a panic in its loop would be).
    await worker.evaluate(() => { Promise.reject(new Error('boom')); });
    await waitFor(page, () => /worker stopped/.test(document.querySelector('#notice')?.textContent ?? ''), null, 120_000);
    const notice = await page.textContent('#notice');
    report.crash_notice = notice;
    assert.match(notice, /The training worker stopped \(it crashed: boom\)/);
    const restored = Number(notice.match(/autosave at step (\d+)/)[1]);
    assert.ok(restored >= saved, `restored step ${restored} < saved ${saved}`);
    await waitFor(page, (n) => Number(document.querySelector('#step').textContent) >= n + 2, restored);
    assert.equal(await page.evaluate(() => window.__marker), 'still here', 'the page was reloaded');
    assert.ok(!page.workers().includes(worker), 'the crashed worker still runs');
    assert.equal(page.workers().length, 1);
  } finally {
    await close();
  }
});

test('two tabs in one profile each train and autosave their own run; a reload offers each its own back', async () => {
  const a = await open(tinyLink({ seed: 11 }));
  try {
    const b = await a.page.context().newPage();
    await b.goto(server.base + tinyLink({ seed: 12 }));
    const errorsB = [];
    b.on('pageerror', (e) => errorsB.push(String(e)));
    // Both train at once, each its own run.
    for (const page of [a.page, b]) await page.waitForSelector('#backend.webgpu', { timeout: 120_000 });
    for (const page of [a.page, b]) await waitFor(page, () => Number(document.querySelector('#step')?.textContent) >= 12);
    assert.equal(await a.page.inputValue('#seed'), '11');
    assert.equal(await b.inputValue('#seed'), '12');
    const stepA = await pauseAndSettle(a.page);
    const stepB = await pauseAndSettle(b);
    report.two_tabs_saved = [stepA, stepB];
    for (const [page, step, seed] of [[a.page, stepA, 11], [b, stepB, 12]]) {
      await page.reload();
      await page.waitForSelector('#resume-offer', { timeout: 120_000 });
      const offer = await page.textContent('#resume-offer');
      assert.match(offer, new RegExp(`saved at step ${step}\\. It is tiny, seed ${seed}\\.`), offer);
      await page.click('#resume');
      await waitFor(page, (n) => Number(document.querySelector('#step').textContent) === n, step, 60_000);
      assert.equal(await page.inputValue('#seed'), String(seed));
    }
    assert.deepEqual([...a.errors, ...errorsB], [], 'console errors');
  } finally {
    await a.close();
  }
});

test('checkpoints move between the CLI and the page with the same curves; a corrupted one is refused', async () => {
  const run = join(scratch, 'cli-run');
  gpicl('train', '--preset', 'tiny', '--seed', '5', '--steps', '6', '--out', run);
  const cliCheckpoint = await readFile(join(run, 'checkpoint.gpicl'));
  const cliResults = JSON.parse(await readFile(join(run, 'results.json'), 'utf8'));

  const { page, errors, close } = await open(tinyLink({ seed: 9 }));
  try {
    await page.waitForSelector('#backend.webgpu', { timeout: 120_000 });
    await waitFor(page, () => Number(document.querySelector('#step')?.textContent) >= 2);
    // A damaged checkpoint: an error, and the running experiment goes on untouched.
    const corrupted = cliCheckpoint.subarray(0, cliCheckpoint.length - 100);
    await page.setInputFiles('#import', { name: 'damaged.gpicl', mimeType: 'application/octet-stream', buffer: corrupted });
    await page.waitForSelector('#io-error', { timeout: 30_000 });
    const message = await page.textContent('#io-error');
    report.corrupted_checkpoint_message = message;
    assert.match(message, /damaged\.gpicl was not loaded: .*truncated.*The running experiment is unchanged/);
    const s = await stepCount(page);
    await waitFor(page, (s) => Number(document.querySelector('#step').textContent) >= s + 2, s);
    assert.equal(await page.inputValue('#seed'), '9');

    // The CLI's checkpoint loads here and is evaluated on WebGPU: the CLI's curves (Flex).
    await page.setInputFiles('#import', { name: 'cli.gpicl', mimeType: 'application/octet-stream', buffer: cliCheckpoint });
    await page.waitForSelector('#notice', { timeout: 60_000 });
    assert.match(await page.textContent('#notice'), /Loaded cli\.gpicl: step 6, written by gpicl [\d.]+, flex/);
    assert.equal(await stepCount(page), 6);
    assert.equal(await page.inputValue('#seed'), '5');
    await waitFor(page, () => document.querySelector('#acc-chart svg title')?.textContent.endsWith('step 6'));
    const pageResults = JSON.parse(await readFile(await download(page, '#export-json', 'page-after-import.json'), 'utf8'));
    assertCurvesClose(pageResults.history.at(-1).curves, cliResults.history.at(-1).curves, 'cli_checkpoint_in_page');

    // Train on here, then evaluate the page's checkpoint with the CLI: the page's curves.
    await page.click('#run-toggle');
    await waitFor(page, () => Number(document.querySelector('#step').textContent) >= 10);
    const step = await pauseAndSettle(page);
    const checkpoint = await download(page, '#export-checkpoint', 'page.gpicl');
    const results = JSON.parse(await readFile(await download(page, '#export-json', 'page.json'), 'utf8'));
    assert.equal(results.history.at(-1).step, step);
    assert.ok(results.train_time_s > 0, 'training time recorded');
    // Every step's loss since the CLI's checkpoint (step 6), labelled with its step.
    assert.deepEqual([results.loss_log[0][0], results.loss_log.at(-1)[0], results.loss_log.length], [7, step, step - 6]);
    const csv = await readFile(await download(page, '#export-csv', 'page.csv'), 'utf8');
    assert.match(csv, /^# gpicl /);
    assert.ok(csv.split('\n').length > 3 * 12);
    const svg = await readFile(await download(page, '#export-svg', 'page.svg'), 'utf8');
    assert.match(svg, /^<svg/);
    const png = await readFile(await download(page, '#export-png', 'page.png'));
    assert.deepEqual([...png.subarray(1, 4)], [0x50, 0x4e, 0x47]);
    const cliEval = join(scratch, 'cli-eval.json');
    gpicl('eval', '--checkpoint', checkpoint, '--json', cliEval);
    assertCurvesClose(results.history.at(-1).curves, JSON.parse(await readFile(cliEval, 'utf8')), 'page_checkpoint_in_cli');
    // The CLI continues the page's run from its file.
    gpicl('train', '--resume', checkpoint, '--steps', String(step + 2), '--out', join(scratch, 'from-page'));
    const continued = JSON.parse(await readFile(join(scratch, 'from-page', 'results.json'), 'utf8'));
    assert.equal(continued.history.at(-1).step, step + 2);

    // A results file overlays its curves on this run's.
    await page.setInputFiles('#import', { name: 'cli-results.json', mimeType: 'application/json', buffer: Buffer.from(JSON.stringify(cliResults)) });
    await waitFor(page, () => /cli-results\.json, step 6/.test(document.querySelector('#acc-chart svg')?.textContent ?? ''), null, 30_000);
    assert.deepEqual(errors, [], 'console errors');
  } finally {
    await close();
  }
});

test('a link made by the CLI on Flex replays on WebGPU within tolerance', async () => {
  const run = join(scratch, 'cli-share');
  gpicl('train', '--preset', 'tiny', '--seed', '2', '--steps', '8', '--out', run);
  const url = gpicl('share', run, '--base', server.base).trim();
  assert.match(url, /&replay=8\./);
  const { page, errors, close } = await openBrowser(true, url);
  try {
    await page.waitForSelector('#link-info', { timeout: 120_000 });
    assert.equal(await page.locator('#link-problems').count(), 0, 'the CLI link decodes without problems');
    await waitFor(page, () => document.querySelector('#replay-status')?.dataset.outcome !== 'pending', null, 300_000);
    const outcome = await page.textContent('#replay-status');
    report.cli_link_replay_on_webgpu = outcome;
    assert.equal(await page.getAttribute('#replay-status', 'data-outcome'), 'reproduced', outcome);
    assert.deepEqual(errors, [], 'console errors');
  } finally {
    await close();
  }
});

test('a diverging run rolls back to its last saved state, pauses and says what to change', async () => {
  // A checkpoint whose weights are scaled by 1e20: finite (it loads), but attention scores
  // overflow, so the first step's loss is not finite.
  const run = join(scratch, 'cli-diverge');
  gpicl('train', '--preset', 'tiny', '--steps', '4', '--out', run);
  const bytes = Buffer.from(await readFile(join(run, 'checkpoint.gpicl')));
  const headerEnd = 20 + Number(bytes.readBigUInt64LE(12));
  const header = JSON.parse(bytes.subarray(20, headerEnd).toString('utf8'));
  const params = header.params.reduce((n, p) => n + p.shape.reduce((a, b) => a * b, 1), 0);
  for (let i = 0; i < params; i++) {
    const at = headerEnd + 4 * i;
    bytes.writeFloatLE(bytes.readFloatLE(at) * 1e20, at);
  }
  const { page, close } = await open(tinyLink({ seed: 1 }));
  try {
    await page.waitForSelector('#backend.webgpu', { timeout: 120_000 });
    await waitFor(page, () => Number(document.querySelector('#step')?.textContent) >= 1);
    await page.setInputFiles('#import', { name: 'scaled.gpicl', mimeType: 'application/octet-stream', buffer: bytes });
    await waitFor(page, () => /Loaded scaled\.gpicl: step 4/.test(document.querySelector('#notice')?.textContent ?? ''), null, 60_000);
    await page.click('#run-toggle');
    await waitFor(page, () => /training diverged/.test(document.querySelector('#notice')?.textContent ?? ''), null, 120_000);
    const notice = await page.textContent('#notice');
    report.divergence_notice = notice;
    assert.match(notice, /^The loss became (NaN|inf|-inf|[\d.e+]+) at step 5: training diverged\. Lower the learning rate or raise Adam ε\./);
    assert.match(notice, /went back to its last saved state, step 4 and is paused/);
    assert.equal(await stepCount(page), 4);
    await waitFor(page, () => document.querySelector('#state').textContent === 'paused', null, 30_000);
    assert.equal(await page.locator('#error').count(), 0, 'no frozen error state');
  } finally {
    await close();
  }
});
