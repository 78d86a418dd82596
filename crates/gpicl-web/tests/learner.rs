//! The shipped pretrained learner (`web/pretrained`), natively on Flex: it loads only when its
//! weights match the manifest, feeding it one example at a time through the KV cache gives the
//! full forward pass's predictions, and it reproduces the manifest's curve.

use burn::prelude::*;
use burn::tensor::activation::softmax;
use gpicl_core::eval::{evaluate, evaluate_views};
use gpicl_core::{Manifest, Trainer};
use gpicl_web::data::{PageData, TRAIN_FILES, WALK_FILES, WalkData};
use gpicl_web::learner::{InContext, Learner};
use gpicl_web::session::walk;

mod common;

fn web(path: &str) -> std::path::PathBuf {
    common::web().join(path)
}

fn shipped() -> (Manifest, Vec<u8>) {
    let manifest =
        Manifest::from_json(&std::fs::read_to_string(web("pretrained/manifest.json")).unwrap())
            .unwrap();
    (
        manifest,
        std::fs::read(web("pretrained/model.bpk")).unwrap(),
    )
}

fn walk_data() -> WalkData {
    let stats = shipped().0.input_stats;
    WalkData::parse(&WALK_FILES.map(|f| std::fs::read(web(f)).unwrap()), stats).unwrap()
}

#[test]
fn loads_only_weights_that_match_the_manifest() {
    let (manifest, bytes) = shipped();
    assert!(Learner::load(manifest.clone(), bytes.clone()).is_ok());
    let mut flipped = bytes.clone();
    flipped[bytes.len() / 2] ^= 1;
    let err = Learner::load(manifest.clone(), flipped).err().unwrap();
    assert!(err.to_string().contains("SHA-256"), "{err}");
    let err = Learner::load(manifest, bytes[..1000].to_vec())
        .err()
        .unwrap();
    assert!(err.to_string().contains("bytes"), "{err}");
}

/// Example by example through the cache = one forward pass over the whole sequence (tolerance
/// 1e-4 on probabilities; measured differences are ~1e-6).
#[test]
fn feeding_through_the_cache_equals_the_full_forward_pass() {
    let (manifest, bytes) = shipped();
    let learner = Learner::load(manifest, bytes).unwrap();
    let data = walk_data();
    let c = learner.config().clone();
    let seq = walk(&data, &c, 3);
    let device = Device::flex();
    let (tokens, _) = c.tasks.format.encode(&seq, c.model.n_classes, &device);
    let full = softmax(
        c.tasks
            .format
            .prediction_logits(learner.model().forward(tokens)),
        2,
    )
    .into_data()
    .try_to_vec::<f32>()
    .unwrap();

    let mut context = InContext::default();
    let mut worst = 0.0f32;
    for (j, x) in seq.projected(0).chunks_exact(seq.d_in).enumerate() {
        let label = seq.labels[j] as usize;
        let look = pollster::block_on(learner.predict(&context, x)).unwrap();
        let (probs, next) = pollster::block_on(learner.feed(&context, x, label)).unwrap();
        // A look-ahead runs one token where a feed runs two: same numbers up to rounding.
        let ahead = look
            .iter()
            .zip(&probs)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(ahead < 1e-5, "look-ahead and feed differ by {ahead}");
        let want = &full[j * 10..(j + 1) * 10];
        for (a, b) in probs.iter().zip(want) {
            worst = worst.max((a - b).abs());
        }
        context = next;
    }
    assert_eq!(context.len(), seq.seq_len);
    assert!(
        worst < 1e-4,
        "cached and full predictions differ by {worst}"
    );
    let x = vec![0.0; c.model.d_in];
    assert!(pollster::block_on(learner.feed(&context, &x, 10)).is_err());
}

