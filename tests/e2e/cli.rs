//! The `postern` command, as a user first meets it.

use std::process::Command;

use postern_e2e::workspace_binary;

#[test]
fn postern_reports_its_version() {
    let out = Command::new(workspace_binary("postern"))
        .arg("--version")
        .output()
        .expect("run postern --version (is it built? `cargo build --workspace --bins`)");
    assert!(out.status.success(), "postern --version failed: {out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout.trim(),
        format!("postern {}", env!("CARGO_PKG_VERSION"))
    );
}
