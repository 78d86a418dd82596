//! Share links: a whole experiment (every setting and seed, the versions that made it, and
//! optionally a fingerprint of its curves after N steps) as the fragment of a URL,
//! `v=1&seed=0&d=64&…`.
//!
//! The format is a table of properties ([`FIELDS`]), one short key each, written in full so a
//! link does not depend on any preset staying as it is. It grows by adding keys: a key missing
//! from an older link takes the behaviour from before the key existed (`ADDED`), and a key this version does not know is skipped with a note. Decoding checks every
//! value against [`Limits`] (a hand-edited link cannot ask for a model or batch that would
//! exhaust the device's memory) and replaces a bad one with the default, naming the field.
//! Decoding never panics, whatever the input (see the fuzz test).

use crate::Error;
use crate::config::RunConfig;
use crate::eval::Curve;
use crate::model::Arch;
use crate::task::{ProjectionSource, TablePrior, TaskPool};
use crate::tokens::TokenFormat;

/// The link format this build writes.
pub const LINK_VERSION: u32 = 1;

/// The largest fragment decoded.
pub const MAX_LINK_CHARS: usize = 4096;

/// How far a replay's mean accuracy (per curve, over all positions) may differ from the link's
/// and still count as reproduced on another backend or GPU: 3 points. The same backend
/// reproduces the curves bit for bit.
pub const REPLAY_TOLERANCE: f32 = 0.03;

/// What a link's decoder accepts: per-field ranges and the memory a run may need.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Largest residual width.
    pub max_d_model: usize,
    /// Largest number of layers.
    pub max_layers: usize,
    /// Largest feed-forward width.
    pub max_d_ff: usize,
    /// Largest batch.
    pub max_batch: usize,
    /// Largest number of examples per sequence.
    pub max_seq_len: usize,
    /// Largest number of steps.
    pub max_steps: usize,
    /// Largest evaluation set.
    pub max_eval_sequences: usize,
    /// The only image pooling accepted, when the data comes pooled (the page holds 7×7 images).
    pub image_pool: Option<usize>,
    /// Largest single buffer a step may need, bytes.
    pub max_buffer_bytes: f64,
    /// Largest estimate of a step's activations, bytes.
    pub max_step_bytes: f64,
}

impl Limits {
    /// What the page accepts from a link: up to the `pretrained` preset's shape (which a
    /// desktop GPU trains in minutes), with room for larger models, and nothing whose one step
    /// needs more than 4 GiB or a single buffer over 512 MiB.
    pub const BROWSER: Limits = Limits {
        max_d_model: 512,
        max_layers: 12,
        max_d_ff: 2048,
        max_batch: 512,
        max_seq_len: 200,
        max_steps: 1_000_000,
        max_eval_sequences: 1024,
        image_pool: Some(4),
        max_buffer_bytes: 512.0 * 1024.0 * 1024.0,
        max_step_bytes: 4.0 * 1024.0 * 1024.0 * 1024.0,
    };

    /// The largest single buffer and the activations of one training step of `c`, in bytes
    /// (estimates: attention scores, the batch's projections, and per layer the residual
    /// stream, attention and feed-forward activations kept for the backward pass).
    pub fn step_bytes(c: &RunConfig) -> (f64, f64) {
        let b = c.train.batch_size as f64;
        let t = (c.tasks.seq_len * c.tasks.format.tokens_per_example()) as f64;
        let (d, f, h, l) = (
            c.model.d_model as f64,
            c.model.d_ff as f64,
            c.model.n_heads as f64,
            c.model.n_layers as f64,
        );
        let n_in = 784.0 / (c.tasks.image_pool as f64).powi(2);
        let scores = 4.0 * b * h * t * t;
        let projections = 4.0 * b * n_in * c.model.d_in as f64;
        let ff = 4.0 * b * t * f;
        let per_layer = 4.0 * b * t * (12.0 * d + 3.0 * f) + 3.0 * scores;
        (scores.max(projections).max(ff), l * per_layer + projections)
    }
}

/// A fingerprint of a run's curves after some steps: a hash of every value's bits (equal
/// hashes: bit-identical curves) and each curve's mean accuracy (to say how far a replay is).
#[derive(Debug, Clone, PartialEq)]
pub struct Replay {
    /// Steps trained before the curves were measured.
    pub step: usize,
    /// FNV-1a over the bits of every accuracy and loss of every curve, in order.
    pub hash: u64,
    /// Each curve's mean accuracy over positions, in thousandths.
    pub mean_accuracy: Vec<u32>,
}

/// How a replay compares with the link's fingerprint.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ReplayOutcome {
    /// Bit-identical curves.
    Exact,
    /// Not identical, but every curve's mean accuracy within [`REPLAY_TOLERANCE`]; the largest
    /// difference.
    Within(f32),
    /// Some curve's mean accuracy differs by more; the largest difference.
    Differs(f32),
}

