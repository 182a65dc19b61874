//! Why no credentials could be had, each with what to do.

use crate::keychain::KeychainError;
use crate::mfa::PromptError;
use crate::profile::ProfileError;
use crate::settings::SettingsError;

/// Why no credentials could be had. Each says what to do.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    /// The profile is missing or broken.
    #[error(transparent)]
    Profile(#[from] ProfileError),
    /// Nothing to start from.
    #[error(
        "profile {profile} has no credentials: store its keys in the keychain, or give it a source_profile or credential_process"
    )]
    NoCredentials {
        /// The profile.
        profile: String,
    },
    /// `credential_source = Environment` without keys in the environment.
    #[error(
        "profile {profile} takes its source credentials from the environment (credential_source = Environment), but AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set"
    )]
    NoEnvironmentKeys {
        /// The profile.
        profile: String,
    },
    /// A key id without its secret.
    #[error(
        "profile {profile} has aws_access_key_id but no aws_secret_access_key ({place}): add the secret there, or store both in the keychain"
    )]
    IncompleteKeys {
        /// The profile.
        profile: String,
        /// File and line of the key id.
        place: String,
    },
    /// Something inside Postern failed (a background task).
    #[error("Postern failed inside: {0}")]
    Internal(String),
    /// No profile chosen and none to fall back on.
    #[error("no AWS credentials: choose a profile, set AWS_PROFILE, or add a [default] profile")]
    NothingConfigured,
    /// A kind of profile Postern cannot use yet.
    #[error("profile {profile} uses {what}, which Postern cannot sign in with yet: {remedy}")]
    Unsupported {
        /// The profile.
        profile: String,
        /// What it uses.
        what: &'static str,
        /// What to do instead.
        remedy: &'static str,
    },
    /// The keychain.
    #[error(transparent)]
    Keychain(#[from] KeychainError),
    /// Asking for a code.
    #[error(transparent)]
    Prompt(#[from] PromptError),
    /// AWS kept refusing the codes.
    #[error(
        "AWS did not accept the MFA codes for {serial}: check that the device is the one of this IAM user and its clock is right"
    )]
    MfaRejected {
        /// The device.
        serial: String,
    },
    /// Not allowed.
    #[error("{operation} was denied: {message}")]
    AccessDenied {
        /// The STS operation.
        operation: &'static str,
        /// AWS's message.
        message: String,
    },
    /// Credentials Postern did not make (the environment's, a credential_process's) have
    /// expired.
    #[error(
        "AWS says the credentials have expired ({message}): get new ones from where they came from (the environment, or the profile's credential_process)"
    )]
    Expired {
        /// AWS's message.
        message: String,
    },
    /// AWS refused a session Postern had cached (expired by AWS's clock, revoked). The resolver
    /// replaces it once; this is what is left when the replacement was refused too.
    #[error(
        "AWS refused a session Postern made and the one that replaced it ({message}): check this machine's clock, or forget Postern's sessions and sign in again"
    )]
    SessionRefused {
        /// The key id of the refused session (not shown).
        key_id: String,
        /// AWS's message.
        message: String,
    },
    /// AWS does not know the keys.
    #[error("AWS does not accept these keys ({message}): check them, or store new ones")]
    BadKeys {
        /// AWS's message.
        message: String,
    },
    /// Any other STS error.
    #[error("{operation} failed: {code}: {message}")]
    Sts {
        /// The operation.
        operation: &'static str,
        /// The error code.
        code: String,
        /// The message.
        message: String,
    },
    /// STS could not be reached.
    #[error("cannot reach AWS STS: {0}")]
    Network(String),
    /// A `credential_process` failed.
    #[error("credential_process of profile {profile}: {message}")]
    CredentialProcess {
        /// The profile.
        profile: String,
        /// What went wrong.
        message: String,
    },
    /// Settings or state.
    #[error(transparent)]
    Settings(#[from] SettingsError),
}
