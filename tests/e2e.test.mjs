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
import { gzipSync } from 'node:zlib';
import { artifacts, clickLatency, numbers, open as openBrowser, serveDist } from './browser.mjs';

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

/** Draws a polyline (canvas coordinates, 0–280) on the pad with the mouse. */
async function draw(page, points) {
  await page.locator('#pad').scrollIntoViewIfNeeded();
  const box = await page.locator('#pad').boundingBox();
  const at = ([x, y]) => [box.x + x * box.width / 280, box.y + y * box.height / 280];
  await page.mouse.move(...at(points[0]));
  await page.mouse.down();
  for (const p of points.slice(1)) await page.mouse.move(...at(p), { steps: 4 });
  await page.mouse.up();
}

const circle = (cx, cy, r) => Array.from({ length: 25 }, (_, i) =>
  [cx + r * Math.cos(i * Math.PI / 12), cy + r * Math.sin(i * Math.PI / 12)]);
const SHAPES = [
  (j) => [[140 + 6 * j, 50], [136 + 6 * j, 230]],              // A: a vertical bar
  (j) => [[50, 140 + 8 * j], [230, 134 + 8 * j]],              // B: a horizontal bar
  (j) => circle(140 + 5 * j, 140, 70 + 8 * j),                 // C: a ring
];

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

