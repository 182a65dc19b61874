//! The OS keychain: the only place Postern keeps secrets.
//!
//! One module, typed entries per kind of secret (as aws-vault and Granted do):
//!
//! - [`AccessKeys`]: a profile's long-lived IAM keys (`postern keys add|import`), entry
//!   `keys/<profile>`;
//! - [`SessionCredentials`] of an MFA session (GetSessionToken), entry `mfa/<key>/<digest>`,
//!   keyed by the long-lived key id and the MFA device, so every role reached from those keys
//!   uses it;
//! - [`SessionCredentials`] of an assumed role, entry `role/<start>/<digest>`, keyed by the chain
//!   of profiles and roles that leads to it, so switching back to a role is one read.
//!
//! `<key>` is a digest of the key id and `<start>` one of the base profile the chain starts
//! from, so the sessions made from one profile's keys can be forgotten without touching anyone
//! else's ([`Keychain::forget_sessions_of`]). Entries of the older, flat `mfa/<digest>` and
//! `role/<digest>` form are never read again; `postern logout` removes them with the rest.
//!
//! Entries live under the keychain service of [`Paths::keychain_service`]. The store is the
//! platform's own: macOS Keychain, Windows Credential Manager, the Secret Service on Linux
//! (GNOME Keyring, KWallet, KeePassXC), through the `keyring` crate, version 3. Version 4 split
//! the crate into `keyring-core` and one young store crate per platform and asks v3 users not to
//! move to it; 3.6 is one crate with each native store behind a feature, which is what Postern
//! needs. When no store is available (a headless Linux without a Secret Service) every call
//! fails with [`KeychainError::Unavailable`], which says how to get one: Postern never falls
//! back to a file.
//!
//! The names of the entries Postern wrote are listed in `keychain.toml` in the state folder
//! (names only), so `postern logout` can find them: the `keyring` crate cannot search.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

use crate::paths::{Paths, write_atomically};

pub use crate::sensitive::Secret;

/// Long-lived IAM user keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessKeys {
    /// `AKIA…`.
    pub access_key_id: String,
    /// The secret key.
    pub secret_access_key: Secret,
}

/// Temporary credentials from STS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionCredentials {
    /// `ASIA…`.
    pub access_key_id: String,
    /// The secret key.
    pub secret_access_key: Secret,
    /// The session token.
    pub session_token: Secret,
    /// When they expire, in seconds since the Unix epoch.
    pub expires: u64,
    /// Who they belong to (the IAM user for an MFA session, the assumed-role ARN for a role).
    pub arn: Option<String>,
    /// For a role: the SourceIdentity its chain carries, so a chain resumed from it keeps it.
    pub identity: Option<String>,
}

/// How keys are written in a keychain entry (JSON): the one place a secret is serialized. The
/// text is made into a [`Secret`] at once; the record's own copies are wiped when it drops.
#[derive(Serialize, Deserialize)]
struct KeysRecord {
    access_key_id: String,
    secret_access_key: String,
}

/// How a session is written in a keychain entry (JSON); see [`KeysRecord`].
#[derive(Serialize, Deserialize)]
struct SessionRecord {
    access_key_id: String,
    secret_access_key: String,
    session_token: String,
    expires: u64,
    #[serde(default)]
    arn: Option<String>,
    #[serde(default)]
    identity: Option<String>,
}

impl Drop for KeysRecord {
    fn drop(&mut self) {
        self.secret_access_key.zeroize();
    }
}

impl Drop for SessionRecord {
    fn drop(&mut self) {
        self.secret_access_key.zeroize();
        self.session_token.zeroize();
    }
}

impl KeysRecord {
    fn of(keys: &AccessKeys) -> Self {
        Self {
            access_key_id: keys.access_key_id.clone(),
            secret_access_key: keys.secret_access_key.expose().to_owned(),
        }
    }

    fn into_keys(mut self) -> AccessKeys {
        AccessKeys {
            access_key_id: std::mem::take(&mut self.access_key_id),
            secret_access_key: Secret::take(&mut self.secret_access_key),
        }
    }
}

