//! Where Postern keeps things: one answer for every "where does X live".
//!
//! The app identifier is `dev.postern.desktop` for release builds and `dev.postern.desktop.dev`
//! for development builds, so a developer's build never touches the installed app's state or
//! keychain entries. It names the state folder (inside the platform's config directory:
//! `~/.config` on Linux, `~/Library/Application Support` on macOS, `%APPDATA%` on Windows) and
//! the keychain service.
//!
//! `POSTERN_HOME` replaces the state folder (tests, or a second separate Postern). A Postern with
//! its own home also has its own keychain namespace (`<identifier>@<home>`), so two of them never
//! see each other's secrets.
//!
//! The folder holds only what is not secret: `settings.toml` (the user's settings),
//! `state.toml` (favourites, recents and what Postern learned), `keychain.toml` (the names of
//! Postern's keychain entries, never their contents) and `locks/`.

use std::path::{Path, PathBuf};

/// The app identifier of this build.
pub const APP_IDENTIFIER: &str = if cfg!(debug_assertions) {
    "dev.postern.desktop.dev"
} else {
    "dev.postern.desktop"
};

/// Where Postern keeps its state, and its keychain namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Paths {
    home: PathBuf,
    keychain_service: String,
}

/// The state folder cannot be found or made.
#[derive(Debug, thiserror::Error)]
pub enum PathsError {
    /// No config directory is known for this user.
    #[error("cannot tell where your config directory is: set HOME, or POSTERN_HOME")]
    NoConfigDir,
    /// The folder could not be made.
    #[error("cannot create Postern's folder {path}: {source}")]
    Create {
        /// The folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

impl Paths {
    /// `POSTERN_HOME`, or the platform's config directory joined with the app identifier.
    pub fn from_env() -> Result<Self, PathsError> {
        match std::env::var_os("POSTERN_HOME").filter(|h| !h.is_empty()) {
            Some(home) => {
                let home = PathBuf::from(home);
                let home = std::path::absolute(&home).unwrap_or(home);
                Ok(Self {
                    keychain_service: format!("{APP_IDENTIFIER}@{}", home.display()),
                    home,
                })
            }
            None => {
                let config = dirs::config_dir().ok_or(PathsError::NoConfigDir)?;
                Ok(Self {
                    home: config.join(APP_IDENTIFIER),
                    keychain_service: APP_IDENTIFIER.to_owned(),
                })
            }
        }
    }

    /// Postern's folder, `home`, with its own keychain namespace (as with `POSTERN_HOME`).
    pub fn at(home: &Path) -> Self {
        Self {
            home: home.to_owned(),
            keychain_service: format!("{APP_IDENTIFIER}@{}", home.display()),
        }
    }

    /// The folder (made on first write).
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// The keychain service every entry is filed under.
    pub fn keychain_service(&self) -> &str {
        &self.keychain_service
    }

    /// `settings.toml`: what the user sets.
    pub fn settings_file(&self) -> PathBuf {
        self.home.join("settings.toml")
    }

    /// The organisation's policy: the file `POSTERN_POLICY` names (none when it is empty; for
    /// tests and trials), else the system's: `/etc/postern/policy.toml` on Linux,
    /// `/Library/Application Support/Postern/policy.toml` on macOS,
    /// `%ProgramData%\Postern\policy.toml` on Windows. The policy is guidance the front ends
    /// enforce, not a security boundary: IAM decides what a user may do.
    pub fn policy_file(&self) -> Option<PathBuf> {
        match std::env::var_os("POSTERN_POLICY") {
            Some(path) if path.is_empty() => None,
            Some(path) => Some(PathBuf::from(path)),
            None => Some(system_policy_file()),
        }
    }

    /// `state.toml`: favourites, recents and what Postern learned.
    pub fn state_file(&self) -> PathBuf {
        self.home.join("state.toml")
    }

    /// `keychain.toml`: the names of Postern's keychain entries.
    pub fn keychain_index(&self) -> PathBuf {
        self.home.join("keychain.toml")
    }

    /// A lock file for `name`, its folder made.
    pub fn lock_file(&self, name: &str) -> Result<PathBuf, PathsError> {
        let dir = self.home.join("locks");
        create_private_dir(&dir)?;
        Ok(dir.join(format!("{name}.lock")))
    }

    /// Run `f` holding the lock file `name` (other Postern processes, and other callers in this
    /// one, wait). `f` must not wait on anything async.
    pub fn with_lock<R>(&self, name: &str, f: impl FnOnce() -> R) -> std::io::Result<R> {
        let path = self
            .lock_file(name)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)?;
        lock.lock()?;
        Ok(f())
    }

    /// Make the folder (owner-only on Unix).
    pub fn ensure_home(&self) -> Result<(), PathsError> {
        create_private_dir(&self.home)
    }
}

fn create_private_dir(dir: &Path) -> Result<(), PathsError> {
    let made = |source| PathsError::Create {
        path: dir.to_owned(),
        source,
    };
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(made)
}

/// Write `contents` to `path` whole or not at all (a temporary file renamed over it).
pub(crate) fn write_atomically(path: &Path, contents: &str) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name()
            .map_or_else(Default::default, |n| n.to_string_lossy()),
        std::process::id()
    ));
    std::fs::write(&tmp, contents)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// Where an organisation installs its policy on this platform.
fn system_policy_file() -> PathBuf {
    if cfg!(target_os = "windows") {
        let data = std::env::var_os("ProgramData").unwrap_or_else(|| "C:\\ProgramData".into());
        PathBuf::from(data).join("Postern").join("policy.toml")
    } else if cfg!(target_os = "macos") {
        PathBuf::from("/Library/Application Support/Postern/policy.toml")
    } else {
        PathBuf::from("/etc/postern/policy.toml")
    }
}
