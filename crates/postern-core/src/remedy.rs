//! Errors a front end can act on: each of core's errors has a stable [`Code`] (what kind of
//! problem, for a program to branch on) and a [`Remedy`] (what the user can do, for the front end
//! to word and offer as a button or a hint), beside its sentence.
//!
//! The codes and remedies are a contract with the front ends: renaming one is a breaking change.

use serde::Serialize;

use crate::aws::AccessError;
use crate::credentials::CredentialError;
use crate::inventory::ResolveError;
use crate::keychain::KeychainError;
use crate::mfa::PromptError;
use crate::paths::PathsError;
use crate::postern::LoadError;
use crate::profile::ProfileError;
use crate::profile::add::AddProfileError;
use crate::session::{LinkLost, SessionEnd, SessionError, SessionFailure};
use crate::settings::SettingsError;
use crate::tunnel::TunnelError;

/// What kind of problem it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum Code {
    /// An MFA code is needed and nobody could be asked.
    MfaRequired,
    /// AWS did not accept the MFA codes.
    MfaRejected,
    /// The user did not give a code.
    Cancelled,
    /// No credentials to start from.
    NoCredentials,
    /// AWS does not know the keys.
    BadKeys,
    /// AWS refused the call.
    AccessDenied,
    /// The instance's agent is not connected.
    TargetNotConnected,
    /// The instance is in another region.
    InOtherRegion,
    /// No such instance.
    NoSuchInstance,
    /// Credentials from elsewhere have expired.
    Expired,
    /// AWS refused a session Postern made, and its replacement.
    SessionRefused,
    /// No OS keychain to use, or it failed.
    NoKeychain,
    /// AWS could not be reached.
    Network,
    /// AWS kept throttling past the limit.
    Throttled,
    /// A profile is missing or cannot be used.
    BadProfile,
    /// Settings, the policy or Postern's state cannot be read.
    BadSettings,
    /// No region anywhere.
    NoRegion,
    /// Something the user gave is not valid (an id, a port, a document).
    BadInput,
    /// The session needs something Postern does not do (yet).
    Unsupported,
    /// Any other answer of AWS.
    Aws,
    /// Postern failed inside.
    Internal,
}

/// What the user can do about a problem; the front end says it in its own words.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(tag = "remedy", rename_all = "snake_case")]
pub enum Remedy {
    /// Nothing in particular: the message says it all.
    None,
    /// Sign in to `profile` (an MFA code will be asked).
    SignIn {
        /// The profile.
        profile: String,
    },
    /// Forget Postern's sessions and sign in again.
    SignInAgain,
    /// Store the profile's access keys in the keychain.
    StoreKeys {
        /// The profile.
        profile: String,
    },
    /// The stored access keys are wrong or deactivated: store new ones.
    ReplaceKeys,
    /// Check the MFA device (the right one for the user, its clock).
    CheckDevice {
        /// The device.
        serial: String,
    },
    /// Choose a profile (none is active and there is no default).
    ChooseProfile,
    /// Pick a region.
    ChooseRegion,
    /// Use the instance's region.
    UseRegion {
        /// Where the instance is.
        region: String,
    },
    /// Start the instance or bring its SSM agent online.
    CheckInstance {
        /// The instance.
        target: String,
    },
    /// Ask an administrator for the permission.
    AskForAccess,
    /// Check this machine's clock.
    CheckClock,
    /// Get fresh credentials where these came from (the environment, a credential_process).
    RenewCredentials,
    /// Install or unlock an OS keychain (Secret Service on Linux).
    UnlockKeychain,
    /// Fix a file (the AWS config, settings, the policy).
    FixFile {
        /// Which file, if known.
        path: Option<String>,
    },
    /// Check the network (and any proxy or VPN) and try again.
    CheckNetwork,
    /// Try again later.
    TryAgain,
    /// Look at the instance list (a name or address matched nothing).
    ListInstances,
    /// Remove a keychain entry Postern did not write.
    RemoveKeychainEntry {
        /// The entry.
        entry: String,
    },
}

/// An error a front end can act on.
pub trait Remediable: std::error::Error {
    /// What kind of problem.
    fn code(&self) -> Code;
    /// What the user can do.
    fn remedy(&self) -> Remedy {
        Remedy::None
    }
}

