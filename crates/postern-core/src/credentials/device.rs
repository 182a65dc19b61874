//! MFA devices: one question per device however many wait on it, in this process and across
//! processes, never the same code twice; the MFA session a code buys.

use std::sync::Arc;

use super::sts::{Sts, StsFailure};
use super::{AwsCredentials, CredentialError, MFA_ATTEMPTS, Resolver};
use crate::keychain::{Keychain, SessionCredentials};
use crate::mfa::{MfaCode, MfaRequest, PromptError, Retry};
use crate::settings::SettingsError;

/// What the resolver holds for one MFA device.
#[derive(Default)]
pub(super) struct Device {
    /// Held while someone asks for this device's code.
    pub(super) asking: Arc<tokio::sync::Mutex<()>>,
    /// The last code sent (never sent again).
    pub(super) last_code: Option<MfaCode>,
}

impl Resolver {
    /// The MFA session of `keys` (the long-lived keys of profile `owner`) with device
    /// `serial`: cached, or made with one code asked for on behalf of profile `requested`.
    pub(super) async fn mfa_session(
        &self,
        sts: &Sts,
        keys: &AwsCredentials,
        serial: &str,
        requested: &str,
        owner: Option<&str>,
        trust_cache: bool,
    ) -> Result<SessionCredentials, CredentialError> {
        let entry = Keychain::mfa_session_name(&keys.access_key_id, serial);
        if let Some(session) = self.cached(&entry, trust_cache).await? {
            return Ok(session);
        }
        let asking = self.device(&entry, |d| d.asking.clone());
        let _in_process = asking.lock().await;
        if let Some(session) = self.cached(&entry, trust_cache).await? {
            return Ok(session);
        }
        let _across_processes = self.lock_device(&entry, serial).await?;
        if let Some(session) = self.cached(&entry, trust_cache).await? {
            return Ok(session);
        }
        let user_arn = self.caller_arn(sts, keys, owner).await.ok();
        let seconds = self.settings.mfa_session_hours * 3600;
        let session = self
            .with_code(serial, requested, owner, |code| {
                let user_arn = user_arn.clone();
                async move {
                    sts.session_token(keys, serial, code.expose(), seconds, user_arn)
                        .await
                }
            })
            .await
            .map_err(|e| e.into_error("GetSessionToken"))?;
        self.store(&entry, &session).await?;
        Ok(session)
    }

    /// Ask for codes until AWS takes one (a call made by `call` with the code), for profile
    /// `profile` with the device of profile `owner`.
    pub(super) async fn with_code<F, Fut>(
        &self,
        serial: &str,
        profile: &str,
        owner: Option<&str>,
        call: F,
    ) -> Result<SessionCredentials, CodeFailure>
    where
        F: Fn(MfaCode) -> Fut,
        Fut: std::future::Future<Output = Result<SessionCredentials, StsFailure>>,
    {
        let mut request = MfaRequest {
            serial: serial.to_owned(),
            profile: profile.to_owned(),
            owner: owner.map(str::to_owned),
            retry: None,
        };
        let mut rejected = 0;
        let mut asked = 0;
        loop {
            asked += 1;
            if asked > MFA_ATTEMPTS * 3 {
                return Err(CodeFailure::Rejected(serial.to_owned()));
            }
            // Wiped as soon as it is checked; the code itself travels as an MfaCode (wiped when
            // dropped) to the STS call, where the SDK copies it into its request.
            let typed = crate::sensitive::Secret::new(self.prompt.ask(&request).await?);
            let code = match MfaCode::parse(typed.expose_str()) {
                Ok(code) => code,
                Err(_) => {
                    request.retry = Some(Retry::Malformed);
                    continue;
                }
            };
            let used = self.device(serial, |d| d.last_code.as_ref() == Some(&code));
            if used {
                request.retry = Some(Retry::AlreadyUsed);
                continue;
            }
            self.device(serial, |d| d.last_code = Some(code.clone()));
            match call(code).await {
                Ok(session) => return Ok(session),
                Err(failure) if failure.is_mfa_rejection() => {
                    rejected += 1;
                    if rejected >= MFA_ATTEMPTS {
                        return Err(CodeFailure::Rejected(serial.to_owned()));
                    }
                    request.retry = Some(Retry::Rejected);
                }
                Err(failure) => return Err(CodeFailure::Sts(failure)),
            }
        }
    }

    /// Do something with the resolver's record of a device (or any keyed lock).
    pub(super) fn device<R>(&self, key: &str, f: impl FnOnce(&mut Device) -> R) -> R {
        let mut devices = self
            .devices
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(devices.entry(key.to_owned()).or_default())
    }

    /// The lock file of a device, held until dropped (blocking calls run off the runtime).
    pub(super) async fn lock_device(
        &self,
        entry: &str,
        serial: &str,
    ) -> Result<std::fs::File, CredentialError> {
        let path = self
            .paths
            .lock_file(&entry.replace('/', "-"))
            .map_err(SettingsError::from)?;
        let try_path = path.clone();
        let file =
            tokio::task::spawn_blocking(move || -> std::io::Result<(std::fs::File, bool)> {
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .open(&try_path)?;
                let free = file.try_lock().is_ok();
                Ok((file, free))
            })
            .await
            .map_err(|e| CredentialError::Internal(e.to_string()))?;
        let io = |source| {
            CredentialError::Settings(SettingsError::Io {
                path: path.clone(),
                source,
            })
        };
        let (file, free) = file.map_err(io)?;
        if free {
            return Ok(file);
        }
        self.prompt.notice(&format!(
            "Waiting for the MFA code another Postern is asking for ({serial})…"
        ));
        tokio::task::spawn_blocking(move || file.lock().map(|()| file))
            .await
            .map_err(|e| CredentialError::Internal(e.to_string()))?
            .map_err(io)
    }
}

/// Why asking for and using a code failed.
pub(super) enum CodeFailure {
    Rejected(String),
    Prompt(PromptError),
    Sts(StsFailure),
}

impl From<PromptError> for CodeFailure {
    fn from(e: PromptError) -> Self {
        CodeFailure::Prompt(e)
    }
}

impl CodeFailure {
    pub(super) fn into_error(self, operation: &'static str) -> CredentialError {
        match self {
            CodeFailure::Rejected(serial) => CredentialError::MfaRejected { serial },
            CodeFailure::Prompt(e) => CredentialError::Prompt(e),
            CodeFailure::Sts(e) => e.into_error(operation),
        }
    }
}
