//! The composition root: Postern's folder, the AWS config files, settings, the OS keychain and
//! the environment, assembled into a [`Resolver`] in one place. The command line, the desktop
//! and the tests' support code all start here; nothing assembles core by hand twice.
//!
//! Inventory and history run on the resolver ([`crate::inventory::listing`],
//! [`crate::history::gather`]); sessions and tunnels on the clients it makes
//! ([`crate::aws::AwsAccess`]), and live in its [`Registry`] once open.

use std::path::PathBuf;
use std::sync::Arc;

use crate::credentials::{Environment, Resolver};
use crate::keychain::{Keychain, SecretStore};
use crate::mfa::MfaPrompt;
use crate::paths::{Paths, PathsError};
use crate::profile::{ConfigFiles, Profiles};
use crate::registry::Registry;
use crate::settings::{Settings, SettingsError};

/// Where Postern reads from: its own folder, the AWS config files and the environment.
#[derive(Clone, Debug)]
pub struct Setup {
    /// Postern's folder (state, settings, caches, journal; never a secret).
    pub paths: Paths,
    /// The AWS config and credentials files.
    pub files: ConfigFiles,
    /// The AWS variables of the environment.
    pub environment: Environment,
    /// Where secrets are kept.
    pub secrets: Secrets,
}

/// Where Postern keeps keys and sessions.
#[derive(Clone)]
pub enum Secrets {
    /// The OS keychain (Secret Service, Keychain Services, Credential Manager).
    Os,
    /// Another store: memory, in sandbox mode, where nothing may reach the user's keychain.
    Store(Arc<dyn SecretStore>),
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Os => "Secrets::Os",
            Self::Store(_) => "Secrets::Store",
        })
    }
}

