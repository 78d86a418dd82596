// The training worker's bootstrap (a module worker; crates/gpicl-web/src/worker.rs is the
// rest). The page sends {boot: {glue, module}}: the URL of the page's wasm-bindgen glue and
// its compiled WebAssembly.Module, so the worker instantiates the same module without fetching
// or compiling it again. Then the Rust side takes the messages (the protocol in protocol.rs).
//
// It also watches every WebGPU device the worker requests: when one is lost (driver reset, GPU
// process crash, `device.destroy()`), it tells the page, which starts a fresh worker (a fresh
// WebAssembly instance, so a fresh device) and restores the run from its autosave; the same
// when the worker crashes.

self.gpiclDevices = [];
if (typeof GPUAdapter !== 'undefined') {
  const request = GPUAdapter.prototype.requestDevice;
  GPUAdapter.prototype.requestDevice = async function (...args) {
    const device = await request.apply(this, args);
    self.gpiclDevices.push(device);
    device.lost.then((info) => {
      postMessage({ deviceLost: { reason: String(info.reason), message: info.message ?? '' } });
    });
    return device;
  };
}

// A failure the Rust side did not catch (a panic inside its loop rejects a promise): the page
// restarts the worker from the autosave.
addEventListener('unhandledrejection', (e) => {
  postMessage({ crashed: String(e.reason?.message ?? e.reason) });
});

self.onmessage = async (event) => {
  const boot = event.data?.boot;
  if (!boot) return;
  try {
    const glue = await import(boot.glue);
    await glue.default({ module_or_path: boot.module });
    glue.worker_start();
    postMessage({ booted: true });
  } catch (e) {
    postMessage({ bootError: String(e?.stack ?? e) });
  }
};
