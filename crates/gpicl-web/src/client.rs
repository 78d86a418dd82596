//! The page's side of the training worker (`worker.rs`): starts it with this page's compiled
//! module, sends it [`Command`]s (queued until it has booted) and hands what it says to a
//! callback. Dropping a [`TrainingWorker`] terminates the worker (and its WebGPU device).

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Object, Reflect};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::{HtmlLinkElement, MessageEvent, Worker, WorkerOptions, WorkerType};
use yew::Callback;

use crate::js_get as get;
use crate::protocol::{Command, Event};
use crate::worker::{from_js, to_js};

/// What the worker says.
pub enum FromWorker {
    /// A protocol event.
    Event(Event),
    /// Its WebGPU device was lost (the reason, as a sentence).
    DeviceLost(String),
    /// It could not start or it crashed (why).
    Broken(String),
}

/// The worker's script, beside the page (copied by trunk from `web/worker.js`).
const SCRIPT: &str = "worker.js";

/// A running training worker.
pub struct TrainingWorker {
    worker: Worker,
    /// Commands sent before the worker booted (`None` once it has).
    queue: Rc<RefCell<Option<Vec<Command>>>>,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_error: Closure<dyn FnMut(web_sys::ErrorEvent)>,
}

/// The URL of this page's wasm-bindgen glue (trunk preloads it with a `modulepreload` link).
fn glue_url() -> Result<String, String> {
    crate::document()
        .and_then(|d| d.query_selector("link[rel=modulepreload]").ok().flatten())
        .and_then(|l| l.dyn_into::<HtmlLinkElement>().ok())
        .map(|l| l.href())
        .ok_or_else(|| "the page names no WebAssembly glue to start the worker with".into())
}

impl TrainingWorker {
    /// Starts a worker; everything it says goes to `on_message`.
    pub fn spawn(on_message: Callback<FromWorker>) -> Result<Self, String> {
        let options = WorkerOptions::new();
        options.set_type(WorkerType::Module);
        let worker = Worker::new_with_options(SCRIPT, &options)
            .map_err(|e| format!("the browser could not start a worker: {e:?}"))?;
        let queue: Rc<RefCell<Option<Vec<Command>>>> = Rc::new(RefCell::new(Some(Vec::new())));
        let (w, q, say) = (worker.clone(), queue.clone(), on_message.clone());
        let handler = Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
            let data = e.data();
            if let Some(event) = from_js::<Event>(&data) {
                say.emit(match event {
                    Ok(event) => FromWorker::Event(event),
                    Err(why) => FromWorker::Broken(why),
                });
            } else if get(&data, "booted").is_truthy() {
                for command in q.borrow_mut().take().unwrap_or_default() {
                    post(&w, &command);
                }
            } else if get(&data, "deviceLost").is_object() {
                let info = get(&data, "deviceLost");
                let field = |k: &str| get(&info, k).as_string().unwrap_or_default();
                say.emit(FromWorker::DeviceLost(format!(
                    "The WebGPU device was lost (reason: {}{}).",
                    field("reason"),
                    match field("message") {
                        m if m.is_empty() => String::new(),
                        m => format!(", \"{m}\""),
                    }
                )));
            } else if let Some(why) = get(&data, "crashed").as_string() {
                say.emit(FromWorker::Broken(format!("it crashed: {why}")));
            } else if let Some(why) = get(&data, "bootError").as_string() {
                say.emit(FromWorker::Broken(format!(
                    "the training worker did not start: {why}"
                )));
            }
        });
        worker.set_onmessage(Some(handler.as_ref().unchecked_ref()));
        let say = on_message;
        let on_error =
            Closure::<dyn FnMut(web_sys::ErrorEvent)>::new(move |e: web_sys::ErrorEvent| {
                say.emit(FromWorker::Broken(format!(
                    "the training worker failed: {}",
                    e.message()
                )));
            });
        worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        let boot = Object::new();
        let inner = Object::new();
        let _ = Reflect::set(&inner, &"glue".into(), &glue_url()?.into());
        let _ = Reflect::set(&inner, &"module".into(), &wasm_bindgen::module());
        let _ = Reflect::set(&boot, &"boot".into(), &inner);
        worker
            .post_message(&boot)
            .map_err(|e| format!("could not start the worker: {e:?}"))?;
        Ok(Self {
            worker,
            queue,
            _on_message: handler,
            _on_error: on_error,
        })
    }

    /// Sends `command` (after the worker has booted, in order).
    pub fn send(&self, command: Command) {
        match self.queue.borrow_mut().as_mut() {
            Some(queue) => queue.push(command),
            None => post(&self.worker, &command),
        }
    }
}

fn post(worker: &Worker, command: &Command) {
    let (message, transfer) = to_js(command);
    if let Err(e) = worker.post_message_with_transfer(&message, &transfer) {
        web_sys::console::error_2(&"gpicl: postMessage to the worker failed".into(), &e);
    }
}

impl Drop for TrainingWorker {
    fn drop(&mut self) {
        self.worker.terminate();
    }
}
