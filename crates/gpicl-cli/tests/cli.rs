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

/// Runs `gpicl` and asserts that it succeeded (showing its stderr when not).
fn gpicl_ok(args: &[&str]) -> std::process::Output {
    let out = gpicl(args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gpicl-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The line of `text` that starts with `start`: the learner minus each of the three baselines,
/// paired by sequence, each difference with its standard error.
fn paired_line<'a>(text: &'a str, start: &str) -> &'a str {
    let line = text
        .lines()
        .find(|l| l.starts_with(start))
        .unwrap_or_else(|| panic!("no line starting {start:?} in {text}"));
    assert_eq!(line.matches(" ± ").count(), 3, "{line}");
    line
}

/// The repository's `web/{path}`. Read at run time (`cargo test` sets `CARGO_MANIFEST_DIR`), not
/// baked in at compile time: one target directory serves several checkouts, and cargo may run a
/// test built from another one (as xtask's `root`).
fn web(path: &str) -> String {
    let crate_dir = std::env::var("CARGO_MANIFEST_DIR")
        .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_string());
    format!("{crate_dir}/../../web/{path}")
}

fn data_dir() -> String {
    web("data")
}

#[test]
fn a_trained_run_packages_into_a_manifest_that_matches_its_weights() {
    let dir = scratch("package");
    let run = dir.join("run");
    let out = dir.join("pretrained");
    let (run_s, out_s) = (run.to_str().unwrap(), out.to_str().unwrap());
    let data = data_dir();
    gpicl_ok(&[
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
    gpicl_ok(&[
        "package",
        run_s,
        "--out",
        out_s,
        "--hardware",
        "a test machine",
        "--data-dir",
        &data,
    ]);

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

    // The curves are the shipped (half-precision) weights' own: `gpicl eval` on the package
    // measures the same, value for value.
    let json = dir.join("curves.json");
    gpicl_ok(&[
        "eval",
        "--checkpoint",
        out_s,
        "--data-dir",
        &data,
        "--json",
        json.to_str().unwrap(),
    ]);
    let measured: Vec<gpicl_core::Curve> =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(measured, manifest.curves);
    // The held-out suite, recorded in the package's manifest (tiny: 8 sequences).
    let full = gpicl_ok(&[
        "suite",
        "--checkpoint",
        out_s,
        "--sequences",
        "8",
        "--baseline-sequences",
        "2",
        "--views",
        "2",
        "--data-dir",
        &data,
        "--record",
    ]);
    let recorded =
        Manifest::from_json(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    let record = recorded.suite.as_ref().expect("the suite is recorded");
    // Eight synthetic datasets and five UCI tables.
    assert_eq!((record.views, record.rows.len()), (2, 13));
    // The paired differences on the mean, one per baseline, as the line below the table says.
    assert_eq!(record.paired.len(), 3);
    assert!(record.command.contains("--views 2"), "{}", record.command);
    // Below the table, the noise: the learner's standard errors, and its paired differences
    // from the three baselines, the best of them named.
    let full = String::from_utf8_lossy(&full.stdout);
    assert!(
        full.contains("\nNoise: the standard error over sequences of the learner with 2 views: "),
        "{full}"
    );
    let paired = paired_line(&full, "Paired by sequence (the baselines' 2 sequences");
    assert_eq!(paired.matches("(the best baseline)").count(), 1, "{paired}");
    for (name, d, e) in &record.paired {
        let figure = format!(" {:+.1} ± {:.1}", 100.0 * d, 100.0 * e);
        assert!(
            paired.contains(name.as_str()) && paired.contains(&figure),
            "{paired}: {name}{figure}"
        );
    }
    for row in &record.rows {
        assert!((0.0..=1.0).contains(&row.learner) && row.views.is_some());
        assert_eq!(row.baselines.len(), 3);
    }
    assert_eq!(
        (&recorded.curves, &recorded.model),
        (&manifest.curves, &manifest.model)
    );
    // Without the baselines: the learner's columns only, the same figures; never recorded.
    let light = gpicl_ok(&[
        "suite",
        "--checkpoint",
        out_s,
        "--sequences",
        "8",
        "--views",
        "2",
        "--data-dir",
        &data,
        "--no-baselines",
    ]);
    let table = String::from_utf8_lossy(&light.stdout);
    assert!(
        table.contains("Noise:") && !table.contains("Paired"),
        "{table}"
    );
    assert!(
        table.contains(
            "| dataset | classes | features | first guess (1/k) | learner | learner, 2 views |\n"
        ),
        "{table}"
    );
    let first = &record.rows[0];
    let ends = format!(
        "| **{:.1} %** | **{:.1} %** |",
        100.0 * first.learner,
        100.0 * first.views.unwrap()
    );
    let line = table
        .lines()
        .find(|l| l.starts_with(&format!("| {} |", first.dataset)))
        .expect("the dataset's row");
    assert!(line.ends_with(&ends), "{line} does not end with {ends}");
    let refused = gpicl(&["suite", "--checkpoint", out_s, "--no-baselines", "--record"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--record"));
    // A learner against itself: the same figures, a difference of zero on every dataset.
    let same = gpicl_ok(&[
        "suite",
        "--checkpoint",
        out_s,
        "--against",
        out_s,
        "--sequences",
        "8",
        "--data-dir",
        &data,
        "--no-baselines",
    ]);
    let same = String::from_utf8_lossy(&same.stdout);
    let rows: Vec<&str> = same
        .lines()
        .skip_while(|l| !l.starts_with("| dataset | first | second | first − second |"))
        .skip(2)
        .collect();
    assert_eq!(rows.len(), 14, "thirteen datasets and the mean: {same}");
    for row in rows {
        assert!(row.contains("+0.00 ± 0.00"), "{row}");
    }
    // Tables of one's own, alone (`--only-data`): one row each and the mean, paired with the
    // baselines over their positions in the last quarter (sequences of 12: 10–12, each once).
    let table = |name: &str, shift: f32| {
        let path = dir.join(name);
        let rows: String = (0..60)
            .map(|i| {
                let class = i % 3;
                let x = |f: usize| shift * class as f32 + ((i * 37 + f * 11) % 10) as f32 / 10.0;
                format!("{},{},{},kind{class}\n", x(0), x(1), x(2))
            })
            .collect();
        std::fs::write(&path, format!("a,b,c,label\n{rows}")).unwrap();
        path.to_str().unwrap().to_string()
    };
    let (a, b) = (table("a.csv", 2.0), table("b.csv", 0.5));
    let ours = gpicl_ok(&[
        "suite",
        "--checkpoint",
        out_s,
        "--only-data",
        "--data",
        &a,
        "--data",
        &b,
        "--seq-len",
        "12",
        "--sequences",
        "8",
        "--baseline-sequences",
        "2",
    ]);
    let ours = String::from_utf8_lossy(&ours.stdout);
    assert!(
        ours.contains(" on the tables given: 8 sequences of 12 examples per dataset")
            && ours.contains("at 3 of those positions"),
        "{ours}"
    );
    let rows: Vec<&str> = ours.lines().filter(|l| l.starts_with("| ")).collect();
    assert_eq!(rows.len(), 4, "a header, a.csv, b.csv and the mean: {ours}");
    assert!(rows[1].starts_with("| a.csv | 3 | 3 |") && rows[2].starts_with("| b.csv | 3 | 3 |"));
    paired_line(
        &ours,
        "Paired by sequence (the baselines' 2 sequences and 3 positions",
    );
    // A table as a spreadsheet might save it: tab-separated, the label first, a text column
    // and a missing value; what was done with them goes to stderr.
    let tsv = dir.join("c.tsv");
    let rows: String = (0..60)
        .map(|i| {
            let a = if i == 5 {
                "NA".into()
            } else {
                (2 * (i % 3) + i % 2).to_string()
            };
            format!("kind{}\t{a}\t{}\t{}\n", i % 3, i % 7, ["in", "out"][i % 2])
        })
        .collect();
    std::fs::write(&tsv, format!("label\ta\tb\tzone\n{rows}")).unwrap();
    let read_tsv = |label: &[&str]| {
        let mut args = vec!["suite", "--checkpoint", out_s, "--only-data", "--data"];
        args.push(tsv.to_str().unwrap());
        args.extend_from_slice(label);
        args.extend_from_slice(&["--seq-len", "12", "--sequences", "4", "--no-baselines"]);
        gpicl(&args)
    };
    let tsv_read = read_tsv(&["--label-first"]);
    assert!(
        tsv_read.status.success(),
        "{}",
        String::from_utf8_lossy(&tsv_read.stderr)
    );
    let (text, err) = (
        String::from_utf8_lossy(&tsv_read.stdout),
        String::from_utf8_lossy(&tsv_read.stderr),
    );
    assert!(text.contains("| c.tsv | 3 | 4 |"), "{text}");
    for note in [
        "note: c.tsv: cells are separated by tabs",
        "note: c.tsv: column 2 (a): 1 missing value filled with the column's mean",
        "note: c.tsv: column 4 (zone): text, read as 2 categories (one feature each)",
    ] {
        assert!(err.contains(note), "{note}: {err}");
    }
    // The label named by the header: the zone (2 classes), the first column now 3 features.
    let zone = read_tsv(&["--label-column", "zone"]);
    let text = String::from_utf8_lossy(&zone.stdout);
    assert!(
        zone.status.success() && text.contains("| c.tsv | 2 | 5 |"),
        "{text}"
    );
    let refused = read_tsv(&["--label-column", "species"]);
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && err.contains("no column named \"species\""),
        "{err}"
    );
    // Not a table, or into a manifest: refused, naming why.
    let refused = gpicl(&["suite", "--checkpoint", out_s, "--data", "x.idx"]);
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success() && err.contains(".csv"), "{err}");
    let refused = gpicl(&["suite", "--checkpoint", out_s, "--data", &a, "--record"]);
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && err.contains("--record"),
        "{err}"
    );
    // A learner of other inputs cannot read the same sequences.
    let shipped = &web("pretrained");
    let refused = gpicl(&[
        "suite",
        "--checkpoint",
        out_s,
        "--against",
        shipped,
        "--no-baselines",
    ]);
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && err.contains("cannot read the same sequences"),
        "{err}"
    );

    // Re-packaging a package changes nothing: f16 rounding is idempotent, the hardware and
    // command are kept.
    let again = dir.join("again");
    gpicl_ok(&[
        "package",
        out_s,
        "--out",
        again.to_str().unwrap(),
        "--data-dir",
        &data,
    ]);
    assert_eq!(std::fs::read(again.join("model.bpk")).unwrap(), weights);
    assert_eq!(
        std::fs::read_to_string(again.join("manifest.json")).unwrap(),
        std::fs::read_to_string(out.join("manifest.json")).unwrap()
    );

    // Fine-tuning from the package: a run of the same model starts from its weights; a run of
    // another model is refused, naming the models.
    let tuned = gpicl_ok(&[
        "train",
        "--preset",
        "tiny",
        "--init",
        out_s,
        "--steps",
        "1",
        "--out",
        dir.join("tuned").to_str().unwrap(),
        "--data-dir",
        &data,
    ]);
    assert!(String::from_utf8_lossy(&tuned.stdout).contains("starting from the weights of"));
    // Its package says how to make it: the learner it started from, then the fine-tuning.
    let tuned_out = dir.join("tuned-package");
    gpicl_ok(&[
        "package",
        dir.join("tuned").to_str().unwrap(),
        "--out",
        tuned_out.to_str().unwrap(),
        "--hardware",
        "a test machine",
        "--data-dir",
        &data,
    ]);
    let command =
        Manifest::from_json(&std::fs::read_to_string(tuned_out.join("manifest.json")).unwrap())
            .unwrap()
            .command;
    assert!(command.starts_with(&manifest.command), "{command}");
    assert!(
        command.contains(&format!("&& gpicl train --preset tiny --seed 0 --steps 1 --backend flex --init {out_s} --out runs/tiny-tuned && gpicl package runs/tiny-tuned")),
        "{command}"
    );
    let other = gpicl(&[
        "train",
        "--preset",
        "browser",
        "--init",
        out_s,
        "--steps",
        "1",
        "--out",
        dir.join("other").to_str().unwrap(),
        "--data-dir",
        &data,
    ]);
    assert!(!other.status.success());
    assert!(String::from_utf8_lossy(&other.stderr).contains("is not this run's"));
    // A run of the same model with more blocks deepens it.
    let tiny_layers = gpicl_core::RunConfig::preset("tiny")
        .unwrap()
        .model
        .n_layers;
    let deeper = gpicl_ok(&[
        "train",
        "--preset",
        "tiny",
        "--init",
        out_s,
        "--set",
        &format!("model.n_layers={}", tiny_layers + 1),
        "--steps",
        "1",
        "--out",
        dir.join("deeper").to_str().unwrap(),
        "--data-dir",
        &data,
    ]);
    let said = String::from_utf8_lossy(&deeper.stdout);
    assert!(
        said.contains(&format!("from {tiny_layers} to {} blocks", tiny_layers + 1)),
        "{said}"
    );

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
    let out = gpicl_ok(&[
        "bench-step",
        "--preset",
        "tiny",
        "--lengths",
        "2,8",
        "--repeats",
        "1",
    ]);
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

/// A sweep run whole and the same sweep run as three shards (into three directories, as on
/// three machines) merge into the same merged.json, byte for byte.
#[test]
fn sharded_and_unsharded_sweeps_merge_to_the_same_result() {
    let dir = scratch("sweep");
    let spec = dir.join("spec.json");
    std::fs::write(
        &spec,
        serde_json::json!({
            "name": "phase-test",
            "preset": "tiny",
            "set": ["train.steps=2", "eval.every=0", "eval.sequences=8"],
            "axes": [
                {"path": "tasks.pool", "values": [{"finite": {"log2": 0}}, "unlimited"]},
                {"path": "model.d_model", "values": [16, 32]}
            ]
        })
        .to_string(),
    )
    .unwrap();
    let data = data_dir();
    let sweep = |out: &str, shard: &str| {
        let o = gpicl(&[
            "sweep",
            "run",
            spec.to_str().unwrap(),
            "--out",
            out,
            "--shard",
            shard,
            "--data-dir",
            &data,
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).to_string()
    };
    let path = |name: &str| dir.join(name).to_str().unwrap().to_string();
    sweep(&path("whole"), "0/1");
    for i in 0..3 {
        sweep(&path(&format!("shard{i}")), &format!("{i}/3"));
    }
    // Re-running a shard skips its finished runs.
    assert!(sweep(&path("shard0"), "0/3").contains("done already"));

    let merge = |dirs: &[String], out: &str| {
        let mut args = vec!["sweep".to_string(), "merge".into()];
        args.extend(dirs.iter().cloned());
        args.extend(["--out".into(), out.to_string()]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        gpicl(&args)
    };
    let whole = merge(&[path("whole")], &path("merged-whole"));
    assert!(
        whole.status.success(),
        "{}",
        String::from_utf8_lossy(&whole.stderr)
    );
    let shards: Vec<String> = (0..3).map(|i| path(&format!("shard{i}"))).collect();
    let sharded = merge(&shards, &path("merged-shards"));
    assert!(
        sharded.status.success(),
        "{}",
        String::from_utf8_lossy(&sharded.stderr)
    );
    let read = |d: &str| std::fs::read_to_string(dir.join(d).join("merged.json")).unwrap();
    assert_eq!(read("merged-whole"), read("merged-shards"));
    let merged: serde_json::Value = serde_json::from_str(&read("merged-whole")).unwrap();
    assert_eq!(merged["rows"].as_array().unwrap().len(), 4);
    assert!(
        std::fs::read_to_string(dir.join("merged-whole/phase.svg"))
            .unwrap()
            .contains("<rect")
    );

    // A missing shard is named, not silently dropped.
    let partial = merge(&shards[..2], &path("merged-partial"));
    assert!(!partial.status.success());
    assert!(String::from_utf8_lossy(&partial.stderr).contains("not finished or not found"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A checkpoint file is a whole run: `train --resume FILE` continues it exactly (the page
/// downloads the same file), `eval --checkpoint FILE` evaluates it, and a damaged file is refused
/// with a message.
#[test]
fn a_checkpoint_file_continues_exactly_and_evaluates() {
    let dir = scratch("checkpoint");
    let data = data_dir();
    let train = |args: &[&str]| {
        let mut all = vec!["train", "--data-dir", &data];
        all.extend_from_slice(args);
        let out = gpicl(&all);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let (whole, half, rest) = (dir.join("whole"), dir.join("half"), dir.join("rest"));
    train(&[
        "--preset",
        "tiny",
        "--steps",
        "4",
        "--out",
        whole.to_str().unwrap(),
    ]);
    train(&[
        "--preset",
        "tiny",
        "--steps",
        "2",
        "--out",
        half.to_str().unwrap(),
    ]);
    let file = dir.join("downloaded.gpicl");
    std::fs::copy(half.join("checkpoint.gpicl"), &file).unwrap();
    let file_s = file.to_str().unwrap();
    train(&[
        "--resume",
        file_s,
        "--steps",
        "4",
        "--out",
        rest.to_str().unwrap(),
    ]);
    let last = |run: &PathBuf| {
        let r = gpicl_core::Results::from_json(
            &std::fs::read_to_string(run.join("results.json")).unwrap(),
        )
        .unwrap();
        r.history.last().unwrap().clone()
    };
    let (a, b) = (last(&whole), last(&rest));
    assert_eq!((a.step, b.step), (4, 4));
    assert_eq!(
        a.curves, b.curves,
        "2 + 2 steps through a checkpoint file equal 4 steps"
    );

    let images = format!("{data}/mnist-t10k-images-idx3-ubyte.gz");
    let labels = format!("{data}/mnist-t10k-labels-idx1-ubyte.gz");
    let eval = |ck: &str| {
        gpicl(&[
            "eval",
            "--checkpoint",
            ck,
            "--data",
            &images,
            "--labels",
            &labels,
            "--sequences",
            "8",
        ])
    };
    let ok = eval(file_s);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    // A table made up here: a header, a label column in the middle, labels that are words.
    let csv = dir.join("words.csv");
    let rows: String = (0..60)
        .map(|i| {
            let c = ["cat", "dog", "eel"][i % 3];
            format!("{},{c},{}\n", i % 3, (i * 7) % 5)
        })
        .collect();
    std::fs::write(&csv, format!("x1,kind,x2\n{rows}")).unwrap();
    let csv_s = csv.to_str().unwrap();
    // `gpicl eval` of a learner on that table, and `more`.
    let eval_table = |checkpoint: &str, more: &[&str]| {
        let args = [
            "eval",
            "--checkpoint",
            checkpoint,
            "--data",
            csv_s,
            "--label-column",
            "2",
            "--sequences",
            "4",
            "--seq-len",
            "12",
        ];
        gpicl(&[&args[..], more].concat())
    };
    assert!(eval_table(file_s, &[]).status.success());
    // The shipped learner (web/pretrained: a manifest and its weights) evaluates like a
    // checkpoint, with the baselines beside it.
    let shipped = &web("pretrained");
    let out = eval_table(shipped, &["--baselines", "--baseline-sequences", "4"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("logistic") && text.contains("1-NN"), "{text}");
    // Below the table: standard errors, and the learner against each baseline on the same
    // sequences.
    assert!(
        text.contains("standard errors of the means over 3–12"),
        "{text}"
    );
    paired_line(
        &text,
        "the learner minus each baseline on the same 4 sequences",
    );
    // With views: a column beside the learner alone, whose figures do not move.
    let viewed = eval_table(shipped, &["--views", "3"]);
    assert!(viewed.status.success());
    let viewed = String::from_utf8_lossy(&viewed.stdout);
    // The learner's columns of a table's rows: the example, its accuracy and loss.
    let learner = |text: &str| -> Vec<String> {
        text.lines()
            .skip_while(|l| !l.trim_start().starts_with("example"))
            .skip(1)
            .take_while(|l| l.trim_start().starts_with(|c: char| c.is_ascii_digit()))
            .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
            .collect()
    };
    let header = viewed
        .lines()
        .find(|l| l.trim_start().starts_with("example"))
        .unwrap();
    assert!(header.contains("3 views"), "{viewed}");
    // Against itself, on the same sequences and views: no difference, alone or with views.
    let same = eval_table(shipped, &["--views", "3", "--against", shipped]);
    let same = String::from_utf8_lossy(&same.stdout);
    assert!(
        same.contains("paired by sequence, in points: alone +0.00 ± 0.00, 3 views +0.00 ± 0.00"),
        "{same}"
    );
    assert_eq!(learner(&viewed), learner(&text), "{viewed}");
    assert!(!learner(&text).is_empty());
    // A ragged row is blamed on its own line.
    std::fs::write(&csv, "x1,kind,x2\n1,cat,2\n1,dog\n").unwrap();
    let ragged = gpicl(&[
        "eval",
        "--checkpoint",
        file_s,
        "--data",
        csv_s,
        "--label-column",
        "2",
    ]);
    let err = String::from_utf8_lossy(&ragged.stderr);
    assert!(
        !ragged.status.success() && err.contains("line 3: 2 columns, expected 3"),
        "{err}"
    );

    let mut bytes = std::fs::read(&file).unwrap();
    bytes.truncate(bytes.len() - 10);
    std::fs::write(&file, &bytes).unwrap();
    let bad = eval(file_s);
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("truncated"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn export_writes_the_shipped_learner_as_safetensors_under_pytorchs_names() {
    use burn::prelude::*;
    let dir = scratch("export");
    let out = dir.join("learner.safetensors");
    let shipped = &web("pretrained");
    gpicl_ok(&[
        "export",
        "--checkpoint",
        shipped,
        "--out",
        out.to_str().unwrap(),
    ]);

    let bytes = std::fs::read(&out).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    assert_eq!(n % 8, 0, "the header is padded to 8 bytes");
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let body = &bytes[8 + n..];
    let entries = header.as_object().unwrap();
    let manifest =
        Manifest::from_json(&std::fs::read_to_string(format!("{shipped}/manifest.json")).unwrap())
            .unwrap();
    let m = &manifest.config.model;
    let width = m.d_in + m.n_classes + 1;
    // Names and PyTorch's layouts ([out, in] weights), every byte of the body used once.
    let shape = |name: &str| entries[name]["shape"].as_array().unwrap().clone();
    let dims = |v: &[usize]| v.iter().map(|&d| serde_json::json!(d)).collect::<Vec<_>>();
    assert_eq!(shape("embed.weight"), dims(&[m.d_model, width]));
    assert_eq!(
        shape("blocks.0.query.weight"),
        dims(&[m.d_model, m.d_model])
    );
    assert_eq!(shape("blocks.0.ff_in.weight"), dims(&[m.d_ff, m.d_model]));
    assert_eq!(shape("blocks.0.ln_ff.bias"), dims(&[m.d_model]));
    assert_eq!(shape("head.weight"), dims(&[m.n_classes, m.d_model]));
    assert_eq!(
        entries.len(),
        1 + 6 + 16 * m.n_layers + 2,
        "metadata, tensors, check batch"
    );
    let mut spans: Vec<(u64, u64)> = entries
        .iter()
        .filter(|(k, _)| *k != "__metadata__")
        .map(|(_, v)| {
            let o = v["data_offsets"].as_array().unwrap();
            (o[0].as_u64().unwrap(), o[1].as_u64().unwrap())
        })
        .collect();
    spans.sort();
    assert_eq!(spans[0].0, 0);
    assert!(spans.windows(2).all(|w| w[0].1 == w[1].0));
    assert_eq!(spans.last().unwrap().1 as usize, body.len());
    let params: u64 = entries
        .iter()
        .filter(|(k, _)| *k != "__metadata__" && !k.starts_with("check."))
        .map(|(_, v)| {
            v["data_offsets"][1].as_u64().unwrap() - v["data_offsets"][0].as_u64().unwrap()
        })
        .sum();
    assert_eq!(params as usize, 4 * m.param_count());

    // The check batch's logits are the shipped learner's on its tokens.
    let tensor = |name: &str| {
        let e = &entries[name];
        let (a, b) = (
            e["data_offsets"][0].as_u64().unwrap() as usize,
            e["data_offsets"][1].as_u64().unwrap() as usize,
        );
        let values: Vec<f32> = body[a..b]
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        let shape: Vec<usize> = shape(name)
            .iter()
            .map(|d| d.as_u64().unwrap() as usize)
            .collect();
        TensorData::new(values, shape)
    };
    let device = Device::flex();
    let weights = std::fs::read(format!("{shipped}/{}", manifest.model.file)).unwrap();
    let model = manifest.model(weights, &device).unwrap();
    let tokens = Tensor::<3>::from_data(tensor("check.tokens"), &device);
    let logits = model
        .forward(tokens)
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    let written = tensor("check.logits").try_to_vec::<f32>().unwrap();
    assert_eq!(logits.len(), written.len());
    let diff = logits
        .iter()
        .zip(&written)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(diff < 1e-5, "the written logits differ by {diff}");

    let missing = gpicl(&[
        "export",
        "--checkpoint",
        "/nonexistent",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("error"));
}