impl SessionRecord {
    fn of(session: &SessionCredentials) -> Self {
        Self {
            access_key_id: session.access_key_id.clone(),
            secret_access_key: session.secret_access_key.expose().to_owned(),
            session_token: session.session_token.expose().to_owned(),
            expires: session.expires,
            arn: session.arn.clone(),
            identity: session.identity.clone(),
        }
    }

    fn into_session(mut self) -> SessionCredentials {
        SessionCredentials {
            access_key_id: std::mem::take(&mut self.access_key_id),
            secret_access_key: Secret::take(&mut self.secret_access_key),
            session_token: Secret::take(&mut self.session_token),
            expires: self.expires,
            arn: self.arn.take(),
            identity: self.identity.take(),
        }
    }
}

impl SessionCredentials {
    /// When they expire.
    pub fn expiry(&self) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(self.expires)
    }
}

/// Why the keychain could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeychainError {
    /// There is no keychain to use.
    #[error(
        "no OS keychain is available ({detail}). On Linux Postern needs a Secret Service: install and unlock \
         gnome-keyring (or KeePassXC with its Secret Service on) in your desktop session, or run \
         `dbus-run-session` with `gnome-keyring-daemon --unlock`. Postern never keeps secrets in a plain file."
    )]
    Unavailable {
        /// What the platform said.
        detail: String,
    },
    /// The keychain refused or failed.
    #[error("the OS keychain failed on entry {entry}: {detail}")]
    Failed {
        /// The entry.
        entry: String,
        /// What the platform said.
        detail: String,
    },
    /// An entry holds something Postern did not write.
    #[error(
        "keychain entry {entry} of {service} is not in Postern's format: remove it (Postern removes keys/PROFILE when the profile's keys are removed) or remove it with your keychain app"
    )]
    Corrupt {
        /// The entry.
        entry: String,
        /// The service.
        service: String,
    },
    /// The entry list in the state folder could not be read or written.
    #[error("{0}")]
    Index(String),
}

/// Where secrets are stored: the OS keychain, or memory in unit tests.
pub trait SecretStore: Send + Sync {
    /// The secret called `name`, if there is one.
    fn get(&self, name: &str) -> Result<Option<Secret>, KeychainError>;
    /// Store `secret` as `name`.
    fn set(&self, name: &str, secret: &Secret) -> Result<(), KeychainError>;
    /// Remove `name`; whether it was there.
    fn delete(&self, name: &str) -> Result<bool, KeychainError>;
}

/// The platform's keychain, through the `keyring` crate.
#[derive(Debug)]
pub struct OsStore {
    service: String,
}

impl OsStore {
    /// Entries under `service`.
    pub fn new(service: &str) -> Self {
        Self {
            service: service.to_owned(),
        }
    }

    fn entry(&self, name: &str) -> Result<keyring::Entry, KeychainError> {
        keyring::Entry::new(&self.service, name).map_err(|e| map_error(name, e))
    }
}

fn map_error(name: &str, error: keyring::Error) -> KeychainError {
    use keyring::Error as E;
    match error {
        E::PlatformFailure(e) => KeychainError::Unavailable {
            detail: e.to_string(),
        },
        E::NoStorageAccess(e) => KeychainError::Unavailable {
            detail: e.to_string(),
        },
        other => KeychainError::Failed {
            entry: name.to_owned(),
            detail: other.to_string(),
        },
    }
}

impl SecretStore for OsStore {
    fn get(&self, name: &str) -> Result<Option<Secret>, KeychainError> {
        match self.entry(name)?.get_password() {
            Ok(secret) => Ok(Some(Secret::new(secret))),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(map_error(name, e)),
        }
    }

    fn set(&self, name: &str, secret: &Secret) -> Result<(), KeychainError> {
        self.entry(name)?
            .set_password(secret.expose())
            .map_err(|e| map_error(name, e))
    }

    fn delete(&self, name: &str) -> Result<bool, KeychainError> {
        match self.entry(name)?.delete_credential() {
            Ok(()) => Ok(true),
            Err(keyring::Error::NoEntry) => Ok(false),
            Err(e) => Err(map_error(name, e)),
        }
    }
}

