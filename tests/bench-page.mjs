// Page benchmark: opens the built page (dist/, served as a compressing static host serves it)
// in headless Chromium, lets it meta-train, and prints a table: the bytes a first visit
// fetches until the page is idle, the pretrained curves' time with the network throttled to
// 20 Mbit/s, time from page load to the first training step, training rate, the page thread's
// long tasks (> 50 ms, `PerformanceObserver('longtask')`) during a minute of training, the time
// from a click to the page's answer while training, the time "your data" takes on a table of
// 569 rows, the Chromium processes' memory after start
// and while training (in a browser with no DevTools attached, as a visitor's; also as measured
// with Playwright attached), and the in-context accuracy curves as the page computed them. Run by
// `cargo xtask bench-page [--cpu] [--minutes M] [--until-step N]` (after `cargo xtask dist`,
// which it runs). Writes tests/artifacts/bench-page-<device>.json.

import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { artifacts, clickLatency, numbers, open, openBare, processMemory, serveDist } from './browser.mjs';

const args = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const cpu = args.includes('--cpu');
const minutes = opt('--minutes', 5);
const untilStep = opt('--until-step', Infinity);

/** A table of `rows` rows, `features` features and `classes` Gaussian classes, from a fixed seed. */
function tableCsv(rows, features, classes) {
  let seed = 11;
  const uniform = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648) * 2 - 1;
  const lines = [[...Array(features).keys()].map((f) => `f${f}`).concat('label').join(',')];
  for (let i = 0; i < rows; i++) {
    const c = i % classes;
    const row = [...Array(features).keys()].map((f) => (((c + f) % 3) - 1 + 1.5 * uniform()).toFixed(3));
    lines.push(`${row.join(',')},${c}`);
  }
  return Buffer.from(lines.join('\n') + '\n');
}

const server = await serveDist();

// The pretrained curves on a 20 Mbit/s connection (a fresh profile: nothing cached).
const throttled = await open(!cpu, server.base, { mbps: 20 });
await throttled.page.waitForFunction(() => window.__painted.pretrained, null, { timeout: 600_000 });
const throttledMs = await throttled.page.evaluate(() => window.__painted.pretrained);
await throttled.close();

const sentBefore = server.sent().bytes;
const t0 = Date.now();
const { page, close, profile } = await open(!cpu, server.base);
const step = async () => Number(await page.textContent('#step'));
await page.waitForSelector('#pretrained-chart svg path.series', { timeout: 600_000 });
await page.waitForFunction(() => window.__painted.pretrained, null, { timeout: 600_000 });
const pretrainedMs = await page.evaluate(() => window.__painted.pretrained);
await page.waitForFunction(() => Number(document.querySelector('#step')?.textContent) >= 1,
  null, { timeout: 600_000, polling: 100 });
const firstStep = (await page.textContent('#first-step')).match(/([\d.]+) s/)[1];
// Idle: training has started and no request has gone out for 3 s.
const firstVisitBytes = (await server.quiet(page)).bytes - sentBefore;
const memoryAfterStart = await processMemory(profile);
const device = (await page.textContent('#backend')).replace('Device: ', '').split('·')[0].trim();

// The page thread's long tasks during a minute of training (the run is in a worker: the
// page's thread only draws what the worker reports).
const LONG_TASK_WINDOW_S = 60;
await page.evaluate(() => {
  window.__longTasks = [];
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) window.__longTasks.push([e.startTime, e.duration]);
  }).observe({ type: 'longtask' });
  window.__longTasksFrom = performance.now();
});
const stepsBeforeWindow = await step();
await page.waitForTimeout(LONG_TASK_WINDOW_S * 1000);
const longTasks = await page.evaluate((s) => window.__longTasks
  .filter(([t]) => t < window.__longTasksFrom + s * 1000).map(([, d]) => d), LONG_TASK_WINDOW_S);
