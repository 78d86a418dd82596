//! The page ↔ training-worker protocol: one enum of commands (page → worker), one of events
//! (worker → page). Each message crosses `postMessage` as JSON text plus, for the few that
//! carry a [`File`] (a checkpoint, a visitor's table), its bytes as a separate buffer: a
//! checkpoint is megabytes, and as JSON numbers it would cost seconds of the page's thread.
//!
//! Every event about a run names it (`run`: the page's counter), so the page drops what
//! belongs to a run it has already replaced.

use gpicl_core::{Curve, RunConfig};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::chart::BaselineCurve;
use crate::yours::{Format, Report};

/// Why the worker reads the run's checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Purpose {
    /// The page stores it as the run's autosave.
    Autosave,
    /// The user asked for the `.gpicl` file.
    Download,
}

/// The device a worker trains on, as the page describes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackendInfo {
    /// True on WebGPU, false on the CPU fallback (Flex in WebAssembly).
    pub webgpu: bool,
    /// What the page shows: the adapter, or "CPU (Flex, WebAssembly)".
    pub label: String,
    /// Why WebGPU is not used, when it is not.
    pub fallback: Option<String>,
}

/// The page's commands to the worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Command {
    /// Start the device and fetch the data; `base` is the page's address, which the data's
    /// paths are relative to. Answered by [`Event::Ready`] or [`Event::Failed`].
    Init {
        /// The page's URL.
        base: String,
    },
    /// A new run of `config` at step 0, named `run`. Answered by [`Event::Began`] (then its
    /// evaluation at step 0 and its baselines) or [`Event::Refused`] (the current run stays).
    New {
        /// The page's name for the run.
        run: u64,
        /// Its settings and seeds.
        config: Box<RunConfig>,
    },
    /// Continue the run in `checkpoint` (an autosave, an uploaded file, a rollback), named
    /// `run`; `evaluate`: evaluate at its step before anything else (the page has no curves
    /// for it). Answered like [`Command::New`].
    Resume {
        /// The page's name for the run.
        run: u64,
        /// The `.gpicl` file's bytes (carried beside the JSON).
        #[serde(skip)]
        checkpoint: File,
        /// Evaluate at the checkpoint's step first.
        evaluate: bool,
    },
    /// Train on, until step `stop_at` if given.
    Train {
        /// The step to stop at (a replay's).
        stop_at: Option<usize>,
    },
    /// Stop after the steps in flight, then evaluate and autosave at that step.
    Pause,
    /// One step, then an evaluation.
    Step,
    /// Read the run's checkpoint for a download ([`Event::Checkpoint`] with
    /// [`Purpose::Download`]).
    Download,
    /// Learn a visitor's table with the shipped learner (not the run: the page does not count
    /// it among the run's commands). Answered by [`Event::Learnt`] or [`Event::LearnRefused`].
    Learn {
        /// The file's name.
        name: String,
        /// How to read it.
        format: Format,
        /// The file's bytes, or both files' one after the other (carried beside the JSON).
        #[serde(skip)]
        bytes: File,
    },
}

/// The worker's events to the page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Event {
    /// The device and the data are ready.
    Ready(BackendInfo),
    /// The worker cannot train (the data did not load); says why.
    Failed(String),
    /// Run `run` is the current run, at step `step`, with `config`.
    Began {
        /// The page's name for the run.
        run: u64,
        /// Its step.
        step: usize,
        /// Its settings (a checkpoint's own).
        config: RunConfig,
    },
    /// A new run or checkpoint was refused; the previous run goes on unchanged.
    Refused {
        /// The run that was not made.
        run: u64,
        /// Why.
        message: String,
    },
    /// Steps finished: the run's step after them, their losses, the milliseconds they took.
    Trained {
        /// The run.
        run: u64,
        /// Steps completed after these.
        step: usize,
        /// One loss per step.
        losses: Vec<f32>,
        /// Training time of the chunk.
        ms: f64,
    },
    /// The three curves at `step`.
    Evaluated {
        /// The run.
        run: u64,
        /// The step evaluated.
        step: usize,
        /// Seen tasks, unseen tasks, the unseen dataset.
        curves: Vec<Curve>,
    },
    /// 1-NN and logistic regression fit on the same contexts as the run's unseen tasks.
    Baselines {
        /// The run.
        run: u64,
        /// Named accuracy points.
        curves: Vec<BaselineCurve>,
    },
    /// The run's checkpoint at `step`, read for `purpose`.
    Checkpoint {
        /// The run.
        run: u64,
        /// Why it was read.
        purpose: Purpose,
        /// Its step.
        step: usize,
        /// The `.gpicl` file's bytes (carried beside the JSON).
        #[serde(skip)]
        bytes: File,
    },
    /// The run diverged at a step (nothing was applied); the worker stopped training it.
    Diverged {
        /// The run.
        run: u64,
        /// What happened and what to change.
        why: String,
    },
    /// Something failed while working on the run; the worker stopped training it.
    Error {
        /// The run.
        run: u64,
        /// What failed.
        message: String,
    },
    /// What the shipped learner made of a visitor's table.
    Learnt(Box<Report>),
    /// A visitor's table was refused (why, naming the line or column).
    LearnRefused {
        /// The file's name.
        name: String,
        /// Why.
        message: String,
    },
    /// The worker has nothing left to do for run `run` (after a pause, a step, a replay's
    /// last step or an error), having handled the first `seen` commands.
    Idle {
        /// The run.
        run: u64,
        /// Its step.
        step: usize,
        /// Commands handled so far (the page ignores an `Idle` older than its last command).
        seen: u64,
    },
}

