// Where the page's renderer memory goes while it trains: a timeline for finding what grows.
// Run by `cargo xtask memory-timeline [--gpu] [--infra] [--seconds N]` (after building dist/).
// - Default: a browser with no DevTools attached (as a visitor's; `openBare`), the renderer's
//   `/proc/PID/smaps` every 0.5 s: its total RSS and its largest mappings (start address, name
//   if any, MiB resident). The WebAssembly memories, the module's bytes and the garbage-collected
//   heaps are anonymous blocks; their start addresses tell them apart from line to line.
// - `--infra`: Chromium's own accounting instead, with DevTools attached (Playwright; that copy
//   of each response body is in the figures): a memory-infra dump every 2 s
//   (`Tracing.requestMemoryDump`), printing each allocator whose size moved by over 0.5 MiB
//   (blink_gc: Blink's garbage-collected heap, per thread; partition_alloc/partitions/*;
//   v8/main and v8/workers; malloc).
// - `--gpu`: on WebGPU (SwiftShader here) instead of the CPU fallback.
// Lines carry the run's step, read from the tab's title.

import { readFile } from 'node:fs/promises';
import { open, openBare, profileProcesses, serveDist } from './browser.mjs';

const args = process.argv.slice(2);
const gpu = args.includes('--gpu');
const infra = args.includes('--infra');
const i = args.indexOf('--seconds');
const seconds = i >= 0 ? Number(args[i + 1]) : 60;
const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));
const server = await serveDist();

async function mappings(pid) {
  const maps = [];
  let cur = null;
  for (const line of (await readFile(`/proc/${pid}/smaps`, 'utf8')).split('\n')) {
    const m = line.match(/^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \S+\s*(.*)$/);
    if (m) {
      cur = { start: m[1], name: m[3].split('/').pop(), rss: 0 };
      maps.push(cur);
    } else if (cur) {
      const r = line.match(/^Rss:\s+(\d+) kB/);
      if (r) cur.rss = Number(r[1]) / 1024;
    }
  }
  const total = maps.reduce((a, m) => a + m.rss, 0);
  const largest = maps.filter((m) => m.rss >= 2).sort((a, b) => b.rss - a.rss).slice(0, 9)
    .map((m) => `${m.start.slice(-7)}${m.name ? `:${m.name}` : ''}:${m.rss.toFixed(1)}`);
  return { total, largest };
}

if (!infra) {
  const bare = await openBare(gpu, server.base);
  const step = async () => Number((await bare.title()).match(/^step (\d+)/)?.[1] ?? 0);
  while ((await step()) < 1) await sleep(250);
  // The page's renderer: the profile's largest (the others hold a blank tab or wait spare).
  const renderers = (await profileProcesses(bare.profile)).filter((p) => p.type === 'renderer');
  const { pid } = renderers.sort((a, b) => b.rss - a.rss)[0];
  const t0 = Date.now();
  let peak = 0;
  while (Date.now() - t0 < seconds * 1000) {
    const { total, largest } = await mappings(pid);
    peak = Math.max(peak, total);
    const t = ((Date.now() - t0) / 1000).toFixed(1).padStart(5);
    console.log(`${t} s  step ${String(await step()).padStart(5)}  total ${total.toFixed(1)} MiB | ${largest.join(' ')}`);
    await sleep(500);
  }
  console.log(`peak ${peak.toFixed(1)} MiB`);
  await bare.close();
} else {
  const { page, close } = await open(gpu, server.base);
  await page.waitForFunction(() => Number(document.querySelector('#step')?.textContent) >= 1,
    null, { timeout: 600_000 });
  const cdp = await page.context().newCDPSession(page);
  const events = [];
  cdp.on('Tracing.dataCollected', (e) => events.push(...e.value));
  const complete = new Promise((ok) => cdp.once('Tracing.tracingComplete', ok));
  await cdp.send('Tracing.start', {
    traceConfig: {
      includedCategories: ['disabled-by-default-memory-infra'], excludedCategories: ['*'],
      memoryDumpConfig: { triggers: [] },
    },
  });
  const steps = [];
  const t0 = Date.now();
  while (Date.now() - t0 < seconds * 1000) {
    steps.push(await page.textContent('#step'));
    await cdp.send('Tracing.requestMemoryDump', { levelOfDetail: 'detailed' });
    await sleep(2000);
  }
  await cdp.send('Tracing.end');
  await complete;
  const byPid = {};
  for (const e of events.filter((e) => e.ph === 'v' && e.args?.dumps?.allocators)) {
    (byPid[e.pid] ??= []).push(e.args.dumps.allocators);
  }
  const mib = (a) => (a?.attrs?.size ? parseInt(a.attrs.size.value, 16) / 1048576 : 0);
  console.log(`steps at the dumps: ${steps.join(' ')}`);
  for (const [pid, dumps] of Object.entries(byPid)) {
    const names = Object.keys(dumps[0]);
    // The renderers (those with a Blink heap); the page's is the one that moves.
    if (!names.some((n) => n.startsWith('blink_gc'))) continue;
    console.log(`process ${pid}`);
    for (const n of names.filter((n) => n.split('/').length <= 3)) {
      const v = dumps.map((d) => mib(d[n]));
      if (Math.max(...v) - Math.min(...v) > 0.5) {
        console.log(`  ${n.padEnd(58)} ${v.map((x) => x.toFixed(1)).join(' ')}`);
      }
    }
  }
  await close();
}
server.close?.();
process.exit(0);
