//! The record shipped beside a pretrained learner's weights (`web/pretrained/manifest.json`):
//! what it is, how it was made, on what data, and the curves it reached. The CLI writes it
//! (`gpicl package`); the page reads it and shows its curves before anything else has loaded.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::train::load_model;
use crate::{Curve, Error, RunConfig, Transformer};

/// The manifest format's version; readers refuse others.
pub const MANIFEST_VERSION: u32 = 1;

/// A file and its SHA-256.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileHash {
    /// File name (relative to the manifest for the model, to `web/data` for data).
    pub file: String,
    /// Hex SHA-256 of the file's bytes.
    pub sha256: String,
    /// Size in bytes.
    pub bytes: u64,
}

impl FileHash {
    /// The record of `bytes`, named `file`.
    pub fn of(file: &str, bytes: &[u8]) -> Self {
        Self {
            file: file.to_string(),
            sha256: format!("{:x}", Sha256::digest(bytes)),
            bytes: bytes.len() as u64,
        }
    }

    /// Checks that `bytes` are this file: same size, same SHA-256.
    pub fn check(&self, bytes: &[u8]) -> Result<(), Error> {
        if bytes.len() as u64 != self.bytes {
            return Err(Error::Checkpoint(format!(
                "{}: {} bytes, the manifest says {}",
                self.file,
                bytes.len(),
                self.bytes
            )));
        }
        if Self::of(&self.file, bytes).sha256 != self.sha256 {
            return Err(Error::Checkpoint(format!(
                "{}: its SHA-256 does not match the manifest's (a corrupt or different file)",
                self.file
            )));
        }
        Ok(())
    }
}

/// How raw inputs (pixels in [0, 1], pooled) were normalised before the learner saw them:
/// `(x - mean) / std`, the training set's statistics. New inputs (a drawing) use the same.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputStats {
    /// Mean over all pixels of all training images.
    pub mean: f32,
    /// Standard deviation over the same.
    pub std: f32,
}

/// One headline number: a curve's accuracy at the k-th example.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Headline {
    /// The curve's name.
    pub curve: String,
    /// Position (examples seen + 1).
    pub examples: usize,
    /// Accuracy there.
    pub accuracy: f32,
}

/// A shipped learner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Format version ([`MANIFEST_VERSION`]).
    pub version: u32,
    /// The run's configuration (with its seeds).
    pub config: RunConfig,
    /// Meta-training steps done.
    pub steps: usize,
    /// The machine and device that trained it, in words.
    pub hardware: String,
    /// The backend that trained it.
    pub backend: String,
    /// Training wall time, seconds.
    pub train_time_s: f64,
    /// Commands that re-create the weights and this manifest.
    pub command: String,
    /// Version of gpicl that trained it.
    pub gpicl_version: String,
    /// The weights file (burn's binary record).
    pub model: FileHash,
    /// The data bundles it was trained and evaluated on.
    pub data: Vec<FileHash>,
    /// Normalisation of the inputs.
    pub input_stats: InputStats,
    /// The final evaluation: seen tasks, unseen tasks, unseen dataset.
    pub curves: Vec<Curve>,
    /// Headline numbers read off `curves` (at the 50th example and at the last), for readers
    /// of the file; checked against the curves when read.
    pub headlines: Vec<Headline>,
    /// The held-out suite's figures for these weights (`gpicl suite --record`), when measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suite: Option<SuiteRecord>,
    /// The learner these weights were fine-tuned from (`gpicl train --init`), when they were:
    /// `steps`, `train_time_s` and `hardware` above are the fine-tuning's, this its source's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<crate::results::Init>,
}

/// A learner's figures on the held-out suite, beside the baselines fit on the same contexts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuiteRecord {
    /// The command that measured them.
    pub command: String,
    /// Views the ensemble column averaged over (1: none).
    pub views: usize,
    /// One row per dataset.
    pub rows: Vec<SuiteRow>,
    /// The learner (with the record's views, when more than one) minus each baseline on the
    /// mean over the datasets, paired by sequence on the baselines' sequences and positions:
    /// the baseline's name, the mean difference and its standard error (fractions). Empty in
    /// records made before it was kept.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paired: Vec<(String, f32, f32)>,
}

/// One dataset's row of a [`SuiteRecord`]: mean accuracies over the last quarter of positions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuiteRow {
    /// The dataset.
    pub dataset: String,
    /// The learner alone.
    pub learner: f32,
    /// The learner read with the record's views, when more than one.
    pub views: Option<f32>,
    /// Each baseline by name.
    pub baselines: Vec<(String, f32)>,
}