/// Secrets in memory: sandbox mode's store (nothing of the sandbox may reach the user's
/// keychain), and unit tests' of the logic above the keychain (nothing is claimed about keychain
/// behaviour from it).
#[derive(Debug, Default)]
pub struct MemoryStore {
    entries: std::sync::Mutex<std::collections::HashMap<String, Secret>>,
}

impl SecretStore for MemoryStore {
    fn get(&self, name: &str) -> Result<Option<Secret>, KeychainError> {
        Ok(self
            .entries
            .lock()
            .map_err(|_| KeychainError::Index("memory store poisoned".into()))?
            .get(name)
            .cloned())
    }

    fn set(&self, name: &str, secret: &Secret) -> Result<(), KeychainError> {
        self.entries
            .lock()
            .map_err(|_| KeychainError::Index("memory store poisoned".into()))?
            .insert(name.to_owned(), secret.clone());
        Ok(())
    }

    fn delete(&self, name: &str) -> Result<bool, KeychainError> {
        Ok(self
            .entries
            .lock()
            .map_err(|_| KeychainError::Index("memory store poisoned".into()))?
            .remove(name)
            .is_some())
    }
}

/// The list of entry names in `keychain.toml`.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Index {
    entries: BTreeSet<String>,
}

/// Postern's keychain: typed entries over a [`SecretStore`].
#[derive(Clone)]
pub struct Keychain {
    store: Arc<dyn SecretStore>,
    paths: Paths,
}

impl fmt::Debug for Keychain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keychain")
            .field("service", &self.paths.keychain_service())
            .finish_non_exhaustive()
    }
}