const stepsInWindow = (await step()) - stepsBeforeWindow;
const longTaskSummary = {
  window_s: LONG_TASK_WINDOW_S, steps: stepsInWindow, count: longTasks.length,
  longest_ms: Math.max(0, ...longTasks), blocked_s: longTasks.reduce((a, b) => a + b, 0) / 1000,
};
// Said at once: on a slow device the rest (training, the final evaluation) takes long.
console.log('long tasks:', JSON.stringify(longTaskSummary));

// Click latency while training: the step-through's counter answers a click.
const latencies = [];
for (let i = 0; i < 5; i++) {
  const text = await page.textContent('#walk-count');
  latencies.push(await clickLatency(page, text.startsWith('0 ') ? '#walk-feed' : '#walk-back'));
  await page.waitForTimeout(1000);
}

// Train until the time or step budget is spent; sample the rate over the later part.
const samples = [];
const deadline = t0 + minutes * 60_000;
const memoryPeak = { ...memoryAfterStart };
/** Raises each figure of `peak` to the sample `m`'s where that is higher. */
const raise = (peak, m) => { for (const k of Object.keys(peak)) peak[k] = Math.max(peak[k], m[k]); };
while (Date.now() < deadline && (await step()) < untilStep) {
  // A run that has finished its steps no longer counts towards the rate. (Not "the step did
  // not move in 5 s": on SwiftShader one step takes longer than that.)
  if (samples.length >= 1 && (await page.textContent('#state')) !== 'training') break;
  samples.push([Date.now(), await step()]);
  const m = await processMemory(profile);
  raise(memoryPeak, m);
  await page.waitForTimeout(5000);
}
await page.click('#run-toggle'); // pause: the page evaluates the final model
await page.waitForFunction(() => document.querySelector('#state').textContent === 'paused',
  null, { timeout: 600_000, polling: 500 });
await page.waitForFunction(() => {
  const c = document.querySelector('#acc-chart figcaption')?.textContent ?? '';
  return c.includes(`step ${document.querySelector('#step').textContent} `);
}, null, { timeout: 600_000, polling: 500 });
const steps = await step();
// From the first step reported in the second half to the last one: on WebGPU the worker
// reports steps in chunks (5 steps, over a minute on SwiftShader), and a window that starts or
// ends between two reports would count a chunk too few or too many.
const moved = samples.filter((x, i) => i > 0 && x[1] !== samples[i - 1][1]);
const later = moved.filter((x) => x[0] >= (samples[Math.floor(samples.length / 2)] ?? [0])[0]);
const [half, last] = later.length >= 2 ? [later[0], later[later.length - 1]] : [moved[0], moved[moved.length - 1]];
const rate = last && half && last[0] > half[0] ? (last[1] - half[1]) / ((last[0] - half[0]) / 1000) : null;
const { header: headers, rows: table } = await numbers(page, 'acc-chart');
await page.screenshot({ path: join(artifacts, `bench-page-${cpu ? 'cpu' : 'webgpu'}.png`), fullPage: true });

// "Your data", the run paused: from a table chosen to its chart and the paired line on screen
// (the learner's 64 sequences with 8 views, the baselines' 16 and the best one's 64), for a
// table of the shape of the breast-cancer table (569 rows, 30 features, 2 classes), made here.
const yoursStart = Date.now();
await page.setInputFiles('#data-file', { name: 'bench.csv', mimeType: 'text/csv', buffer: tableCsv(569, 30, 2) });
await page.waitForSelector('#data-paired', { timeout: 600_000 });
const yoursS = (Date.now() - yoursStart) / 1000;
await close();

