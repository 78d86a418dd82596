//! The training worker's memory, natively: the bytes its allocations hold after each piece of
//! work of a `browser`-preset run on Flex (the page's data bundles parsed, the step-0
//! evaluation, the baselines, training steps, later evaluations), and the peak within it. A
//! WebAssembly memory never shrinks, so the worker's is at least the highest of these peaks
//! (plus the allocator's fragmentation). Run from the repository's root:
//! `cargo run --release -p gpicl-web --example worker_memory`; with `-- --wgpu` the run is on
//! native wgpu (llvmpipe here) as the worker's is on WebGPU: tensors on the device, but what
//! the GPU path keeps in the process (native wgpu's and naga's own state included, which the
//! browser keeps outside the worker's memory).

use std::alloc::{GlobalAlloc, Layout, System};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use burn::prelude::{Device, DeviceKind};
use gpicl_core::RunConfig;
use gpicl_web::data::{PageData, TRAIN_FILES};
use gpicl_web::protocol::{Command, Event};
use gpicl_web::runner::Runner;

/// The system allocator, counting the bytes held and their peak.
struct Counting;
static HELD: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        PEAK.fetch_max(HELD.fetch_add(l.size(), Relaxed) + l.size(), Relaxed);
        // SAFETY: the caller's layout, passed on.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        HELD.fetch_sub(l.size(), Relaxed);
        // SAFETY: allocated above with this layout.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        // The old and the new block are both held while the bytes are copied.
        PEAK.fetch_max(HELD.fetch_add(n, Relaxed) + n, Relaxed);
        // SAFETY: allocated above with this layout.
        let moved = unsafe { System.realloc(p, l, n) };
        HELD.fetch_sub(l.size(), Relaxed);
        moved
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The bytes held now and the peak since the last call (MiB); starts the next window.
fn take() -> (f64, f64) {
    let mib = |b: usize| b as f64 / 1048576.0;
    let held = HELD.load(Relaxed);
    let peak = PEAK.swap(held, Relaxed);
    (mib(held), mib(peak))
}

/// One row: what was done, the bytes held after it and the peak during it.
fn row(what: &str, (held, peak): (f64, f64)) {
    println!("| {what} | {held:.1} | {peak:.1} |");
}

fn main() {
    println!("| the worker's work | held after (MiB) | peak during (MiB) |\n|---|---:|---:|");
    let files: [Vec<u8>; 6] = TRAIN_FILES.map(|f| {
        std::fs::read(format!("web/{f}"))
            .unwrap_or_else(|e| panic!("web/{f}: {e} (run from the repository's root)"))
    });
    let data = Rc::new(PageData::parse(&files).expect("the bundles parse"));
    drop(files);
    row("the data bundles fetched and parsed", take());
    let gpu = std::env::args().any(|a| a == "--wgpu");
    let device = if gpu {
        Device::wgpu(DeviceKind::DefaultDevice)
    } else {
        Device::flex()
    };
    let mut runner = Runner::new(device, gpu, data, Box::new(|| 0.0));
    let config = RunConfig::preset("browser").expect("the browser preset");
    runner.handle(Command::New {
        run: 1,
        config: Box::new(config),
    });
    row("a run made (`browser` preset)", take());
    runner.handle(Command::Train { stop_at: Some(60) });
    let (mut steps, mut training) = (0, (0.0, 0.0));
    while let Some(events) = pollster::block_on(runner.work()) {
        for event in events {
            match event {
                Event::Evaluated { step, .. } => row(&format!("evaluation at step {step}"), take()),
                Event::Baselines { .. } => row("the baselines", take()),
                Event::Trained { losses, .. } => {
                    steps += losses.len();
                    let (held, peak) = take();
                    training = (held, peak.max(training.1));
                }
                _ => {}
            }
        }
    }
    row(
        &format!("each of {steps} training steps (the highest peak)"),
        training,
    );
}