impl Replay {
    /// The fingerprint of `curves` measured after `step` steps.
    pub fn of(step: usize, curves: &[Curve]) -> Self {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for c in curves {
            for x in c.accuracy.iter().chain(&c.loss) {
                for byte in x.to_bits().to_le_bytes() {
                    hash ^= byte as u64;
                    hash = hash.wrapping_mul(0x0100_0000_01b3);
                }
            }
        }
        let mean_accuracy = curves
            .iter()
            .map(|c| {
                let mean = c.accuracy.iter().sum::<f32>() / c.accuracy.len().max(1) as f32;
                (mean * 1000.0).round().clamp(0.0, 1000.0) as u32
            })
            .collect();
        Replay {
            step,
            hash,
            mean_accuracy,
        }
    }

    /// Compares `curves`, measured after the same number of steps, with this fingerprint.
    pub fn compare(&self, curves: &[Curve]) -> ReplayOutcome {
        let other = Replay::of(self.step, curves);
        if other.hash == self.hash && other.mean_accuracy == self.mean_accuracy {
            return ReplayOutcome::Exact;
        }
        let diff = if other.mean_accuracy.len() == self.mean_accuracy.len() {
            self.mean_accuracy
                .iter()
                .zip(&other.mean_accuracy)
                .map(|(a, b)| a.abs_diff(*b) as f32 / 1000.0)
                .fold(0.0, f32::max)
        } else {
            1.0
        };
        if diff <= REPLAY_TOLERANCE {
            ReplayOutcome::Within(diff)
        } else {
            ReplayOutcome::Differs(diff)
        }
    }

    fn encode(&self) -> String {
        let means: Vec<String> = self.mean_accuracy.iter().map(u32::to_string).collect();
        format!("{}.{:016x}.{}", self.step, self.hash, means.join("."))
    }

    fn decode(text: &str, limits: &Limits) -> Result<Self, String> {
        let parts: Vec<&str> = text.split('.').collect();
        let usage = "expected STEP.HASH.MEAN.MEAN…";
        if parts.len() < 3 || parts.len() > 10 {
            return Err(usage.into());
        }
        let step = parts[0].parse::<usize>().map_err(|_| usage.to_string())?;
        if step == 0 || step > limits.max_steps {
            return Err(format!("step {step} is not in 1..={}", limits.max_steps));
        }
        if parts[1].len() != 16 {
            return Err("the hash must be 16 hex digits".into());
        }
        let hash = u64::from_str_radix(parts[1], 16).map_err(|_| usage.to_string())?;
        let mean_accuracy = parts[2..]
            .iter()
            .map(|p| p.parse::<u32>().ok().filter(|&m| m <= 1000))
            .collect::<Option<Vec<u32>>>()
            .ok_or("mean accuracies are thousandths, 0 to 1000")?;
        Ok(Replay {
            step,
            hash,
            mean_accuracy,
        })
    }
}

/// A visitor's own table that an experiment learnt in context: the file stays with its owner,
/// the link names it (`table=ROWS.HASH.LABEL.NAME`), and whoever opens the link is asked for it.
#[derive(Debug, Clone, PartialEq)]
pub struct TableRef {
    /// The file's name (at most [`TableRef::MAX_NAME`] characters).
    pub name: String,
    /// Data rows read from it.
    pub rows: usize,
    /// The label's column, 1-based; `None`: the last.
    pub label_column: Option<usize>,
    /// The first 16 hex digits of the SHA-256 of the file's bytes ([`TableRef::fingerprint`]).
    pub hash: String,
}

impl TableRef {
    /// The longest file name a link records.
    pub const MAX_NAME: usize = 100;

