//! Fetching the data bundles from the page's own origin, in the page or in the worker (the
//! global `fetch` exists in both).

use futures::future::try_join_all;
use js_sys::{Promise, Uint8Array};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::Response;

use gpicl_core::manifest::InputStats;

use crate::data::{PageData, TRAIN_FILES, WALK_FILES, WalkData};

#[wasm_bindgen]
extern "C" {
    /// The global `fetch` (of the window or of the worker).
    #[wasm_bindgen(js_name = fetch)]
    fn global_fetch(input: &str) -> Promise;
}

/// Fetches `url` (relative to the page, or absolute) as bytes.
pub async fn fetch_bytes(url: &str) -> Result<Vec<u8>, String> {
    let response = JsFuture::from(global_fetch(url))
        .await
        .map_err(|e| format!("cannot fetch {url}: {e:?}"))?;
    let response: Response = response
        .dyn_into()
        .map_err(|_| format!("{url}: not an HTTP response"))?;
    if !response.ok() {
        return Err(format!("cannot fetch {url}: HTTP {}", response.status()));
    }
    let buffer = response
        .array_buffer()
        .map_err(|e| format!("{url}: {e:?}"))?;
    let buffer = JsFuture::from(buffer)
        .await
        .map_err(|e| format!("{url}: {e:?}"))?;
    Ok(Uint8Array::new(&buffer).to_vec())
}

/// Fetches `files` (relative to `base`, concurrently).
async fn fetch_all<const N: usize>(base: &str, files: [&str; N]) -> Result<[Vec<u8>; N], String> {
    let urls: Vec<String> = files.iter().map(|f| format!("{base}{f}")).collect();
    let bytes = try_join_all(urls.iter().map(|u| fetch_bytes(u))).await?;
    bytes
        .try_into()
        .map_err(|_| "wrong number of data files".to_string())
}

/// The training data (the worker's), from the page's directory `base` (ends with `/`).
pub async fn load_train_data(base: &str) -> Result<PageData, String> {
    let files = fetch_all(base, TRAIN_FILES).await?;
    PageData::parse(&files).map_err(|e| format!("data bundles: {e}"))
}

/// The step-through's data (the page's), relative to the page, for a learner with `stats`.
pub async fn load_walk_data(stats: InputStats) -> Result<WalkData, String> {
    let files = fetch_all("", WALK_FILES).await?;
    WalkData::parse(&files, stats).map_err(|e| format!("data bundles: {e}"))
}