/// The remedy of `error` when it is one of core's errors, for a front end that holds errors as
/// `dyn Error` (through `anyhow`, or a source chain). Each error type of core with a
/// [`Remediable`] impl in this module is listed here too.
pub fn of_error(error: &(dyn std::error::Error + 'static)) -> Option<Remedy> {
    fn of<E: Remediable + 'static>(error: &(dyn std::error::Error + 'static)) -> Option<Remedy> {
        error.downcast_ref::<E>().map(Remediable::remedy)
    }
    of::<CredentialError>(error)
        .or_else(|| of::<AccessError>(error))
        .or_else(|| of::<ProfileError>(error))
        .or_else(|| of::<KeychainError>(error))
        .or_else(|| of::<PromptError>(error))
        .or_else(|| of::<SettingsError>(error))
        .or_else(|| of::<PathsError>(error))
        .or_else(|| of::<SessionError>(error))
        .or_else(|| of::<SessionFailure>(error))
        .or_else(|| of::<LinkLost>(error))
        .or_else(|| of::<TunnelError>(error))
        .or_else(|| of::<ResolveError>(error))
        .or_else(|| of::<LoadError>(error))
        .or_else(|| of::<AddProfileError>(error))
}

/// A problem as a front end receives it: code, sentence, remedy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Report {
    /// What kind of problem.
    pub code: Code,
    /// The sentence.
    pub message: String,
    /// What the user can do.
    #[serde(flatten)]
    pub remedy: Remedy,
}

impl Report {
    /// The report of `error`.
    pub fn of(error: &(impl Remediable + ?Sized)) -> Self {
        Self {
            code: error.code(),
            message: error.to_string(),
            remedy: error.remedy(),
        }
    }
}

impl Remediable for PromptError {
    fn code(&self) -> Code {
        match self {
            Self::NoOneToAsk { .. } => Code::MfaRequired,
            Self::Cancelled => Code::Cancelled,
            Self::Failed(_) => Code::Internal,
        }
    }

    fn remedy(&self) -> Remedy {
        match self {
            Self::NoOneToAsk { profile, .. } => Remedy::SignIn {
                profile: profile.clone(),
            },
            _ => Remedy::None,
        }
    }
}

impl Remediable for KeychainError {
    fn code(&self) -> Code {
        match self {
            Self::Unavailable { .. } | Self::Failed { .. } => Code::NoKeychain,
            Self::Corrupt { .. } | Self::Index(_) => Code::Internal,
        }
    }

    fn remedy(&self) -> Remedy {
        match self {
            Self::Unavailable { .. } | Self::Failed { .. } => Remedy::UnlockKeychain,
            Self::Corrupt { entry, .. } => Remedy::RemoveKeychainEntry {
                entry: entry.clone(),
            },
            Self::Index(_) => Remedy::None,
        }
    }
}

impl Remediable for ProfileError {
    fn code(&self) -> Code {
        Code::BadProfile
    }

    fn remedy(&self) -> Remedy {
        match self {
            Self::NotFound(_) => Remedy::ChooseProfile,
            _ => Remedy::FixFile { path: None },
        }
    }
}

impl Remediable for SettingsError {
    fn code(&self) -> Code {
        Code::BadSettings
    }

    fn remedy(&self) -> Remedy {
        match self {
            Self::Io { path, .. } | Self::Invalid { path, .. } => Remedy::FixFile {
                path: Some(path.display().to_string()),
            },
            _ => Remedy::FixFile { path: None },
        }
    }
}

impl Remediable for PathsError {
    fn code(&self) -> Code {
        Code::BadSettings
    }
}

impl Remediable for CredentialError {
    fn code(&self) -> Code {
        match self {
            Self::Profile(e) => e.code(),
            Self::NoCredentials { .. } | Self::NoEnvironmentKeys { .. } => Code::NoCredentials,
            Self::IncompleteKeys { .. } | Self::Unsupported { .. } => Code::BadProfile,
            Self::Internal(_) => Code::Internal,
            Self::NothingConfigured => Code::NoCredentials,
            Self::Keychain(e) => e.code(),
            Self::Prompt(e) => e.code(),
            Self::MfaRejected { .. } => Code::MfaRejected,
            Self::AccessDenied { .. } => Code::AccessDenied,
            Self::Expired { .. } => Code::Expired,
            Self::SessionRefused { .. } => Code::SessionRefused,
            Self::BadKeys { .. } => Code::BadKeys,
            Self::Sts { code, .. } if crate::failure::THROTTLING_CODES.contains(&code.as_str()) => {
                Code::Throttled
            }
            Self::Sts { .. } => Code::Aws,
            Self::Network(_) => Code::Network,
            Self::CredentialProcess { .. } => Code::NoCredentials,
            Self::Settings(e) => e.code(),
        }
    }

