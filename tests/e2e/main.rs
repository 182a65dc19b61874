//! End-to-end journeys: the workspace's binaries driven as a user drives them, over loopback.
//!
//! The binaries are built by `make test` before this runs (`cargo build --workspace --bins`).

mod cli;
mod sandbox;