/// The manifest's unseen-MNIST curve (measured by `gpicl package` on the shipped weights) again
/// through the page's loading path: the same evaluation sequences, the same weights.
#[test]
fn reproduces_the_manifests_curve() {
    let (manifest, bytes) = shipped();
    let learner = Learner::load(manifest.clone(), bytes).unwrap();
    let data = PageData::parse(&TRAIN_FILES.map(|f| std::fs::read(web(f)).unwrap())).unwrap();
    let device = Device::flex();
    let trainer = Trainer::new(manifest.config.clone(), &device).unwrap();
    let sets = trainer
        .eval_sets(&data.train, &data.test, &data.fashion)
        .unwrap();
    let c = &manifest.config;
    let curve = pollster::block_on(evaluate(
        learner.model(),
        c.tasks.format,
        c.model.n_classes,
        &sets[1],
        &device,
    ))
    .unwrap();
    let want = manifest
        .curve(&curve.name)
        .expect("the manifest has this curve");
    let diffs: Vec<f32> = curve
        .accuracy
        .iter()
        .zip(&want.accuracy)
        .map(|(a, b)| (a - b).abs())
        .collect();
    let max = diffs.iter().copied().fold(0.0, f32::max);
    let mean = diffs.iter().sum::<f32>() / diffs.len() as f32;
    println!("{}: max |Δ| {max:.4}, mean |Δ| {mean:.5}", curve.name);
    // 256 sequences: one prediction flipped by rounding moves a point by 1/256 ≈ 0.004.
    assert!(max <= 0.0080 && mean <= 0.002, "max {max}, mean {mean}");
}

/// Read as an ensemble of views (the same examples through other projections and renamings,
/// probabilities averaged), the shipped learner is more accurate on unseen MNIST tasks than
/// alone: measured +6 points at positions 91–100 on 256 sequences; asserted +2 over positions
/// 51–100 on 96. One view is the learner alone, bit for bit, and so is the learner alone read
/// from the ensemble's own forward passes (`evaluate_views`).
#[test]
fn an_ensemble_of_views_reads_unseen_tasks_better_than_one() {
    use gpicl_core::EvalSet;
    let (manifest, bytes) = shipped();
    let learner = Learner::load(manifest.clone(), bytes).unwrap();
    let data = PageData::parse(&TRAIN_FILES.map(|f| std::fs::read(web(f)).unwrap())).unwrap();
    let device = Device::flex();
    let c = &manifest.config;
    let set = EvalSet::unseen("mnist", &data.test, 96, 100, c.model.d_in, 10, 5).unwrap();
    let curve = |set: &EvalSet| {
        pollster::block_on(evaluate(
            learner.model(),
            c.tasks.format,
            c.model.n_classes,
            set,
            &device,
        ))
        .unwrap()
    };
    let alone = curve(&set);
    assert_eq!(curve(&set.clone().with_views(1, 9)), alone);
    let viewed = set.with_views(8, 9);
    let ensemble = curve(&viewed);
    let (both_ensemble, both_alone) = pollster::block_on(evaluate_views(
        learner.model(),
        c.tasks.format,
        c.model.n_classes,
        &viewed,
        &device,
    ))
    .unwrap();
    assert_eq!(both_ensemble, ensemble);
    assert_eq!(both_alone, alone);
    let late = |c: &gpicl_core::Curve| c.accuracy[50..].iter().sum::<f32>() / 50.0;
    println!(
        "positions 51–100: alone {:.3}, 8 views {:.3}",
        late(&alone),
        late(&ensemble)
    );
    assert!(
        late(&ensemble) >= late(&alone) + 0.02,
        "alone {}, 8 views {}",
        late(&alone),
        late(&ensemble)
    );
}

