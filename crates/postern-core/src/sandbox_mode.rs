//! Sandbox mode: Postern on a local sandbox instead of AWS, for a newcomer without an account.
//!
//! A front end starts `postern-sandbox serve --json --exit-with-stdin --no-admin` (the desktop
//! app from its own folder), reads its start line with [`SandboxStart::parse`], and assembles
//! Postern with [`Setup::for_sandbox`]: a state folder of its own, an AWS config file there
//! that names the demo role (no secret in it), the demo user's keys in memory as the
//! environment's, and a keychain in memory. Nothing of the sandbox reaches the user's AWS
//! files, keychain or Postern's real state. Core never links the sandbox: it only reads its
//! start line.
//!
//! The demo user's MFA device is virtual; [`SandboxDemo::code_at`] is the code it shows (RFC
//! 6238 TOTP from the seed in the start line), so the window can show it, as an authenticator
//! app would.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha1::Sha1;

use crate::credentials::Environment;
use crate::keychain::MemoryStore;
use crate::paths::Paths;
use crate::postern::{LoadError, Secrets, Setup};
use crate::profile::ConfigFiles;
use crate::sensitive::{Secret, Sensitive};

/// The profile sandbox mode names the demo role with.
pub const ROLE_PROFILE: &str = "developer";

/// What `postern-sandbox serve --json` prints once it is ready.
#[derive(Debug, Deserialize)]
pub struct SandboxStart {
    /// Where every service answers: `http://127.0.0.1:<port>`.
    pub endpoint: String,
    /// The demo identity, when the scenario has one.
    pub demo: Option<SandboxDemo>,
}

/// The sandbox's demo user: its keys, its virtual MFA device, the role it may assume.
#[derive(Debug, Deserialize)]
pub struct SandboxDemo {
    /// Its access key id.
    pub access_key_id: String,
    /// Its secret key.
    pub secret_access_key: Secret,
    /// The region to use.
    pub region: String,
    /// The MFA device's serial (ARN).
    pub mfa_serial: String,
    /// The device's base32 seed.
    pub mfa_secret: Secret,
    /// The role it may assume with MFA.
    pub role_arn: String,
    /// The tags of the instances that role may open sessions on (key: allowed values): sandbox
    /// mode's tag rules, so what the window lists as reachable is what the role may open.
    #[serde(default)]
    pub reach: BTreeMap<String, Vec<String>>,
}

