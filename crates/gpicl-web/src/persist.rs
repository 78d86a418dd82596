//! The page's side of the browser plumbing in `web/store.js`: the autosaves in IndexedDB (one
//! slot per tab, held with a Web Lock), downloads, and a chart as SVG or PNG.

use std::rc::Rc;

use js_sys::{Object, Promise, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(catch, js_namespace = gpiclStore, js_name = put)]
    fn store_put(key: &str, record: &JsValue) -> Result<Promise, JsValue>;
    #[wasm_bindgen(catch, js_namespace = gpiclStore, js_name = claim)]
    fn store_claim() -> Result<Promise, JsValue>;
    #[wasm_bindgen(catch, js_namespace = gpiclStore, js_name = remove)]
    fn store_remove(key: &str) -> Result<Promise, JsValue>;
    #[wasm_bindgen(catch, js_namespace = gpiclFiles, js_name = download)]
    fn files_download(name: &str, mime: &str, bytes: &Uint8Array) -> Result<(), JsValue>;
    #[wasm_bindgen(catch, js_namespace = gpiclFiles, js_name = svgToPng)]
    fn files_svg_to_png(selector: &str) -> Result<Promise, JsValue>;
    #[wasm_bindgen(catch, js_namespace = gpiclFiles, js_name = copy)]
    fn files_copy(text: &str) -> Result<Promise, JsValue>;
    #[wasm_bindgen(catch, js_namespace = gpiclFiles, js_name = svgText)]
    fn files_svg_text(selector: &str) -> Result<String, JsValue>;
}

/// An autosaved run: its checkpoint file and its results (curves and losses) as JSON.
#[derive(Clone)]
pub struct Saved {
    /// The checkpoint file's bytes (`.gpicl`), held by JavaScript: an autosave comes every
    /// ~10 s, and the page's WebAssembly memory, which never shrinks, grew by a checkpoint's
    /// size at many of them while it held the last one there.
    pub checkpoint: Uint8Array,
    /// `results.json` of the run so far.
    pub results: String,
    /// Steps completed.
    pub step: usize,
}

fn message(e: JsValue) -> String {
    e.as_string()
        .or_else(|| {
            Reflect::get(&e, &"message".into())
                .ok()
                .and_then(|m| m.as_string())
        })
        .unwrap_or_else(|| format!("{e:?}"))
}

async fn wait(p: Result<Promise, JsValue>) -> Result<JsValue, String> {
    JsFuture::from(p.map_err(message)?).await.map_err(message)
}

/// Writes `saved` over the previous autosave in `slot` (one IndexedDB transaction: all or
/// nothing).
pub async fn save(slot: &str, saved: &Saved) -> Result<(), String> {
    let record = Object::new();
    let set = |k: &str, v: JsValue| Reflect::set(&record, &k.into(), &v).map_err(message);
    set("checkpoint", saved.checkpoint.clone().into())?;
    set("results", saved.results.as_str().into())?;
    set("step", (saved.step as f64).into())?;
    wait(store_put(slot, &record)).await.map(|_| ())
}

/// This tab's autosave slot (its own after a reload; else the newest save no open tab holds;
/// else a new one) and the save in it, if any (a record that is not whole reads as an error).
pub async fn claim() -> Result<(String, Result<Option<Saved>, String>), String> {
    let claimed = wait(store_claim()).await?;
    let slot = Reflect::get(&claimed, &"slot".into())
        .ok()
        .and_then(|s| s.as_string())
        .ok_or("no autosave slot")?;
    let record = Reflect::get(&claimed, &"record".into()).unwrap_or(JsValue::UNDEFINED);
    Ok((slot, read_record(&record)))
}

fn read_record(record: &JsValue) -> Result<Option<Saved>, String> {
    if record.is_undefined() || record.is_null() {
        return Ok(None);
    }
    let get = |k: &str| Reflect::get(record, &k.into()).unwrap_or(JsValue::UNDEFINED);
    let checkpoint = get("checkpoint")
        .dyn_into::<Uint8Array>()
        .map_err(|_| "the autosave has no checkpoint".to_string())?;
    let results = get("results")
        .as_string()
        .ok_or("the autosave has no results")?;
    let step = get("step").as_f64().ok_or("the autosave has no step")? as usize;
    Ok(Some(Saved {
        checkpoint,
        results,
        step,
    }))
}

/// Deletes the autosave in `slot`.
pub async fn discard(slot: &str) -> Result<(), String> {
    wait(store_remove(slot)).await.map(|_| ())
}

/// Offers `bytes` to the user as a download named `name`.
pub fn download(name: &str, mime: &str, bytes: &Uint8Array) -> Result<(), String> {
    files_download(name, mime, bytes).map_err(message)
}

/// Frees `bytes` now rather than at the renderer's next full garbage collection: detaches their
/// `ArrayBuffer` (`transfer(0)`: Chrome 114, Firefox 122, Safari 17.4; elsewhere the collector
/// frees them as before). A checkpoint (1.2 MiB) came with every autosave, ~10 s apart, and the
/// replaced ones waited, 2–4 of them, for a collection that comes every ~30 s. Only for bytes
/// nothing else holds: any other view of them reads as empty afterwards.
pub fn free(bytes: &Uint8Array) {
    let buffer = bytes.buffer();
    if let Ok(transfer) = Reflect::get(&buffer, &"transfer".into())
        && let Some(transfer) = transfer.dyn_ref::<js_sys::Function>()
    {
        let _ = transfer.call1(&buffer, &0.into());
    }
}

/// Frees a save's checkpoint ([`free`]) if `saved` is its last holder; else leaves it.
pub fn release(saved: Rc<Saved>) {
    if let Ok(saved) = Rc::try_unwrap(saved) {
        free(&saved.checkpoint);
    }
}

/// Copies `text` to the clipboard (the browser may refuse: then the page shows it to copy).
pub async fn copy(text: &str) -> Result<(), String> {
    wait(files_copy(text)).await.map(|_| ())
}

/// The chart inside `selector` as SVG text.
pub fn chart_svg(selector: &str) -> Result<String, String> {
    files_svg_text(selector).map_err(message)
}

/// The chart inside `selector` as PNG bytes (drawn at twice its size).
pub async fn chart_png(selector: &str) -> Result<Uint8Array, String> {
    let bytes = wait(files_svg_to_png(selector)).await?;
    bytes
        .dyn_into::<Uint8Array>()
        .map_err(|_| "the PNG came back empty".to_string())
}

/// The file chosen in a file input: its name and bytes (at most `max_bytes`).
pub async fn read_file(
    input: &web_sys::HtmlInputElement,
    max_bytes: f64,
) -> Result<(String, Vec<u8>), String> {
    let file = input
        .files()
        .and_then(|f| f.get(0))
        .ok_or("no file chosen")?;
    read(&file, max_bytes).await
}

/// A file's name and bytes (at most `max_bytes`): chosen in a control or dropped on the page.
pub async fn read(file: &web_sys::File, max_bytes: f64) -> Result<(String, Vec<u8>), String> {
    let name = file.name();
    if file.size() > max_bytes {
        return Err(format!(
            "{name} is {:.0} MiB; at most {:.0} MiB are read",
            file.size() / 1048576.0,
            max_bytes / 1048576.0
        ));
    }
    let buffer = JsFuture::from(file.array_buffer())
        .await
        .map_err(|e| format!("{name}: {}", message(e)))?;
    Ok((name, Uint8Array::new(&buffer).to_vec()))
}