/// A table made up here (three Gaussian blobs in 5 dimensions, labels that are words): the
/// shipped learner learns it from its context, above chance and rising, beside the baselines;
/// tables it cannot learn are refused with the reason.
#[test]
fn learns_a_visitors_table_in_context_and_refuses_bad_ones() {
    use gpicl_core::share::TableRef;
    use gpicl_web::yours::{self, Format, learn};
    let (manifest, bytes) = shipped();
    let device = Device::flex();
    let model = manifest.model(bytes, &device).unwrap();
    let config = &manifest.config;
    let mut csv = String::from("f1,f2,f3,f4,f5,kind\n");
    // Deterministic noise in [-1, 1).
    let noise = |i: usize, f: usize| ((i * 7919 + f * 104_729) % 1000) as f32 / 500.0 - 1.0;
    for i in 0..300 {
        let (name, centre) = [("ant", -3.0), ("bee", 0.0), ("cow", 3.0)][i % 3];
        let row: Vec<String> = (0..5)
            .map(|f| {
                let shift = if f % 2 == 0 { centre } else { -centre };
                format!("{:.3}", shift + 1.5 * noise(i, f))
            })
            .collect();
        csv.push_str(&format!("{},{name}\n", row.join(",")));
    }
    let run = |text: &str| {
        pollster::block_on(learn(
            "blobs.csv",
            text.as_bytes(),
            Format::Csv { label_column: None },
            config,
            &model,
            &device,
        ))
    };
    let report = run(&csv).unwrap();
    assert_eq!((report.rows, report.features, report.classes), (300, 5, 3));
    let acc = &report.curve.accuracy;
    let late = acc[acc.len() - 10..].iter().sum::<f32>() / 10.0;
    assert!(late > 1.0 / 3.0 + 0.2, "late accuracy {late}: {acc:?}");
    assert!(late > acc[0] + 0.2, "the curve does not rise: {acc:?}");
    // Read over the table's 3 classes, a first guess (no example yet) is right about 1/3 of
    // the time (64 sequences: ±0.06 standard error).
    assert!((acc[0] - 1.0 / 3.0).abs() < 0.15, "first guess {}", acc[0]);
    // Read with views too, from the same forward passes: above chance, a first guess of 1/3.
    let ensemble = &report.ensemble.accuracy;
    let ensemble_late = ensemble[ensemble.len() - 10..].iter().sum::<f32>() / 10.0;
    println!(
        "positions 41–50: alone {late:.3}, {} views {ensemble_late:.3}",
        yours::VIEWS
    );
    assert!(
        ensemble_late > 1.0 / 3.0 + 0.2,
        "late accuracy with views {ensemble_late}"
    );
    assert!(
        (ensemble[0] - 1.0 / 3.0).abs() < 0.15,
        "first guess with views {}",
        ensemble[0]
    );
    assert_eq!(report.baselines.len(), 3);
    // The learner with views minus the best baseline, paired on all 64 sequences at every
    // position of the last quarter (39–50): the one named is the best there by its curve (16
    // sequences, at 40, 45 and 50), fit again on all of them.
    let paired = report.paired.as_ref().expect("a paired comparison");
    assert_eq!(paired.positions, (39..=50).collect::<Vec<_>>());
    assert_eq!(paired.sequences, yours::SEQUENCES);
    let over = |points: &[(usize, f32)]| {
        let at: Vec<f32> = points
            .iter()
            .filter(|p| paired.positions.contains(&p.0))
            .map(|p| p.1)
            .collect();
        at.iter().sum::<f32>() / at.len() as f32
    };
    let best = report
        .baselines
        .iter()
        .map(|b| over(&b.1))
        .fold(0.0, f32::max);
    let named = report
        .baselines
        .iter()
        .find(|b| b.0 == format!("{}, same contexts", paired.baseline))
        .expect("the named baseline is shown");
    assert_eq!(over(&named.1), best);
    assert!(paired.standard_error >= 0.0 && paired.standard_error < 0.2);
    assert!(paired.difference.abs() <= 1.0);
    println!(
        "paired: {} minus {}: {:+.3} ± {:.3}",
        report.ensemble.name, paired.baseline, paired.difference, paired.standard_error
    );
    // The step-through's rows, with the file's names; the link's fingerprint of the file.
    let sample = &report.sample;
    assert_eq!(
        (sample.labels.len(), sample.n_raw, sample.n_inputs),
        (300, 5, 5)
    );
    assert_eq!(sample.class_names, ["ant", "bee", "cow"]);
    // The measurements cannot be the label (the page lists them, not offers them); the kind
    // can.
    let not_classes = Some("not classes".to_string());
    assert_eq!(report.not_labels[..5], vec![not_classes; 5]);
    assert_eq!(report.not_labels[5], None);
    assert_eq!(sample.feature_names, ["f1", "f2", "f3", "f4", "f5"]);
    assert_eq!(report.hash, TableRef::fingerprint(csv.as_bytes()));
    // The page keeps the files behind the table it shows. The worker answers in the order
    // sent, so the refusal of a file dropped later does not take the shown table's files'
    // place, and relabelling learns those again.
    let files = |name: &str| std::rc::Rc::new(vec![(name.to_string(), name.as_bytes().to_vec())]);
    let mut page = yours::YourData::default();
    page.learning("blobs.csv".into(), files("blobs.csv"));
    page.learning("other.csv".into(), files("other.csv"));
    assert_eq!(page.busy(), Some("blobs.csv"));
    page.learnt(report.clone());
    assert_eq!(page.busy(), Some("other.csv"));
    assert_eq!(page.shown(), Some(files("blobs.csv")));
    page.learn_refused("other.csv was not loaded".into());
    assert_eq!(
        (page.busy(), page.shown()),
        (None, Some(files("blobs.csv")))
    );
    assert!(page.error.is_some() && page.report.is_some());
    // A worker lost drops what it was learning, and says so; the table shown stays.
    page.learning("third.csv".into(), files("third.csv"));
    page.worker_lost();
    assert_eq!(
        (page.busy(), page.shown()),
        (None, Some(files("blobs.csv")))
    );
    assert!(page.error.as_deref().unwrap().contains("third.csv"));
    let (inputs, shown) = sample.datasets("blobs.csv").unwrap();
    assert_eq!(
        (inputs.len(), shown.row(1)[0]),
        (
            300,
            csv.lines()
                .nth(2)
                .unwrap()
                .split(',')
                .next()
                .unwrap()
                .parse()
                .unwrap()
        )
    );
    // Bad tables: one class, too many classes, too few rows, a ragged row, an open quote.
    let one = "a,b\n1,x\n2,x\n";
    assert!(run(one).unwrap_err().to_string().contains("one class"));
    let many: String = (0..40).map(|i| format!("{i},c{i}\n")).collect();
    assert!(run(&many).unwrap_err().to_string().contains("40 classes"));
    assert!(run("1,a\n2,b\n").unwrap_err().to_string().contains("rows"));
    let ragged = "a,b,y\n1,2,p\n1,p\n";
    let e = run(ragged).unwrap_err().to_string();
    assert!(e.contains("line 3: 2 columns, expected 3"), "{e}");
    let e = run("a,b,y\n1,2,p\n1,\"2,p\n").unwrap_err().to_string();
    assert!(e.contains("line 3: a quote is never closed"), "{e}");
}

