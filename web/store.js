// The browser plumbing the page's Rust code calls (crates/gpicl-web/src/persist.rs):
// - gpiclStore: the autosave in IndexedDB (one record per key; a put is one transaction, so a
//   save is whole or absent, never half-written);
// - gpiclFiles: downloads (a Blob through an <a download>) and a chart's SVG as PNG;
// - the WebGPU device-loss watch: every device the page requests is watched; when one is lost
//   (driver reset, GPU process crash, `device.destroy()`), the page notes it in sessionStorage
//   and reloads, which re-creates the device; the app then restores the autosave and says so.
'use strict';

(() => {
  const DB = 'gpicl';
  const STORE = 'autosave';

  const open = () => new Promise((resolve, reject) => {
    const req = indexedDB.open(DB, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(STORE);
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(new Error(`IndexedDB: ${req.error}`));
    req.onblocked = () => reject(new Error('IndexedDB is blocked by another tab'));
  });

  const run = async (mode, body) => {
    const db = await open();
    try {
      return await new Promise((resolve, reject) => {
        const tx = db.transaction(STORE, mode);
        let result;
        body(tx.objectStore(STORE), (r) => { result = r; });
        tx.oncomplete = () => resolve(result);
        tx.onerror = () => reject(new Error(`IndexedDB: ${tx.error}`));
        tx.onabort = () => reject(new Error(`IndexedDB: ${tx.error || 'aborted (storage full?)'}`));
      });
    } finally {
      db.close();
    }
  };

  window.gpiclStore = {
    put: (key, record) => run('readwrite', (store) => { store.put(record, key); }),
    get: (key) => run('readonly', (store, done) => {
      const req = store.get(key);
      req.onsuccess = () => done(req.result);
    }),
    remove: (key) => run('readwrite', (store) => { store.delete(key); }),
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

  // Device-loss watch.
  let leaving = false;
  addEventListener('pagehide', () => { leaving = true; });
  if (typeof GPUAdapter !== 'undefined') {
    const request = GPUAdapter.prototype.requestDevice;
    GPUAdapter.prototype.requestDevice = async function (...args) {
      const device = await request.apply(this, args);
      (window.gpiclDevices ||= []).push(device);
      device.lost.then((info) => {
        if (leaving) return;
        leaving = true;
        sessionStorage.setItem('gpicl-device-lost',
          JSON.stringify({ reason: info.reason, message: info.message }));
        location.reload();
      });
      return device;
    };
  }
})();
