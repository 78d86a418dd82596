//! The page's training session on Flex, natively, on the real data bundles: the same code the
//! page runs on WebGPU (all reads asynchronous, driven here by `pollster`).

use std::rc::Rc;

use burn::prelude::Device;
use gpicl_core::manifest::InputStats;
use gpicl_core::parse::parse_idx_pair;
use gpicl_core::{Manifest, RunConfig};
use gpicl_web::data::{POOL, PageData, TRAIN_FILES, WALK_FILES, WalkData};
use gpicl_web::session::{Session, walk};

mod common;

fn read<const N: usize>(files: [&str; N]) -> [Vec<u8>; N] {
    let root = common::web();
    files.map(|f| std::fs::read(root.join(f)).unwrap())
}

fn load() -> PageData {
    PageData::parse(&read(TRAIN_FILES)).unwrap()
}

/// The step-through's data, for the shipped learner.
fn walk_data() -> WalkData {
    WalkData::parse(&read(WALK_FILES), stats()).unwrap()
}

fn stats() -> InputStats {
    let root = common::web();
    let text = std::fs::read_to_string(root.join("pretrained/manifest.json")).unwrap();
    Manifest::from_json(&text).unwrap().input_stats
}

fn page_data() -> Rc<PageData> {
    Rc::new(load())
}

#[test]
fn page_data_parses_the_bundles_and_refuses_corrupt_ones() {
    let mut files = read(TRAIN_FILES);
    let data = PageData::parse(&files).unwrap();
    assert_eq!((data.train.len(), data.train.n_features), (60_000, 49));
    assert_eq!((data.test.len(), data.fashion.len()), (10_000, 10_000));
    let walk = walk_data();
    assert_eq!(walk.shown.n_features, 784);
    assert_eq!(walk.shown.len(), 1000);
    assert_eq!((walk.inputs.n_features, walk.inputs.len()), (49, 1000));
    // The step-through's inputs: the first test images pooled as the worker's test set (bit for
    // bit), normalised with the learner's statistics.
    let s = stats();
    let pooled = parse_idx_pair("mnist", &files[2], &files[3]).unwrap();
    let expected: Vec<f32> = pooled
        .take(1000)
        .features
        .iter()
        .map(|v| (v / 16.0 - s.mean) / s.std)
        .collect();
    assert_eq!(walk.inputs.features, expected);
    assert_eq!(walk.inputs.labels, data.test.labels[..1000]);
    let mut mismatched = read(WALK_FILES);
    mismatched[1] = files[1].clone();
    assert!(
        WalkData::parse(&mismatched, s).is_err(),
        "labels of other images"
    );
    let truncated = files[2].len() / 2;
    files[2].truncate(truncated);
    let err = PageData::parse(&files).unwrap_err();
    assert!(
        err.to_string().contains("gzip") || err.to_string().contains("IDX"),
        "{err}"
    );
}

/// The page's pooled bundles give, bit for bit, the datasets the CLI makes from the full 28×28
/// bundles (parse, `prepared(POOL)`): so a share link replays the same on either side.
#[test]
fn pooled_bundles_equal_the_full_bundles_pooled() {
    let web = common::web().join("data");
    let read = |f: &str| std::fs::read(web.join(f)).unwrap();
    let data = load();
    for (name, prefix, pooled) in [
        ("mnist", "mnist-train", &data.train),
        ("mnist", "mnist-t10k", &data.test),
        ("fashion-mnist", "fashion-mnist-t10k", &data.fashion),
    ] {
        let full = parse_idx_pair(
            name,
            &read(&format!("{prefix}-images-idx3-ubyte.gz")),
            &read(&format!("{prefix}-labels-idx1-ubyte.gz")),
        )
        .unwrap();
        let expected = full.clone().prepared(POOL).unwrap();
        assert_eq!(pooled.n_features, expected.n_features);
        assert_eq!(pooled.labels, expected.labels, "{prefix}");
        // The page holds them compact (16-bit codes); the values are the same, bit for bit.
        assert!(pooled.is_compact() && !expected.is_compact(), "{prefix}");
        let bits = |d: &gpicl_core::Dataset| d.values().map(f32::to_bits).collect::<Vec<_>>();
        assert!(
            bits(pooled) == bits(&expected),
            "{prefix}: pooled values differ"
        );
        if prefix == "mnist-t10k" {
            let pixels = walk_data().shown;
            assert_eq!(pixels, full.take(pixels.len()));
        }
    }
}

