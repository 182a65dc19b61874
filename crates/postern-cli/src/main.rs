//! `postern`: the command-line client of `postern-core`.
#![forbid(unsafe_code)]

use clap::Parser;

/// Postern: Session Manager shells, commands and tunnels into AWS machines, without the
/// session-manager-plugin.
#[derive(Debug, Parser)]
#[command(name = "postern", version, about)]
struct Cli {}

fn main() -> anyhow::Result<()> {
    let _cli = Cli::parse();
    Ok(())
}