test('the page meta-trains on WebGPU: pretrained curves first, steps, loss plot, accuracy curves, step-through, pause', async () => {
  const { page, errors, close } = await open(true, '');
  try {
    // The shipped learner's curves come first, before the GPU and the data (a fresh profile:
    // nothing cached). Measured three ways, reported, not asserted (timings are benchmarks):
    // the frame that first paints them (an observer installed before the page loads), the
    // page's own note, and the test's wall clock when its wait returns (an upper bound).
    await page.waitForSelector('#pretrained-chart svg path.series', { timeout: 60_000 });
    const seenAt = Date.now();
    report.pretrained_curves_seen_by_test_ms = Math.round(seenAt - await page.evaluate(() => performance.timeOrigin));
    assert.equal(await page.locator('#pretrained-chart svg path.series').count(), 3);
    assert.match(await page.textContent('#pretrained-chart figcaption'), /50th example: unseen MNIST tasks \d+\.\d%/);
    report.pretrained_curves_on_screen_ms = Number(await (await page.waitForSelector('.pretrained[data-loaded-ms]')).getAttribute('data-loaded-ms'));
    report.pretrained_curves_painted_ms = Math.round(await page.evaluate(() => window.__painted.pretrained));
    // Under it, folded: the shipped learner on the held-out suite (from its manifest), thirteen
    // datasets and their mean, and its paired difference from each baseline on the mean.
    await page.waitForSelector('.pretrained[data-loaded-ms] #pretrained-suite');
    await page.click('#pretrained-suite summary');
    assert.equal(await page.locator('#pretrained-suite tbody tr').count(), 14);
    const suitePaired = await page.textContent('#pretrained-suite-paired');
    report.pretrained_suite_paired = suitePaired;
    assert.match(suitePaired, /minus each baseline: 1-NN [+−]\d+\.\d ± \d+\.\d, logistic regression .* points/);
    await page.locator('#pretrained-suite').screenshot({ path: join(artifacts, 'pretrained-suite.png') });

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
    // The learner's three curves, then 1-NN and logistic regression fit on the same contexts
    // (unseen tasks), scored on the CPU between frames.
    await page.waitForFunction(() => document.querySelectorAll('#acc-chart svg path.series').length === 5,
      null, { timeout: 60_000, polling: 250 });
    assert.match(await page.textContent('#acc-chart svg'), /1-NN, same contexts/);
    assert.match(await page.textContent('#acc-chart svg'), /logistic regression, same contexts/);
    assert.equal(await page.locator('#acc-chart svg line.reference').count(), 1);
    assert.ok((await numbers(page, 'acc-chart')).rows.length >= 10);

    // Step-through (the pretrained learner, on the CPU with its KV cache): predictions are
    // shown; feeding an example changes them. The time from the click to the new prediction is
    // measured while training runs on the GPU (reported, not asserted).
    await page.waitForSelector('#walk-bars .bar', { timeout: 240_000 });
    const before = await page.innerHTML('#walk-bars');
    const latency = await clickLatency(page, '#walk-feed');
    report.webgpu_click_to_update_ms = latency;
    const after = await page.innerHTML('#walk-bars');
    assert.notEqual(after, before, 'the prediction bars did not change after feeding an example');
    assert.match(await page.textContent('#walk-count'), /^1 of /);

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

test('without WebGPU the page says so, trains on the CPU in its worker by itself, and the pad draws while it trains', async () => {
  const { page, errors, close } = await open(false, '');
  try {
    await page.waitForSelector('#fallback', { timeout: 120_000 });
    const note = await page.textContent('#fallback');
    assert.match(note, /CPU/);
    report.fallback_note = note.trim();
    assert.match(await page.textContent('#backend'), /CPU/);
    // Training runs in a worker, so it starts without a click: the page's thread stays free.
    await waitForSteps(page, 3, 240_000);
    assert.equal(await page.textContent('#state'), 'training');
    assert.equal(page.workers().length, 1, 'one training worker');
    // The tab's title says the run's step and state (bench-page reads it with no DevTools).
    const title = await page.title();
    const titled = Number(title.match(/^step (\d+) · training — gpicl/)?.[1]);
    assert.ok(titled >= 3 && titled <= await stepCount(page), title);
    await page.waitForSelector('#loss-chart svg path.series', { timeout: 60_000 });
    report.cpu_first_step = (await page.textContent('#first-step')).trim();

    // Strokes on the pad while it trains: each is drawn (the pad's preview follows) and the
    // step counter goes on rising meanwhile.
    await page.waitForSelector('#pad', { timeout: 120_000 });
    const drawn = [];
    for (let c = 0; c < 3; c++) {
      const before = await stepCount(page);
      await draw(page, SHAPES[c](0));
      await page.waitForSelector('#pad-thumb');
      await waitForSteps(page, before + 1, 60_000);
      drawn.push([before, await stepCount(page)]);
      await page.click('#pad-clear');
    }
    report.cpu_steps_around_strokes = drawn;
    assert.ok(drawn.every(([a, b]) => b > a), `steps did not rise while drawing: ${JSON.stringify(drawn)}`);

    // After the evaluation at step 20 the history plot shows the curve at steps 0 and 20,
    // and its table has one row per position.
    await page.waitForSelector('#history-chart svg', { timeout: 240_000 });
    assert.ok((await page.locator('#history-chart svg path.series').count()) >= 2);
    assert.equal((await numbers(page, 'history-chart')).rows.length, 30);
    // The two clocks: one heatmap row per evaluation, one cell per position.
    const rows = Number(await page.getAttribute('#heatmap-chart', 'data-rows'));
    assert.ok(rows >= 2);
    assert.ok((await page.locator('#heatmap-chart svg rect').count()) >= rows * 30);
    await page.screenshot({ path: join(artifacts, 'page-cpu.png'), fullPage: true });
    assert.deepEqual(errors, [], 'console errors');
  } finally {
    await close();
  }
});

test('step-through by keyboard: → feeds, ← goes back, R starts over', async () => {
  const { page, errors, close } = await open(false, '');
  try {
    await page.waitForSelector('#walk-verdict', { timeout: 120_000 });
    const count = () => page.textContent('#walk-count');
    const first = await page.textContent('#walk-verdict');
    assert.match(await count(), /^0 of 99 /);
    await page.keyboard.press('ArrowRight');
    await page.keyboard.press('ArrowRight');
    await page.waitForFunction(() => /^After 2 labelled/.test(document.querySelector('#walk-verdict')?.textContent ?? ''),
      null, { timeout: 30_000 });
    assert.match(await count(), /^2 of /);
    await page.keyboard.press('ArrowLeft');
    assert.match(await count(), /^1 of /);
    await page.keyboard.press('r');
    assert.match(await count(), /^0 of /);
    assert.equal(await page.textContent('#walk-verdict'), first, 'going back shows the same prediction');
    // Feed 40 examples by keyboard: the learner's running accuracy on this unseen task.
    for (let i = 0; i < 40; i++) await page.keyboard.press('Enter');
    await page.waitForFunction(() => /^After 40 labelled/.test(document.querySelector('#walk-verdict')?.textContent ?? ''),
      null, { timeout: 60_000 });
    report.walk_after_40 = (await page.textContent('#walk-verdict')).trim();
    // Where the prediction looked: per block, the most attended earlier examples, beside the
    // query's nearest neighbour (what 1-NN would copy).
    await page.waitForSelector('#walk-attention', { timeout: 30_000 });
    assert.equal(await page.getAttribute('#walk-attention', 'data-blocks'), '4');
    assert.equal(await page.locator('#walk-attention .attn-block').count(), 4);
    assert.equal(await page.locator('#walk-attention .attn-block').first().locator('figure').count(), 3);
    const nearest = Number(await page.getAttribute('#walk-attention', 'data-nearest'));
    assert.ok(nearest >= 0 && nearest < 40, `nearest ${nearest}`);
    report.walk_attention_tops = await page.$$eval('#walk-attention .attn-block', (b) => b.map((x) => Number(x.dataset.top)));
    report.walk_attention_nearest = nearest;
    await page.locator('.walk').screenshot({ path: join(artifacts, 'attention.png') });
    assert.deepEqual(errors, [], 'console errors');
  } finally {
    await close();
  }
});

test('phase explorer: the shipped sweep as a grid; a cell opens its curves and starts a live run', async () => {
  const { page, errors, close } = await open(false, '');
  try {
    await page.waitForSelector('#explorer .phase-grid', { timeout: 120_000 });
    assert.equal(await page.locator('#explorer button.cell').count(), 16);
    // Column 2^6, row d 64: the learner memorised its 64 tasks.
    await page.click('#cell-6');
    await page.waitForSelector('#explorer-run[data-phase="instance_memorization"]');
    assert.equal(await page.locator('#explorer-chart svg path.series').count(), 3);
    // Unlimited tasks, d 128: a general learner.
    await page.click('#cell-15');
    await page.waitForSelector('#explorer-run[data-phase="general_learning"]');
    assert.match(await page.textContent('#explorer-try'), /unlimited/);
    await page.click('#cell-6');
    await page.click('#explorer-try');
    await page.waitForFunction(() => document.querySelector('#tasks')?.value === '6',
      null, { timeout: 30_000, polling: 250 });
    report.explorer_cell_6 = (await page.textContent('#explorer-run figcaption')).trim();
    assert.deepEqual(errors, [], 'console errors');
  } finally {
    await close();
  }
});

test('drawing pad: three invented classes in context, a new drawing gets a prediction', async () => {
  const { page, errors, close } = await open(false, '');
  try {
    await page.waitForSelector('#pad', { timeout: 120_000 });
    for (let c = 0; c < 3; c++) {
      await page.click(`#pad-class-${c}`);
      for (let j = 0; j < 3; j++) {
        await draw(page, SHAPES[c](j));
        await page.waitForSelector('#pad-thumb');
        const n = await page.locator('#pad-context figure').count();
        await page.click('#pad-add:not([disabled])');
        await page.waitForFunction((n) => document.querySelectorAll('#pad-context figure').length === n + 1, n);
      }
    }
    // A new vertical bar: the learner's distribution over the three classes, live.
    await page.click('#pad-class-0');
    await draw(page, SHAPES[0](1.5));
    await page.waitForSelector('#pad-bars[data-predicted]', { timeout: 30_000 });
    assert.equal(await page.locator('#pad-bars .bar').count(), 3);
    report.pad_prediction_for_a = await page.getAttribute('#pad-bars', 'data-predicted');
    report.pad_knn_for_a = await page.getAttribute('#pad-knn', 'data-predicted');
    // Held back as a test: scored by the learner and both baselines.
    await page.click('#pad-test');
    await page.waitForSelector('#pad-accuracy[data-scored="1"]', { timeout: 30_000 });
    report.pad_accuracy = (await page.textContent('#pad-accuracy')).trim();
    assert.match(report.pad_accuracy, /in-context learner: \d+%/);
    await page.screenshot({ path: join(artifacts, 'pad.png'), fullPage: true });
    assert.deepEqual(errors, [], 'console errors');
  } finally {
    await close();
  }
});

/** A CSV made up here, not shipped: three blobs in 4 dimensions, labels that are words. */
// Three blobs of 4 features; `messy`, as a spreadsheet might write them: a text column
// ("zone", unrelated to the class) before the label, and every 20th row's x missing.
function blobsCsv(rows = 240, messy = false) {
  let seed = 7;
  const uniform = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648) * 2 - 1;
  const lines = [messy ? 'w,x,y,z,zone,animal' : 'w,x,y,z,animal'];
  for (let i = 0; i < rows; i++) {
    const [name, centre] = [['ant', -3], ['bee', 0], ['cow', 3]][i % 3];
    const row = [0, 1, 2, 3].map((f) => ((f % 2 ? -centre : centre) + 1.5 * uniform()).toFixed(3));
    if (messy) {
      if (i % 20 === 7) row[1] = i % 40 === 7 ? 'NA' : '';
      row.push(i % 7 < 3 ? 'north' : 'south');
    }
    lines.push(`${row.join(',')},${name}`);
  }
  return Buffer.from(lines.join('\n') + '\n');
}

test('your data: a CSV made up here, with a text column and missing values, is learnt in context above chance, beside the baselines, then again with another label column; a malformed one changes nothing', async () => {
  const { page, errors, close } = await open(false, '');
  try {
    await page.waitForSelector('#backend', { timeout: 120_000 });
    await page.waitForFunction(() => Number(document.querySelector('#step')?.textContent) >= 1,
      null, { timeout: 240_000, polling: 250 });
    await page.setInputFiles('#data-file', { name: 'blobs.csv', mimeType: 'text/csv', buffer: blobsCsv(240, true) });
    await page.waitForSelector('#data-chart svg', { timeout: 240_000 });
    // How the file was read: the missing values filled, the text column one feature per value.
    const notes = await page.locator('#data-notes li').allTextContents();
    report.your_data_notes = notes;
    assert.equal(notes.length, 2, notes.join(' | '));
    assert.match(notes[0], /^column 2 \(x\): 12 missing values filled with the column's mean \(-?\d+\.\d{4}\)$/);
    assert.equal(notes[1], 'column 5 (zone): text, read as 2 categories (one feature each)');
    // The learner's curves (alone and read with 8 views) and the three baselines (1-NN,
    // logistic regression, MLP).
    assert.equal(await page.locator('#data-chart svg path.series').count(), 5);
    const { header, rows } = await numbers(page, 'data-chart');
    assert.match(header[2], /8 views/);
    const column = (i) => rows.map((r) => parseFloat(r[i]) / 100);
    const lateMean = (c) => c.slice(-10).reduce((a, b) => a + b, 0) / 10;
    const [learner, views] = [column(1), column(2)];
    const [late, viewsLate] = [lateMean(learner), lateMean(views)];
    report.your_data_blobs = { first: learner[0], late_mean: late, views_late_mean: viewsLate, header, last_row: rows.at(-1) };
    assert.ok(late > 1 / 3 + 0.2, `late accuracy ${late}`);
    assert.ok(late > learner[0] + 0.2, `the curve does not rise: ${learner}`);
    assert.ok(viewsLate > 1 / 3 + 0.2, `late accuracy with views ${viewsLate}`);
    assert.match(await page.textContent('#data-chart figcaption'), /240 rows, 6 features, 3 classes/);
    // Whether the gap to the best baseline is more than the noise: paired by sequence on all 64
    // sequences, at every position of the last quarter (39–50).
    const paired = await page.textContent('#data-paired');
    report.your_data_paired = paired;
    assert.match(paired, /on 64 sequences at positions 39–50 \(the best baseline here, (1-NN|logistic regression|MLP.*), fit again on each of them\): the learner with 8 views minus it is [+−]\d+\.\d ± \d+\.\d points/);
    assert.ok(['above', 'level', 'below'].includes(await page.getAttribute('#data-paired', 'data-verdict')));
    // Another label column for the same file, chosen by its name: the zone (column 5, two
    // categories) learnt instead of the animal, which becomes three features.
    assert.match(await page.textContent('#data-columns'), /label was read from column 6 \(animal\)/);
    await page.selectOption('#data-relabel', '5');
    await page.waitForFunction(() => /240 rows, 7 features, 2 classes/.test(document.querySelector('#data-chart figcaption')?.textContent ?? ''),
      null, { timeout: 240_000, polling: 250 });
    assert.match(await page.textContent('#data-columns'), /label was read from column 5 \(zone\)/);
    assert.equal(await page.inputValue('#data-label'), '', 'the box for the next file is as it was');
    const chart = await page.innerHTML('#data-chart');
    // Columns that cannot be the label (w, x, y, z: measurements, not classes) are listed, not
    // offered.
    const offered = await page.locator('#data-relabel option').evaluateAll((options) =>
      options.map((o) => [o.value, o.disabled, o.textContent]));
    assert.deepEqual(offered.map((o) => o[1]), [true, true, true, true, false, false], JSON.stringify(offered));
    assert.equal(offered[0][2], 'column 1: w (not classes)');
    // A ragged row: the message names its line; the chart stays as it was, and the list its
    // column.
    const bad = Buffer.from('w,x,y,z,animal\n1,2,3,4,ant\n1,2,3,bee\n');
    await page.setInputFiles('#data-file', { name: 'ragged.csv', mimeType: 'text/csv', buffer: bad });
    await page.waitForSelector('#data-error', { timeout: 60_000 });
    const message = await page.textContent('#data-error');
    report.your_data_error = message;
    assert.match(message, /ragged\.csv was not loaded: .*line 3: 4 columns, expected 5.*keeps what it had/);
    assert.equal(await page.innerHTML('#data-chart'), chart, 'the chart changed');
    assert.equal(await page.inputValue('#data-relabel'), '5');
    // The list still belongs to the table shown: back to the animal, blobs.csv is learnt
    // again (not the file just refused).
    await page.selectOption('#data-relabel', '6');
    await page.waitForFunction(() => /240 rows, 6 features, 3 classes/.test(document.querySelector('#data-chart figcaption')?.textContent ?? ''),
      null, { timeout: 240_000, polling: 250 });
    assert.match(await page.textContent('#data-chart svg'), /blobs\.csv/);
    await page.locator('#your-data').screenshot({ path: join(artifacts, 'your-data.png') });
    // A file dropped on the section is read the same way.
    await page.evaluate((text) => {
      const dt = new DataTransfer();
      dt.items.add(new File([text], 'dropped.csv', { type: 'text/csv' }));
      const target = document.querySelector('#your-data');
      for (const type of ['dragover', 'drop']) {
        target.dispatchEvent(new DragEvent(type, { dataTransfer: dt, bubbles: true, cancelable: true }));
      }
    }, blobsCsv(90).toString());
    await page.waitForFunction(() => /dropped\.csv/.test(document.querySelector('#data-chart svg')?.textContent ?? ''),
      null, { timeout: 120_000, polling: 250 });
    assert.match(await page.textContent('#data-chart figcaption'), /90 rows, 4 features, 3 classes/);
    assert.equal(await page.locator('#data-error').count(), 0, 'the old error stayed');
    assert.deepEqual(errors, [], 'console errors');
  } finally {
    await close();
  }
});

/** MNIST-style IDX files made up here: 6×6 images of three classes (a bright row at 0, 2 or
 *  4 over noise) and their labels, gzipped. */
function idxPair(n = 180) {
  const side = 6;
  const header = (magic, dims) => {
    const b = Buffer.alloc(4 + 4 * dims.length);
    b.writeUInt32BE(magic, 0);
    dims.forEach((d, i) => b.writeUInt32BE(d, 4 + 4 * i));
    return b;
  };
  const pixels = Buffer.alloc(n * side * side);
  const labels = Buffer.alloc(n);
  for (let i = 0; i < n; i++) {
    labels[i] = i % 3;
    for (let p = 0; p < side * side; p++) {
      const noise = (i * 7919 + p * 104729) % 90;
      pixels[i * side * side + p] = Math.floor(p / side) === 2 * (i % 3) ? 160 + noise : noise;
    }
  }
  return {
    images: gzipSync(Buffer.concat([header(0x803, [n, side, side]), pixels])),
    labels: gzipSync(Buffer.concat([header(0x801, [n]), labels])),
  };
}

test('your data in the step-through, IDX images, and a share link that names the file and asks for it', async () => {
  const a = await open(false, '');
  let b;
  try {
    const { page } = a;
    await page.waitForFunction(() => Number(document.querySelector('#step')?.textContent) >= 1,
      null, { timeout: 240_000, polling: 250 });
    const csv = blobsCsv(150);
    await page.setInputFiles('#data-file', { name: 'blobs.csv', mimeType: 'text/csv', buffer: csv });
    await page.waitForSelector('#data-chart svg', { timeout: 240_000 });
    // The step-through now draws its tasks from the table: rows of numbers, the file's names.
    await page.waitForSelector('section.walk[data-source="yours"] #walk-bars .bar', { timeout: 60_000 });
    const names = await page.$$eval('#walk-bars .bar-label', (l) => l.map((e) => e.textContent));
    assert.deepEqual(names, ['ant', 'bee', 'cow']);
    for (let i = 0; i < 12; i++) await page.click('#walk-feed');
    await page.waitForFunction(() => /After 12 labelled/.test(document.querySelector('#walk-verdict')?.textContent ?? ''),
      null, { timeout: 60_000 });
    const verdict = await page.textContent('#walk-verdict');
    assert.match(verdict, /predicts (ant|bee|cow) \(\d+%\)\. The answer is (ant|bee|cow)/);
    const captions = await page.$$eval('section.walk .examples figcaption', (c) => c.map((e) => e.textContent).filter(Boolean));
    assert.ok(captions.slice(0, 12).every((c) => ['ant', 'bee', 'cow'].includes(c)), captions.join());
    assert.ok(await page.locator('section.walk .examples .row-values').count() > 0, 'rows shown');
    report.walk_on_your_data = verdict;
    await page.locator('section.walk').screenshot({ path: join(artifacts, 'walk-your-data.png') });
    // Back to MNIST and to the table again.
    await page.click('#walk-mnist');
    await page.waitForSelector('section.walk[data-source="mnist"] .examples img');
    await page.click('#walk-yours');
    await page.waitForSelector('section.walk[data-source="yours"]');

    // The link names the table (not its contents)...
    await page.click('#share');
    const url = await (await page.waitForSelector('#share-url')).inputValue();
    assert.match(url, /&table=150\.[0-9a-f]{16}\.last\.blobs\.csv$/);
    // ...and a page opened from it asks for the file, and knows it when given.
    b = await openBrowser(false, url);
    await b.page.waitForSelector('#data-wanted', { timeout: 120_000 });
    assert.match(await b.page.textContent('#data-wanted'), /blobs\.csv \(150 rows, label column last; fingerprint [0-9a-f]{16}\)/);
    await b.page.waitForFunction(() => Number(document.querySelector('#step')?.textContent) >= 1,
      null, { timeout: 240_000, polling: 250 });
    await b.page.setInputFiles('#data-file', { name: 'other.csv', mimeType: 'text/csv', buffer: blobsCsv(120) });
    await b.page.waitForSelector('#data-match[data-same="false"]', { timeout: 240_000 });
    assert.equal(await b.page.locator('#data-wanted').count(), 1, 'still asks for the file');
    await b.page.setInputFiles('#data-file', { name: 'blobs.csv', mimeType: 'text/csv', buffer: csv });
    await b.page.waitForSelector('#data-match[data-same="true"]', { timeout: 240_000 });
    assert.equal(await b.page.locator('#data-wanted').count(), 0);
    // The same file, the same tasks: the same curve as on the page that made the link.
    const table = async (p) => (await numbers(p, 'data-chart')).rows.map((r) => r[1]);
    assert.deepEqual(await table(b.page), await table(page));

    // IDX images and labels, chosen together in either order: learnt, and shown as images.
    const { images, labels } = idxPair();
    await page.setInputFiles('#data-file', [
      { name: 'rows-labels-idx1-ubyte.gz', mimeType: 'application/gzip', buffer: labels },
      { name: 'rows-images-idx3-ubyte.gz', mimeType: 'application/gzip', buffer: images },
    ]);
    await page.waitForFunction(() => /rows-labels/.test(document.querySelector('#data-chart svg')?.textContent ?? ''),
      null, { timeout: 240_000, polling: 250 });
    assert.match(await page.textContent('#data-chart figcaption'), /180 rows, 36 features, 3 classes/);
    const late = (await table(page)).slice(-10).map((t) => parseFloat(t) / 100);
    assert.ok(late.reduce((x, y) => x + y, 0) / late.length > 1 / 3 + 0.2, `late accuracy ${late}`);
    await page.waitForSelector('section.walk[data-source="yours"] .examples img');
    // One IDX file alone is refused with the reason; the chart stays.
    await page.setInputFiles('#data-file', { name: 'rows-images-idx3-ubyte.gz', mimeType: 'application/gzip', buffer: images });
    await page.waitForSelector('#data-error');
    assert.match(await page.textContent('#data-error'), /choose the images and the labels together/);
    assert.deepEqual(a.errors, [], 'console errors');
    assert.deepEqual(b.errors, [], 'console errors (opened from the link)');
  } finally {
    await a.close();
    await b?.close();
  }
});
