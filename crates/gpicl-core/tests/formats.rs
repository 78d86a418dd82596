//! Property tests of the share link, the checkpoint file and the results file (round trips
//! over seeded random values), and a fuzz run of their decoders and of the data parsers (CSV,
//! IDX): arbitrary and mutated inputs
//! must give a value or an error, never a panic. `GPICL_FUZZ_INPUTS` sets the number of inputs
//! per decoder (default 50 000); the counts are printed (`cargo xtask fuzz` runs a long one).

use std::panic::{AssertUnwindSafe, catch_unwind};

use burn::prelude::*;
use gpicl_core::parse::{LabelColumn, parse_csv, parse_idx_pair};
use gpicl_core::share::{Limits, Link, Replay, TableRef, decode, encode};
use gpicl_core::task::{ProjectionSource, TablePrior, rng};
use gpicl_core::{Arch, Checkpoint, Results, RunConfig, TaskPool, TokenFormat, Trainer};
use rand::RngExt;
use rand_chacha::ChaCha8Rng;

fn inputs() -> usize {
    std::env::var("GPICL_FUZZ_INPUTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50_000)
}

/// A random configuration within the page's limits (each field from its whole range).
fn random_config(r: &mut ChaCha8Rng) -> RunConfig {
    let mut c = RunConfig::preset("browser").unwrap();
    c.name = format!("run-{}", r.random_range(0..1000u32));
    c.seed = r.random();
    c.model.arch = if r.random_bool(0.2) {
        Arch::Lstm
    } else {
        Arch::Transformer
    };
    c.model.d_in = r.random_range(1..=784);
    c.model.n_classes = r.random_range(10..=64);
    c.model.n_heads = [1, 2, 4, 8][r.random_range(0..4)];
    c.model.d_model = c.model.n_heads * r.random_range(1..=16);
    c.model.n_layers = r.random_range(1..=4);
    c.model.d_ff = r.random_range(1..=512);
    c.tasks.pool = if r.random_bool(0.3) {
        TaskPool::Unlimited
    } else {
        TaskPool::Finite {
            log2: r.random_range(0..=62),
        }
    };
    c.tasks.bias_fraction = r.random_range(0.0..=1.0);
    c.tasks.format = if r.random_bool(0.5) {
        TokenFormat::Pair
    } else {
        TokenFormat::Paper
    };
    c.tasks.seq_len = r.random_range(1..=100);
    c.tasks.image_pool = 4; // the page's data (other values are refused, see share.rs)
    c.tasks.classes_per_sequence = r.random_bool(0.5).then(|| r.random_range(2..=10));
    c.tasks.classes_curriculum_steps = r.random_bool(0.5).then(|| r.random_range(0..=5000));
    c.tasks.varied_classes = r.random_bool(0.5);
    c.tasks.low_rank = r.random_bool(0.5);
    c.tasks.random_tables = r.random_range(0..=8) as f32 / 8.0;
    c.tasks.table_prior =
        [TablePrior::Net, TablePrior::Mixed, TablePrior::Categorical][r.random_range(0..3)];
    // Drawn on the device only without low-rank projections (which stay on the host).
    c.tasks.projections = if !c.tasks.low_rank && r.random_bool(0.5) {
        ProjectionSource::Device
    } else {
        ProjectionSource::Host
    };
    c.train.steps = r.random_range(1..=100_000);
    c.train.batch_size = r.random_range(1..=32);
    c.train.lr = r.random_range(1e-6..0.1);
    c.train.warmup_steps = r.random_range(0..=1000);
    c.train.cosine_decay = r.random_bool(0.5);
    c.train.beta1 = r.random_range(0.0..0.999);
    c.train.beta2 = r.random_range(0.0..0.9999);
    c.train.epsilon = 10f32.powf(r.random_range(-12.0..-1.0));
    c.train.grad_clip = r.random_bool(0.7).then(|| r.random_range(0.01..100.0));
    c.eval.every = r.random_range(0..=1000);
    c.eval.sequences = r.random_range(1..=256);
    c.eval.seed = r.random();
    c
}

#[test]
fn share_links_round_trip_every_setting() {
    let defaults = RunConfig::preset("browser").unwrap();
    let mut r = rng(1);
    let n = inputs() / 10;
    for i in 0..n {
        let link = Link {
            config: random_config(&mut r),
            app_version: "0.1.0".into(),
            data_version: format!("{:08x}", r.random::<u32>()),
            replay: r.random_bool(0.5).then(|| Replay {
                step: r.random_range(1..=100_000),
                hash: r.random(),
                mean_accuracy: (0..3).map(|_| r.random_range(0..=1000)).collect(),
            }),
            table: r.random_bool(0.5).then(|| random_table(&mut r)),
        };
        let text = encode(&link);
        let decoded = decode(&text, &defaults, &Limits::BROWSER).unwrap();
        assert_eq!(decoded.problems, Vec::<String>::new(), "case {i}: {text}");
        assert_eq!(decoded.link, link, "case {i}: {text}");
    }
    println!("share links: {n} random experiments round-tripped");
}

/// A table named by a link: any printable name (ASCII, accents, CJK, emoji, spaces, `&`, `%`,
/// `.`), any label column.
fn random_table(r: &mut ChaCha8Rng) -> TableRef {
    const CHARS: &[char] = &[
        'a', 'Z', '0', '.', '-', '_', ' ', '&', '%', '#', '=', 'é', '数', '🙂', '/',
    ];
    let len = r.random_range(1..=TableRef::MAX_NAME);
    TableRef {
        name: (0..len)
            .map(|_| CHARS[r.random_range(0..CHARS.len())])
            .collect(),
        rows: r.random_range(1..=1_000_000),
        label_column: r.random_bool(0.5).then(|| r.random_range(1..=50)),
        hash: TableRef::fingerprint(&r.random::<[u8; 8]>()),
    }
}

fn mutate(r: &mut ChaCha8Rng, base: &[u8], alphabet: &[u8]) -> Vec<u8> {
    let mut out = base.to_vec();
    for _ in 0..r.random_range(1..=8) {
        let at = r.random_range(0..=out.len());
        match r.random_range(0..6) {
            0 if !out.is_empty() => {
                let i = at.min(out.len() - 1);
                out[i] = alphabet[r.random_range(0..alphabet.len())];
            }
            1 => out.insert(at, alphabet[r.random_range(0..alphabet.len())]),
            2 => {
                let end = (at + r.random_range(0..64)).min(out.len());
                out.drain(at..end);
            }
            3 => out.truncate(at),
            4 if !out.is_empty() => {
                let i = at.min(out.len() - 1);
                out[i] ^= 1 << r.random_range(0..8);
            }
            _ => {
                let end = (at + r.random_range(0..32)).min(out.len());
                let piece = out[at..end].to_vec();
                let to = r.random_range(0..=out.len());
                out.splice(to..to, piece);
            }
        }
    }
    out
}

fn random_bytes(r: &mut ChaCha8Rng, max: usize) -> Vec<u8> {
    let n = r.random_range(0..=max);
    (0..n).map(|_| r.random()).collect()
}

/// Input `i` of a text format's fuzzing: every fourth random bytes (up to `max` of them), the
/// others a mutation of one of the valid `seeds`.
fn random_or_mutated(
    r: &mut ChaCha8Rng,
    i: usize,
    max: usize,
    seeds: &[impl AsRef<[u8]>],
    alphabet: &[u8],
) -> Vec<u8> {
    if i.is_multiple_of(4) {
        random_bytes(r, max)
    } else {
        mutate(r, seeds[i % seeds.len()].as_ref(), alphabet)
    }
}

/// Runs `decode` on `n` inputs from `make`, counting panics.
fn fuzz(
    name: &str,
    n: usize,
    mut make: impl FnMut(usize) -> Vec<u8>,
    decode: impl Fn(&[u8]) -> bool,
) {
    let (mut ok, mut refused, mut panics) = (0usize, 0usize, 0usize);
    for i in 0..n {
        let input = make(i);
        match catch_unwind(AssertUnwindSafe(|| decode(&input))) {
            Ok(true) => ok += 1,
            Ok(false) => refused += 1,
            Err(_) => panics += 1,
        }
    }
    println!(
        "fuzz {name}: {n} inputs, {ok} decoded, {refused} refused with a message, {panics} panics"
    );
    assert_eq!(panics, 0, "{name}: {panics} of {n} inputs panicked");
}

#[test]
fn decoders_never_panic_on_arbitrary_or_mutated_input() {
    let n = inputs();
    let defaults = RunConfig::preset("browser").unwrap();
    let mut r = rng(2);

    // Share links: random text, and mutations of valid links.
    let links: Vec<String> = (0..32)
        .map(|_| {
            encode(&Link {
                config: random_config(&mut r),
                app_version: "0.1.0".into(),
                data_version: "0123abcd".into(),
                replay: Some(Replay {
                    step: 40,
                    hash: r.random(),
                    mean_accuracy: vec![500, 400, 300],
                }),
                table: Some(random_table(&mut r)),
            })
        })
        .collect();
    let alphabet = b"v=&0123456789.eE-+#abcdxyzTall%\xc3\xa9 ";
    let mut rl = rng(3);
    fuzz(
        "share link",
        n,
        |i| random_or_mutated(&mut rl, i, 300, &links, alphabet),
        |bytes| {
            let text = String::from_utf8_lossy(bytes);
            match decode(&text, &defaults, &Limits::BROWSER) {
                Ok(d) => {
                    // Whatever was decoded is a usable configuration within the limits.
                    d.link.config.validate().unwrap();
                    let (buffer, step) = Limits::step_bytes(&d.link.config);
                    assert!(buffer <= Limits::BROWSER.max_buffer_bytes);
                    assert!(step <= Limits::BROWSER.max_step_bytes);
                    true
                }
                Err(_) => false,
            }
        },
    );

    // Checkpoints: random bytes, and mutations of a real one (header and body).
    let mut t = Trainer::new(RunConfig::preset("tiny").unwrap(), &Device::flex()).unwrap();
    let data = gpicl_core::Dataset::new(
        "x",
        (0..64 * 9).map(|i| (i % 7) as f32).collect(),
        9,
        (0..64).map(|i| i % 10).collect(),
        None,
    )
    .unwrap();
    t.step(&data).unwrap();
    let good = pollster::block_on(t.checkpoint("flex")).unwrap();
    let bytes = good.to_bytes();
    assert_eq!(Checkpoint::from_bytes(&bytes).unwrap(), good);
    let header_end = 20 + u64::from_le_bytes(bytes[12..20].try_into().unwrap()) as usize;
    let mut rc = rng(4);
    let json_alphabet = b"{}[]\":,0123456789-.eaz ";
    fuzz(
        "checkpoint",
        n,
        |i| match i % 4 {
            0 => random_bytes(&mut rc, 400),
            // Mutate within the header (JSON) and keep the body.
            1 | 2 => {
                let mut head = mutate(&mut rc, &bytes[20..header_end], json_alphabet);
                let mut out = bytes[..12].to_vec();
                out.extend_from_slice(&(head.len() as u64).to_le_bytes());
                out.append(&mut head);
                out.extend_from_slice(&bytes[header_end..]);
                out
            }
            _ => mutate(&mut rc, &bytes, &[0, 1, 0xff, b'{', b'"']),
        },
        |b| match Checkpoint::from_bytes(b) {
            // A checkpoint that reads must also load into its model, or say why not.
            Ok(ck) => ck.model(&Device::flex()).is_ok(),
            Err(_) => false,
        },
    );

    // Results files: mutations of a real one.
    let mut results = Results::new(&RunConfig::preset("tiny").unwrap(), "flex");
    results.history.push(gpicl_core::EvalPoint {
        step: 1,
        time_s: 0.1,
        train_loss: 2.3,
        curves: vec![gpicl_core::Curve {
            name: "mnist unseen tasks".into(),
            accuracy: vec![0.1; 12],
            loss: vec![2.3; 12],
        }],
    });
    let json = serde_json::to_string(&results).unwrap();
    let mut rr = rng(5);
    fuzz(
        "results",
        n / 4,
        |_| mutate(&mut rr, json.as_bytes(), json_alphabet),
        |b| Results::from_json(&String::from_utf8_lossy(b)).is_ok(),
    );

    // CSV tables: random text, and mutations of valid ones (headers, names as labels).
    let tables = [
        "a,b,label\n1,2,cat\n3.5,-4,dog\n5,6e2,cat\n".to_string(),
        (0..20)
            .map(|i| format!("{},{},{}\n", i % 7, i * 3, i % 3))
            .collect(),
        "x, y ,z,class\n\n0.1,0.2,0.3,1\n0.4,0.5,0.6,0\n".to_string(),
        // Quotes, missing values, a text column; semicolons with decimal commas.
        "\"a\",b,c,label\n1,NA,red,\"x, y\"\n2,?,blue,z\n,3,,x\n4,5,red,\n".to_string(),
        "a;b;label\n1,5;2;x\n3;4,25;y\n".to_string(),
    ];
    let csv_alphabet = b",;\t.-e0123456789\nabc \"\r?";
    let mut rv = rng(6);
    let labels = [
        LabelColumn::Last,
        LabelColumn::First,
        LabelColumn::Index(1),
        LabelColumn::Named("a".into()),
    ];
    fuzz(
        "csv",
        n,
        |i| random_or_mutated(&mut rv, i, 200, &tables, csv_alphabet),
        |b| match parse_csv("f.csv", b, labels[b.len() % 4].clone()) {
            // A table that parses is whole: every row as wide as the first, labels in range.
            Ok(t) => {
                assert!(t.label < t.columns.len());
                let d = t.data;
                assert_eq!(d.features.len(), d.len() * d.n_features);
                assert!(d.feature_names.is_empty() || d.feature_names.len() == d.n_features);
                assert!(d.labels.iter().all(|&y| (y as usize) < d.n_classes));
                true
            }
            Err(_) => false,
        },
    );

    // IDX images and labels: random bytes, and mutations of a valid pair (8- and 16-bit).
    let idx = |kind: u8, dims: &[u32], data: &[u8]| {
        let mut v = vec![0, 0, kind, dims.len() as u8];
        for d in dims {
            v.extend(d.to_be_bytes());
        }
        v.extend(data);
        v
    };
    let images = [
        idx(0x08, &[3, 2, 2], &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 255]),
        idx(
            0x0B,
            &[2, 2, 2],
            &[0, 1, 0, 2, 0, 3, 1, 0, 0, 4, 0, 5, 0, 6, 0, 7],
        ),
    ];
    let idx_labels = [idx(0x08, &[3], &[0, 1, 2]), idx(0x08, &[2], &[1, 0])];
    let mut ri = rng(7);
    fuzz(
        "idx",
        n,
        |i| {
            let k = i % 2;
            let (a, b) = match i % 3 {
                0 => (random_bytes(&mut ri, 64), idx_labels[k].clone()),
                1 => (
                    mutate(&mut ri, &images[k], &[0, 1, 3, 8, 0x0B, 0xff]),
                    idx_labels[k].clone(),
                ),
                _ => (
                    images[k].clone(),
                    mutate(&mut ri, &idx_labels[k], &[0, 1, 3, 8, 0xff]),
                ),
            };
            // Both files in one input: the images' length first.
            let mut out = (a.len() as u32).to_le_bytes().to_vec();
            out.extend(a);
            out.extend(b);
            out
        },
        |b| {
            let n = u32::from_le_bytes(b[..4].try_into().unwrap()) as usize;
            match parse_idx_pair("f", &b[4..4 + n], &b[4 + n..]) {
                Ok(d) => {
                    assert_eq!(d.features.len(), d.len() * d.n_features);
                    true
                }
                Err(_) => false,
            }
        },
    );
}
