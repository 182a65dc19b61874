//! Everything Postern does except drawing it.
//!
//! `postern-core` reads AWS profiles, obtains and caches credentials (MFA sessions, assumed
//! roles), lists the instances a user may reach, drives Session Manager sessions and tunnels over
//! the protocol in [`postern_ssm`], and reads the user's own CloudTrail history. The desktop app
//! and the `postern` command are thin clients of this crate; it never imports Tauri.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub use postern_ssm;
