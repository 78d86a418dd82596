//! The page's training session on Flex, natively, on the real data bundles: the same code the
//! page runs on WebGPU (all reads asynchronous, driven here by `pollster`).

use std::rc::Rc;

use burn::prelude::Device;
use gpicl_core::RunConfig;
use gpicl_web::data::{FILES, PageData};
use gpicl_web::session::{Session, walk};

fn load() -> PageData {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../web");
    let files: Vec<Vec<u8>> = FILES
        .iter()
        .map(|f| std::fs::read(root.join(f)).unwrap())
        .collect();
    PageData::parse(&files.try_into().unwrap()).unwrap()
}

fn page_data() -> Rc<PageData> {
    Rc::new(load())
}

#[test]
fn page_data_parses_the_bundles_and_refuses_corrupt_ones() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../web");
    let mut files: Vec<Vec<u8>> = FILES
        .iter()
        .map(|f| std::fs::read(root.join(f)).unwrap())
        .collect();
    let data = PageData::parse(&files.clone().try_into().unwrap()).unwrap();
    assert_eq!((data.train.len(), data.train.n_features), (60_000, 49));
    assert_eq!((data.test.len(), data.fashion.len()), (10_000, 10_000));
    assert_eq!(data.test_pixels.n_features, 784);
    let truncated = files[2].len() / 2;
    files[2].truncate(truncated);
    let err = PageData::parse(&files.try_into().unwrap()).unwrap_err();
    assert!(
        err.to_string().contains("gzip") || err.to_string().contains("IDX"),
        "{err}"
    );
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
        let walk = walk(&data, s.config(), 5);
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
    for v in &mut data.train.features {
        *v *= 1e38;
    }
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