#[test]
fn a_session_trains_and_evaluates_deterministically() {
    let data = page_data();
    let config = RunConfig::preset("tiny").unwrap();
    let device = Device::flex();
    let run = || {
        let mut s = Session::new(config.clone(), data.clone(), &device).unwrap();
        let losses = pollster::block_on(s.train(3)).unwrap();
        let curves = pollster::block_on(s.evaluate()).unwrap();
        let walk = walk(&walk_data(), s.config(), 5);
        (s.step_count(), losses, curves, walk)
    };
    let (steps, losses, curves, walk) = run();
    assert_eq!(steps, 3);
    assert_eq!(losses.len(), 3);
    assert!(
        losses.iter().all(|l| l.is_finite() && *l > 0.0),
        "{losses:?}"
    );
    let names: Vec<&str> = curves.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "mnist seen tasks",
            "mnist unseen tasks",
            "fashion-mnist unseen tasks"
        ]
    );
    assert!(
        curves
            .iter()
            .all(|c| c.accuracy.len() == config.tasks.seq_len)
    );
    assert_eq!(walk.seq_len, config.tasks.seq_len);
    // The walk's labels are the true classes through one permutation.
    let mut map = [None; 10];
    for (&i, &y) in walk.indices.iter().zip(&walk.labels) {
        let class = data.test.labels[i] as usize;
        assert_eq!(
            *map[class].get_or_insert(y),
            y,
            "class {class} renamed twice"
        );
    }
    // Same config and seeds: the same numbers.
    let (_, losses2, curves2, walk2) = run();
    assert_eq!(losses, losses2);
    assert_eq!(curves, curves2);
    assert_eq!(walk.indices, walk2.indices);
}

#[test]
fn a_diverging_run_stops_with_advice() {
    // Inputs near float32's largest value overflow to ±inf in the projection: NaN loss.
    let mut data = load();
    data.train.map_values(|v| v * 1e38);
    let config = RunConfig::preset("tiny").unwrap();
    let mut s = Session::new(config, Rc::new(data), &Device::flex()).unwrap();
    let err = pollster::block_on(s.train(2))
        .expect_err("a non-finite loss must stop training")
        .to_string();
    assert!(
        err.contains("diverged") && err.contains("learning rate") && err.contains("step 1"),
        "{err}"
    );
}

/// What a share link's replay does: decode the link, train its steps, evaluate, fingerprint.
fn replay(link: &str, data: &Rc<PageData>) -> (gpicl_core::share::Link, Vec<gpicl_core::Curve>) {
    use gpicl_core::share::{Limits, decode};
    let defaults = RunConfig::preset("browser").unwrap();
    let decoded = decode(link, &defaults, &Limits::BROWSER).unwrap();
    assert_eq!(decoded.problems, Vec::<String>::new());
    let steps = decoded.link.replay.as_ref().map_or(0, |r| r.step);
    let mut s = Session::new(decoded.link.config.clone(), data.clone(), &Device::flex()).unwrap();
    pollster::block_on(s.train(steps)).unwrap();
    let curves = pollster::block_on(s.evaluate()).unwrap();
    (decoded.link, curves)
}

#[test]
fn the_same_share_link_replays_bit_identically_on_flex() {
    use gpicl_core::share::{Link, Replay, ReplayOutcome, encode};
    let data = page_data();
    let mut config = RunConfig::preset("tiny").unwrap();
    config.seed = 11;
    let mut s = Session::new(config.clone(), data.clone(), &Device::flex()).unwrap();
    pollster::block_on(s.train(4)).unwrap();
    let curves = pollster::block_on(s.evaluate()).unwrap();
    let link = encode(&Link {
        config,
        app_version: env!("CARGO_PKG_VERSION").into(),
        data_version: "0123abcd".into(),
        replay: Some(Replay::of(4, &curves)),
        table: None,
    });
    for _ in 0..2 {
        let (decoded, replayed) = replay(&link, &data);
        let expected = decoded.replay.unwrap();
        assert_eq!(expected.compare(&replayed), ReplayOutcome::Exact, "{link}");
    }
    // Another seed is another experiment: the replay says how far it is.
    let other = link.replace("seed=11", "seed=12");
    let (decoded, replayed) = replay(&other, &data);
    assert_ne!(
        decoded.replay.unwrap().compare(&replayed),
        ReplayOutcome::Exact
    );
}

#[test]
fn a_session_saved_to_a_checkpoint_file_resumes_exactly() {
    let data = page_data();
    let config = RunConfig::preset("tiny").unwrap();
    let device = Device::flex();
    let mut a = Session::new(config, data.clone(), &device).unwrap();
    pollster::block_on(a.train(3)).unwrap();
    let bytes = pollster::block_on(a.checkpoint("flex")).unwrap().to_bytes();
    let checkpoint = gpicl_core::Checkpoint::from_bytes(&bytes).unwrap();
    let mut b = Session::resume(&checkpoint, data.clone(), &device).unwrap();
    assert_eq!(b.step_count(), 3);
    assert_eq!(
        pollster::block_on(a.evaluate()).unwrap(),
        pollster::block_on(b.evaluate()).unwrap()
    );
    assert_eq!(
        pollster::block_on(a.train(2)).unwrap(),
        pollster::block_on(b.train(2)).unwrap(),
        "the resumed run takes the same steps"
    );
}

#[test]
fn a_diverged_run_rolls_back_to_its_last_checkpoint() {
    // The page keeps its last autosave; on a non-finite loss it resumes from it.
    let mut bad = load();
    bad.train.map_values(|v| v * 1e38);
    let bad = Rc::new(bad);
    let config = RunConfig::preset("tiny").unwrap();
    let mut s = Session::new(config, bad.clone(), &Device::flex()).unwrap();
    let last_good = pollster::block_on(s.checkpoint("flex")).unwrap();
    let err = pollster::block_on(s.train(2)).unwrap_err();
    assert!(matches!(err, gpicl_core::Error::Diverged(_)), "{err}");
    let back = Session::resume(&last_good, bad, &Device::flex()).unwrap();
    assert_eq!(back.step_count(), 0);
}
