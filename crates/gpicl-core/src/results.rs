//! The record of a run (`results.json`): its configuration and seeds, the training loss and
//! every evaluation's curves. The CLI writes it as it trains; the page downloads the same file
//! and overlays one uploaded from elsewhere. Also as CSV, one row per curve point.

use serde::{Deserialize, Serialize};

use crate::{Curve, Error, RunConfig};

/// The largest results file read (a run of 10^5 evaluations is far below it).
pub const MAX_RESULTS_BYTES: usize = 64 << 20;

/// One evaluation during training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalPoint {
    /// Steps completed.
    pub step: usize,
    /// Training wall time so far, seconds.
    pub time_s: f64,
    /// Mean training loss over the steps since the previous evaluation.
    pub train_loss: f32,
    /// Curves: seen tasks, unseen tasks, unseen dataset.
    pub curves: Vec<Curve>,
}

/// The record of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Results {
    /// Version of gpicl.
    pub gpicl_version: String,
    /// Version of burn.
    pub burn_version: String,
    /// Backend name.
    pub backend: String,
    /// The configuration (with its seeds).
    pub config: RunConfig,
    /// Training wall time, seconds (evaluation excluded).
    pub train_time_s: f64,
    /// Steps completed.
    pub steps: usize,
    /// Training loss every few steps: `[step, loss]`.
    pub loss_log: Vec<(usize, f32)>,
    /// Evaluations.
    pub history: Vec<EvalPoint>,
    /// Where the weights started when not from the seed (`gpicl train --init`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<Init>,
}

/// The learner a run fine-tunes: where it came from and, when it was a packaged learner, how it
/// was made (from its manifest).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Init {
    /// The learner as given to `--init` (a path).
    pub from: String,
    /// The commands that made it.
    pub command: Option<String>,
    /// Its meta-training steps.
    #[serde(default)]
    pub steps: Option<usize>,
    /// Its training wall time, seconds.
    #[serde(default)]
    pub train_time_s: Option<f64>,
    /// The machine that trained it, in words.
    #[serde(default)]
    pub hardware: Option<String>,
    /// The learner *it* was fine-tuned from, when it was (a chain of stages, the first last).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<Box<Init>>,
}

impl Results {
    /// The record of a new run of `config` on `backend`.
    pub fn new(config: &RunConfig, backend: &str) -> Self {
        Results {
            gpicl_version: env!("CARGO_PKG_VERSION").into(),
            burn_version: "0.22.1".into(),
            backend: backend.into(),
            config: config.clone(),
            train_time_s: 0.0,
            steps: 0,
            loss_log: vec![],
            history: vec![],
            init: None,
        }
    }

    /// Reads and checks a results file: size, JSON, configuration, and every curve as long as
    /// the configured sequences with values in range.
    pub fn from_json(text: &str) -> Result<Self, Error> {
        let bad = |m: String| Err(Error::Parse(format!("results: {m}")));
        if text.len() > MAX_RESULTS_BYTES {
            return bad(format!(
                "{} bytes; at most {MAX_RESULTS_BYTES} are read",
                text.len()
            ));
        }
        let results: Results =
            serde_json::from_str(text).map_err(|e| Error::Parse(format!("results: {e}")))?;
        results.config.validate()?;
        let t = results.config.tasks.seq_len;
        for point in &results.history {
            for c in &point.curves {
                if c.accuracy.len() != t || c.loss.len() != t {
                    return bad(format!(
                        "curve \"{}\" at step {} has {} points, but the run's sequences have {t}",
                        c.name,
                        point.step,
                        c.accuracy.len()
                    ));
                }
                if c.accuracy.iter().any(|a| !(0.0..=1.0).contains(a)) {
                    return bad(format!(
                        "curve \"{}\" at step {} has an accuracy outside [0, 1]",
                        c.name, point.step
                    ));
                }
            }
        }
        Ok(results)
    }

    /// The latest evaluation, if any.
    pub fn last(&self) -> Option<&EvalPoint> {
        self.history.last()
    }

    /// Every curve point as CSV: two comment lines (versions; the configuration as JSON), a
    /// header, then `step,curve,position,accuracy,loss` rows.
    pub fn to_csv(&self) -> String {
        let config = serde_json::to_string(&self.config).expect("a config always serialises");
        let mut out = format!(
            "# gpicl {} (burn {}), backend {}, {} steps\n# config: {config}\n\
             step,curve,position,accuracy,loss\n",
            self.gpicl_version, self.burn_version, self.backend, self.steps
        );
        for point in &self.history {
            for c in &point.curves {
                for (j, (a, l)) in c.accuracy.iter().zip(&c.loss).enumerate() {
                    out.push_str(&format!(
                        "{},\"{}\",{},{a},{l}\n",
                        point.step,
                        c.name.replace('"', "\"\""),
                        j + 1
                    ));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Results {
        let config = RunConfig::preset("tiny").unwrap();
        let t = config.tasks.seq_len;
        let mut r = Results::new(&config, "flex");
        r.steps = 10;
        r.loss_log.push((10, 2.0));
        r.history.push(EvalPoint {
            step: 10,
            time_s: 1.5,
            train_loss: 2.0,
            curves: vec![Curve {
                name: "mnist unseen tasks".into(),
                accuracy: vec![0.25; t],
                loss: vec![2.1; t],
            }],
        });
        r
    }

    #[test]
    fn results_round_trip_through_json_and_csv_has_a_row_per_point() {
        let r = sample();
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(Results::from_json(&json).unwrap(), r);
        let csv = r.to_csv();
        let rows: Vec<&str> = csv.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(rows[0], "step,curve,position,accuracy,loss");
        assert_eq!(rows.len(), 1 + r.config.tasks.seq_len);
        assert_eq!(rows[1], "10,\"mnist unseen tasks\",1,0.25,2.1");
        assert!(csv.contains("\"seed\":0"), "the CSV carries the seeds");
    }

    #[test]
    fn bad_results_files_are_refused_with_a_message() {
        let good = serde_json::to_value(sample()).unwrap();
        let mut short = good.clone();
        short["history"][0]["curves"][0]["accuracy"] = serde_json::json!([0.5]);
        let mut out_of_range = good.clone();
        out_of_range["history"][0]["curves"][0]["accuracy"][0] = serde_json::json!(7.0);
        let mut bad_config = good.clone();
        bad_config["config"]["train"]["batch_size"] = serde_json::json!(0);
        for (v, needle) in [
            (short, "has 1 points"),
            (out_of_range, "outside [0, 1]"),
            (bad_config, "batch_size"),
        ] {
            let err = Results::from_json(&v.to_string()).unwrap_err().to_string();
            assert!(err.contains(needle), "{err}");
        }
        assert!(Results::from_json("{\"gpicl_version\": 1}").is_err());
        // A broken model's non-finite losses are written as null and read back.
        let mut nan = sample();
        nan.history[0].curves[0].loss[0] = f32::NAN;
        let back = Results::from_json(&serde_json::to_string(&nan).unwrap()).unwrap();
        assert!(back.history[0].curves[0].loss[0].is_nan());
        assert!(Results::from_json("").is_err());
    }
}
