//! Postern's own files in its state folder, as TOML: the user's [`Settings`] and the [`State`]
//! Postern keeps (favourites, recents, what it learned about roles and identities). Neither ever
//! holds a secret.
//!
//! Settings come in layers: the built-in default, then the user's `settings.toml`, then the
//! organisation's policy (`/etc/postern/policy.toml`, or the file `POSTERN_POLICY` names; same
//! keys). A key the policy sets is *managed*: the user's value for it is ignored, and
//! [`Settings::source`] says so, for the front ends to show.
//!
//! ```toml
//! # settings.toml
//! mfa_session_hours = 12          # how long one MFA code lasts, 1 to 36 hours
//! session_name = "jdoe"           # RoleSessionName and SourceIdentity (default: your IAM name)
//!
//! [account_aliases]
//! "123456789012" = "payments-prod"
//!
//! [inventory]
//! regions = ["eu-west-1", "us-east-1"]   # or "all"; default: the regions of your profiles
//! identities = ["dev", "prod-admin"]     # profiles in the fleet view; default: the active one
//!
//! [[inventory.reach]]                    # tag rules: see the `reach` module
//! tags = { team = ["payments", "core"] }
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::paths::{Paths, PathsError, write_atomically};
use crate::reach::{RawRule, Reach, line_and_column};

/// Where a setting's value came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// Postern's built-in default.
    Default,
    /// The user's `settings.toml`.
    User,
    /// The organisation's policy: managed, the user's value is ignored.
    Policy,
}

/// Which regions the inventory covers.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum Regions {
    /// The regions named in the user's profiles (and the active region).
    #[default]
    OfProfiles,
    /// Every region DescribeRegions returns for the account.
    All,
    /// These.
    Listed(Vec<String>),
}

/// The `[inventory]` settings.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct InventorySettings {
    /// The regions of the fleet view.
    pub regions: Regions,
    /// The profiles of the fleet view (empty: the active identity alone).
    pub identities: Vec<String>,
    /// The tag rules.
    pub reach: Reach,
}

/// The settings in force: every layer applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// How long an MFA session lasts (GetSessionToken), in hours: 1 to 36, 12 by default.
    pub mfa_session_hours: u32,
    /// The RoleSessionName and SourceIdentity; by default the IAM user's name.
    pub session_name: Option<String>,
    /// Names for account ids.
    pub account_aliases: BTreeMap<String, String>,
    /// What the inventory lists.
    pub inventory: InventorySettings,
    sources: BTreeMap<&'static str, Source>,
    overridden: Vec<&'static str>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            mfa_session_hours: 12,
            session_name: None,
            account_aliases: BTreeMap::new(),
            inventory: InventorySettings::default(),
            sources: BTreeMap::new(),
            overridden: Vec::new(),
        }
    }
}

/// Every setting's key, as written in the files (dotted for tables).
pub const KEYS: &[&str] = &[
    "mfa_session_hours",
    "session_name",
    "account_aliases",
    "inventory.regions",
    "inventory.identities",
    "inventory.reach",
];

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

fn read_text(path: &Path) -> Result<Option<String>, SettingsError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(SettingsError::Io {
            path: path.to_owned(),
            source,
        }),
    }
}

fn read_toml<T: for<'de> Deserialize<'de> + Default>(path: &Path) -> Result<T, SettingsError> {
    match read_text(path)? {
        Some(text) => toml::from_str(&text).map_err(|e| SettingsError::Invalid {
            path: path.to_owned(),
            message: e.to_string(),
        }),
        None => Ok(T::default()),
    }
}

/// One layer's file, as written: every key optional, values with their places.
#[derive(Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Layer {
    mfa_session_hours: Option<Spanned<u32>>,
    session_name: Option<String>,
    account_aliases: Option<BTreeMap<String, String>>,
    inventory: LayerInventory,
}

#[derive(Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct LayerInventory {
    regions: Option<Spanned<toml::Value>>,
    identities: Option<Vec<String>>,
    reach: Option<Vec<RawRule>>,
}

/// A layer read and checked: each key it sets, with its value.
#[derive(Default)]
struct Values {
    mfa_session_hours: Option<u32>,
    session_name: Option<String>,
    account_aliases: Option<BTreeMap<String, String>>,
    regions: Option<Regions>,
    identities: Option<Vec<String>>,
    reach: Option<Reach>,
}