impl Manifest {
    /// Parses and checks a manifest: version, configuration, curve lengths, statistics.
    pub fn from_json(text: &str) -> Result<Self, Error> {
        let bad = |m: String| Error::Checkpoint(format!("manifest: {m}"));
        let version = serde_json::from_str::<serde_json::Value>(text)
            .map_err(|e| bad(e.to_string()))?
            .get("version")
            .and_then(serde_json::Value::as_u64);
        if version != Some(MANIFEST_VERSION as u64) {
            return Err(bad(format!(
                "version {version:?}, this program reads version {MANIFEST_VERSION}"
            )));
        }
        let m: Manifest = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
        m.config.validate()?;
        let t = m.config.tasks.seq_len;
        if m.curves.is_empty()
            || m.curves
                .iter()
                .any(|c| c.accuracy.len() != t || c.loss.len() != t)
        {
            return Err(bad(format!("every curve must have {t} points")));
        }
        for h in &m.headlines {
            let at = m.curve(&h.curve).and_then(|c| c.accuracy_at(h.examples));
            if at != Some(h.accuracy) {
                return Err(bad(format!(
                    "headline {} at {} says {}, the curve says {at:?}",
                    h.curve, h.examples, h.accuracy
                )));
            }
        }
        let s = m.input_stats;
        if !(s.mean.is_finite() && s.std.is_finite() && s.std > 0.0) {
            return Err(bad("input_stats must be finite with std > 0".into()));
        }
        Ok(m)
    }

    /// The headlines of `curves` at the 50th example (if the curves are that long) and at the
    /// last.
    pub fn headlines_of(curves: &[Curve]) -> Vec<Headline> {
        curves
            .iter()
            .flat_map(|c| {
                let mut ks = vec![50, c.accuracy.len()];
                ks.dedup();
                ks.into_iter().filter_map(move |k| {
                    Some(Headline {
                        curve: c.name.clone(),
                        examples: k,
                        accuracy: c.accuracy_at(k)?,
                    })
                })
            })
            .collect()
    }

    /// The curve named `name`, if any.
    pub fn curve(&self, name: &str) -> Option<&Curve> {
        self.curves.iter().find(|c| c.name == name)
    }

    /// The learner on `device`, from its weights file's `bytes` (checked against this
    /// manifest's size and SHA-256 before use).
    pub fn model(
        &self,
        bytes: Vec<u8>,
        device: &burn::prelude::Device,
    ) -> Result<Transformer, Error> {
        self.model.check(&bytes)?;
        load_model(self.config.model.init(0, device)?, bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Manifest {
        let config = RunConfig::preset("tiny").unwrap();
        let t = config.tasks.seq_len;
        Manifest {
            version: MANIFEST_VERSION,
            config,
            steps: 20,
            hardware: "test".into(),
            backend: "flex".into(),
            train_time_s: 1.0,
            command: "gpicl train --preset tiny".into(),
            gpicl_version: "0.1.0".into(),
            model: FileHash {
                file: "model.bpk".into(),
                sha256: "00".into(),
                bytes: 1,
            },
            data: vec![],
            input_stats: InputStats {
                mean: 0.13,
                std: 0.3,
            },
            curves: vec![Curve {
                name: "mnist unseen tasks".into(),
                accuracy: (0..t).map(|i| i as f32 / t as f32).collect(),
                loss: vec![1.0; t],
            }],
            headlines: vec![],
            suite: None,
            init: None,
        }
        .with_headlines()
    }

    impl Manifest {
        fn with_headlines(mut self) -> Self {
            self.headlines = Manifest::headlines_of(&self.curves);
            self
        }
    }

    #[test]
    fn round_trips_and_refuses_bad_manifests() {
        let m = sample();
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(Manifest::from_json(&json).unwrap(), m);
        assert!(m.curve("mnist unseen tasks").is_some());

        let mut v: serde_json::Value = serde_json::from_str(&json).unwrap();
        v["version"] = 2.into();
        let err = Manifest::from_json(&v.to_string()).unwrap_err().to_string();
        assert!(err.contains("version"), "{err}");

        let mut short = m.clone();
        short.curves[0].accuracy.pop();
        let err = Manifest::from_json(&serde_json::to_string(&short).unwrap()).unwrap_err();
        assert!(err.to_string().contains("points"));

        let mut lie = m.clone();
        lie.headlines[0].accuracy += 0.1;
        let err = Manifest::from_json(&serde_json::to_string(&lie).unwrap()).unwrap_err();
        assert!(err.to_string().contains("headline"), "{err}");

        let mut stats = m;
        stats.input_stats.std = 0.0;
        assert!(Manifest::from_json(&serde_json::to_string(&stats).unwrap()).is_err());
        assert!(Manifest::from_json("not json").is_err());
        assert!(Manifest::from_json(&json[..json.len() / 2]).is_err());
    }
}
