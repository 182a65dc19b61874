//! Asking for MFA codes: core asks through [`MfaPrompt`]; the CLI answers on the terminal, tests
//! with a script, the desktop app with a dialog ([`window::WindowPrompt`]).
//!
//! The [`crate::credentials::Resolver`] is the broker: it asks once per MFA device however many
//! requests wait for it, in one process (a lock per device) and across processes (a lock file
//! in the state folder), and it never sends the same code twice.

use std::future::Future;
use std::pin::Pin;

use crate::sensitive::Sensitive;

pub mod window;

/// A six-digit code, checked. Never printed by `Debug`; wiped when dropped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MfaCode(Sensitive<String>);

/// Why a typed code is not a code.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "an MFA code is six digits (got {got} characters{digits}): type the code your device shows now"
)]
pub struct BadCode {
    got: usize,
    digits: &'static str,
}

impl MfaCode {
    /// Check a typed code: six digits, blanks around and inside (`123 456`) ignored.
    pub fn parse(typed: &str) -> Result<Self, BadCode> {
        let code = Sensitive::<String>::new(
            typed
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect::<String>(),
        );
        let code_text = code.expose_str();
        let all_digits = code_text.chars().all(|c| c.is_ascii_digit());
        if code_text.len() == 6 && all_digits {
            Ok(Self(code))
        } else {
            Err(BadCode {
                got: code_text.chars().count(),
                digits: if all_digits { "" } else { ", not all digits" },
            })
        }
    }

    /// The code, for the STS call.
    pub fn expose(&self) -> &str {
        self.0.expose_str()
    }
}

/// Why the previous answer was not taken, shown with the next request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum Retry {
    /// AWS did not accept the code (wrong, expired, or already used elsewhere).
    Rejected,
    /// The code was already used by Postern; the device shows a new one every 30 seconds.
    AlreadyUsed,
    /// What was typed is not six digits.
    Malformed,
}

/// A request for a code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MfaRequest {
    /// The MFA device (its ARN, or a hardware token's serial).
    pub serial: String,
    /// The profile that needs it.
    pub profile: String,
    /// The profile that owns the device: the one whose keys and `mfa_serial` make the MFA
    /// session (the base of the chain), when it is known.
    pub owner: Option<String>,
    /// Set when asking again, with why.
    pub retry: Option<Retry>,
}

impl MfaRequest {
    /// What to tell the user before asking (one line, no code in it).
    pub fn message(&self) -> String {
        let again = match self.retry {
            None => "",
            Some(Retry::Rejected) => "AWS did not accept that code (wrong, or already used). ",
            Some(Retry::AlreadyUsed) => {
                "That code was just used; wait for your device to show the next one. "
            }
            Some(Retry::Malformed) => "An MFA code is six digits. ",
        };
        let whose = match self.owner.as_deref() {
            Some(owner) if owner != self.profile => {
                format!("profile {owner}, for {}", self.profile)
            }
            _ => format!("profile {}", self.profile),
        };
        format!("{again}MFA code for {} ({whose}): ", self.serial)
    }
}

/// Why no code came.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PromptError {
    /// Nobody can be asked (no terminal, no window).
    #[error(
        "an MFA code is needed for {serial} but there is no terminal or window to ask in: sign in to profile {profile} first"
    )]
    NoOneToAsk {
        /// The device.
        serial: String,
        /// The profile.
        profile: String,
    },
    /// The user cancelled.
    #[error("cancelled: no MFA code was given")]
    Cancelled,
    /// Asking failed.
    #[error("cannot ask for an MFA code: {0}")]
    Failed(String),
}

/// A boxed future, for the object-safe prompt trait.
pub type PromptFuture<'a> = Pin<Box<dyn Future<Output = Result<String, PromptError>> + Send + 'a>>;

/// Something that can ask the user for a code. It returns what was typed; the broker checks it.
pub trait MfaPrompt: Send + Sync {
    /// Ask for a code for `request`.
    fn ask<'a>(&'a self, request: &'a MfaRequest) -> PromptFuture<'a>;

    /// Tell the user something while they wait (another process is asking for the code).
    fn notice(&self, text: &str) {
        tracing::info!("{text}");
    }
}

/// A prompt that never has anyone to ask (a background process).
#[derive(Debug, Default)]
pub struct NoPrompt;

impl MfaPrompt for NoPrompt {
    fn ask<'a>(&'a self, request: &'a MfaRequest) -> PromptFuture<'a> {
        let error = PromptError::NoOneToAsk {
            serial: request.serial.clone(),
            profile: request.profile.clone(),
        };
        Box::pin(async move { Err(error) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_question_names_the_profile_that_owns_the_device() {
        let mut request = MfaRequest {
            serial: "arn:aws:iam::111122223333:mfa/jane".into(),
            profile: "developer".into(),
            owner: Some("me".into()),
            retry: None,
        };
        assert_eq!(
            request.message(),
            "MFA code for arn:aws:iam::111122223333:mfa/jane (profile me, for developer): "
        );
        request.retry = Some(Retry::Rejected);
        assert!(
            request.message().ends_with("(profile me, for developer): "),
            "{}",
            request.message()
        );
        // Asked for the owner itself, or with no profile behind the keys: one name.
        request.retry = None;
        request.profile = "me".into();
        assert_eq!(
            request.message(),
            "MFA code for arn:aws:iam::111122223333:mfa/jane (profile me): "
        );
        request.owner = None;
        request.profile = "developer".into();
        assert_eq!(
            request.message(),
            "MFA code for arn:aws:iam::111122223333:mfa/jane (profile developer): "
        );
    }

    #[test]
    fn codes_are_six_digits() {
        assert_eq!(
            MfaCode::parse(" 123 456\n").map(|c| c.expose().to_owned()),
            Ok("123456".into())
        );
        assert!(MfaCode::parse("12345").is_err());
        assert!(MfaCode::parse("12345a").is_err());
        assert!(MfaCode::parse("1234567").is_err());
        assert_eq!(
            format!("{:?}", MfaCode::parse("123456")),
            "Ok(MfaCode(Sensitive(…)))"
        );
        let err = MfaCode::parse("12a").expect_err("bad").to_string();
        assert!(
            err.contains("not all digits") && !err.contains("12a"),
            "{err}"
        );
    }
}