/// Where the shipped learner looks when it predicts: over many sequences and positions, how
/// often the earlier example its attention weighs most (per block, heads averaged) is the
/// 1-nearest neighbour of the query (in the projected inputs the learner sees), and how often
/// it is of the class the learner predicts, against the rates a randomly chosen earlier
/// example would give. Prints the table the README reports (`cargo test --release --workspace
/// --test learner attention -- --nocapture`).
#[test]
fn attention_agreement_with_nearest_neighbour_and_prediction() {
    use gpicl_core::baselines::nearest;
    use gpicl_web::session::sequence;
    let (manifest, bytes) = shipped();
    let learner = Learner::load(manifest.clone(), bytes).unwrap();
    let c = learner.config().clone();
    let pooled = PageData::parse(&TRAIN_FILES.map(|f| std::fs::read(web(f)).unwrap())).unwrap();
    const SEQUENCES: u64 = 24;
    const FROM: usize = 5;
    println!(
        "dataset | block | top = 1-NN (random: …) | top's class = predicted (random: …) | positions"
    );
    for (name, data) in [
        ("MNIST unseen tasks", &walk_data().inputs),
        ("Fashion-MNIST", &pooled.fashion),
    ] {
        let blocks = c.model.n_layers;
        let (mut nn, mut pred) = (vec![0usize; blocks], vec![0usize; blocks]);
        let (mut nn_chance, mut pred_chance, mut n) = (0f64, 0f64, 0usize);
        let (mut same_as_nn, mut right) = (0usize, 0usize);
        for s in 0..SEQUENCES {
            let b = sequence(data, &c, 1000 + s);
            let xs: Vec<Vec<f32>> = b
                .projected(0)
                .chunks_exact(b.d_in)
                .map(<[f32]>::to_vec)
                .collect();
            let mut context = InContext::default();
            for j in 0..b.seq_len {
                let fed = pollster::block_on(learner.feed_looking(
                    &context,
                    &xs[j],
                    b.labels[j] as usize,
                ))
                .unwrap();
                context = fed.context;
                if j < FROM {
                    continue;
                }
                let neighbour = nearest(xs[..j].iter().map(Vec::as_slice), &xs[j]).unwrap();
                let predicted = gpicl_core::baselines::argmax(&fed.probs).unwrap() as u32;
                for (k, look) in fed.attention.iter().enumerate() {
                    assert_eq!(look.len(), j, "one weight per earlier example");
                    let top = (0..j)
                        .max_by(|&a, &bb| look[a].total_cmp(&look[bb]))
                        .unwrap();
                    nn[k] += usize::from(top == neighbour);
                    pred[k] += usize::from(b.labels[top] == predicted);
                }
                same_as_nn += usize::from(b.labels[neighbour] == predicted);
                right += usize::from(b.labels[j] == predicted);
                nn_chance += 1.0 / j as f64;
                pred_chance +=
                    b.labels[..j].iter().filter(|&&y| y == predicted).count() as f64 / j as f64;
                n += 1;
            }
        }
        let rate = |v: usize| 100.0 * v as f64 / n as f64;
        for k in 0..blocks {
            println!(
                "{name} | {} | {:.1}% ({:.1}%) | {:.1}% ({:.1}%) | {n}",
                k + 1,
                rate(nn[k]),
                100.0 * nn_chance / n as f64,
                rate(pred[k]),
                100.0 * pred_chance / n as f64
            );
        }
        println!(
            "{name}: the learner predicts the 1-NN's class at {:.1}% of these positions; it is right at {:.1}%",
            rate(same_as_nn),
            rate(right)
        );
        // The learner does look at its context by content: in some block, the most attended
        // example is the query's nearest neighbour far more often than a random one would be.
        let best = nn.iter().copied().max().unwrap() as f64 / n as f64;
        assert!(
            best > 2.0 * nn_chance / n as f64,
            "{name}: top = 1-NN at {best}"
        );
    }
}

