//! # gpicl-web
//!
//! The web page of gpicl: a Transformer meta-trains on WebGPU (or on the CPU through Flex)
//! in the browser while the page plots how its in-context accuracy rises.
//!
//! Native-testable parts: [`data`] (bundle bytes → datasets), [`session`] (training steps and
//! evaluation, all asynchronous reads), [`learner`] (the shipped pretrained learner fed one
//! example at a time through its KV cache), [`pretrained`] (its figure, also as the static
//! HTML `index.html` carries), [`drawing`] (a drawing → an MNIST-style input),
//! [`settings`] (the controls' table of fields), [`chart`] (SVG line charts) and [`image`]
//! (images as data URLs). The
//! browser-only parts (the Yew components, WebGPU start-up, fetching) are compiled for
//! `wasm32` only.

#![warn(missing_docs)]

/// The repository's root, for tests that read its files. Read at run time (`cargo test` sets
/// `CARGO_MANIFEST_DIR`), not baked in at compile time: one target directory serves several
/// checkouts, and cargo may run a test built from another one (as xtask's `root`).
#[cfg(test)]
pub(crate) fn repo_root() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(
            || env!("CARGO_MANIFEST_DIR").into(),
            std::path::PathBuf::from,
        )
        .join("../..")
}

pub mod chart;
pub mod data;
pub mod drawing;
pub mod explorer;
pub mod image;
pub mod learner;
pub mod pretrained;
pub mod protocol;
pub mod record;
pub mod run_state;
pub mod runner;
pub mod session;
pub mod settings;
pub mod svg;
pub mod yours;

#[cfg(target_arch = "wasm32")]
mod app;
#[cfg(target_arch = "wasm32")]
mod charts;
#[cfg(target_arch = "wasm32")]
mod check;
#[cfg(target_arch = "wasm32")]
mod client;
#[cfg(target_arch = "wasm32")]
mod controls;
#[cfg(target_arch = "wasm32")]
mod fetch;
#[cfg(target_arch = "wasm32")]
mod gpu;
#[cfg(target_arch = "wasm32")]
mod pad;
#[cfg(target_arch = "wasm32")]
mod persist;
#[cfg(target_arch = "wasm32")]
mod share_panel;
#[cfg(target_arch = "wasm32")]
mod status;
#[cfg(target_arch = "wasm32")]
mod walk;
#[cfg(target_arch = "wasm32")]
mod widgets;
#[cfg(target_arch = "wasm32")]
pub mod worker;
#[cfg(target_arch = "wasm32")]
mod your_data;

#[cfg(target_arch = "wasm32")]
#[wasm_bindgen::prelude::wasm_bindgen]
extern "C" {
    /// `performance.now()`, in the page or in the worker.
    #[wasm_bindgen(js_namespace = performance, js_name = now)]
    fn performance_now() -> f64;
}

/// `v[key]`, or `undefined` (a JavaScript object's property, for the browser plumbing).
#[cfg(target_arch = "wasm32")]
fn js_get(v: &wasm_bindgen::JsValue, key: &str) -> wasm_bindgen::JsValue {
    js_sys::Reflect::get(v, &key.into()).unwrap_or(wasm_bindgen::JsValue::UNDEFINED)
}

/// The page's document (`None` in the training worker, which has no window).
#[cfg(target_arch = "wasm32")]
fn document() -> Option<web_sys::Document> {
    web_sys::window().and_then(|w| w.document())
}

/// Milliseconds since the page (or the worker) started (`performance.now()`).
#[cfg(target_arch = "wasm32")]
fn now_ms() -> f64 {
    performance_now()
}

#[cfg(target_arch = "wasm32")]
unsafe extern "C" {
    /// Synthesised by wasm-ld: runs the static constructors.
    fn __wasm_call_ctors();
}

/// Mounts the page (or, with `?check` in the URL, the GPU check) into `#app`; runs when the
/// module loads (in the page; in the training worker it only sets up).
#[cfg(target_arch = "wasm32")]
#[wasm_bindgen::prelude::wasm_bindgen(start)]
pub fn start() {
    // Run the static constructors (`inventory` registrations in the dependencies) once, here.
    // Without an explicit call, wasm-ld links "command-style" and wraps *every* export in a
    // call to them, so each call from JavaScript (every WebGPU callback and externref
    // allocation) re-ran them: the profile showed 70% of the main thread there and training
    // stalled the page for ~50 s per chunk of steps.
    // SAFETY: called once, before any code that reads what the constructors register.
    unsafe { __wasm_call_ctors() };
    console_error_panic_hook::set_once();
    // In the training worker, `web/worker.js` calls `worker::worker_start` next.
    if worker::in_worker() {
        return;
    }
    let search = web_sys::window()
        .and_then(|w| w.location().search().ok())
        .unwrap_or_default();
    let root = document().and_then(|d| d.get_element_by_id("app"));
    match root {
        Some(root) if search.contains("check") => {
            yew::Renderer::<check::CheckPage>::with_root(root).render();
        }
        Some(root) => {
            yew::Renderer::<app::App>::with_root(root).render();
        }
        None => web_sys::console::error_1(&"gpicl: no #app element in the page".into()),
    }
}
