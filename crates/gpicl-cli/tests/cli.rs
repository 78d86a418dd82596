//! The `gpicl` binary end to end on the `tiny` preset: train → package → a manifest that reads
//! back and matches its weights; bench-step prints its table; bad input is refused.

use std::path::PathBuf;
use std::process::Command;

use gpicl_core::Manifest;
use sha2::{Digest, Sha256};

fn gpicl(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_gpicl"))
        .args(args)
        .output()
        .expect("gpicl runs")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gpicl-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn data_dir() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/../../web/data").to_string()
}

#[test]
fn a_trained_run_packages_into_a_manifest_that_matches_its_weights() {
    let dir = scratch("package");
    let run = dir.join("run");
    let out = dir.join("pretrained");
    let (run_s, out_s) = (run.to_str().unwrap(), out.to_str().unwrap());
    let data = data_dir();
    let train = gpicl(&[
        "train",
        "--preset",
        "tiny",
        "--steps",
        "2",
        "--out",
        run_s,
        "--data-dir",
        &data,
    ]);
    assert!(
        train.status.success(),
        "{}",
        String::from_utf8_lossy(&train.stderr)
    );
    let package = gpicl(&[
        "package",
        run_s,
        "--out",
        out_s,
        "--hardware",
        "a test machine",
        "--data-dir",
        &data,
    ]);
    assert!(
        package.status.success(),
        "{}",
        String::from_utf8_lossy(&package.stderr)
    );

    let manifest =
        Manifest::from_json(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    let weights = std::fs::read(out.join("model.bpk")).unwrap();
    assert_eq!(
        manifest.model.sha256,
        format!("{:x}", Sha256::digest(&weights))
    );
    assert_eq!(manifest.model.bytes, weights.len() as u64);
    assert_eq!(manifest.steps, 2);
    assert_eq!(manifest.data.len(), 6);
    assert_eq!(manifest.curves.len(), 3);
    assert!(
        manifest
            .command
            .contains("--preset tiny --seed 0 --steps 2"),
        "{}",
        manifest.command
    );
    assert!(manifest.input_stats.std > 0.0);

    // A run that is not there, and a corrupt results file: refused with a message.
    let missing = gpicl(&[
        "package",
        dir.join("nope").to_str().unwrap(),
        "--hardware",
        "x",
    ]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("results.json"));
    std::fs::write(run.join("results.json"), "{ not json").unwrap();
    let corrupt = gpicl(&["package", run_s, "--out", out_s, "--hardware", "x"]);
    assert!(!corrupt.status.success());
    assert!(String::from_utf8_lossy(&corrupt.stderr).contains("corrupt results.json"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bench_step_prints_one_row_per_context_length() {
    let out = gpicl(&[
        "bench-step",
        "--preset",
        "tiny",
        "--lengths",
        "2,8",
        "--repeats",
        "1",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<&str> = text
        .lines()
        .filter(|l| l.trim_start().starts_with(|c: char| c.is_ascii_digit()))
        .collect();
    assert_eq!(rows.len(), 2, "{text}");
    assert!(rows[1].trim_start().starts_with('8'), "{text}");
    let bad = gpicl(&["bench-step", "--lengths", "0"]);
    assert!(!bad.status.success());
}
