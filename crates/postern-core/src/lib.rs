//! Everything Postern does except drawing it.
//!
//! `postern-core` reads AWS profiles, obtains and caches credentials (MFA sessions, assumed
//! roles), lists the instances a user may reach, drives Session Manager sessions and tunnels over
//! the protocol in [`postern_ssm`], and reads the user's own CloudTrail history. The desktop app
//! and the `postern` command are thin clients of this crate; it never imports Tauri.
//!
//! [`Postern`] assembles it all (the composition root every front end starts from).
//!
//! Modules:
//! - identity: [`profile`] (the AWS config files, read as the AWS CLI reads them),
//!   [`credentials`] (profiles to credentials: MFA sessions, roles, caching), [`keychain`] (the
//!   only place secrets are kept), [`mfa`] (asking for codes), [`identity`] (the profiles and
//!   roles a user can switch between), [`paths`] and [`settings`] (Postern's own folder, settings in layers), [`reach`] (tag rules);
//! - sessions: [`session`] (start a session, drive its data channel, resume it after drops),
//!   [`tunnel`] (local port forwarding over a pool of port sessions), [`inventory`] (what the
//!   user may reach), [`history`] (the user's own sessions).
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub use postern::{LoadError, Postern, Secrets, Setup};
pub use postern_ssm;

pub mod aws;
pub mod credentials;
pub mod failure;
pub mod history;
pub mod identity;
pub mod inventory;
pub mod keychain;
pub mod mfa;
pub mod paths;
pub mod postern;
pub mod profile;
pub mod progress;
pub mod reach;
pub mod registry;
pub mod remedy;
pub mod sandbox_mode;
pub mod sensitive;
pub mod session;
pub mod settings;
pub mod tunnel;

/// Log targets of libraries that see secrets on the wire: the SDK's HTTP layers log request and
/// response bodies (StartSession's stream token, STS's session tokens) at trace, SigV4 logs the
/// canonical request (with the session token header) at debug, and the websocket crate logs
/// frames (the OpenDataChannel token). Frontends cap these at `info` whatever the user's log
/// filter asks for (see [`secret_bearing_log_target`]).
pub const SECRET_BEARING_LOG_TARGETS: &[&str] = &[
    "aws_sigv4",
    "aws_smithy_runtime",
    "aws_smithy_runtime_api",
    "aws_smithy_http",
    "aws_smithy_http_client",
    "aws_smithy_json",
    "aws_smithy_types",
    "aws_runtime",
    "aws_config",
    "aws_sdk_ssm",
    "aws_sdk_sts",
    "aws_sdk_ec2",
    "aws_sdk_cloudtrail",
    "hyper",
    "hyper_util",
    "h2",
    "rustls",
    "tungstenite",
    "tokio_tungstenite",
];

/// Whether a log target (a module path) belongs to one of [`SECRET_BEARING_LOG_TARGETS`].
pub fn secret_bearing_log_target(target: &str) -> bool {
    SECRET_BEARING_LOG_TARGETS.iter().any(|crate_name| {
        target
            .strip_prefix(crate_name)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
    })
}

#[cfg(test)]
mod tests {
    use super::secret_bearing_log_target;

    #[test]
    fn the_wire_libraries_and_their_modules_are_secret_bearing_and_postern_is_not() {
        assert!(secret_bearing_log_target("aws_sigv4"));
        assert!(secret_bearing_log_target(
            "aws_smithy_runtime::client::orchestrator"
        ));
        assert!(secret_bearing_log_target("tungstenite::protocol"));
        assert!(!secret_bearing_log_target("aws_sigv4_extra"));
        assert!(!secret_bearing_log_target("postern_core::session::driver"));
        assert!(!secret_bearing_log_target("postern"));
    }
}