// Memory as a visitor's browser holds it: the page again, in a browser with no DevTools client
// attached (Playwright's session keeps a copy of every response body in the renderer). It is
// read from the tab's title: after start (the first step), then the peak over a minute of
// training, sampled every 2.5 s.
const BARE_WINDOW_S = 60;
const bare = await openBare(!cpu, server.base);
const bareStep = async () => Number((await bare.title()).match(/^step (\d+)/)?.[1] ?? 0);
const bareDeadline = Date.now() + 600_000;
while ((await bareStep()) < 1) {
  if (Date.now() > bareDeadline) throw new Error('the page without DevTools never took a step');
  await new Promise((ok) => setTimeout(ok, 250));
}
const bareAfterStart = await processMemory(bare.profile);
const barePeak = { ...bareAfterStart };
const bareFrom = await bareStep();
for (const end = Date.now() + BARE_WINDOW_S * 1000; Date.now() < end;) {
  await new Promise((ok) => setTimeout(ok, 2500));
  raise(barePeak, await processMemory(bare.profile));
}
const bareSteps = (await bareStep()) - bareFrom;
await bare.close();

const result = {
  device, first_visit_mib: firstVisitBytes / 1048576, pretrained_curves_20mbit_s: throttledMs / 1000,
  memory_after_start_mib: bareAfterStart, memory_peak_training_mib: barePeak, memory_window: { s: BARE_WINDOW_S, steps: bareSteps },
  memory_with_devtools_after_start_mib: memoryAfterStart, memory_with_devtools_peak_training_mib: memoryPeak,
  pretrained_curves_s: pretrainedMs / 1000, first_step_s: Number(firstStep), steps, minutes: (Date.now() - t0) / 60000,
  steps_per_s: rate, long_tasks: longTaskSummary, click_ms: latencies, your_data_s: yoursS, curve_header: headers,
  curve_at: Object.fromEntries([1, 5, 10, 20, table.length].map((k) => [k, table[k - 1]])),
};
await mkdir(artifacts, { recursive: true });
await writeFile(join(artifacts, `bench-page-${cpu ? 'cpu' : 'webgpu'}.json`), JSON.stringify(result, null, 2));

const pad = (s, n) => String(s).padEnd(n);
console.log(`\n| ${pad('measure', 38)} | value |`);
console.log(`|${'-'.repeat(40)}|-------|`);
const row = (k, v) => console.log(`| ${pad(k, 38)} | ${v} |`);
row('device', device);
row('first visit, fetched until idle (MiB)', (firstVisitBytes / 1048576).toFixed(2));
row('page load → pretrained curves, 20 Mbit/s (s)', (throttledMs / 1000).toFixed(2));
row('page load → pretrained curves painted (s)', (pretrainedMs / 1000).toFixed(2));
const mem = (m) => `page's renderer ${m.page.toFixed(0)} (all renderers ${m.renderer.toFixed(0)}), GPU process ${m['gpu-process'].toFixed(0)}, browser ${m.browser.toFixed(0)}, other ${m.other.toFixed(0)}`;
row('memory after start (MiB RSS)', mem(bareAfterStart));
row(`memory, peak in ${BARE_WINDOW_S} s of training (MiB RSS; ${bareSteps} steps)`, mem(barePeak));
row('the same with DevTools attached: after start', mem(memoryAfterStart));
row('the same with DevTools attached: peak while training', mem(memoryPeak));
row('page load → first training step (s)', firstStep);
row(`page-thread long tasks in ${LONG_TASK_WINDOW_S} s of training (count, longest ms, s blocked; ${stepsInWindow} steps)`,
  `${longTasks.length}, ${longTaskSummary.longest_ms.toFixed(0)}, ${longTaskSummary.blocked_s.toFixed(2)}`);
row('click → page updated, while training (ms)', latencies.map((l) => l.toFixed(0)).join(', '));
row('training rate (steps/s, from the second half\'s first report to the last)', rate?.toFixed(3) ?? '– (too few reports)');
row(`steps in ${result.minutes.toFixed(1)} min`, steps);
row('your data: a 569 × 30 table chosen → its curves and verdict (s)', yoursS.toFixed(1));
for (const [k, r] of Object.entries(result.curve_at)) if (r) row(`accuracy at example ${k} (${headers.slice(1).join(' / ')})`, r.slice(1).join(' / '));
server.close();