/// Why Postern could not start.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// No folder for Postern's state.
    #[error(transparent)]
    Paths(#[from] PathsError),
    /// The AWS config files could not be read.
    #[error("cannot read {config} or {credentials}: {source}")]
    Profiles {
        /// The config file.
        config: String,
        /// The credentials file.
        credentials: String,
        /// Why.
        source: std::io::Error,
    },
    /// Postern's settings (or the organisation's policy) could not be read.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// Sandbox mode could not be set up.
    #[error(transparent)]
    Sandbox(#[from] crate::sandbox_mode::SandboxError),
}

impl Setup {
    /// What this process sees: `POSTERN_HOME` or the platform's folder, `AWS_CONFIG_FILE` and
    /// `AWS_SHARED_CREDENTIALS_FILE` or `~/.aws`, and the AWS variables.
    pub fn from_process() -> Result<Self, LoadError> {
        Ok(Self {
            paths: Paths::from_env()?,
            files: ConfigFiles::from_env(),
            environment: Environment::from_process(),
            secrets: Secrets::Os,
        })
    }

    /// Read the profiles and settings (and policy) now, and make the resolver over them, the OS
    /// keychain and `prompt` for MFA codes.
    pub fn resolver(&self, prompt: Arc<dyn MfaPrompt>) -> Result<Resolver, LoadError> {
        let profiles = Profiles::load(&self.files).map_err(|source| LoadError::Profiles {
            config: self.files.config.display().to_string(),
            credentials: self.files.credentials.display().to_string(),
            source,
        })?;
        let settings = Settings::load(&self.paths)?;
        let keychain = match &self.secrets {
            Secrets::Os => Keychain::os(&self.paths),
            Secrets::Store(store) => Keychain::with_store(store.clone(), &self.paths),
        };
        Ok(Resolver::new(
            profiles,
            keychain,
            self.paths.clone(),
            settings,
            self.environment.clone(),
            prompt,
        ))
    }
}

impl Setup {
    /// The files whose change calls for a reload.
    fn watched(&self) -> Vec<PathBuf> {
        let mut files = vec![
            self.files.config.clone(),
            self.files.credentials.clone(),
            self.paths.settings_file(),
        ];
        files.extend(self.paths.policy_file());
        files
    }

    /// What the watched files hold now: a digest of each (a missing file is its own state).
    /// They are small; a digest sees an edit that keeps the length within one timestamp tick.
    fn fingerprint(&self) -> Vec<Option<[u8; 32]>> {
        use sha2::{Digest as _, Sha256};
        self.watched()
            .iter()
            .map(|path| {
                std::fs::read(path)
                    .ok()
                    .map(|bytes| Sha256::digest(&bytes).into())
            })
            .collect()
    }
}

/// Postern, assembled: what a front end holds for its life.
pub struct Postern {
    setup: Setup,
    prompt: Arc<dyn MfaPrompt>,
    resolver: Arc<Resolver>,
    seen: Vec<Option<[u8; 32]>>,
    registry: Registry,
}

impl Postern {
    /// Postern as this process sees it ([`Setup::from_process`]), asking `prompt` for codes.
    pub fn load(prompt: Arc<dyn MfaPrompt>) -> Result<Self, LoadError> {
        Self::at(Setup::from_process()?, prompt)
    }

    /// Postern over `setup`.
    pub fn at(setup: Setup, prompt: Arc<dyn MfaPrompt>) -> Result<Self, LoadError> {
        let seen = setup.fingerprint();
        let resolver = Arc::new(setup.resolver(prompt.clone())?);
        Ok(Self {
            setup,
            prompt,
            resolver,
            seen,
            registry: Registry::new(),
        })
    }

    /// The resolver: credentials, profiles, settings, Postern's folder.
    pub fn resolver(&self) -> &Arc<Resolver> {
        &self.resolver
    }

    /// Where it reads from.
    pub fn setup(&self) -> &Setup {
        &self.setup
    }

    /// The live sessions and tunnels (they outlive reloads).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Reload if the AWS files, `settings.toml` or the policy changed since they were last
    /// read; whether it did. A front end calls this when its window gains focus, or on a timer.
    pub fn reload_if_changed(&mut self) -> Result<bool, LoadError> {
        let now = self.setup.fingerprint();
        if now == self.seen {
            return Ok(false);
        }
        // `reload` marks them seen even when they do not load: the error is said once, not on
        // every call.
        self.reload()?;
        Ok(true)
    }

    /// Read the profiles and settings again (their files changed). What already runs keeps the
    /// resolver it started with; what starts from now on gets the new one. On an error the old
    /// one stays.
    pub fn reload(&mut self) -> Result<(), LoadError> {
        self.seen = self.setup.fingerprint();
        self.resolver = Arc::new(self.setup.resolver(self.prompt.clone())?);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reload_reads_changed_files_and_keeps_the_old_on_errors() {
        let dir = std::env::temp_dir().join(format!("postern-root-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("dir");
        let setup = Setup {
            paths: Paths::at(&dir.join("postern")),
            files: ConfigFiles {
                config: dir.join("config"),
                credentials: dir.join("credentials"),
            },
            environment: Environment::default(),
            secrets: Secrets::Os,
        };
        std::fs::write(&setup.files.config, "[profile a]\nregion = eu-west-1\n").expect("config");
        let mut postern = Postern::at(setup, Arc::new(crate::mfa::NoPrompt)).expect("loads");
        assert!(postern.resolver().profiles().get("a").is_some());
        assert!(!postern.reload_if_changed().expect("nothing to read"));
        std::fs::write(
            &postern.setup().files.config,
            "[profile a]\n[profile b]\nregion = us-east-1\n",
        )
        .expect("config");
        assert!(
            postern.reload_if_changed().expect("reloads"),
            "a longer file is a change"
        );
        assert!(postern.resolver().profiles().get("b").is_some());
        postern.reload().expect("reloads");
        assert!(postern.resolver().profiles().get("b").is_some());
        std::fs::create_dir_all(dir.join("postern")).expect("home");
        std::fs::write(dir.join("postern").join("settings.toml"), "[nonsense\n").expect("settings");
        assert!(postern.reload_if_changed().is_err());
        assert!(
            !postern.reload_if_changed().expect("said once"),
            "a broken file is reported once, not on every call"
        );
        assert!(
            postern.resolver().profiles().get("b").is_some(),
            "the old one stays"
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}
