//! Everything Postern does except drawing it.
//!
//! `postern-core` reads AWS profiles, obtains and caches credentials (MFA sessions, assumed
//! roles), lists the instances a user may reach, drives Session Manager sessions and tunnels over
//! the protocol in [`postern_ssm`], and reads the user's own CloudTrail history. The desktop app
//! and the `postern` command are thin clients of this crate; it never imports Tauri.
//!
//! Today: [`session`] (start a session, drive its data channel, resume it after drops) and
//! [`tunnel`] (local port forwarding over a pool of port sessions).
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub use postern_ssm;

pub mod inventory;
pub mod session;
pub mod tunnel;