    /// A file's fingerprint: the first 16 hex digits of the SHA-256 of its bytes.
    pub fn fingerprint(bytes: &[u8]) -> String {
        use sha2::{Digest, Sha256};
        Sha256::digest(bytes)[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    fn encode(&self) -> String {
        let label = self.label_column.map_or("last".into(), |c| c.to_string());
        let mut name = String::new();
        for b in self.name.bytes() {
            if b.is_ascii_alphanumeric() || b"._-".contains(&b) {
                name.push(b as char);
            } else {
                name.push_str(&format!("%{b:02X}"));
            }
        }
        format!("{}.{}.{label}.{name}", self.rows, self.hash)
    }

    fn decode(text: &str) -> Result<Self, String> {
        let usage = "expected ROWS.HASH.LABEL.NAME";
        let parts: Vec<&str> = text.splitn(4, '.').collect();
        let [rows, hash, label, name] = parts[..] else {
            return Err(usage.into());
        };
        let rows = uint(rows, 1, 1_000_000_000).map_err(|e| format!("rows: {e}"))?;
        if hash.len() != 16 || !hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err("the hash must be 16 lower-case hex digits".into());
        }
        let label_column = match label {
            "last" => None,
            _ => Some(
                uint(label, 1, 1 << 20).map_err(|e| format!("label column: {e} or \"last\""))?,
            ),
        };
        let mut bytes = Vec::new();
        let mut rest = name.bytes();
        while let Some(b) = rest.next() {
            if b == b'%' {
                let hex: Vec<u8> = rest.by_ref().take(2).collect();
                let v = std::str::from_utf8(&hex)
                    .ok()
                    .filter(|h| h.len() == 2)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or("a broken %-escape in the name")?;
                bytes.push(v);
            } else {
                bytes.push(b);
            }
        }
        let name = String::from_utf8(bytes).map_err(|_| "the name is not UTF-8")?;
        if name.is_empty()
            || name.chars().count() > Self::MAX_NAME
            || name.chars().any(char::is_control)
        {
            return Err(format!(
                "the name must be 1–{} printable characters",
                Self::MAX_NAME
            ));
        }
        Ok(Self {
            name,
            rows,
            label_column,
            hash: hash.into(),
        })
    }
}

/// A whole experiment, as a link carries it.
#[derive(Debug, Clone, PartialEq)]
pub struct Link {
    /// Every setting and seed.
    pub config: RunConfig,
    /// The gpicl version that made the link.
    pub app_version: String,
    /// The data bundles' version (see [`data_version`]).
    pub data_version: String,
    /// The curves' fingerprint after some steps, for a replay.
    pub replay: Option<Replay>,
    /// The visitor's own table the experiment learnt in context (not its contents).
    pub table: Option<TableRef>,
}

/// A decoded link and what was wrong with it (each a field's name and what happened); every
/// bad field has been replaced by its default.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    /// The experiment.
    pub link: Link,
    /// Messages, one per field that was bad or unknown, or about versions.
    pub problems: Vec<String>,
}

/// A short version of the data bundles: 8 hex digits of the SHA-256 over their names and
/// hashes (as a manifest lists them), so a link says which data its curves came from.
pub fn data_version(hashes: &[crate::manifest::FileHash]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for f in hashes {
        h.update(format!("{}:{}\n", f.file, f.sha256));
    }
    h.finalize()[..4]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

type Get = fn(&RunConfig) -> String;
type Set = fn(&mut RunConfig, &str, &Limits) -> Result<(), String>;

/// One setting in a link: its key, how to write it and how to read it back (checking limits).
pub struct Field {
    /// The key in the link.
    pub key: &'static str,
    get: Get,
    set: Set,
}

fn uint(text: &str, lo: usize, hi: usize) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(v) if (lo..=hi).contains(&v) => Ok(v),
        _ => Err(format!("\"{text}\" is not a whole number in {lo}..={hi}")),
    }
}

/// The value `text` names among `names` (a field that takes one of a few words).
fn one_of<T: Copy>(text: &str, names: &[(&str, T)]) -> Result<T, String> {
    match names.iter().find(|(name, _)| *name == text) {
        Some(&(_, value)) => Ok(value),
        None => {
            let quoted: Vec<String> = names.iter().map(|(n, _)| format!("\"{n}\"")).collect();
            Err(format!("\"{text}\" is not {}", quoted.join(" or ")))
        }
    }
}

fn float(text: &str, lo: f64, hi: f64, open_low: bool) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() && v <= hi && (v > lo || (!open_low && v == lo)) => Ok(v),
        _ => {
            let open = if open_low { "(" } else { "[" };
            Err(format!("\"{text}\" is not a number in {open}{lo}, {hi}]"))
        }
    }
}