/// A short digest of `parts`, for entry names that must not show what they are keyed by.
pub(crate) fn digest(parts: &[&str]) -> String {
    use sha2::{Digest as _, Sha256};
    let mut hash = Sha256::new();
    for part in parts {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    hash.finalize()[..10]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Keychain {
    /// The platform's keychain, under the service of `paths`.
    pub fn os(paths: &Paths) -> Self {
        Self::with_store(Arc::new(OsStore::new(paths.keychain_service())), paths)
    }

    /// Any store (unit tests use [`MemoryStore`]).
    pub fn with_store(store: Arc<dyn SecretStore>, paths: &Paths) -> Self {
        Self {
            store,
            paths: paths.clone(),
        }
    }

    fn read<T: for<'de> Deserialize<'de>>(&self, name: &str) -> Result<Option<T>, KeychainError> {
        let Some(secret) = self.store.get(name)? else {
            return Ok(None);
        };
        serde_json::from_str(secret.expose())
            .map(Some)
            .map_err(|_| KeychainError::Corrupt {
                entry: name.to_owned(),
                service: self.paths.keychain_service().to_owned(),
            })
    }

    fn write<T: Serialize>(&self, name: &str, record: &T) -> Result<(), KeychainError> {
        let json =
            Secret::new(
                serde_json::to_string(record).map_err(|e| KeychainError::Failed {
                    entry: name.to_owned(),
                    detail: e.to_string(),
                })?,
            );
        self.store.set(name, &json)?;
        self.change_index(|index| index.entries.insert(name.to_owned()))
    }

    fn remove(&self, name: &str) -> Result<bool, KeychainError> {
        let removed = self.store.delete(name)?;
        self.change_index(|index| index.entries.remove(name))?;
        Ok(removed)
    }

    /// Change the entry list, writing it only when it changed.
    fn change_index(&self, change: impl FnOnce(&mut Index) -> bool) -> Result<(), KeychainError> {
        let path = self.paths.keychain_index();
        let fail = |e: &dyn fmt::Display| KeychainError::Index(format!("{}: {e}", path.display()));
        self.paths.ensure_home().map_err(|e| fail(&e))?;
        self.paths
            .with_lock("keychain", || {
                let mut index = self.index()?;
                if change(&mut index) {
                    let text = toml::to_string(&index).map_err(|e| fail(&e))?;
                    write_atomically(&path, &text).map_err(|e| fail(&e))?;
                }
                Ok(())
            })
            .map_err(|e| fail(&e))?
    }

    fn index(&self) -> Result<Index, KeychainError> {
        let path = self.paths.keychain_index();
        match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text)
                .map_err(|e| KeychainError::Index(format!("{}: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Index::default()),
            Err(e) => Err(KeychainError::Index(format!("{}: {e}", path.display()))),
        }
    }

    /// The long-lived keys stored for `profile`.
    pub fn access_keys(&self, profile: &str) -> Result<Option<AccessKeys>, KeychainError> {
        Ok(self
            .read::<KeysRecord>(&format!("keys/{profile}"))?
            .map(KeysRecord::into_keys))
    }

    /// Store long-lived keys for `profile`.
    pub fn set_access_keys(&self, profile: &str, keys: &AccessKeys) -> Result<(), KeychainError> {
        self.write(&format!("keys/{profile}"), &KeysRecord::of(keys))
    }

    /// Remove `profile`'s long-lived keys; whether there were any.
    pub fn remove_access_keys(&self, profile: &str) -> Result<bool, KeychainError> {
        self.remove(&format!("keys/{profile}"))
    }

    /// The cached session called `name` (see [`Self::mfa_session_name`],
    /// [`Self::role_session_name`]).
    pub fn session(&self, name: &str) -> Result<Option<SessionCredentials>, KeychainError> {
        Ok(self
            .read::<SessionRecord>(name)?
            .map(SessionRecord::into_session))
    }

    /// Cache a session.
    pub fn set_session(
        &self,
        name: &str,
        credentials: &SessionCredentials,
    ) -> Result<(), KeychainError> {
        self.write(name, &SessionRecord::of(credentials))
    }

    /// Forget one cached session.
    pub fn remove_session(&self, name: &str) -> Result<bool, KeychainError> {
        self.remove(name)
    }

    /// The entry of the MFA session of long-lived key `access_key_id` with device `serial`.
    pub fn mfa_session_name(access_key_id: &str, serial: &str) -> String {
        format!(
            "{}{}",
            Self::mfa_group(access_key_id),
            digest(&[access_key_id, serial])
        )
    }

    /// The entry of a role assumed with `parts` (where its chain starts, and each hop), in a
    /// chain that starts from the keys of profile `base` (`None`: the environment, an instance).
    pub fn role_session_name(base: Option<&str>, parts: &[&str]) -> String {
        let group = match base {
            Some(profile) => Self::role_group(profile),
            None => format!(
                "role/{}/",
                digest(&["start", parts.first().copied().unwrap_or_default()])
            ),
        };
        format!("{group}{}", digest(parts))
    }

    /// The start of the names of the MFA sessions of key `access_key_id`.
    fn mfa_group(access_key_id: &str) -> String {
        format!("mfa/{}/", digest(&["key", access_key_id]))
    }

    /// The start of the names of the roles whose chain starts from profile `profile`.
    fn role_group(profile: &str) -> String {
        format!("role/{}/", digest(&["profile", profile]))
    }

    /// Forget the sessions made from the keys of profile `profile`: the roles whose chain starts
    /// from it, and the MFA sessions of the key ids `key_ids` (the keys it had). Everyone
    /// else's stay. Returns how many were removed.
    pub fn forget_sessions_of(
        &self,
        profile: &str,
        key_ids: &[&str],
    ) -> Result<usize, KeychainError> {
        let mut groups = vec![Self::role_group(profile)];
        groups.extend(key_ids.iter().map(|id| Self::mfa_group(id)));
        self.remove_sessions(|name| groups.iter().any(|g| name.starts_with(g.as_str())))
    }

    /// Remove every cached session (MFA sessions and roles), keeping long-lived keys; returns
    /// how many were removed.
    pub fn wipe_sessions(&self) -> Result<usize, KeychainError> {
        self.remove_sessions(|name| name.starts_with("mfa/") || name.starts_with("role/"))
    }

    /// Remove the listed entries that `chosen` picks; how many were in the keychain.
    fn remove_sessions(&self, chosen: impl Fn(&str) -> bool) -> Result<usize, KeychainError> {
        let names: Vec<String> = self
            .index()?
            .entries
            .into_iter()
            .filter(|n| chosen(n))
            .collect();
        let mut removed = 0;
        for name in &names {
            if self.store.delete(name)? {
                removed += 1;
            }
        }
        self.change_index(|index| {
            let before = index.entries.len();
            index.entries.retain(|n| !names.contains(n));
            before != index.entries.len()
        })?;
        Ok(removed)
    }

    /// The profiles with long-lived keys in the keychain. The list of names is Postern's own,
    /// but the keychain is asked too, so that without one this fails as every other use does
    /// ([`KeychainError::Unavailable`]) rather than listing what it cannot reach.
    pub fn profiles_with_keys(&self) -> Result<Vec<String>, KeychainError> {
        self.store.get("keys")?;
        Ok(self
            .index()?
            .entries
            .into_iter()
            .filter_map(|n| n.strip_prefix("keys/").map(str::to_owned))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_entries_index_and_wipe() {
        let dir = std::env::temp_dir().join(format!("postern-keychain-{}", std::process::id()));
        let paths = Paths::at(&dir);
        let keychain = Keychain::with_store(Arc::new(MemoryStore::default()), &paths);
        let keys = AccessKeys {
            access_key_id: "AKIAEXAMPLEEXAMPLE01".into(),
            secret_access_key: Secret::new("s3cr3t"),
        };
        keychain.set_access_keys("dev", &keys).expect("set");
        assert_eq!(
            keychain.access_keys("dev").expect("get"),
            Some(keys.clone())
        );
        assert!(!format!("{keys:?}").contains("s3cr3t"));
        let session = SessionCredentials {
            access_key_id: "ASIAEXAMPLEEXAMPLE01".into(),
            secret_access_key: Secret::new("x"),
            session_token: Secret::new("y"),
            expires: 10,
            arn: None,
            identity: None,
        };
        let name = Keychain::mfa_session_name("AKIAEXAMPLEEXAMPLE01", "arn:aws:iam::1:mfa/me");
        keychain.set_session(&name, &session).expect("set");
        let index = std::fs::read_to_string(paths.keychain_index()).expect("index");
        assert!(index.contains(&name) && !index.contains("s3cr3t") && !index.contains("AKIA"));
        assert_eq!(keychain.wipe_sessions().expect("wipe"), 1);
        assert_eq!(keychain.session(&name).expect("get"), None);
        assert_eq!(keychain.profiles_with_keys().expect("list"), ["dev"]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn entries_keep_their_format_and_older_sessions_still_read() {
        let dir = std::env::temp_dir().join(format!("postern-format-{}", std::process::id()));
        let paths = Paths::at(&dir);
        let store = Arc::new(MemoryStore::default());
        let keychain = Keychain::with_store(store.clone(), &paths);
        let keys = AccessKeys {
            access_key_id: "AKIAEXAMPLEEXAMPLE01".into(),
            secret_access_key: Secret::new("s3cr3t"),
        };
        keychain.set_access_keys("dev", &keys).expect("set");
        let raw = store.get("keys/dev").expect("get").expect("there");
        let json: serde_json::Value = serde_json::from_str(raw.expose()).expect("JSON");
        assert_eq!(
            json,
            serde_json::json!({"access_key_id": "AKIAEXAMPLEEXAMPLE01", "secret_access_key": "s3cr3t"})
        );
        // A session cached before `arn` and `identity` were kept.
        store
            .set(
                "old",
                &Secret::new(
                    r#"{"access_key_id":"ASIA1","secret_access_key":"x","session_token":"y","expires":5}"#,
                ),
            )
            .expect("set");
        let old = keychain.session("old").expect("read").expect("there");
        assert_eq!((old.expires, old.arn, old.identity), (5, None, None));
        assert_eq!(old.session_token.expose(), "y");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A platform without a keychain.
    struct NoStore;

    impl SecretStore for NoStore {
        fn get(&self, _: &str) -> Result<Option<Secret>, KeychainError> {
            Err(KeychainError::Unavailable {
                detail: "no Secret Service".into(),
            })
        }
        fn set(&self, _: &str, _: &Secret) -> Result<(), KeychainError> {
            self.get("").map(|_| ())
        }
        fn delete(&self, _: &str) -> Result<bool, KeychainError> {
            self.get("").map(|_| false)
        }
    }

    #[test]
    fn listing_keys_without_a_keychain_says_there_is_none() {
        let dir = std::env::temp_dir().join(format!("postern-nostore-{}", std::process::id()));
        let paths = Paths::at(&dir);
        // An entry list from a time there was a keychain: still not a listing of it.
        let with = Keychain::with_store(Arc::new(MemoryStore::default()), &paths);
        let keys = AccessKeys {
            access_key_id: "AKIAEXAMPLEEXAMPLE01".into(),
            secret_access_key: Secret::new("s3cr3t"),
        };
        with.set_access_keys("dev", &keys).expect("set");
        let without = Keychain::with_store(Arc::new(NoStore), &paths);
        let error = without.profiles_with_keys().expect_err("no keychain");
        assert!(
            matches!(error, KeychainError::Unavailable { .. }),
            "{error:?}"
        );
        assert!(error.to_string().contains("no OS keychain is available"));
        let empty = Paths::at(&dir.join("empty"));
        let error = Keychain::with_store(Arc::new(NoStore), &empty)
            .profiles_with_keys()
            .expect_err("no keychain, no list");
        assert!(
            matches!(error, KeychainError::Unavailable { .. }),
            "{error:?}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn one_profiles_sessions_are_forgotten_and_no_one_elses() {
        let dir = std::env::temp_dir().join(format!("postern-forget-{}", std::process::id()));
        let paths = Paths::at(&dir);
        let keychain = Keychain::with_store(Arc::new(MemoryStore::default()), &paths);
        let session = SessionCredentials {
            access_key_id: "ASIAEXAMPLEEXAMPLE01".into(),
            secret_access_key: Secret::new("x"),
            session_token: Secret::new("y"),
            expires: 10,
            arn: None,
            identity: None,
        };
        let serial = "arn:aws:iam::1:mfa/jane";
        let mine = [
            Keychain::mfa_session_name("AKIAMINEEXAMPLE00001", serial),
            Keychain::role_session_name(Some("me"), &["profile:me:", "dev", "arn"]),
            Keychain::role_session_name(Some("me"), &["profile:me:", "dev", "arn", "prod"]),
        ];
        let others = [
            Keychain::mfa_session_name("AKIAOTHEREXAMPLE0001", serial),
            Keychain::role_session_name(Some("ci"), &["profile:ci:", "ro", "arn"]),
            // A profile whose name starts like `me`'s: its own group.
            Keychain::role_session_name(Some("me2"), &["profile:me2:", "dev", "arn"]),
            Keychain::role_session_name(None, &["env:AKIAMINEEXAMPLE00001", "dev", "arn"]),
            // Entries of the older, flat format are left alone (and never read again).
            format!("mfa/{}", digest(&["AKIAMINEEXAMPLE00001", serial])),
            format!("role/{}", digest(&["profile:me:", "dev", "arn"])),
        ];
        for name in mine.iter().chain(&others) {
            keychain.set_session(name, &session).expect("set");
        }
        let index = std::fs::read_to_string(paths.keychain_index()).expect("index");
        assert!(
            !index.contains("AKIA") && !index.contains("jane") && !index.contains("profile:"),
            "{index}"
        );
        assert_eq!(
            keychain
                .forget_sessions_of("me", &["AKIAMINEEXAMPLE00001"])
                .expect("forget"),
            mine.len()
        );
        for name in &mine {
            assert_eq!(keychain.session(name).expect("get"), None, "{name}");
        }
        for name in &others {
            assert!(keychain.session(name).expect("get").is_some(), "{name}");
        }
        assert_eq!(
            keychain.forget_sessions_of("me", &[]).expect("again"),
            0,
            "nothing left of me"
        );
        // logout still wipes everything, old entries included.
        assert_eq!(keychain.wipe_sessions().expect("wipe"), others.len());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