impl Values {
    fn read(path: &Path, text: &str) -> Result<Self, SettingsError> {
        let invalid = |offset: usize, message: String| {
            let (line, column) = line_and_column(text, offset);
            SettingsError::Invalid {
                path: path.to_owned(),
                message: format!("line {line}, column {column}: {message} "),
            }
        };
        let layer: Layer = toml::from_str(text).map_err(|e| SettingsError::Invalid {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        let mfa_session_hours = match layer.mfa_session_hours {
            Some(hours) if !(1..=36).contains(hours.get_ref()) => {
                return Err(invalid(
                    hours.span().start,
                    format!(
                        "mfa_session_hours is {}, but AWS allows 1 to 36 hours.",
                        hours.get_ref()
                    ),
                ));
            }
            hours => hours.map(Spanned::into_inner),
        };
        let regions = match layer.inventory.regions {
            None => None,
            Some(value) => Some(match value.get_ref() {
                toml::Value::String(all) if all == "all" => Regions::All,
                toml::Value::Array(items)
                    if !items.is_empty()
                        && items.iter().all(|i| i.as_str().is_some_and(is_region)) =>
                {
                    Regions::Listed(
                        items
                            .iter()
                            .filter_map(|i| i.as_str().map(str::to_owned))
                            .collect(),
                    )
                }
                _ => {
                    return Err(invalid(
                        value.span().start,
                        "inventory.regions must be \"all\" or a list of region names like \
                         [\"eu-west-1\", \"us-east-1\"]."
                            .into(),
                    ));
                }
            }),
        };
        let reach = layer
            .inventory
            .reach
            .map(|raw| Reach::from_raw(path, text, &raw));
        Ok(Self {
            mfa_session_hours,
            session_name: layer.session_name,
            account_aliases: layer.account_aliases,
            regions,
            identities: layer.inventory.identities,
            reach,
        })
    }

    fn keys(&self) -> Vec<&'static str> {
        let set = [
            self.mfa_session_hours.is_some(),
            self.session_name.is_some(),
            self.account_aliases.is_some(),
            self.regions.is_some(),
            self.identities.is_some(),
            self.reach.is_some(),
        ];
        KEYS.iter()
            .zip(set)
            .filter_map(|(key, set)| set.then_some(*key))
            .collect()
    }
}

/// Whether `name` looks like a region name (`eu-west-1`, `us-gov-east-1`).
fn is_region(name: &str) -> bool {
    let parts: Vec<&str> = name.split('-').collect();
    parts.len() >= 3
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
        && parts
            .last()
            .is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit()))
}

impl Settings {
    /// Read `settings.toml` and the policy (defaults where neither says).
    pub fn load(paths: &Paths) -> Result<Self, SettingsError> {
        let user_path = paths.settings_file();
        let user = read_text(&user_path)?;
        let policy = match paths.policy_file() {
            Some(path) => read_text(&path)?.map(|text| (path, text)),
            None => None,
        };
        Self::layered(
            user.as_deref().map(|text| (user_path.as_path(), text)),
            policy
                .as_ref()
                .map(|(path, text)| (path.as_path(), text.as_str())),
        )
    }

    /// The settings from the user's file and the policy's, each `(path, text)`.
    pub fn layered(
        user: Option<(&Path, &str)>,
        policy: Option<(&Path, &str)>,
    ) -> Result<Self, SettingsError> {
        let user = match user {
            Some((path, text)) => Values::read(path, text)?,
            None => Values::default(),
        };
        let policy = match policy {
            Some((path, text)) => Values::read(path, text)?,
            None => Values::default(),
        };
        let mut settings = Settings::default();
        for key in user.keys() {
            settings.sources.insert(key, Source::User);
        }
        let managed = policy.keys();
        settings.overridden = user
            .keys()
            .into_iter()
            .filter(|k| managed.contains(k))
            .collect();
        for key in managed {
            settings.sources.insert(key, Source::Policy);
        }
        for layer in [user, policy] {
            if let Some(v) = layer.mfa_session_hours {
                settings.mfa_session_hours = v;
            }
            if let Some(v) = layer.session_name {
                settings.session_name = Some(v);
            }
            if let Some(v) = layer.account_aliases {
                settings.account_aliases = v;
            }
            if let Some(v) = layer.regions {
                settings.inventory.regions = v;
            }
            if let Some(v) = layer.identities {
                settings.inventory.identities = v;
            }
            if let Some(v) = layer.reach {
                settings.inventory.reach = v;
            }
        }
        Ok(settings)
    }