/// Every setting of a [`RunConfig`], in the order a link writes them.
pub const FIELDS: &[Field] = &[
    Field {
        key: "name",
        get: |c| c.name.clone(),
        set: |c, t, _| {
            let ok = !t.is_empty()
                && t.len() <= 32
                && t.chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_');
            if !ok {
                return Err(format!("\"{t}\" is not 1–32 letters, digits, - or _"));
            }
            c.name = t.to_string();
            Ok(())
        },
    },
    Field {
        key: "seed",
        get: |c| c.seed.to_string(),
        set: |c, t, _| {
            c.seed = t
                .parse()
                .map_err(|_| format!("\"{t}\" is not a whole number from 0 to 2^64-1"))?;
            Ok(())
        },
    },
    Field {
        key: "arch",
        get: |c| match c.model.arch {
            Arch::Transformer => "transformer".into(),
            Arch::Lstm => "lstm".into(),
        },
        set: |c, t, _| {
            c.model.arch = one_of(
                t,
                &[("transformer", Arch::Transformer), ("lstm", Arch::Lstm)],
            )?;
            Ok(())
        },
    },
    Field {
        key: "din",
        get: |c| c.model.d_in.to_string(),
        set: |c, t, _| {
            c.model.d_in = uint(t, 1, 784)?;
            Ok(())
        },
    },
    Field {
        key: "classes",
        get: |c| c.model.n_classes.to_string(),
        set: |c, t, _| {
            c.model.n_classes = uint(t, 10, 64)?;
            Ok(())
        },
    },
    Field {
        key: "d",
        get: |c| c.model.d_model.to_string(),
        set: |c, t, l| {
            c.model.d_model = uint(t, 1, l.max_d_model)?;
            Ok(())
        },
    },
    Field {
        key: "layers",
        get: |c| c.model.n_layers.to_string(),
        set: |c, t, l| {
            c.model.n_layers = uint(t, 1, l.max_layers)?;
            Ok(())
        },
    },
    Field {
        key: "heads",
        get: |c| c.model.n_heads.to_string(),
        set: |c, t, _| {
            let h = uint(t, 1, 64)?;
            if !c.model.d_model.is_multiple_of(h) {
                return Err(format!("{h} does not divide d = {}", c.model.d_model));
            }
            c.model.n_heads = h;
            Ok(())
        },
    },
    Field {
        key: "ff",
        get: |c| c.model.d_ff.to_string(),
        set: |c, t, l| {
            c.model.d_ff = uint(t, 1, l.max_d_ff)?;
            Ok(())
        },
    },
    Field {
        key: "tasks",
        get: |c| match c.tasks.pool {
            TaskPool::Finite { log2 } => log2.to_string(),
            TaskPool::Unlimited => "all".into(),
        },
        set: |c, t, _| {
            c.tasks.pool = match t {
                "all" => TaskPool::Unlimited,
                _ => TaskPool::Finite {
                    log2: uint(t, 0, 62)
                        .map_err(|e| format!("{e} (log2 of the number of tasks) or \"all\""))?
                        as u32,
                },
            };
            Ok(())
        },
    },
    Field {
        key: "bias",
        get: |c| c.tasks.bias_fraction.to_string(),
        set: |c, t, _| {
            c.tasks.bias_fraction = float(t, 0.0, 1.0, false)? as f32;
            Ok(())
        },
    },
    Field {
        key: "fmt",
        get: |c| match c.tasks.format {
            TokenFormat::Pair => "pair".into(),
            TokenFormat::Paper => "paper".into(),
        },
        set: |c, t, _| {
            c.tasks.format = one_of(
                t,
                &[("pair", TokenFormat::Pair), ("paper", TokenFormat::Paper)],
            )?;
            Ok(())
        },
    },
    Field {
        key: "T",
        get: |c| c.tasks.seq_len.to_string(),
        set: |c, t, l| {
            c.tasks.seq_len = uint(t, 1, l.max_seq_len)?;
            Ok(())
        },
    },
    Field {
        key: "pool",
        get: |c| c.tasks.image_pool.to_string(),
        set: |c, t, l| {
            let p = uint(t, 1, 28)?;
            if !28usize.is_multiple_of(p) {
                return Err(format!("{p} does not divide the images' 28 pixels"));
            }
            if let Some(only) = l.image_pool
                && p != only
            {
                return Err(format!(
                    "this page holds images pooled by {only} ({0}×{0} pixels), not by {p}",
                    28 / only
                ));
            }
            c.tasks.image_pool = p;
            Ok(())
        },
    },
    Field {
        key: "cps",
        get: |c| {
            c.tasks
                .classes_per_sequence
                .map_or("all".into(), |k| k.to_string())
        },
        set: |c, t, _| {
            c.tasks.classes_per_sequence = match t {
                "all" => None,
                _ => Some(uint(t, 2, 64).map_err(|e| format!("{e} or \"all\""))?),
            };
            Ok(())
        },
    },
    Field {
        key: "cur",
        get: |c| {
            c.tasks
                .classes_curriculum_steps
                .map_or("none".into(), |k| k.to_string())
        },
        set: |c, t, l| {
            c.tasks.classes_curriculum_steps = match t {
                "none" => None,
                _ => Some(uint(t, 0, l.max_steps).map_err(|e| format!("{e} or \"none\""))?),
            };
            Ok(())
        },
    },
    Field {
        key: "vary",
        get: |c| u8::from(c.tasks.varied_classes).to_string(),
        set: |c, t, _| {
            c.tasks.varied_classes = uint(t, 0, 1)? == 1;
            Ok(())
        },
    },
    Field {
        key: "rank",
        get: |c| u8::from(c.tasks.low_rank).to_string(),
        set: |c, t, _| {
            c.tasks.low_rank = uint(t, 0, 1)? == 1;
            if c.tasks.low_rank && c.tasks.projections == ProjectionSource::Device {
                return Err(
                    "not with proj=device (low-rank projections are drawn on the host)".into(),
                );
            }
            Ok(())
        },
    },
    Field {
        key: "tables",
        get: |c| c.tasks.random_tables.to_string(),
        set: |c, t, _| {
            c.tasks.random_tables = float(t, 0.0, 1.0, false)? as f32;
            Ok(())
        },
    },
    Field {
        key: "prior",
        get: |c| match c.tasks.table_prior {
            TablePrior::Net => "net".into(),
            TablePrior::Mixed => "mixed".into(),
            TablePrior::Categorical => "categorical".into(),
        },
        set: |c, t, _| {
            c.tasks.table_prior = one_of(
                t,
                &[
                    ("net", TablePrior::Net),
                    ("mixed", TablePrior::Mixed),
                    ("categorical", TablePrior::Categorical),
                ],
            )?;
            Ok(())
        },
    },
    Field {
        key: "proj",
        get: |c| match c.tasks.projections {
            ProjectionSource::Host => "host".into(),
            ProjectionSource::Device => "device".into(),
        },
        set: |c, t, _| {
            c.tasks.projections = one_of(
                t,
                &[
                    ("host", ProjectionSource::Host),
                    ("device", ProjectionSource::Device),
                ],
            )?;
            if c.tasks.low_rank && c.tasks.projections == ProjectionSource::Device {
                return Err("not with rank=1 (low-rank projections are drawn on the host)".into());
            }
            Ok(())
        },
    },
    Field {
        key: "steps",
        get: |c| c.train.steps.to_string(),
        set: |c, t, l| {
            c.train.steps = uint(t, 1, l.max_steps)?;
            Ok(())
        },
    },
    Field {
        key: "batch",
        get: |c| c.train.batch_size.to_string(),
        set: |c, t, l| {
            c.train.batch_size = uint(t, 1, l.max_batch)?;
            Ok(())
        },
    },
    Field {
        key: "lr",
        get: |c| format!("{:e}", c.train.lr),
        set: |c, t, _| {
            c.train.lr = float(t, 0.0, 0.1, true)?;
            Ok(())
        },
    },
    Field {
        key: "warmup",
        get: |c| c.train.warmup_steps.to_string(),
        set: |c, t, l| {
            c.train.warmup_steps = uint(t, 0, l.max_steps)?;
            Ok(())
        },
    },
    Field {
        key: "cosine",
        get: |c| u8::from(c.train.cosine_decay).to_string(),
        set: |c, t, _| {
            c.train.cosine_decay = uint(t, 0, 1)? == 1;
            Ok(())
        },
    },
    Field {
        key: "b1",
        get: |c| c.train.beta1.to_string(),
        set: |c, t, _| {
            c.train.beta1 = float(t, 0.0, 0.9999, false)? as f32;
            Ok(())
        },
    },
    Field {
        key: "b2",
        get: |c| c.train.beta2.to_string(),
        set: |c, t, _| {
            c.train.beta2 = float(t, 0.0, 0.99999, false)? as f32;
            Ok(())
        },
    },
    Field {
        key: "eps",
        get: |c| format!("{:e}", c.train.epsilon),
        set: |c, t, _| {
            c.train.epsilon = float(t, 0.0, 1.0, true)? as f32;
            if c.train.epsilon == 0.0 {
                return Err(format!("\"{t}\" is too small for an f32"));
            }
            Ok(())
        },
    },
    Field {
        key: "clip",
        get: |c| c.train.grad_clip.map_or("none".into(), |x| x.to_string()),
        set: |c, t, _| {
            c.train.grad_clip = match t {
                "none" => None,
                _ => Some(float(t, 0.0, 1e6, true).map_err(|e| format!("{e} or \"none\""))? as f32),
            };
            Ok(())
        },
    },
    Field {
        key: "every",
        get: |c| c.eval.every.to_string(),
        set: |c, t, l| {
            c.eval.every = uint(t, 0, l.max_steps)?;
            Ok(())
        },
    },
    Field {
        key: "evalseq",
        get: |c| c.eval.sequences.to_string(),
        set: |c, t, l| {
            c.eval.sequences = uint(t, 1, l.max_eval_sequences)?;
            Ok(())
        },
    },
    Field {
        key: "evalseed",
        get: |c| c.eval.seed.to_string(),
        set: |c, t, _| {
            c.eval.seed = t
                .parse()
                .map_err(|_| format!("\"{t}\" is not a whole number from 0 to 2^64-1"))?;
            Ok(())
        },
    },
];

