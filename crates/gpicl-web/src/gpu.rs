//! Choosing the compute device: WebGPU when the browser offers an adapter, otherwise burn's
//! Flex (CPU) compiled to WASM, with a message that says why. Works in the page (the GPU
//! check) and in the training worker (`navigator.gpu` exists in both).

use burn::prelude::Device;
use js_sys::{Function, Promise};
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

use crate::js_get as get;

/// The device the page trains on, and how to describe it.
#[derive(Clone)]
pub struct Backend {
    /// The burn device (WebGPU or Flex).
    pub device: Device,
    /// True on WebGPU.
    pub webgpu: bool,
    /// What the page shows: the adapter, or "CPU (Flex)".
    pub label: String,
    /// Why WebGPU is not used, when it is not.
    pub fallback: Option<String>,
}

const CPU_NOTE: &str = "Training runs on the CPU instead (burn's Flex backend in WebAssembly, in a worker beside the page): it works, only slower.";

/// Starts WebGPU (asynchronously, before any tensor exists) or falls back to Flex.
pub async fn init() -> Backend {
    let adapter = match webgpu_adapter().await {
        Ok(info) => info,
        Err(why) => return cpu(why),
    };
    match Device::wgpu_options().init_async().await {
        Ok(device) => Backend {
            device,
            webgpu: true,
            label: format!("WebGPU: {adapter}"),
            fallback: None,
        },
        Err(e) => cpu(format!("WebGPU could not start: {e}.")),
    }
}

impl Backend {
    /// The device as the protocol describes it to the page.
    pub fn info(&self) -> crate::protocol::BackendInfo {
        crate::protocol::BackendInfo {
            webgpu: self.webgpu,
            label: self.label.clone(),
            fallback: self.fallback.clone(),
        }
    }
}

fn cpu(why: String) -> Backend {
    Backend {
        device: Device::flex(),
        webgpu: false,
        label: "CPU (Flex, WebAssembly)".into(),
        fallback: Some(format!("{why} {CPU_NOTE}")),
    }
}

/// Asks the browser for a WebGPU adapter and describes it ("vendor architecture"), or says
/// why there is none.
async fn webgpu_adapter() -> Result<String, String> {
    let navigator = get(&js_sys::global(), "navigator");
    let gpu = get(&navigator, "gpu");
    if gpu.is_undefined() || gpu.is_null() {
        return Err("This browser does not offer WebGPU (navigator.gpu is missing).".into());
    }
    let request: Function = get(&gpu, "requestAdapter")
        .dyn_into()
        .map_err(|_| "navigator.gpu.requestAdapter is missing.".to_string())?;
    let promise: Promise = request
        .call0(&gpu)
        .map_err(|e| format!("WebGPU adapter request failed: {e:?}."))?
        .dyn_into()
        .map_err(|_| "WebGPU adapter request returned no promise.".to_string())?;
    let adapter = JsFuture::from(promise)
        .await
        .map_err(|e| format!("WebGPU adapter request failed: {e:?}."))?;
    if adapter.is_null() || adapter.is_undefined() {
        return Err(
            "WebGPU is present but no adapter is available (blocked or unsupported GPU).".into(),
        );
    }
    let info = get(&adapter, "info");
    let text: Vec<String> = ["vendor", "architecture", "description"]
        .iter()
        .filter_map(|k| get(&info, k).as_string())
        .filter(|s| !s.is_empty())
        .collect();
    Ok(if text.is_empty() {
        "adapter (no details given)".into()
    } else {
        text.join(" ")
    })
}
