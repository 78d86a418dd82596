//! Fetching the data bundles from the page's own origin.

use futures::future::try_join_all;
use js_sys::Uint8Array;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::Response;

use crate::data::{FILES, PageData};

/// Fetches `url` (relative to the page) as bytes.
pub async fn fetch_bytes(url: &str) -> Result<Vec<u8>, String> {
    let window = web_sys::window().ok_or("no browser window")?;
    let response = JsFuture::from(window.fetch_with_str(url))
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

/// Fetches the bundles (concurrently) and parses them.
pub async fn load_page_data() -> Result<PageData, String> {
    let bytes = try_join_all(FILES.iter().map(|f| fetch_bytes(f))).await?;
    let files: [Vec<u8>; 8] = bytes
        .try_into()
        .map_err(|_| "wrong number of data files".to_string())?;
    // Give the browser a frame to paint "parsing" before the (synchronous) parse.
    gloo_timers::future::TimeoutFuture::new(0).await;
    PageData::parse(&files).map_err(|e| format!("data bundles: {e}"))
}