/// Keys added to link format 1 after it shipped, each with the value that gives the behaviour
/// from before it existed: a link without the key means that value (and is not faulted).
const ADDED: &[(&str, &str)] = &[
    ("vary", "0"),
    ("rank", "0"),
    ("tables", "0"),
    ("prior", "net"),
    ("proj", "host"),
];

/// Groups of fields that must agree with each other: when the whole fails validation or the
/// memory limits, the group falls back to the defaults together, the first group that fixes it.
const GROUPS: &[&[&str]] = &[
    &["batch"],
    &["T"],
    &["d", "layers", "heads", "ff", "din", "classes", "arch"],
    &["pool"],
    &["cps", "cur"],
];

/// The link's fragment (without `#`).
pub fn encode(link: &Link) -> String {
    let mut parts = vec![
        format!("v={LINK_VERSION}"),
        format!("app={}", link.app_version),
        format!("data={}", link.data_version),
    ];
    parts.extend(
        FIELDS
            .iter()
            .map(|f| format!("{}={}", f.key, (f.get)(&link.config))),
    );
    if let Some(r) = &link.replay {
        parts.push(format!("replay={}", r.encode()));
    }
    if let Some(t) = &link.table {
        parts.push(format!("table={}", t.encode()));
    }
    parts.join("&")
}