    fn remedy(&self) -> Remedy {
        match self {
            Self::Profile(e) => e.remedy(),
            Self::NoCredentials { profile } => Remedy::StoreKeys {
                profile: profile.clone(),
            },
            Self::IncompleteKeys { profile, .. } => Remedy::StoreKeys {
                profile: profile.clone(),
            },
            Self::NoEnvironmentKeys { .. } | Self::Expired { .. } => Remedy::RenewCredentials,
            Self::CredentialProcess { .. } => Remedy::RenewCredentials,
            Self::NothingConfigured => Remedy::ChooseProfile,
            Self::Keychain(e) => e.remedy(),
            Self::Prompt(e) => e.remedy(),
            Self::MfaRejected { serial } => Remedy::CheckDevice {
                serial: serial.clone(),
            },
            Self::AccessDenied { .. } => Remedy::AskForAccess,
            Self::SessionRefused { .. } => Remedy::SignInAgain,
            Self::BadKeys { .. } => Remedy::ReplaceKeys,
            Self::Network(_) => Remedy::CheckNetwork,
            Self::Settings(e) => e.remedy(),
            Self::Sts { .. } if self.code() == Code::Throttled => Remedy::TryAgain,
            Self::Unsupported { .. } | Self::Internal(_) | Self::Sts { .. } => Remedy::None,
        }
    }
}

impl Remediable for AccessError {
    fn code(&self) -> Code {
        match self {
            Self::Credentials(e) => e.code(),
            Self::NoRegion => Code::NoRegion,
        }
    }

    fn remedy(&self) -> Remedy {
        match self {
            Self::Credentials(e) => e.remedy(),
            Self::NoRegion => Remedy::ChooseRegion,
        }
    }
}

impl Remediable for SessionError {
    fn code(&self) -> Code {
        match self {
            Self::AccessDenied { .. } => Code::AccessDenied,
            Self::TargetNotConnected { .. } => Code::TargetNotConnected,
            Self::InvalidDocument { .. } | Self::MalformedTarget { .. } => Code::BadInput,
            Self::Aws { code, .. } if crate::failure::THROTTLING_CODES.contains(&code.as_str()) => {
                Code::Throttled
            }
            Self::Aws { code, .. } if code == "ExpiredTokenException" => Code::Expired,
            Self::Aws { .. } => Code::Aws,
            Self::Network(_) => Code::Network,
            Self::InOtherRegion { .. } => Code::InOtherRegion,
            Self::NoSuchInstance { .. } => Code::NoSuchInstance,
        }
    }

    fn remedy(&self) -> Remedy {
        match self {
            Self::AccessDenied { .. } => Remedy::AskForAccess,
            Self::TargetNotConnected { target, .. } => Remedy::CheckInstance {
                target: target.clone(),
            },
            Self::InOtherRegion { found, .. } => match found.first() {
                Some(region) => Remedy::UseRegion {
                    region: region.clone(),
                },
                None => Remedy::None,
            },
            Self::Network(_) => Remedy::CheckNetwork,
            Self::Aws { .. } if self.code() == Code::Throttled => Remedy::TryAgain,
            Self::Aws { .. } if self.code() == Code::Expired => Remedy::RenewCredentials,
            _ => Remedy::None,
        }
    }
}

impl Remediable for SessionFailure {
    fn code(&self) -> Code {
        match self {
            Self::NotResumed { .. } | Self::SilentAfterResume { .. } => Code::Network,
            Self::Unacknowledged { .. } => Code::Network,
            Self::ResumeRefused { .. } | Self::ChannelRefused { .. } => Code::SessionRefused,
            Self::KmsEncryptionRequired | Self::Unsupported { .. } => Code::Unsupported,
            Self::NotConfirmed { .. } => Code::Aws,
            Self::DriverStopped => Code::Internal,
        }
    }

    fn remedy(&self) -> Remedy {
        match self {
            Self::NotResumed { .. } | Self::SilentAfterResume { .. } => Remedy::CheckNetwork,
            Self::Unacknowledged { .. } => Remedy::CheckNetwork,
            Self::ChannelRefused { status: 403, .. } => Remedy::CheckClock,
            Self::ResumeRefused { .. } | Self::ChannelRefused { .. } => Remedy::TryAgain,
            _ => Remedy::None,
        }
    }
}