/// Why the sandbox's start line cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// It is not the JSON `serve --json` prints.
    #[error("the sandbox's start line is not what postern-sandbox serve --json prints: {0}")]
    StartLine(String),
    /// The endpoint is not on this machine.
    #[error("the sandbox answers on {0}, not on 127.0.0.1: refused")]
    NotLoopback(String),
    /// The scenario has no demo identity to sign in as.
    #[error("the sandbox's scenario has no demo identity to sign in as")]
    NoDemo,
    /// The seed is not base32.
    #[error("the demo MFA device's seed is not base32")]
    Seed,
    /// The state folder or its config file could not be written.
    #[error("cannot prepare sandbox mode's folder {path}: {source}")]
    Folder {
        /// The folder.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

impl SandboxStart {
    /// Read the start line.
    pub fn parse(line: &str) -> Result<Self, SandboxError> {
        let start: Self = serde_json::from_str(line.trim())
            .map_err(|e| SandboxError::StartLine(e.to_string()))?;
        let loopback = start
            .endpoint
            .strip_prefix("http://127.0.0.1:")
            .is_some_and(|port| port.parse::<u16>().is_ok());
        if !loopback {
            return Err(SandboxError::NotLoopback(start.endpoint));
        }
        Ok(start)
    }
}

impl SandboxDemo {
    /// The six-digit code the demo device shows at `unix` seconds (30-second steps).
    pub fn code_at(&self, unix: u64) -> Result<String, SandboxError> {
        let seed = data_encoding::BASE32_NOPAD
            .decode(
                self.mfa_secret
                    .expose_str()
                    .trim_end_matches('=')
                    .to_ascii_uppercase()
                    .as_bytes(),
            )
            .map_err(|_| SandboxError::Seed)?;
        let seed: Sensitive<Vec<u8>> = Sensitive::new(seed);
        totp(seed.expose(), unix / 30).ok_or(SandboxError::Seed)
    }
}

/// RFC 4226 HOTP of `counter` (TOTP is HOTP of the time step), six digits.
fn totp(key: &[u8], counter: u64) -> Option<String> {
    let mut mac = Hmac::<Sha1>::new_from_slice(key).ok()?;
    mac.update(&counter.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = usize::from(digest.last()? & 0x0f);
    let word = digest.get(offset..offset + 4)?;
    let number = u32::from_be_bytes([word[0] & 0x7f, word[1], word[2], word[3]]);
    Some(format!("{:06}", number % 1_000_000))
}

impl Setup {
    /// Postern on the sandbox that printed `start`, with its state in `folder` (a folder of
    /// sandbox mode's own: never Postern's real one).
    pub fn for_sandbox(start: &SandboxStart, folder: &Path) -> Result<Setup, LoadError> {
        let demo = start.demo.as_ref().ok_or(SandboxError::NoDemo)?;
        let failed = |source| SandboxError::Folder {
            path: folder.display().to_string(),
            source,
        };
        std::fs::create_dir_all(folder).map_err(failed)?;
        let files = ConfigFiles {
            config: folder.join("aws-config"),
            credentials: folder.join("aws-credentials"),
        };
        // The demo role, reached from the demo user's keys (the environment's) with its MFA
        // device. No secret in this file.
        let config = format!(
            "[profile {ROLE_PROFILE}]\nrole_arn = {}\ncredential_source = Environment\nmfa_serial = {}\nregion = {}\n",
            demo.role_arn, demo.mfa_serial, demo.region
        );
        std::fs::write(&files.config, config).map_err(failed)?;
        std::fs::write(&files.credentials, "").map_err(failed)?;
        let paths = Paths::at(&folder.join("postern"));
        if !demo.reach.is_empty() {
            // The role's reach as Postern's own tag rules (what an organisation's policy would
            // say for a real role).
            let tags = toml::Value::try_from(&demo.reach).map_err(|e| {
                SandboxError::StartLine(format!("its tag rules cannot be written: {e}"))
            })?;
            let rule = toml::Table::from_iter([("tags".to_owned(), tags)]);
            let inventory = toml::Table::from_iter([(
                "reach".to_owned(),
                toml::Value::Array(vec![toml::Value::Table(rule)]),
            )]);
            let settings =
                toml::Table::from_iter([("inventory".to_owned(), toml::Value::Table(inventory))]);
            std::fs::create_dir_all(paths.home()).map_err(failed)?;
            std::fs::write(paths.settings_file(), settings.to_string()).map_err(failed)?;
        }
        let environment = Environment {
            access_key_id: Some(demo.access_key_id.clone()),
            secret_access_key: Some(demo.secret_access_key.clone()),
            session_token: None,
            profile: None,
            region: Some(demo.region.clone()),
            endpoint_url: Some(start.endpoint.clone()),
            service_endpoints: HashMap::new(),
        };
        Ok(Setup {
            paths,
            files,
            environment,
            secrets: Secrets::Store(Arc::new(MemoryStore::default())),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{SandboxError, SandboxStart, totp};

    #[test]
    fn rfc_6238_test_vectors() {
        // RFC 6238 appendix B, SHA-1, truncated to six digits.
        let key = b"12345678901234567890";
        for (unix, code) in [
            (59u64, "287082"),
            (1_111_111_109, "081804"),
            (1_234_567_890, "005924"),
            (2_000_000_000, "279037"),
        ] {
            assert_eq!(totp(key, unix / 30).as_deref(), Some(code), "at {unix}");
        }
    }

    #[test]
    fn the_start_line_must_be_json_on_loopback() {
        assert!(matches!(
            SandboxStart::parse("ready"),
            Err(SandboxError::StartLine(_))
        ));
        assert!(matches!(
            SandboxStart::parse(r#"{"endpoint":"http://10.0.0.1:80","demo":null}"#),
            Err(SandboxError::NotLoopback(_))
        ));
        let start = SandboxStart::parse(r#"{"endpoint":"http://127.0.0.1:4566","demo":null}"#)
            .expect("a start line");
        assert!(start.demo.is_none());
    }
}
