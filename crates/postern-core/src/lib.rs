//! Everything Postern does except drawing it.
//!
//! `postern-core` reads AWS profiles, obtains and caches credentials (MFA sessions, assumed
//! roles), lists the instances a user may reach, drives Session Manager sessions and tunnels over
//! the protocol in [`postern_ssm`], and reads the user's own CloudTrail history. The desktop app
//! and the `postern` command are thin clients of this crate; it never imports Tauri.
//!
//! Modules:
//! - identity: [`profile`] (the AWS config files, read as the AWS CLI reads them),
//!   [`credentials`] (profiles to credentials: MFA sessions, roles, caching), [`keychain`] (the
//!   only place secrets are kept), [`mfa`] (asking for codes), [`identity`] (the profiles and
//!   roles a user can switch between), [`paths`] and [`settings`] (Postern's own folder);
//! - sessions: [`session`] (start a session, drive its data channel, resume it after drops),
//!   [`tunnel`] (local port forwarding over a pool of port sessions), [`inventory`].
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub use postern_ssm;

pub mod aws;
pub mod credentials;
pub mod identity;
pub mod inventory;
pub mod keychain;
pub mod mfa;
pub mod paths;
pub mod profile;
pub mod session;
pub mod settings;
pub mod tunnel;
