//! `gpicl`: meta-train, evaluate and benchmark general-purpose in-context learners from the
//! command line, on the same core as the web app.

mod backend;
mod bench;
mod data;
mod eval_cmd;
mod export;
mod memory;
mod package;
mod plot;
mod share_cmd;
mod suite_cmd;
mod sweep;
mod train_cmd;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// General-purpose in-context learning by meta-learning Transformers.
#[derive(Parser)]
#[command(name = "gpicl", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Meta-train a learner on MNIST tasks; evaluate on seen tasks, unseen tasks and
    /// Fashion-MNIST as it trains.
    Train(train_cmd::TrainArgs),
    /// Evaluate a checkpoint on a dataset file (IDX or CSV), or on its run's evaluation sets:
    /// accuracy against examples seen.
    Eval(eval_cmd::EvalArgs),
    /// Write a learner's weights as safetensors with the names and layouts of the PyTorch model
    /// in bench/reference_torch.py, with a check batch and the learner's logits on it.
    Export(export::ExportArgs),
    /// Time training steps of the benchmark preset on each backend.
    Bench(bench::BenchArgs),
    /// Time one more example fed to a learner: with the KV cache against a full forward pass,
    /// at several context lengths.
    BenchStep(bench::BenchStepArgs),
    /// Print a preset's configuration as JSON (a starting point for --config).
    Preset {
        /// Preset name.
        name: String,
    },
    /// Package a finished run as the page's pretrained learner (weights + manifest).
    Package(package::PackageArgs),
    /// Sweeps: many runs from one spec, sharded over machines, merged into a phase diagram.
    #[command(subcommand)]
    Sweep(sweep::SweepCommand),
    /// Print a run's share link: the page opens it with the same settings and seeds and
    /// replays it to check its latest curves.
    Share(share_cmd::ShareArgs),
    /// A learner on the held-out suite (synthetic datasets from seeds, UCI digits) beside
    /// 1-NN, logistic regression and an MLP fit on the same contexts.
    Suite(suite_cmd::SuiteArgs),
    /// Redraw a run's curves.svg from its results.json.
    Plot {
        /// Run directory.
        run: PathBuf,
    },
}

/// Where the data bundles live by default: `web/data` under the working directory when it is
/// there (a checkout's root, or a machine the binary was copied to with the bundles), else
/// `web/data` in the repository the binary was built from.
pub fn default_data_dir() -> PathBuf {
    let here = PathBuf::from("web/data");
    if here.is_dir() {
        here
    } else {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../web/data")
    }
}

fn main() -> ExitCode {
    memory::keep_freed_memory();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Train(args) => train_cmd::run(args),
        Command::Eval(args) => eval_cmd::run(args),
        Command::Export(args) => export::run(args),
        Command::Bench(args) => bench::run(args),
        Command::BenchStep(args) => bench::run_step(args),
        Command::Preset { name } => gpicl_core::RunConfig::preset(&name)
            .map_err(anyhow::Error::from)
            .and_then(|c| Ok(serde_json::to_string_pretty(&c)?))
            .map(|s| println!("{s}")),
        Command::Package(args) => package::run(args),
        Command::Sweep(command) => sweep::run(command),
        Command::Share(args) => share_cmd::run(args),
        Command::Suite(args) => suite_cmd::run(args),
        Command::Plot { run } => plot::redraw(&run),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
