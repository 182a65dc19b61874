//! Helpers shared by the end-to-end journeys: where the workspace's binaries are.
#![forbid(unsafe_code)]

use std::path::PathBuf;

/// The path of a binary of this workspace, built by Cargo into the same profile directory as the
/// test executable (`target/debug/` for `cargo test`).
pub fn workspace_binary(name: &str) -> PathBuf {
    let mut dir = std::env::current_exe().unwrap_or_default();
    // target/debug/deps/e2e-<hash> → target/debug
    dir.pop();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
}