/// Images and labels as IDX files (labels first, gzipped; images raw): read as a pair whatever
/// their order, learnt above chance, shown as images.
#[test]
fn learns_a_visitors_idx_images() {
    use gpicl_web::yours::{Format, learn};
    use std::io::Write;
    let (manifest, bytes) = shipped();
    let device = Device::flex();
    let model = manifest.model(bytes, &device).unwrap();
    // 6×6 images (not pooled: 6 is no multiple of the learner's pooling, 4), three classes:
    // a bright row at 0, 2 or 4, over deterministic noise.
    let (n, side) = (240usize, 6usize);
    let mut images = vec![0, 0, 8, 3];
    for d in [n, side, side] {
        images.extend((d as u32).to_be_bytes());
    }
    let mut labels = vec![0, 0, 8, 1];
    labels.extend((n as u32).to_be_bytes());
    for i in 0..n {
        let class = i % 3;
        for p in 0..side * side {
            let bright = p / side == 2 * class;
            let noise = ((i * 7919 + p * 104_729) % 90) as u8;
            images.push(if bright { 160 + noise } else { noise });
        }
        labels.push(class as u8);
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&labels).unwrap();
    let labels_gz = gz.finish().unwrap();
    let both = [labels_gz.as_slice(), &images].concat();
    let format = Format::IdxPair {
        second_at: labels_gz.len(),
    };
    let report = pollster::block_on(learn(
        "rows",
        &both,
        format,
        &manifest.config,
        &model,
        &device,
    ))
    .unwrap();
    assert_eq!((report.rows, report.features, report.classes), (n, 36, 3));
    let acc = &report.curve.accuracy;
    let late = acc[acc.len() - 10..].iter().sum::<f32>() / 10.0;
    assert!(late > 1.0 / 3.0 + 0.2, "late accuracy {late}: {acc:?}");
    assert_eq!(report.sample.image_side, Some(side));
    // Two label files are no pair.
    let two_labels = [labels.as_slice(), &labels].concat();
    let e = pollster::block_on(learn(
        "rows",
        &two_labels,
        Format::IdxPair {
            second_at: labels.len(),
        },
        &manifest.config,
        &model,
        &device,
    ))
    .unwrap_err();
    assert!(e.to_string().contains("images"), "{e}");
}
