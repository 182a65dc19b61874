//! `credential_process`: run a command and read credentials from its output, as AWS specifies
//! (the command line split like a POSIX shell, no shell involved; stdout is one JSON object with
//! `Version: 1`; stderr goes to the user).

use std::time::SystemTime;

use serde::Deserialize;

use super::{AwsCredentials, CredentialError};
use crate::keychain::Secret;
use crate::profile::ini::shell_words;

/// Set in the environment of the processes Postern runs, to catch a profile whose
/// `credential_process` runs Postern on itself.
const DEPTH: &str = "POSTERN_CREDENTIAL_PROCESS_DEPTH";

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Output {
    version: u32,
    access_key_id: String,
    secret_access_key: Secret,
    #[serde(default)]
    session_token: Option<Secret>,
    #[serde(default)]
    expiration: Option<String>,
}

/// Run `command` for `profile`.
pub(crate) async fn run(profile: &str, command: &str) -> Result<AwsCredentials, CredentialError> {
    let fail = |message: String| CredentialError::CredentialProcess {
        profile: profile.to_owned(),
        message,
    };
    let depth: u32 = std::env::var(DEPTH)
        .ok()
        .and_then(|d| d.parse().ok())
        .unwrap_or(0);
    if depth >= 3 {
        return Err(fail(
            "it runs Postern, which runs it again: a credential_process must not point back at its own profile".into(),
        ));
    }
    let words = shell_words(command)
        .filter(|w| !w.is_empty())
        .ok_or_else(|| {
            fail("the command line has an unclosed quote or a trailing backslash".into())
        })?;
    let output = tokio::process::Command::new(&words[0])
        .args(&words[1..])
        .env(DEPTH, (depth + 1).to_string())
        .stdin(std::process::Stdio::inherit())
        .stderr(std::process::Stdio::inherit())
        .stdout(std::process::Stdio::piped())
        .output()
        .await
        .map_err(|e| fail(format!("cannot run {}: {e}", words[0])))?;
    if !output.status.success() {
        return Err(fail(format!(
            "{} failed ({}); its messages are above",
            words[0], output.status
        )));
    }
    // Never echo the output in an error: it holds secrets. Wiped once read.
    let stdout = zeroize::Zeroizing::new(output.stdout);
    let parsed: Output = serde_json::from_slice(&stdout).map_err(|e| {
        fail(format!(
            "its output is not the JSON AWS expects ({} at line {}, column {})",
            classify(&e),
            e.line(),
            e.column()
        ))
    })?;
    if parsed.version != 1 {
        return Err(fail(format!(
            "its output has Version {}; only 1 is defined",
            parsed.version
        )));
    }
    let expires = match parsed.expiration.as_deref() {
        None => None,
        Some(text) => Some(parse_time(text).ok_or_else(|| {
            fail("its Expiration is not an ISO 8601 time (2026-01-02T03:04:05Z)".into())
        })?),
    };
    Ok(AwsCredentials {
        access_key_id: parsed.access_key_id,
        secret_access_key: parsed.secret_access_key,
        session_token: parsed.session_token,
        expires,
        arn: None,
        identity: None,
    })
}

fn classify(error: &serde_json::Error) -> &'static str {
    use serde_json::error::Category;
    match error.classify() {
        Category::Data => "a field is missing or has the wrong type",
        Category::Syntax => "it is not valid JSON",
        Category::Eof => "it ends too early",
        Category::Io => "it could not be read",
    }
}

/// An RFC 3339 time.
pub(crate) fn parse_time(text: &str) -> Option<SystemTime> {
    let parsed =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    let secs = u64::try_from(parsed.unix_timestamp()).ok()?;
    Some(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(secs))
}

/// Now, in seconds since the Unix epoch (how Postern's state and cache keep times).
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// [`format_time`] of a time in seconds since the Unix epoch.
pub fn format_unix(secs: u64) -> String {
    format_time(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(secs))
}

/// An RFC 3339 time, UTC, whole seconds (`2026-01-02T03:04:05Z`).
pub fn format_time(at: SystemTime) -> String {
    let secs = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    time::OffsetDateTime::from_unix_timestamp(secs as i64)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}
