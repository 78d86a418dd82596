//! `gpicl share`: a run as the page's share link (every setting and seed, the versions, and the
//! fingerprint of its latest curves for a replay), so a run made here can be re-run and checked
//! in a browser.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use gpicl_core::Results;
use gpicl_core::share::{Link, Replay, data_version, encode};

use crate::data::read_bundles;

/// Arguments of `gpicl share`.
#[derive(clap::Args)]
pub struct ShareArgs {
    /// Run directory (with results.json).
    run: PathBuf,
    /// The page's address the link starts with.
    #[arg(long, default_value = "http://127.0.0.1:8080/")]
    base: String,
    /// Directory of the data bundles (their hashes give the link's data version).
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

/// Runs `gpicl share`.
pub fn run(args: ShareArgs) -> Result<()> {
    let path = args.run.join("results.json");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let results = Results::from_json(&text).with_context(|| format!("in {}", path.display()))?;
    let Some(last) = results.last() else {
        bail!("{}: the run has no evaluation yet", path.display());
    };
    let dir = args.data_dir.unwrap_or_else(crate::default_data_dir);
    let link = Link {
        config: results.config.clone(),
        app_version: results.gpicl_version.clone(),
        data_version: data_version(&read_bundles(&dir)?.1),
        replay: (last.step > 0).then(|| Replay::of(last.step, &last.curves)),
        table: None,
    };
    println!("{}#{}", args.base, encode(&link));
    Ok(())
}
