// Page benchmark: opens the built page (dist/) in headless Chromium, lets it meta-train, and
// prints a table: time from page load to the first training step, training rate, the time
// from a click to the page's answer while training, and the in-context accuracy curves as the
// page computed them. Run by `cargo xtask bench-page [--cpu] [--minutes M] [--until-step N]`
// (after `trunk build --release`). Writes tests/artifacts/bench-page-<device>.json.

import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { artifacts, clickLatency, open, serveDist } from './browser.mjs';

const args = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const cpu = args.includes('--cpu');
const minutes = opt('--minutes', 5);
const untilStep = opt('--until-step', Infinity);

const server = await serveDist();
const t0 = Date.now();
const { page, close } = await open(!cpu, server.base);
const step = async () => Number(await page.textContent('#step'));
await page.waitForSelector('#pretrained-chart svg path.series', { timeout: 600_000 });
await page.waitForFunction(() => window.__painted.pretrained, null, { timeout: 600_000 });
const pretrainedMs = await page.evaluate(() => window.__painted.pretrained);
if (cpu) {
  // On the CPU the page waits for a click before training.
  await page.waitForFunction(() => document.querySelector('#state')?.textContent === 'not started',
    null, { timeout: 600_000, polling: 100 });
  await page.click('#run-toggle');
}
await page.waitForFunction(() => Number(document.querySelector('#step')?.textContent) >= 1,
  null, { timeout: 600_000, polling: 100 });
const firstStep = (await page.textContent('#first-step')).match(/([\d.]+) s/)[1];
const device = (await page.textContent('#backend')).replace('Device: ', '').split('·')[0].trim();

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
while (Date.now() < deadline && (await step()) < untilStep) {
  samples.push([Date.now(), await step()]);
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
const half = samples[Math.floor(samples.length / 2)] ?? samples[0];
const last = samples[samples.length - 1];
const rate = last && half && last[0] > half[0] ? (last[1] - half[1]) / ((last[0] - half[0]) / 1000) : null;
const table = await page.$$eval('#acc-chart tbody tr', (rows) => rows.map((r) => [...r.cells].map((c) => c.textContent)));
const headers = await page.$$eval('#acc-chart thead th', (h) => h.map((c) => c.textContent));
const result = {
  device, pretrained_curves_s: pretrainedMs / 1000, first_step_s: Number(firstStep), steps, minutes: (Date.now() - t0) / 60000,
  steps_per_s: rate, click_ms: latencies, curve_header: headers,
  curve_at: Object.fromEntries([1, 5, 10, 20, table.length].map((k) => [k, table[k - 1]])),
};
await mkdir(artifacts, { recursive: true });
await writeFile(join(artifacts, `bench-page-${cpu ? 'cpu' : 'webgpu'}.json`), JSON.stringify(result, null, 2));
await page.screenshot({ path: join(artifacts, `bench-page-${cpu ? 'cpu' : 'webgpu'}.png`), fullPage: true });

const pad = (s, n) => String(s).padEnd(n);
console.log(`\n| ${pad('measure', 38)} | value |`);
console.log(`|${'-'.repeat(40)}|-------|`);
const row = (k, v) => console.log(`| ${pad(k, 38)} | ${v} |`);
row('device', device);
row('page load → pretrained curves painted (s)', (pretrainedMs / 1000).toFixed(2));
row('page load → first training step (s)', firstStep);
row('click → page updated, while training (ms)', latencies.map((l) => l.toFixed(0)).join(', '));
row('training rate (steps/s, second half)', rate?.toFixed(3));
row(`steps in ${result.minutes.toFixed(1)} min`, steps);
for (const [k, r] of Object.entries(result.curve_at)) if (r) row(`accuracy at example ${k} (${headers.slice(1).join(' / ')})`, r.slice(1).join(' / '));
await close();
server.close();
