import { readFile, readdir } from 'node:fs/promises';
import { open, serveDist } from './browser.mjs';
const server = await serveDist();
const { page, close, profile } = await open(false, server.base);
await page.context().addInitScript(() => { addEventListener('TrunkApplicationStarted', (e) => { window.__wasmMem = () => e.detail.wasm.memory.buffer.byteLength / 1048576; }); });
await page.reload();
const t0=Date.now();
for (let i=0;i<60;i++) {
  const ws = page.workers();
  let wm = null;
  if (ws.length) wm = await ws[0].evaluate(() => self.__wasm ? self.__wasm.memory.buffer.byteLength/1048576 : null).catch(()=>null);
  const pm = await page.evaluate(() => window.__wasmMem ? window.__wasmMem() : null).catch(()=>null);
  const st = await page.textContent('#step').catch(()=>null);
  console.log(((Date.now()-t0)/1000).toFixed(1), 'page', pm, 'worker', wm, 'step', st);
  await page.waitForTimeout(500);
}
await page.waitForTimeout(5000);
console.log('page wasm memory MiB', await page.evaluate(() => window.__wasmMem()));
for (const w of page.workers()) console.log('worker', w.url());
async function pids() {
  const out = [];
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const cmd = await readFile(`/proc/${pid}/cmdline`, 'utf8');
      if (cmd.includes('--type=renderer') && cmd.includes(profile.split('/').pop()) ) out.push(pid);
      else if (cmd.includes('--type=renderer')) out.push(pid);
    } catch {}
  }
  return out;
}
for (const pid of await pids()) {
  const smaps = await readFile(`/proc/${pid}/smaps`, 'utf8').catch(() => '');
  const lines = smaps.split('\n');
  let cur = null; const maps = [];
  for (const l of lines) {
    const m = l.match(/^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$/);
    if (m) { cur = { size: (parseInt(m[2],16)-parseInt(m[1],16))/1048576, perm: m[3], name: m[4], rss: 0, anon:0 }; maps.push(cur); continue; }
    const r = l.match(/^Rss:\s+(\d+)/); if (r && cur) cur.rss = r[1]/1024;
    const a = l.match(/^Anonymous:\s+(\d+)/); if (a && cur) cur.anon = a[1]/1024;
  }
  const total = maps.reduce((s,m)=>s+m.rss,0);
  if (total < 200) { console.log(pid, 'small', total.toFixed(0)); continue; }
  console.log('renderer', pid, 'rss', total.toFixed(1));
  const groups = {};
  for (const m of maps) {
    const k = m.name ? (m.name.startsWith('/') ? m.name.split('/').pop() : m.name) : (m.size >= 1024 ? `anon-cage>=1GiB(${m.size.toFixed(0)})` : 'anon');
    groups[k] = (groups[k]||0) + m.rss;
  }
  for (const [k,v] of Object.entries(groups).sort((a,b)=>b[1]-a[1]).slice(0,15)) console.log('  ', k, v.toFixed(1));
  const big = maps.filter(m=>!m.name && m.rss>4).sort((a,b)=>b.rss-a.rss).slice(0,20);
  for (const m of big) console.log('   anon map size', m.size.toFixed(1), 'rss', m.rss.toFixed(1), m.perm);
}
await close(); server.close();
