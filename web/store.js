// The browser plumbing the page's Rust code calls (crates/gpicl-web/src/persist.rs):
// - gpiclStore: autosaves in IndexedDB, one per run *slot* (a put is one transaction, so a
//   save is whole or absent, never half-written). Each tab claims a slot and holds it with a
//   Web Lock while it is open: its own slot after a reload (sessionStorage names it), else the
//   newest save no open tab holds, else a new slot. Two tabs never write the same slot.
// - gpiclFiles: downloads (a Blob through an <a download>) and a chart's SVG as PNG.
// The WebGPU device-loss watch lives in the training worker (web/worker.js).
'use strict';

(() => {
  const DB = 'gpicl';
  const STORE = 'autosave';
  // slot → {time, step}: what claim() sorts by, without reading the checkpoints.
  const META = 'meta';
  // Saves kept at most (the oldest ones no open tab holds go first).
  const KEEP = 5;
  const SLOT = 'gpicl-slot';

  const open = () => new Promise((resolve, reject) => {
    const req = indexedDB.open(DB, 2);
    req.onupgradeneeded = () => {
      const db = req.result;
      if (!db.objectStoreNames.contains(STORE)) db.createObjectStore(STORE);
      if (!db.objectStoreNames.contains(META)) db.createObjectStore(META);
    };
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(new Error(`IndexedDB: ${req.error}`));
    req.onblocked = () => reject(new Error('IndexedDB is blocked by another tab'));
  });

  const run = async (mode, body) => {
    const db = await open();
    try {
      return await new Promise((resolve, reject) => {
        const tx = db.transaction([STORE, META], mode);
        let result;
        body(tx.objectStore(STORE), tx.objectStore(META), (r) => { result = r; });
        tx.oncomplete = () => resolve(result);
        tx.onerror = () => reject(new Error(`IndexedDB: ${tx.error}`));
        tx.onabort = () => reject(new Error(`IndexedDB: ${tx.error || 'aborted (storage full?)'}`));
      });
    } finally {
      db.close();
    }
  };

  const get = (slot) => run('readonly', (store, _meta, done) => {
    const req = store.get(slot);
    req.onsuccess = () => done(req.result);
  });

  // Every slot with a save and its time, newest first.
  const slots = () => run('readonly', (store, meta, done) => {
    const keys = store.getAllKeys();
    const times = meta.getAll();
    const names = meta.getAllKeys();
    // The requests of a transaction complete in order: when the last succeeds, all have.
    names.onsuccess = () => {
      const time = new Map(names.result.map((k, i) => [k, times.result[i]?.time ?? 0]));
      done(keys.result.map((k) => ({ slot: k, time: time.get(k) ?? 0 }))
        .sort((a, b) => b.time - a.time));
    };
  });

  const lockName = (slot) => `gpicl-run-${slot}`;
  // Holds the slot's lock until the tab goes (true), or says it is held elsewhere (false);
  // `wait`: wait a moment for it (a reloading tab's previous page lets go as it unloads).
  const hold = (slot, wait) => new Promise((resolve) => {
    if (!navigator.locks) { resolve(true); return; }
    const options = wait ? { signal: AbortSignal.timeout(3000) } : { ifAvailable: true };
    navigator.locks.request(lockName(slot), options, (lock) => {
      resolve(Boolean(lock));
      return lock ? new Promise(() => {}) : undefined;
    }).catch(() => resolve(false));
  });
  const held = async () => new Set(navigator.locks
    ? (await navigator.locks.query()).held.map((l) => l.name) : []);

  window.gpiclStore = {
    // This tab's slot and the save in it, if any: {slot, record}.
    async claim() {
      const mine = sessionStorage.getItem(SLOT);
      if (mine && await hold(mine, true)) return { slot: mine, record: await get(mine) };
      for (const { slot } of await slots()) {
        if (await hold(slot, false)) {
          sessionStorage.setItem(SLOT, slot);
          return { slot, record: await get(slot) };
        }
      }
      const slot = crypto.randomUUID ? crypto.randomUUID() : String(Math.random()).slice(2);
      await hold(slot, false);
      sessionStorage.setItem(SLOT, slot);
      return { slot, record: undefined };
    },
    async put(slot, record) {
      await run('readwrite', (store, meta) => {
        store.put(record, slot);
        meta.put({ time: Date.now(), step: record.step }, slot);
      });
      const busy = await held();
      const old = (await slots()).slice(KEEP).filter((s) => !busy.has(lockName(s.slot)));
      if (old.length) {
        await run('readwrite', (store, meta) => {
          for (const { slot: s } of old) { store.delete(s); meta.delete(s); }
        });
      }
    },
    get,
    remove: (slot) => run('readwrite', (store, meta) => { store.delete(slot); meta.delete(slot); }),
  };

  window.gpiclFiles = {
    download(name, mime, bytes) {
      const url = URL.createObjectURL(new Blob([bytes], { type: mime }));
      const a = document.createElement('a');
      a.href = url;
      a.download = name;
      document.body.appendChild(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
    },
    // The first <svg> inside `selector`, drawn at twice its size on a white canvas.
    async svgToPng(selector) {
      const svg = document.querySelector(`${selector} svg`);
      if (!svg) throw new Error(`no chart in ${selector}`);
      const box = svg.viewBox.baseVal;
      const [w, h] = [box?.width || svg.clientWidth || 600, box?.height || svg.clientHeight || 400];
      const text = new XMLSerializer().serializeToString(svg);
      const img = new Image();
      img.width = w;
      img.height = h;
      const loaded = new Promise((ok, fail) => {
        img.onload = ok;
        img.onerror = () => fail(new Error('the chart could not be drawn as an image'));
      });
      img.src = `data:image/svg+xml;charset=utf-8,${encodeURIComponent(text)}`;
      await loaded;
      const canvas = document.createElement('canvas');
      canvas.width = 2 * w;
      canvas.height = 2 * h;
      const g = canvas.getContext('2d');
      g.fillStyle = '#fff';
      g.fillRect(0, 0, canvas.width, canvas.height);
      g.drawImage(img, 0, 0, canvas.width, canvas.height);
      const blob = await new Promise((ok) => canvas.toBlob(ok, 'image/png'));
      return new Uint8Array(await blob.arrayBuffer());
    },
    copy: (text) => navigator.clipboard?.writeText(text) ?? Promise.reject(new Error('no clipboard')),
    svgText(selector) {
      const svg = document.querySelector(`${selector} svg`);
      if (!svg) throw new Error(`no chart in ${selector}`);
      return new XMLSerializer().serializeToString(svg);
    },
  };

})();