    /// Where the value of `key` (one of [`KEYS`]) came from.
    pub fn source(&self, key: &str) -> Source {
        self.sources.get(key).copied().unwrap_or(Source::Default)
    }

    /// Whether the policy manages `key`.
    pub fn is_managed(&self, key: &str) -> bool {
        self.source(key) == Source::Policy
    }

    /// The keys the user set but the policy manages (the user's values are ignored).
    pub fn overridden(&self) -> &[&'static str] {
        &self.overridden
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
    /// When StartSession last refused an identity an instance (seconds since the epoch), by
    /// identity (profile, or `environment`) and instance id; cleared when a session opens.
    pub denied_sessions: BTreeMap<String, BTreeMap<String, u64>>,
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

    /// Remember StartSession's answer for `identity` on `instance`: refused at `at`, or not.
    pub fn session_answer(&mut self, identity: &str, instance: &str, refused_at: Option<u64>) {
        match refused_at {
            Some(at) => {
                self.denied_sessions
                    .entry(identity.to_owned())
                    .or_default()
                    .insert(instance.to_owned(), at);
            }
            None => {
                if let Some(instances) = self.denied_sessions.get_mut(identity) {
                    instances.remove(instance);
                    if instances.is_empty() {
                        self.denied_sessions.remove(identity);
                    }
                }
            }
        }
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

    #[test]
    fn the_policy_manages_what_it_sets_and_the_user_the_rest() {
        let user_path = Path::new("/home/jo/.config/postern/settings.toml");
        let policy_path = Path::new("/etc/postern/policy.toml");
        let user = r#"
mfa_session_hours = 8
[inventory]
regions = ["eu-west-1"]
identities = ["dev"]
[[inventory.reach]]
tags = {}
"#;
        let policy = r#"
[inventory]
regions = "all"
[[inventory.reach]]
tags = { team = "payments" }
"#;
        let settings =
            Settings::layered(Some((user_path, user)), Some((policy_path, policy))).expect("ok");
        assert_eq!(settings.mfa_session_hours, 8);
        assert_eq!(settings.source("mfa_session_hours"), Source::User);
        assert_eq!(settings.source("session_name"), Source::Default);
        assert_eq!(settings.inventory.regions, Regions::All);
        assert!(settings.is_managed("inventory.regions"));
        assert_eq!(settings.inventory.identities, ["dev"]);
        assert!(settings.is_managed("inventory.reach"));
        assert_eq!(
            settings.overridden(),
            ["inventory.regions", "inventory.reach"]
        );
        // The user's rule (everything) is ignored: the policy's applies.
        let who = crate::reach::Who {
            account: "111111111111",
            role: Some("dev"),
        };
        assert_eq!(
            settings.inventory.reach.judge(&who, &BTreeMap::new()),
            crate::reach::TagVerdict::Outside
        );

        // A broken rule in the policy: nothing within reach, the error names the policy file.
        let broken = "[[inventory.reach]]\ntags = { team = 7 }\n";
        let settings =
            Settings::layered(Some((user_path, user)), Some((policy_path, broken))).expect("ok");
        assert_eq!(
            settings.inventory.reach.judge(&who, &BTreeMap::new()),
            crate::reach::TagVerdict::RulesInvalid
        );
        let error = settings.inventory.reach.errors()[0].to_string();
        assert!(
            error.starts_with("/etc/postern/policy.toml:2:10: "),
            "{error}"
        );

        // Bad regions are an error with the place.
        let err = Settings::layered(Some((user_path, "[inventory]\nregions = \"eu\"\n")), None)
            .expect_err("bad regions")
            .to_string();
        assert!(err.contains("line 2, column 11"), "{err}");
        assert!(err.contains("\"all\" or a list of region names"), "{err}");
        let err = Settings::layered(Some((user_path, "[inventory]\nregions = []\n")), None)
            .expect_err("no regions")
            .to_string();
        assert!(err.contains("region names"), "{err}");
    }
}
