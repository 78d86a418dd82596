//! What the integration tests share.

use std::path::PathBuf;

/// The repository's `web/` folder. Read at run time (`cargo test` sets `CARGO_MANIFEST_DIR`),
/// not baked in at compile time: one target directory serves several checkouts, and cargo may
/// run a test built from another one (as xtask's `root`).
pub fn web() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| env!("CARGO_MANIFEST_DIR").into(), PathBuf::from)
        .join("../../web")
}
