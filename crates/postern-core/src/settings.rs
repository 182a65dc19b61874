//! Postern's own files in its state folder, as TOML: the user's [`Settings`] and the [`State`]
//! Postern keeps (favourites, recents, what it learned about roles and identities). Neither ever
//! holds a secret.
//!
//! ```toml
//! # settings.toml
//! mfa_session_hours = 12          # how long one MFA code lasts, 1 to 36 hours
//! session_name = "jdoe"           # RoleSessionName and SourceIdentity (default: your IAM name)
//!
//! [account_aliases]
//! "123456789012" = "payments-prod"
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::paths::{Paths, PathsError, write_atomically};

/// What the user sets in `settings.toml`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// How long an MFA session lasts (GetSessionToken), in hours: 1 to 36, 12 by default.
    pub mfa_session_hours: u32,
    /// The RoleSessionName and SourceIdentity; by default the IAM user's name.
    pub session_name: Option<String>,
    /// Names for account ids.
    pub account_aliases: BTreeMap<String, String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            mfa_session_hours: 12,
            session_name: None,
            account_aliases: BTreeMap::new(),
        }
    }
}

/// A settings or state file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// It could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// It is not valid TOML, or has a bad value.
    #[error("{path}: {message}Fix the file, or delete it to start from the defaults.")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What the TOML reader says (with the line).
        message: String,
    },
    /// The state folder.
    #[error(transparent)]
    Paths(#[from] PathsError),
}

fn read_toml<T: for<'de> Deserialize<'de> + Default>(path: &Path) -> Result<T, SettingsError> {
    match std::fs::read_to_string(path) {
        Ok(text) => toml::from_str(&text).map_err(|e| SettingsError::Invalid {
            path: path.to_owned(),
            message: e.to_string(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(T::default()),
        Err(source) => Err(SettingsError::Io {
            path: path.to_owned(),
            source,
        }),
    }
}

impl Settings {
    /// Read `settings.toml` (defaults when there is none).
    pub fn load(paths: &Paths) -> Result<Self, SettingsError> {
        let path = paths.settings_file();
        let settings: Settings = read_toml(&path)?;
        if !(1..=36).contains(&settings.mfa_session_hours) {
            return Err(SettingsError::Invalid {
                path,
                message: format!(
                    "mfa_session_hours is {}, but AWS allows 1 to 36 hours. ",
                    settings.mfa_session_hours
                ),
            });
        }
        Ok(settings)
    }

    /// The alias of `account`, if one is set.
    pub fn alias(&self, account: &str) -> Option<&str> {
        self.account_aliases.get(account).map(String::as_str)
    }
}

/// A profile used recently.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recent {
    /// The profile.
    pub profile: String,
    /// When, in seconds since the Unix epoch.
    pub at: u64,
}

/// What Postern keeps for itself in `state.toml`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct State {
    /// Favourite profiles, in the order they were marked.
    pub favourites: Vec<String>,
    /// Recently used profiles, newest first.
    pub recents: Vec<Recent>,
    /// Roles whose trust policy does not allow `sts:SetSourceIdentity` (warned about once).
    pub roles_without_source_identity: BTreeSet<String>,
    /// The IAM identity (ARN) behind a set of long-lived keys, by a digest of the key id.
    pub callers: BTreeMap<String, String>,
    /// The account behind a profile with keys, learned when it was first used.
    pub accounts: BTreeMap<String, String>,
    /// How far AWS's clock is ahead of this machine's (milliseconds; negative: behind), as the
    /// Date headers of its answers said, by endpoint (`aws` for AWS itself).
    pub aws_clock_offsets: BTreeMap<String, i64>,
}

/// How many recents are kept.
const RECENTS: usize = 20;

impl State {
    /// Read `state.toml` (empty when there is none).
    pub fn load(paths: &Paths) -> Result<Self, SettingsError> {
        read_toml(&paths.state_file())
    }

    /// Change the state under the state lock (other Postern processes wait), and write it.
    pub fn update<R>(
        paths: &Paths,
        change: impl FnOnce(&mut State) -> R,
    ) -> Result<R, SettingsError> {
        let path = paths.state_file();
        let io = |source| SettingsError::Io {
            path: path.clone(),
            source,
        };
        paths.ensure_home()?;
        paths
            .with_lock("state", || {
                let mut state = Self::load(paths)?;
                let before = state.clone();
                let result = change(&mut state);
                if state != before {
                    let text = toml::to_string(&state).map_err(|e| SettingsError::Invalid {
                        path: path.clone(),
                        message: e.to_string(),
                    })?;
                    write_atomically(&path, &text).map_err(io)?;
                }
                Ok(result)
            })
            .map_err(io)?
    }

    /// Note that `profile` was used at `at` (seconds since the epoch).
    pub fn used(&mut self, profile: &str, at: u64) {
        self.recents.retain(|r| r.profile != profile);
        self.recents.insert(
            0,
            Recent {
                profile: profile.to_owned(),
                at,
            },
        );
        self.recents.truncate(RECENTS);
    }

    /// Mark or unmark `profile` as a favourite; returns whether it now is one.
    pub fn toggle_favourite(&mut self, profile: &str) -> bool {
        if let Some(i) = self.favourites.iter().position(|f| f == profile) {
            self.favourites.remove(i);
            false
        } else {
            self.favourites.push(profile.to_owned());
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_bounds_and_errors_with_lines() {
        let dir = std::env::temp_dir().join(format!("postern-settings-{}", std::process::id()));
        let paths = Paths::at(&dir);
        assert_eq!(
            Settings::load(&paths).expect("defaults"),
            Settings::default()
        );
        paths.ensure_home().expect("home");
        std::fs::write(paths.settings_file(), "mfa_session_hours = 40\n").expect("write");
        let err = Settings::load(&paths).expect_err("too long").to_string();
        assert!(err.contains("1 to 36"), "{err}");
        std::fs::write(
            paths.settings_file(),
            "mfa_session_hours = 8\nsesion_name = \"x\"\n",
        )
        .expect("write");
        let err = Settings::load(&paths).expect_err("unknown key").to_string();
        assert!(err.contains("line 2"), "{err}");
        std::fs::write(
            paths.settings_file(),
            "mfa_session_hours = 8\n[account_aliases]\n\"123456789012\" = \"prod\"\n",
        )
        .expect("write");
        let settings = Settings::load(&paths).expect("valid");
        assert_eq!(settings.alias("123456789012"), Some("prod"));

        State::update(&paths, |s| {
            s.used("a", 1);
            s.used("b", 2);
            s.used("a", 3);
            assert!(s.toggle_favourite("b"));
        })
        .expect("update");
        let state = State::load(&paths).expect("load");
        let names: Vec<_> = state.recents.iter().map(|r| r.profile.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(state.favourites, ["b"]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