fn version_text(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 32
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
}

/// Decodes a link's fragment (with or without the leading `#`), starting from `defaults` and
/// checking every value against `limits`. An error only when the text is no gpicl link at all;
/// bad fields come back as [`Decoded::problems`], replaced by their defaults.
pub fn decode(fragment: &str, defaults: &RunConfig, limits: &Limits) -> Result<Decoded, Error> {
    let text = fragment.strip_prefix('#').unwrap_or(fragment);
    if text.len() > MAX_LINK_CHARS {
        return Err(Error::Config(format!(
            "the link is {} characters long; a gpicl link has at most {MAX_LINK_CHARS}",
            text.len()
        )));
    }
    let pairs: Vec<(&str, &str)> = text
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
        .collect();
    let version = match pairs.iter().find(|(k, _)| *k == "v") {
        Some((_, v)) => v
            .parse::<u32>()
            .map_err(|_| Error::Config(format!("link version \"{v}\" is not a number")))?,
        None => return Err(Error::Config("not a gpicl link (no \"v=\")".into())),
    };
    let mut problems = Vec::new();
    if version > LINK_VERSION {
        problems.push(format!(
            "v: the link was made by a newer gpicl (link format {version}; this page reads \
             {LINK_VERSION}); settings it added are ignored"
        ));
    }
    let mut config = defaults.clone();
    let mut link = Link {
        config: defaults.clone(),
        app_version: String::new(),
        data_version: String::new(),
        replay: None,
        table: None,
    };
    let mut seen: Vec<&str> = Vec::new();
    for (key, value) in &pairs {
        if seen.contains(key) {
            problems.push(format!("{key}: given twice; the first value is used"));
            continue;
        }
        seen.push(key);
        match *key {
            "v" => {}
            "app" | "data" => {
                if !version_text(value) {
                    problems.push(format!("{key}: \"{value}\" is not a version"));
                } else if *key == "app" {
                    link.app_version = value.to_string();
                } else {
                    link.data_version = value.to_string();
                }
            }
            "replay" => match Replay::decode(value, limits) {
                Ok(r) => link.replay = Some(r),
                Err(e) => problems.push(format!("replay: {e}; no replay")),
            },
            "table" => match TableRef::decode(value) {
                Ok(t) => link.table = Some(t),
                Err(e) => problems.push(format!("table: {e}; no table")),
            },
            _ => match FIELDS.iter().find(|f| f.key == *key) {
                Some(f) => {
                    let mut next = config.clone();
                    match (f.set)(&mut next, value, limits) {
                        Ok(()) => config = next,
                        Err(e) => problems.push(format!(
                            "{key}: {e}; using the default, {}",
                            (f.get)(defaults)
                        )),
                    }
                }
                None => problems.push(format!("{key}: not a setting this page knows; ignored")),
            },
        }
    }
    for f in FIELDS {
        if seen.contains(&f.key) {
            continue;
        }
        match ADDED.iter().find(|(key, _)| *key == f.key) {
            // A link from before the key: what it meant then.
            Some((_, before)) => {
                let _ = (f.set)(&mut config, before, &Limits::UNCHECKED);
            }
            None => problems.push(format!(
                "{}: missing; using the default, {}",
                f.key,
                (f.get)(defaults)
            )),
        }
    }
    // Fields that are fine alone but not together (or too big together): fall back by group.
    for group in GROUPS {
        match fits(&config, limits) {
            Ok(()) => break,
            Err(why) => {
                for f in FIELDS.iter().filter(|f| group.contains(&f.key)) {
                    let value = (f.get)(defaults);
                    let _ = (f.set)(&mut config, &value, &Limits::UNCHECKED);
                }
                problems.push(format!(
                    "{}: {why}; using the defaults for {}",
                    group[0],
                    group.join(", ")
                ));
            }
        }
    }
    if let Err(why) = fits(&config, limits) {
        problems.push(format!("settings: {why}; using the defaults for all"));
        config = defaults.clone();
    }
    link.config = config;
    Ok(Decoded { link, problems })
}

impl Limits {
    /// No limits beyond the fields' own (for writing defaults back).
    const UNCHECKED: Limits = Limits {
        max_d_model: usize::MAX,
        max_layers: usize::MAX,
        max_d_ff: usize::MAX,
        max_batch: usize::MAX,
        max_seq_len: usize::MAX,
        max_steps: usize::MAX,
        max_eval_sequences: usize::MAX,
        image_pool: None,
        max_buffer_bytes: f64::INFINITY,
        max_step_bytes: f64::INFINITY,
    };
}