/// A file a message carries beside its JSON: a checkpoint, a visitor's table.
#[derive(Debug, Clone)]
pub enum File {
    /// Bytes in this module's memory: what the worker reads and writes (and native code).
    Bytes(Vec<u8>),
    /// Bytes left in JavaScript, as a message brings them: the page only stores, downloads or
    /// passes on a checkpoint, so one never enters its WebAssembly memory (which never
    /// shrinks, and grew by a checkpoint's size at autosaves while they passed through it).
    #[cfg(target_arch = "wasm32")]
    Js(js_sys::Uint8Array),
}

impl Default for File {
    fn default() -> Self {
        File::Bytes(Vec::new())
    }
}

/// Files are equal when their bytes are.
impl PartialEq for File {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (File::Bytes(a), File::Bytes(b)) => a == b,
            #[cfg(target_arch = "wasm32")]
            _ => self.clone().into_vec() == other.clone().into_vec(),
        }
    }
}

impl From<Vec<u8>> for File {
    fn from(bytes: Vec<u8>) -> Self {
        File::Bytes(bytes)
    }
}

impl File {
    /// The bytes in this module's memory (copied in when they are in JavaScript).
    pub fn into_vec(self) -> Vec<u8> {
        match self {
            File::Bytes(bytes) => bytes,
            #[cfg(target_arch = "wasm32")]
            File::Js(array) => array.to_vec(),
        }
    }

    /// The bytes as JavaScript's (copied out when they are in this module's memory).
    #[cfg(target_arch = "wasm32")]
    pub fn to_js(&self) -> js_sys::Uint8Array {
        match self {
            File::Bytes(bytes) => js_sys::Uint8Array::from(bytes.as_slice()),
            File::Js(array) => array.clone(),
        }
    }
}

/// A protocol message as it crosses `postMessage`: JSON text and the bytes of a file it
/// carries (a checkpoint), if any.
pub trait Wire: Serialize + DeserializeOwned {
    /// The file the message carries, if it carries one.
    fn file(&self) -> Option<&File>;
    /// Where a carried file goes back in (`None` for messages without one).
    fn file_mut(&mut self) -> Option<&mut File>;

    /// The message as JSON (without the carried file) and the carried file.
    fn to_wire(&self) -> (String, Option<&File>) {
        let json = serde_json::to_string(self).expect("protocol messages serialise");
        (json, self.file())
    }

    /// The message back from [`Wire::to_wire`]'s parts; a message that expects bytes and
    /// got none (or the reverse) is an error.
    fn from_wire(json: &str, file: Option<File>) -> Result<Self, String> {
        let mut message: Self =
            serde_json::from_str(json).map_err(|e| format!("bad protocol message: {e}"))?;
        match (message.file_mut(), file) {
            (Some(slot), Some(file)) => *slot = file,
            (None, None) => {}
            (Some(_), None) => return Err("a protocol message lost its bytes".into()),
            (None, Some(_)) => return Err("a protocol message came with stray bytes".into()),
        }
        Ok(message)
    }
}

impl Wire for Command {
    fn file(&self) -> Option<&File> {
        match self {
            Command::Resume { checkpoint, .. } => Some(checkpoint),
            Command::Learn { bytes, .. } => Some(bytes),
            _ => None,
        }
    }

    fn file_mut(&mut self) -> Option<&mut File> {
        match self {
            Command::Resume { checkpoint, .. } => Some(checkpoint),
            Command::Learn { bytes, .. } => Some(bytes),
            _ => None,
        }
    }
}

impl Wire for Event {
    fn file(&self) -> Option<&File> {
        match self {
            Event::Checkpoint { bytes, .. } => Some(bytes),
            _ => None,
        }
    }

    fn file_mut(&mut self) -> Option<&mut File> {
        match self {
            Event::Checkpoint { bytes, .. } => Some(bytes),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<M: Wire + PartialEq + std::fmt::Debug>(m: M) {
        let (json, file) = m.to_wire();
        let back = M::from_wire(&json, file.cloned()).unwrap();
        assert_eq!(back, m);
    }

    #[test]
    fn messages_cross_with_their_bytes_beside_the_json() {
        let config = RunConfig::preset("tiny").unwrap();
        round_trip(Command::New {
            run: 3,
            config: Box::new(config),
        });
        round_trip(Command::Train { stop_at: Some(8) });
        round_trip(Command::Learn {
            name: "t.csv".into(),
            format: Format::Csv {
                label_column: Some(2),
            },
            bytes: b"a,b\n1,x\n".to_vec().into(),
        });
        let resume = Command::Resume {
            run: 4,
            checkpoint: vec![1, 2, 3, 250].into(),
            evaluate: true,
        };
        let (json, file) = resume.to_wire();
        assert!(!json.contains("250"), "the bytes travel apart: {json}");
        assert_eq!(file, Some(&File::Bytes(vec![1, 2, 3, 250])));
        round_trip(resume);
        round_trip(Event::Checkpoint {
            run: 1,
            purpose: Purpose::Autosave,
            step: 20,
            bytes: vec![9; 100].into(),
        });
        round_trip(Event::Trained {
            run: 1,
            step: 5,
            losses: vec![2.3, 2.25],
            ms: 12.5,
        });
        round_trip(Event::Ready(BackendInfo {
            webgpu: false,
            label: "CPU".into(),
            fallback: Some("no adapter".into()),
        }));
    }

    #[test]
    fn a_bad_message_is_an_error_not_a_panic() {
        assert!(Command::from_wire("{\"Nope\":1}", None).is_err());
        assert!(Command::from_wire("not json", None).is_err());
        let (json, _) = Command::Resume {
            run: 1,
            checkpoint: vec![1].into(),
            evaluate: false,
        }
        .to_wire();
        assert!(Command::from_wire(&json, None).is_err());
        assert!(Command::from_wire("\"Pause\"", Some(vec![1].into())).is_err());
    }
}
