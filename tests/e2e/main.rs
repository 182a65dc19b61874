//! End-to-end journeys: the workspace's binaries and postern-core driven as a user drives them,
//! against the sandbox, over loopback.
//!
//! The binaries are built by `make test` before this runs (`cargo build --workspace --bins`).

mod cli;
mod history;
mod identity;
mod identity_cli;
mod independent;
mod interrupt;
mod inventory;
mod readme;
mod registry;
mod sandbox;
mod sandbox_mode;
mod session;
mod session_homes;
mod tunnel;