impl Limits {
    /// Whether `c` is a valid configuration within these limits (memory, and the image pooling
    /// of the data at hand); why not. For configurations from elsewhere than a link (an
    /// uploaded checkpoint, an autosave).
    pub fn check(&self, c: &RunConfig) -> Result<(), String> {
        if let Some(only) = self.image_pool
            && c.tasks.image_pool != only
        {
            return Err(format!(
                "tasks.image_pool is {}, but this page holds images pooled by {only}",
                c.tasks.image_pool
            ));
        }
        fits(c, self)
    }
}

/// Whether `c` is a valid configuration within the memory limits; why not.
fn fits(c: &RunConfig, limits: &Limits) -> Result<(), String> {
    c.validate().map_err(|e| e.to_string())?;
    let (buffer, step) = Limits::step_bytes(c);
    let mib = |b: f64| b / (1024.0 * 1024.0);
    if buffer > limits.max_buffer_bytes {
        return Err(format!(
            "a step would need a {:.0} MiB buffer (at most {:.0} MiB)",
            mib(buffer),
            mib(limits.max_buffer_bytes)
        ));
    }
    if step > limits.max_step_bytes {
        return Err(format!(
            "a step would need about {:.0} MiB (at most {:.0} MiB)",
            mib(step),
            mib(limits.max_step_bytes)
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(config: RunConfig) -> Link {
        Link {
            config,
            app_version: "0.1.0".into(),
            data_version: "0123abcd".into(),
            replay: Some(Replay {
                step: 40,
                hash: 0xdead_beef_0123_4567,
                mean_accuracy: vec![512, 431, 390],
            }),
            table: None,
        }
    }

    #[test]
    fn a_table_is_named_not_sent_and_odd_names_round_trip() {
        let defaults = RunConfig::preset("browser").unwrap();
        let mut l = link(defaults.clone());
        l.table = Some(TableRef {
            name: "wine & cheese (v2).data.csv".into(),
            rows: 178,
            label_column: Some(1),
            hash: TableRef::fingerprint(b"1,2,3\n"),
        });
        let text = encode(&l);
        assert!(
            text.contains("&table=178.")
                && text.ends_with(".1.wine%20%26%20cheese%20%28v2%29.data.csv"),
            "{text}"
        );
        assert!(!text.contains(' ') && !text.contains("&cheese"), "{text}");
        let d = decode(&text, &defaults, &Limits::BROWSER).unwrap();
        assert_eq!(d.problems, Vec::<String>::new());
        assert_eq!(d.link, l);
        l.table.as_mut().unwrap().label_column = None;
        assert_eq!(
            decode(&encode(&l), &defaults, &Limits::BROWSER)
                .unwrap()
                .link,
            l
        );
        // Bad tables are named and dropped; the rest of the link stands.
        for (bad, why) in [
            ("0.0123456789abcdef.last.x.csv", "rows"),
            ("5.0123.last.x.csv", "hash"),
            ("5.0123456789abcdef.0.x.csv", "label column"),
            ("5.0123456789abcdef.last.%FF", "UTF-8"),
            ("5.0123456789abcdef.last.%4", "escape"),
            ("5.0123456789abcdef.last.", "name"),
            ("5.0123456789abcdef.last.%0A", "name"),
            ("5.0123456789abcdef", "expected"),
        ] {
            let text = format!("{}&table={bad}", encode(&link(defaults.clone())));
            let d = decode(&text, &defaults, &Limits::BROWSER).unwrap();
            assert_eq!(d.link.table, None, "{bad}");
            assert_eq!(d.problems.len(), 1, "{bad}: {:?}", d.problems);
            assert!(
                d.problems[0].starts_with("table: ") && d.problems[0].contains(why),
                "{bad}: {}",
                d.problems[0]
            );
        }
    }

    #[test]
    fn presets_round_trip_and_links_are_short() {
        let defaults = RunConfig::preset("browser").unwrap();
        // (`bench` and `paper` pool their images less than the page's data: see the next test.)
        for name in ["tiny", "browser", "cpu", "pretrained"] {
            let l = link(RunConfig::preset(name).unwrap());
            let text = encode(&l);
            assert!(text.len() < 400, "{} chars: {text}", text.len());
            let d = decode(&text, &defaults, &Limits::BROWSER).unwrap();
            assert_eq!(d.problems, Vec::<String>::new(), "{name}");
            assert_eq!(d.link, l, "{name}");
        }
    }

    #[test]
    fn a_bad_field_is_named_and_falls_back_alone() {
        let defaults = RunConfig::preset("browser").unwrap();
        let mut c = defaults.clone();
        c.seed = 77;
        let text = encode(&link(c)).replace("batch=32", "batch=100000");
        let d = decode(&text, &defaults, &Limits::BROWSER).unwrap();
        assert_eq!(d.problems.len(), 1, "{:?}", d.problems);
        assert!(
            d.problems[0].starts_with("batch: \"100000\""),
            "{}",
            d.problems[0]
        );
        assert_eq!(d.link.config.seed, 77, "the other fields keep their values");
        assert_eq!(d.link.config.train.batch_size, 32);
    }

    #[test]
    fn the_page_refuses_image_pooling_it_does_not_hold() {
        let defaults = RunConfig::preset("browser").unwrap();
        let text = encode(&link(RunConfig::preset("bench").unwrap()));
        let d = decode(&text, &defaults, &Limits::BROWSER).unwrap();
        assert_eq!(d.problems.len(), 1, "{:?}", d.problems);
        assert!(d.problems[0].starts_with("pool: this page holds images pooled by 4"));
        assert_eq!(d.link.config.tasks.image_pool, 4);
    }

    #[test]
    fn a_combination_too_big_for_memory_falls_back_by_group() {
        let defaults = RunConfig::preset("browser").unwrap();
        let text = encode(&link(defaults.clone()))
            .replace("batch=32", "batch=512")
            .replace("T=30", "T=200")
            .replace("heads=4", "heads=64");
        let d = decode(&text, &defaults, &Limits::BROWSER).unwrap();
        assert!(
            d.problems
                .iter()
                .any(|p| p.starts_with("batch: a step would need")),
            "{:?}",
            d.problems
        );
        let (buffer, step) = Limits::step_bytes(&d.link.config);
        assert!(buffer <= Limits::BROWSER.max_buffer_bytes);
        assert!(step <= Limits::BROWSER.max_step_bytes);
    }

    #[test]
    fn device_projections_with_low_rank_are_refused_by_name() {
        let defaults = RunConfig::preset("browser").unwrap();
        let text = encode(&link(defaults.clone()))
            .replace("rank=0", "rank=1")
            .replace("proj=host", "proj=device");
        let d = decode(&text, &defaults, &Limits::BROWSER).unwrap();
        assert_eq!(d.problems.len(), 1, "{:?}", d.problems);
        assert!(
            d.problems[0].starts_with("proj: not with rank=1"),
            "{}",
            d.problems[0]
        );
        assert!(d.link.config.tasks.low_rank, "the first of the two stays");
        assert_eq!(d.link.config.tasks.projections, ProjectionSource::Host);
        assert_eq!(d.link.config.train.batch_size, 32, "nothing else moves");
        // Alone, each is a valid setting and kept.
        let text = encode(&link(defaults.clone())).replace("proj=host", "proj=device");
        let d = decode(&text, &defaults, &Limits::BROWSER).unwrap();
        assert_eq!(d.problems, Vec::<String>::new());
        assert_eq!(d.link.config.tasks.projections, ProjectionSource::Device);
    }

    #[test]
    fn unknown_newer_and_broken_links() {
        let defaults = RunConfig::preset("browser").unwrap();
        let text = format!("{}&future=1", encode(&link(defaults.clone()))).replace("v=1", "v=2");
        let d = decode(&text, &defaults, &Limits::BROWSER).unwrap();
        assert_eq!(d.problems.len(), 2, "{:?}", d.problems);
        assert!(d.problems[0].starts_with("v: the link was made by a newer gpicl"));
        assert!(d.problems[1].starts_with("future: not a setting"));
        assert!(decode("seed=3", &defaults, &Limits::BROWSER).is_err());
        assert!(decode("#v=x", &defaults, &Limits::BROWSER).is_err());
        let d = decode("#v=1&seed=5", &defaults, &Limits::BROWSER).unwrap();
        assert_eq!(d.link.config.seed, 5);
        assert_eq!(
            d.problems.len(),
            FIELDS.len() - 1 - ADDED.len(),
            "each missing field is named, except those added later"
        );
        // A link from before `vary` existed means "not varied", whatever the defaults say.
        let mut varied = defaults.clone();
        varied.tasks.varied_classes = true;
        let old = encode(&link(defaults.clone())).replace("&vary=0", "");
        let d = decode(&old, &varied, &Limits::BROWSER).unwrap();
        assert_eq!(d.problems, Vec::<String>::new());
        assert!(!d.link.config.tasks.varied_classes);
    }

    #[test]
    fn replays_compare_exactly_within_tolerance_or_not() {
        let curve = |a: f32| Curve {
            name: "x".into(),
            accuracy: vec![a; 10],
            loss: vec![1.0; 10],
        };
        let r = Replay::of(10, &[curve(0.5), curve(0.3)]);
        assert_eq!(r.compare(&[curve(0.5), curve(0.3)]), ReplayOutcome::Exact);
        assert_eq!(
            r.compare(&[curve(0.51), curve(0.3)]),
            ReplayOutcome::Within(0.01)
        );
        assert_eq!(
            r.compare(&[curve(0.6), curve(0.3)]),
            ReplayOutcome::Differs(0.1)
        );
        assert_eq!(r.compare(&[curve(0.5)]), ReplayOutcome::Differs(1.0));
    }
}
