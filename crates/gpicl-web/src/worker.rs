//! The training worker: a dedicated Web Worker running this same WebAssembly module (the page
//! hands it the compiled module, so nothing is fetched or compiled twice). It owns the run:
//! the device (WebGPU, or Flex when WebGPU is missing), the training data, the [`Runner`].
//! `web/worker.js` boots it and watches its WebGPU devices; the page's side is `client.rs`.
//!
//! Messages are [`Command`]s in and [`Event`]s out (`protocol.rs`), each as
//! `{json, bytes?}` with a carried file's bytes transferred, not copied.

use std::rc::Rc;

use futures::StreamExt;
use futures::channel::mpsc::{UnboundedReceiver, unbounded};
use js_sys::{Array, Object, Reflect, Uint8Array};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::{DedicatedWorkerGlobalScope, MessageEvent};

use burn::prelude::Device;
use gpicl_core::{Manifest, RunConfig, Transformer};

use crate::protocol::{Command, Event, File, Wire};
use crate::runner::Runner;
use crate::{fetch, gpu, now_ms, pretrained, yours};

/// True when this module runs in a dedicated worker (not in the page).
pub fn in_worker() -> bool {
    js_sys::global().is_instance_of::<DedicatedWorkerGlobalScope>()
}

/// A protocol message as `{json, bytes?}`, and the buffers to transfer.
pub fn to_js<M: Wire>(message: &M) -> (JsValue, Array) {
    let (json, bytes) = message.to_wire();
    let envelope = Object::new();
    let transfer = Array::new();
    let _ = Reflect::set(&envelope, &"json".into(), &json.into());
    match bytes {
        // A copy made for the message: moved to the other side, not copied again.
        Some(File::Bytes(bytes)) => {
            let array = Uint8Array::from(bytes.as_slice());
            transfer.push(&array.buffer());
            let _ = Reflect::set(&envelope, &"bytes".into(), &array);
        }
        // The sender's own (the page's autosave, kept as a rollback point): the browser
        // copies it.
        Some(File::Js(array)) => {
            let _ = Reflect::set(&envelope, &"bytes".into(), array);
        }
        None => {}
    }
    (envelope.into(), transfer)
}

/// A protocol message back from `{json, bytes?}`, its carried file left in JavaScript
/// ([`File::Js`]); `None` for other messages.
pub fn from_js<M: Wire>(data: &JsValue) -> Option<Result<M, String>> {
    let json = Reflect::get(data, &"json".into()).ok()?.as_string()?;
    let bytes = Reflect::get(data, &"bytes".into())
        .ok()
        .and_then(|b| b.dyn_into::<Uint8Array>().ok())
        .map(File::Js);
    Some(M::from_wire(&json, bytes))
}

fn post(event: &Event) {
    let scope: DedicatedWorkerGlobalScope = js_sys::global().unchecked_into();
    let (message, transfer) = to_js(event);
    if let Err(e) = scope.post_message_with_transfer(&message, &transfer) {
        web_sys::console::error_2(&"gpicl worker: postMessage failed".into(), &e);
    }
}

/// Called by `web/worker.js` once the module is instantiated in the worker: takes the page's
/// commands from now on and starts the run's loop.
#[wasm_bindgen]
pub fn worker_start() {
    let (tx, rx) = unbounded::<Command>();
    let scope: DedicatedWorkerGlobalScope = js_sys::global().unchecked_into();
    let on_message =
        Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
            match from_js::<Command>(&e.data()) {
                Some(Ok(command)) => {
                    let _ = tx.unbounded_send(command);
                }
                Some(Err(why)) => web_sys::console::error_1(&format!("gpicl worker: {why}").into()),
                None => {}
            }
        });
    scope.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    // The handler lives as long as the worker.
    on_message.forget();
    wasm_bindgen_futures::spawn_local(run(rx));
}

/// The worker's life: start the device and the data, then take commands and work.
async fn run(mut commands: UnboundedReceiver<Command>) {
    let base = loop {
        match commands.next().await {
            Some(Command::Init { base }) => break base,
            Some(_) => continue,
            None => return,
        }
    };
    let (backend, data) = futures::join!(gpu::init(), fetch::load_train_data(&base));
    let data = match data {
        Ok(data) => Rc::new(data),
        Err(e) => return post(&Event::Failed(format!("Could not load the data: {e}"))),
    };
    post(&Event::Ready(backend.info()));
    let mut runner = Runner::new(backend.device, backend.webgpu, data, Box::new(now_ms));
    let mut learner = None;
    loop {
        // Every command that arrived during the last piece of work, in order.
        while let Ok(command) = commands.try_recv() {
            take(&mut runner, &mut learner, &base, command).await;
        }
        match runner.work().await {
            Some(events) => {
                events.iter().for_each(post);
                // Let the event loop deliver the page's messages before the next piece.
                gloo_timers::future::TimeoutFuture::new(0).await;
            }
            None => match commands.next().await {
                Some(command) => take(&mut runner, &mut learner, &base, command).await,
                None => return,
            },
        }
    }
}

/// The shipped learner (on Flex), fetched from the page's `base` when first needed.
type Shipped = Option<(RunConfig, Transformer)>;

/// Takes one command: a visitor's table here, the rest to the runner.
async fn take(runner: &mut Runner, learner: &mut Shipped, base: &str, command: Command) {
    let Command::Learn {
        name,
        format,
        bytes,
    } = command
    else {
        return runner.handle(command).iter().for_each(post);
    };
    let device = Device::flex();
    let report = async {
        if learner.is_none() {
            *learner = Some(load_learner(base, &device).await?);
        }
        let (config, model) = learner.as_ref().expect("loaded above");
        yours::learn(&name, &bytes.into_vec(), format, config, model, &device)
            .await
            .map_err(|e| e.to_string())
    };
    post(&match report.await {
        Ok(report) => Event::Learnt(Box::new(report)),
        Err(message) => Event::LearnRefused { name, message },
    });
}

/// The shipped learner: its built-in manifest and its weights (checked against it).
async fn load_learner(base: &str, device: &Device) -> Result<(RunConfig, Transformer), String> {
    let manifest = Manifest::from_json(pretrained::MANIFEST_JSON).map_err(|e| e.to_string())?;
    let bytes = fetch::fetch_bytes(&format!("{base}pretrained/{}", manifest.model.file)).await?;
    let model = manifest.model(bytes, device).map_err(|e| e.to_string())?;
    Ok((manifest.config, model))
}