impl Remediable for LinkLost {
    fn code(&self) -> Code {
        Code::Network
    }

    fn remedy(&self) -> Remedy {
        Remedy::None
    }
}

/// How a session ended, for a front end: `None` when it ended well (closed by the user or on
/// the instance), else the problem.
pub fn end_report(end: &SessionEnd) -> Option<Report> {
    match end {
        SessionEnd::Failed(failure) => Some(Report::of(failure)),
        SessionEnd::Closed {
            reason: Some(reason),
        } => Some(Report {
            code: Code::Aws,
            message: format!("Session Manager closed the session: {reason}"),
            remedy: Remedy::None,
        }),
        SessionEnd::Closed { reason: None } | SessionEnd::ClosedByUser => None,
    }
}

impl Remediable for AddProfileError {
    fn code(&self) -> Code {
        match self {
            Self::File { .. } => Code::BadSettings,
            Self::Keychain(e) => e.code(),
            _ => Code::BadInput,
        }
    }

    fn remedy(&self) -> Remedy {
        match self {
            Self::File { path, .. } => Remedy::FixFile {
                path: Some(path.clone()),
            },
            Self::Keychain(e) => e.remedy(),
            _ => Remedy::None,
        }
    }
}

impl Remediable for ResolveError {
    fn code(&self) -> Code {
        match self {
            Self::NotFound { .. } => Code::NoSuchInstance,
            Self::NotRunning { .. } => Code::TargetNotConnected,
            Self::Ambiguous { .. } => Code::BadInput,
            Self::Listing(e) => e.code(),
        }
    }

    fn remedy(&self) -> Remedy {
        match self {
            Self::NotFound { .. } | Self::Ambiguous { .. } => Remedy::ListInstances,
            Self::NotRunning { .. } => Remedy::None,
            Self::Listing(e) => e.remedy(),
        }
    }
}

impl Remediable for TunnelError {
    fn code(&self) -> Code {
        match self {
            Self::NotLoopback(_) | Self::Bind { .. } | Self::Pool(_) => Code::BadInput,
            Self::Session(e) => e.code(),
        }
    }

    fn remedy(&self) -> Remedy {
        match self {
            Self::Session(e) => e.remedy(),
            _ => Remedy::None,
        }
    }
}

impl Remediable for LoadError {
    fn code(&self) -> Code {
        match self {
            Self::Paths(e) => e.code(),
            Self::Profiles { .. } => Code::BadProfile,
            Self::Settings(e) => e.code(),
            Self::Sandbox(crate::sandbox_mode::SandboxError::Folder { .. }) => Code::BadSettings,
            Self::Sandbox(_) => Code::Internal,
        }
    }

    fn remedy(&self) -> Remedy {
        match self {
            Self::Profiles { config, .. } => Remedy::FixFile {
                path: Some(config.clone()),
            },
            Self::Settings(e) => e.remedy(),
            Self::Paths(_) | Self::Sandbox(_) => Remedy::None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_carry_a_stable_code_a_sentence_and_a_remedy() {
        let error = AccessError::Credentials(CredentialError::Prompt(PromptError::NoOneToAsk {
            serial: "arn:aws:iam::1:mfa/me".into(),
            profile: "dev".into(),
        }));
        let report = serde_json::to_value(Report::of(&error)).expect("JSON");
        assert_eq!(report["code"], "mfa_required");
        assert_eq!(report["remedy"], "sign_in");
        assert_eq!(report["profile"], "dev");
        assert!(
            report["message"]
                .as_str()
                .is_some_and(|m| m.contains("MFA"))
        );

        let moved = SessionError::InOtherRegion {
            target: "i-0123456789abcdef0".into(),
            region: "us-east-1".into(),
            found: vec!["eu-west-1".into()],
        };
        assert_eq!(
            (moved.code(), moved.remedy()),
            (
                Code::InOtherRegion,
                Remedy::UseRegion {
                    region: "eu-west-1".into()
                }
            )
        );
        let throttled = SessionError::Aws {
            operation: "StartSession",
            code: "ThrottlingException".into(),
            message: "Rate exceeded".into(),
        };
        assert_eq!(throttled.code(), Code::Throttled);
        assert_eq!(TunnelError::Session(throttled).remedy(), Remedy::TryAgain);
    }
}
