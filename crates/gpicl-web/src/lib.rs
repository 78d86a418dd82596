//! # gpicl-web
//!
//! The web page of gpicl: a Transformer meta-trains on WebGPU (or on the CPU through Flex)
//! in the browser while the page plots how its in-context accuracy rises.
//!
//! Native-testable parts: [`data`] (bundle bytes → datasets), [`session`] (training steps,
//! evaluation, step-through predictions, all asynchronous reads), [`settings`] (the controls'
//! table of fields), [`chart`] (SVG line charts) and [`image`] (images as data URLs). The
//! browser-only parts (the Yew components, WebGPU start-up, fetching) are compiled for
//! `wasm32` only.

#![warn(missing_docs)]

pub mod chart;
pub mod data;
pub mod image;
pub mod session;
pub mod settings;

#[cfg(target_arch = "wasm32")]
mod app;
#[cfg(target_arch = "wasm32")]
mod check;
#[cfg(target_arch = "wasm32")]
mod fetch;
#[cfg(target_arch = "wasm32")]
mod gpu;

/// Mounts the page (or, with `?check` in the URL, the GPU check) into the document body.
#[cfg(target_arch = "wasm32")]
pub fn start() {
    console_error_panic_hook::set_once();
    let search = web_sys::window()
        .and_then(|w| w.location().search().ok())
        .unwrap_or_default();
    let root = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.get_element_by_id("app"));
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
