//! Credentials: from a profile (or the environment) to keys AWS accepts, asking for an MFA code
//! once and caching every session in the OS keychain.
//!
//! # Precedence
//!
//! 1. An explicit profile (`--profile`, the app's chosen identity).
//! 2. Otherwise the environment: `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` (with
//!    `AWS_SESSION_TOKEN`), as the AWS CLI uses them.
//! 3. Otherwise the profile `AWS_DEFAULT_PROFILE` or `AWS_PROFILE` names (in botocore's order), or
//!    `default`.
//!
//! Within a profile, a `role_arn` is assumed with its source's credentials (a chain of
//! `source_profile`s ends at a base profile, or at `credential_source`). A base profile's
//! long-lived keys come from the keychain first (`postern keys add|import`), then the
//! credentials file; then its `credential_process`.
//!
//! # One MFA code for every role
//!
//! When the chain has an `mfa_serial` (on the requested profile, a role on the way, or the base)
//! and the base has long-lived keys, Postern calls GetSessionToken with the code once and keeps
//! that MFA session in the keychain, keyed by the key id and the device, for
//! `mfa_session_hours` (12 by default, up to 36). Every role is then assumed with the MFA
//! session, without asking again; roles are cached too and assumed again five minutes before
//! they expire. A chained role (assumed with another role's credentials) lasts at most one hour,
//! as AWS allows, and is assumed again silently when it runs out.
//!
//! Requests for the same device share one prompt: in a process through a lock per device, across
//! processes through a lock file in the state folder, and whoever gets the lock second finds the
//! session the first one stored. A code is six digits; a wrong one is asked for again; a code
//! Postern has just used is never sent again.
//!
//! RoleSessionName is the configured name (the profile's `role_session_name`, else
//! `session_name` in settings) or the IAM user's own name, and SourceIdentity is set to it, so
//! CloudTrail ties every session to the person across role hops. A role whose trust policy does
//! not allow `sts:SetSourceIdentity` is assumed without it, with one warning.

mod device;
mod environment;
mod error;
mod process;
mod provider;
mod sts;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use self::device::{CodeFailure, Device};
pub use self::environment::{Clock, Environment, SystemClock};
pub use self::error::CredentialError;
pub use self::process::{format_time, format_unix, unix_now};
pub use self::provider::ResolverProvider;
use self::sts::{AssumeRole, Sts};
use crate::aws::AwsClock;
use crate::keychain::{AccessKeys, Keychain, KeychainError, Secret, SessionCredentials};
use crate::mfa::MfaPrompt;
use crate::paths::Paths;
use crate::profile::{Base, Chain, Profile, ProfileKind, Profiles, RoleProfile};
use crate::settings::{Settings, State};

/// Credentials AWS accepts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AwsCredentials {
    /// The key id.
    pub access_key_id: String,
    /// The secret key.
    pub secret_access_key: Secret,
    /// The session token of temporary credentials.
    pub session_token: Option<Secret>,
    /// When temporary credentials expire.
    pub expires: Option<SystemTime>,
    /// Whose they are, when known (a role's ARN).
    pub arn: Option<String>,
    /// For a role Postern assumed: the name that ties its chain to the person (the
    /// SourceIdentity it asked for), which history uses to tell one's own sessions apart.
    pub identity: Option<String>,
}

impl AwsCredentials {
    /// For the AWS SDK.
    pub fn to_sdk(&self) -> aws_credential_types::Credentials {
        aws_credential_types::Credentials::new(
            &self.access_key_id,
            self.secret_access_key.expose(),
            self.session_token.as_ref().map(|t| t.expose().to_owned()),
            self.expires,
            "postern",
        )
    }

    fn from_session(session: SessionCredentials) -> Self {
        let expires = Some(session.expiry());
        Self {
            access_key_id: session.access_key_id,
            secret_access_key: session.secret_access_key,
            session_token: Some(session.session_token),
            expires,
            arn: session.arn,
            identity: session.identity,
        }
    }

    fn from_keys(keys: AccessKeys) -> Self {
        Self {
            access_key_id: keys.access_key_id,
            secret_access_key: keys.secret_access_key,
            session_token: None,
            expires: None,
            arn: None,
            identity: None,
        }
    }

    /// Whether these are long-lived keys (no session token).
    pub fn is_long_lived(&self) -> bool {
        self.session_token.is_none()
    }
}

/// Which identity to use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selection {
    /// This profile.
    Profile(String),
    /// The environment's keys, else `AWS_PROFILE`, else `default`.
    Default,
}

impl Selection {
    /// A profile when one is named, the default otherwise.
    pub fn from_option(profile: Option<&str>) -> Self {
        profile.map_or(Selection::Default, |p| Selection::Profile(p.to_owned()))
    }
}

/// Credentials with what they are for.
#[derive(Clone, Debug)]
pub struct Resolved {
    /// The credentials.
    pub credentials: AwsCredentials,
    /// The profile they came from (`None` for the environment's keys).
    pub profile: Option<String>,
    /// The region: the environment's, else the profile's (or its sources').
    pub region: Option<String>,
}

/// How long before expiry cached credentials are renewed.
const REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);
/// The longest a chained role may last (AWS's limit).
const CHAINED_ROLE_LIMIT: u32 = 3600;
/// How many rejected codes before giving up.
const MFA_ATTEMPTS: u32 = 3;

/// Turns profiles into credentials; see the module documentation.
pub struct Resolver {
    profiles: Profiles,
    keychain: Keychain,
    paths: Paths,
    settings: Settings,
    env: Environment,
    prompt: Arc<dyn MfaPrompt>,
    clock: Arc<dyn Clock>,
    devices: Mutex<HashMap<String, Device>>,
    /// Credentials this process already resolved, by profile: the SDK asks again at every
    /// websocket dial and refresh, and need not reach the keychain each time.
    resolved: Mutex<HashMap<String, AwsCredentials>>,
    /// AWS's time, by which sessions expire.
    aws_clock: AwsClock,
    /// Key ids of sessions AWS refused in this process: never used again.
    refused: Mutex<HashSet<String>>,
}

impl fmt::Debug for Resolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resolver")
            .field("profiles", &self.profiles.len())
            .field("keychain", &self.keychain)
            .finish_non_exhaustive()
    }
}

/// What the resolver learned on the way to a profile's credentials.
struct Walk {
    credentials: AwsCredentials,
    /// The MFA session used, if any: `(serial, expiry)`.
    mfa: Option<(String, SystemTime)>,
}

impl Resolver {
    /// A resolver over `profiles`, with the keychain, settings and state of `paths`.
    pub fn new(
        profiles: Profiles,
        keychain: Keychain,
        paths: Paths,
        settings: Settings,
        env: Environment,
        prompt: Arc<dyn MfaPrompt>,
    ) -> Self {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let offset = State::load(&paths)
            .ok()
            .and_then(|state| state.aws_clock_offsets.get(&clock_key(&env)).copied())
            .unwrap_or(0);
        Self {
            profiles,
            keychain,
            paths,
            settings,
            env,
            prompt,
            aws_clock: AwsClock::new(clock.clone(), offset),
            clock,
            devices: Mutex::new(HashMap::new()),
            resolved: Mutex::new(HashMap::new()),
            refused: Mutex::new(HashSet::new()),
        }
    }

    /// Use `profiles` from now on (the files were read again).
    pub fn with_profiles(mut self, profiles: Profiles) -> Self {
        self.profiles = profiles;
        self
    }

    /// Use `clock` for expiry decisions (AWS's time is learned relative to it).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.aws_clock = AwsClock::new(clock.clone(), self.aws_clock.offset_ms());
        self.clock = clock;
        self
    }

    /// AWS's time, as its answers told it; clients built for this resolver keep it up to date.
    pub fn aws_clock(&self) -> AwsClock {
        self.aws_clock.clone()
    }

    /// AWS refused the session with key id `key` that `selection` was served (expired by AWS's
    /// clock, revoked): never use it again, so that the next request gets new credentials.
    /// With `only_if_expired`, only when it has expired by AWS's clock. Returns whether new
    /// credentials can be had: not for long-lived keys or the environment's, which Postern
    /// cannot replace.
    pub fn refuse_key(&self, selection: &Selection, key: &str, only_if_expired: bool) -> bool {
        let Ok(Some(name)) = self.profile_name(selection) else {
            return false;
        };
        let mut remembered = self.remembered();
        if let Some(current) = remembered.get(&name).filter(|c| c.access_key_id == key) {
            if current.is_long_lived()
                || only_if_expired && current.expires.is_none_or(|at| at > self.aws_clock.now())
            {
                return false;
            }
            remembered.remove(&name);
        } else if only_if_expired {
            // Not what this selection is served now: nothing to judge its expiry by.
            return false;
        }
        // Otherwise it was superseded already (another request had it replaced): the retry
        // gets what is served now.
        self.refused_keys().insert(key.to_owned());
        true
    }

    /// [`Self::refuse_key`] for whatever `selection` is served now.
    fn refuse_current(&self, selection: &Selection) -> bool {
        let Ok(Some(name)) = self.profile_name(selection) else {
            return false;
        };
        let current = self
            .remembered()
            .get(&name)
            .map(|c| c.access_key_id.clone());
        current.is_some_and(|key| self.refuse_key(selection, &key, false))
    }

    fn refused_keys(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.refused
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A refused session that Postern did not make (the environment's keys) is expired
    /// credentials to get anew where they came from, not a cached session to replace.
    fn not_ours(&self, error: CredentialError) -> CredentialError {
        match error {
            CredentialError::SessionRefused { key_id, message }
                if self.env.access_key_id.as_deref() == Some(key_id.as_str()) =>
            {
                CredentialError::Expired { message }
            }
            other => other,
        }
    }

    /// Whether AWS refused the session with key id `key` in this process.
    fn is_refused(&self, key: &str) -> bool {
        self.refused_keys().contains(key)
    }

    /// The profiles.
    pub fn profiles(&self) -> &Profiles {
        &self.profiles
    }

    /// The keychain.
    pub fn keychain(&self) -> &Keychain {
        &self.keychain
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The state folder.
    pub fn paths(&self) -> &Paths {
        &self.paths
    }

    /// The environment read at start.
    pub fn environment(&self) -> &Environment {
        &self.env
    }

    /// The profile a selection means (`None`: the environment's keys).
    pub fn profile_name(&self, selection: &Selection) -> Result<Option<String>, CredentialError> {
        match selection {
            Selection::Profile(name) => Ok(Some(name.clone())),
            Selection::Default if self.env.credentials().is_some() => Ok(None),
            Selection::Default => match &self.env.profile {
                Some(name) => Ok(Some(name.clone())),
                None if self.profiles.get("default").is_some() => Ok(Some("default".into())),
                None => Err(CredentialError::NothingConfigured),
            },
        }
    }

    /// Credentials for `selection`, from cache where they are fresh.
    pub async fn credentials(&self, selection: &Selection) -> Result<Resolved, CredentialError> {
        let Some(name) = self.profile_name(selection)? else {
            let credentials = self
                .env
                .credentials()
                .ok_or(CredentialError::NothingConfigured)?;
            return Ok(Resolved {
                credentials,
                profile: None,
                region: self.env.region.clone(),
            });
        };
        let remembered = self
            .remembered()
            .get(&name)
            .filter(|c| c.expires.is_none_or(|at| self.fresh(at)))
            .filter(|c| !self.is_refused(&c.access_key_id))
            .cloned();
        let credentials = match remembered {
            Some(credentials) => credentials,
            None => {
                let walk = self.walk_retrying_expired(&name, true).await?;
                self.remembered()
                    .insert(name.clone(), walk.credentials.clone());
                walk.credentials
            }
        };
        Ok(Resolved {
            credentials,
            region: self.region(&name),
            profile: Some(name),
        })
    }

    /// Sign in for `profile`: make sure its MFA session (if it uses one) is there, asking for a
    /// code if it is not. Returns the device and when the session ends, or `None` when the
    /// profile needs no MFA.
    pub async fn login(
        &self,
        selection: &Selection,
    ) -> Result<Option<(String, SystemTime)>, CredentialError> {
        let Some(name) = self.profile_name(selection)? else {
            return Ok(None);
        };
        Ok(self.walk_retrying_expired(&name, false).await?.mfa)
    }

    /// Who the credentials of `selection` belong to: `(account, arn, user id)`.
    pub async fn whoami(
        &self,
        selection: &Selection,
    ) -> Result<(Resolved, String, String, String), CredentialError> {
        let mut refusals = 0;
        loop {
            let resolved = self.credentials(selection).await?;
            let sts = self.sts(resolved.profile.as_deref());
            match sts.caller(&resolved.credentials).await {
                Ok((account, arn, user_id)) => return Ok((resolved, account, arn, user_id)),
                Err(failure) => {
                    match failure.into_error_with("GetCallerIdentity", &resolved.credentials) {
                        CredentialError::SessionRefused { .. }
                            if refusals == 0 && self.refuse_current(selection) =>
                        {
                            refusals += 1;
                        }
                        other => return Err(self.not_ours(other)),
                    }
                }
            }
        }
    }

    /// Forget every cached session (MFA sessions and roles); long-lived keys stay.
    pub fn logout(&self) -> Result<usize, CredentialError> {
        self.remembered().clear();
        Ok(self.keychain.wipe_sessions()?)
    }

    /// Forget the cached sessions made from profile `profile`'s keys (its keys changed or
    /// went): the roles whose chain starts from it, and the MFA sessions of `old_key_id` (the
    /// keys it had in the keychain) and of the keys in its section of the files. Every other
    /// profile's sessions stay.
    pub fn forget_profile_sessions(
        &self,
        profile: &str,
        old_key_id: Option<&str>,
    ) -> Result<usize, CredentialError> {
        self.remembered().clear();
        let file_key = self
            .profiles
            .get(profile)
            .and_then(|p| p.get("aws_access_key_id"));
        let key_ids: Vec<&str> = old_key_id.into_iter().chain(file_key).collect();
        Ok(self.keychain.forget_sessions_of(profile, &key_ids)?)
    }

    fn remembered(&self) -> std::sync::MutexGuard<'_, HashMap<String, AwsCredentials>> {
        self.resolved
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The region for `profile`: the environment's, else the first one set along its chain.
    pub fn region(&self, profile: &str) -> Option<String> {
        if let Some(region) = &self.env.region {
            return Some(region.clone());
        }
        self.profiles
            .region(profile)
            .map(|(region, _)| region.to_owned())
    }

    /// The regions the user's profiles name (their own or inherited), sorted: where else an
    /// instance is looked for.
    pub fn profile_regions(&self) -> Vec<String> {
        let mut regions: Vec<String> = self
            .profiles
            .iter()
            .filter_map(|p| {
                self.profiles
                    .region(&p.name)
                    .map(|(region, _)| region.to_owned())
            })
            .collect();
        regions.sort();
        regions.dedup();
        regions
    }

    /// The endpoint of `service` (`sts`, `ssm`, `ec2`, `cloudtrail`): `AWS_ENDPOINT_URL_<SERVICE>`,
    /// else `AWS_ENDPOINT_URL`, else the profile's `services` section, else its `endpoint_url`.
    pub fn endpoint(&self, profile: Option<&str>, service: &str) -> Option<String> {
        if let Some(url) = self.env.service_endpoints.get(service) {
            return Some(url.clone());
        }
        if let Some(url) = &self.env.endpoint_url {
            return Some(url.clone());
        }
        let profile = self.profiles.get(profile?)?;
        if let Some(services) = profile.get("services")
            && let Some(url) = self.profiles.service_endpoint(services, service)
        {
            return Some(url);
        }
        profile.endpoint_url().map(str::to_owned)
    }

    fn sts(&self, profile: Option<&str>) -> Sts {
        Sts {
            clock: self.aws_clock.clone(),
            region: profile
                .and_then(|p| self.region(p))
                .or_else(|| self.env.region.clone())
                .unwrap_or_else(|| "us-east-1".into()),
            endpoint: self.endpoint(profile, "sts"),
        }
    }

    /// Whether a session expiring at `expires` has more than a few minutes left, by AWS's
    /// clock.
    fn fresh(&self, expires: SystemTime) -> bool {
        expires > self.aws_clock.now() + REFRESH_MARGIN
    }

    /// [`Self::walk`]; when AWS refuses a cached session that Postern thought good (expired
    /// by AWS's clock, revoked), that session is dropped and the walk made again: the next hop
    /// down replaces it (asking for a code only if the MFA session went too).
    async fn walk_retrying_expired(
        &self,
        name: &str,
        shortcut: bool,
    ) -> Result<Walk, CredentialError> {
        // A role and the MFA session under it may both be refused: two replacements at most,
        // so sessions AWS keeps refusing never make an endless round of codes.
        let mut replacements = 0;
        loop {
            match self.walk(name, true, shortcut).await {
                Err(CredentialError::SessionRefused { key_id, message })
                    if replacements < 2 && self.refused_keys().insert(key_id.clone()) =>
                {
                    replacements += 1;
                    tracing::info!(%message, "AWS refused a cached session; replacing it");
                    self.remembered().remove(name);
                }
                other => return other.map_err(|e| self.not_ours(e)),
            }
        }
    }

    /// Follow `name`'s chain from its base outward, using cached sessions if `trust_cache`.
    ///
    /// With `shortcut`, the walk starts at the highest role of the chain whose cached session is
    /// fresh: switching back to a role is one keychain read, and a chained role whose source role
    /// is still cached is assumed again without the base keys or the MFA session.
    async fn walk(
        &self,
        name: &str,
        trust_cache: bool,
        shortcut: bool,
    ) -> Result<Walk, CredentialError> {
        let chain = self.profiles.chain(name)?;
        // The roles from the base outward, each with its keychain entry.
        let hops: Vec<&Profile> = chain.roles.iter().rev().copied().collect();
        let entries = self.role_entries(&chain);
        let mut resumed = None;
        if shortcut && trust_cache {
            for (index, entry) in entries.iter().enumerate().rev() {
                if let Some(session) = self.cached(entry, true).await? {
                    resumed = Some((index + 1, session));
                    break;
                }
            }
        }
        let sts = self.sts(Some(name));
        let (start, mut credentials, mut identity, mfa, mut code_for) = match resumed {
            Some((start, session)) => {
                let identity = session.identity.clone();
                (
                    start,
                    AwsCredentials::from_session(session),
                    identity,
                    None,
                    None,
                )
            }
            None => {
                let (credentials, mfa, code_for) =
                    self.start_of_chain(&chain, name, &sts, trust_cache).await?;
                (0, credentials, None, mfa, code_for)
            }
        };
        for (index, (profile, entry)) in hops.iter().zip(&entries).enumerate().skip(start) {
            let Some(role) = profile.role() else {
                continue;
            };
            // One name ties the chain to the person: the SourceIdentity of every hop.
            let chain_identity = match &identity {
                Some(identity) => identity.clone(),
                None => {
                    let base = match chain.base {
                        Base::Profile(p) => Some(p),
                        _ => None,
                    };
                    let found = self.identity_name(&sts, &credentials, base).await?;
                    identity = Some(found.clone());
                    found
                }
            };
            let session_name = role
                .role_session_name
                .as_deref()
                .map_or_else(|| chain_identity.clone(), sanitize_session_name);
            let hop = Hop {
                name,
                role,
                entry,
                source: &credentials,
                session_name: &session_name,
                identity: &chain_identity,
                chained: index > 0,
                code_for: code_for.take(),
                owner: match chain.base {
                    Base::Profile(p) => Some(p.name.as_str()),
                    _ => None,
                },
            };
            let session = self.role(&sts, hop, trust_cache).await?;
            credentials = AwsCredentials::from_session(session);
        }
        self.note_use(name);
        Ok(Walk { credentials, mfa })
    }

    /// Where a chain starts: the base's credentials, turned into an MFA session when the chain
    /// has a device and the base has long-lived keys. Returns the credentials, the MFA session
    /// used (`(device, expiry)`), and the device whose code the first AssumeRole must carry when
    /// the base's credentials are temporary (they cannot call GetSessionToken).
    async fn start_of_chain(
        &self,
        chain: &Chain<'_>,
        name: &str,
        sts: &Sts,
        trust_cache: bool,
    ) -> Result<StartOfChain, CredentialError> {
        let base_profile = match chain.base {
            Base::Profile(p) => Some(p),
            _ => None,
        };
        let credentials = match chain.base {
            Base::Profile(p) => self.base_credentials(p).await?,
            Base::Environment => {
                self.env
                    .credentials()
                    .ok_or_else(|| CredentialError::NoEnvironmentKeys {
                        profile: name.to_owned(),
                    })?
            }
            Base::Ec2InstanceMetadata | Base::EcsContainer => {
                return Err(CredentialError::Unsupported {
                    profile: name.to_owned(),
                    what: "credential_source on an instance or container",
                    remedy: "run Postern on your own machine with a profile that has keys",
                });
            }
        };
        // The device: the requested profile's, else a role's on the way, else the base's.
        let serial = self
            .profiles
            .get(name)
            .and_then(Profile::mfa_serial)
            .or_else(|| chain.roles.iter().find_map(|r| r.mfa_serial()))
            .or_else(|| base_profile.and_then(Profile::mfa_serial))
            .map(str::to_owned);
        let Some(serial) = serial else {
            return Ok((credentials, None, None));
        };
        if !credentials.is_long_lived() {
            return Ok((credentials, None, Some(serial)));
        }
        let owner = base_profile.map(|p| p.name.as_str());
        let session = self
            .mfa_session(sts, &credentials, &serial, name, owner, trust_cache)
            .await?;
        let mfa = Some((serial, session.expiry()));
        Ok((AwsCredentials::from_session(session), mfa, None))
    }

    /// The keychain entries of the chain's roles, from the base outward. Each is named after
    /// everything that makes its credentials: where the chain starts (with the key id of keys
    /// in a file, so editing the file makes new entries), and every hop up to it (profile,
    /// role, external id, configured names, duration). Keys in the keychain change only
    /// through `postern keys`, which forgets the sessions of that profile (the entries are
    /// grouped by the base profile for that).
    fn role_entries(&self, chain: &Chain<'_>) -> Vec<String> {
        let base = match chain.base {
            Base::Profile(p) => Some(p.name.as_str()),
            _ => None,
        };
        let mut parts: Vec<String> = vec![match chain.base {
            Base::Profile(p) => format!(
                "profile:{}:{}",
                p.name,
                p.get("aws_access_key_id").unwrap_or_default()
            ),
            Base::Environment => format!(
                "env:{}",
                self.env.access_key_id.as_deref().unwrap_or_default()
            ),
            Base::Ec2InstanceMetadata => "ec2".into(),
            Base::EcsContainer => "ecs".into(),
        }];
        let mut entries = Vec::new();
        for (index, profile) in chain.roles.iter().rev().enumerate() {
            let Some(role) = profile.role() else {
                continue;
            };
            parts.extend([
                profile.name.clone(),
                role.role_arn.as_str().to_owned(),
                role.external_id.clone().unwrap_or_default(),
                role.role_session_name.clone().unwrap_or_default(),
                self.settings.session_name.clone().unwrap_or_default(),
                role_duration(role, index > 0).to_string(),
            ]);
            let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
            entries.push(Keychain::role_session_name(base, &refs));
        }
        entries
    }

    /// Put `name` first among the recents.
    fn note_use(&self, name: &str) {
        let offset = self.aws_clock.offset_ms();
        let key = clock_key(&self.env);
        if let Err(error) = State::update(&self.paths, |state| {
            // What was learned of AWS's clock serves the next run from its first decision.
            if offset == 0 {
                state.aws_clock_offsets.remove(&key);
            } else {
                state.aws_clock_offsets.insert(key.clone(), offset);
            }
            state.used(name, unix(self.clock.now()))
        }) {
            tracing::debug!(%error, "could not note the profile as recently used");
        }
    }

    /// A base profile's own credentials: keychain, credentials file, credential_process.
    async fn base_credentials(&self, profile: &Profile) -> Result<AwsCredentials, CredentialError> {
        let unsupported = |what, remedy| CredentialError::Unsupported {
            profile: profile.name.clone(),
            what,
            remedy,
        };
        match &profile.kind {
            ProfileKind::Sso(_) => {
                return Err(unsupported(
                    "IAM Identity Center (SSO)",
                    "sign in with `aws sso login` and use that profile with the AWS CLI for now",
                ));
            }
            ProfileKind::WebIdentity { .. } => {
                return Err(unsupported(
                    "a web identity token",
                    "use a profile with keys or a credential_process",
                ));
            }
            ProfileKind::Role(_) | ProfileKind::Base { .. } => {}
        }
        let owner = profile.name.clone();
        if let Some(keys) = self.keychain_call(move |k| k.access_keys(&owner)).await? {
            return Ok(AwsCredentials::from_keys(keys));
        }
        let (process, process_first) = match &profile.kind {
            ProfileKind::Base {
                credential_process,
                process_first,
                ..
            } => (credential_process.as_deref(), *process_first),
            _ => (None, false),
        };
        if let (Some(command), true) = (process, process_first) {
            return process::run(&profile.name, command).await;
        }
        if let (Some(id), Some(secret)) = (
            profile.get("aws_access_key_id"),
            profile.get("aws_secret_access_key"),
        ) {
            return Ok(AwsCredentials {
                access_key_id: id.to_owned(),
                secret_access_key: Secret::new(secret),
                session_token: profile
                    .get("aws_session_token")
                    .or_else(|| profile.get("aws_security_token"))
                    .map(Secret::new),
                expires: None,
                arn: None,
                identity: None,
            });
        }
        if let Some(command) = process {
            return process::run(&profile.name, command).await;
        }
        if let Some(id) = profile.settings.get("aws_access_key_id") {
            return Err(CredentialError::IncompleteKeys {
                profile: profile.name.clone(),
                place: format!("{}:{}", id.path.display(), id.line),
            });
        }
        Err(CredentialError::NoCredentials {
            profile: profile.name.clone(),
        })
    }

    /// Read a cached session that is still fresh (none when the cache is not to be trusted;
    /// an entry in another format is a miss, to be overwritten).
    async fn cached(
        &self,
        entry: &str,
        trust: bool,
    ) -> Result<Option<SessionCredentials>, KeychainError> {
        if !trust {
            return Ok(None);
        }
        let name = entry.to_owned();
        let session = match self.keychain_call(move |k| k.session(&name)).await {
            Err(KeychainError::Corrupt { .. }) => None,
            other => other?,
        };
        Ok(session.filter(|s| self.fresh(s.expiry()) && !self.is_refused(&s.access_key_id)))
    }

    /// Store a session in the keychain.
    async fn store(&self, entry: &str, session: &SessionCredentials) -> Result<(), KeychainError> {
        let (name, session) = (entry.to_owned(), session.clone());
        self.keychain_call(move |k| k.set_session(&name, &session))
            .await
    }

    /// A keychain call, off the async runtime (it is a blocking D-Bus or OS call, which may wait
    /// on an unlock dialog).
    async fn keychain_call<T: Send + 'static>(
        &self,
        call: impl FnOnce(&Keychain) -> Result<T, KeychainError> + Send + 'static,
    ) -> Result<T, KeychainError> {
        let keychain = self.keychain.clone();
        tokio::task::spawn_blocking(move || call(&keychain))
            .await
            .map_err(|e| KeychainError::Failed {
                entry: String::new(),
                detail: e.to_string(),
            })?
    }

    /// The ARN of the IAM identity behind long-lived `keys` of `profile` (cached in the state
    /// file, with the profile's account).
    async fn caller_arn(
        &self,
        sts: &Sts,
        keys: &AwsCredentials,
        profile: Option<&str>,
    ) -> Result<String, CredentialError> {
        let key = crate::keychain::digest(&[&keys.access_key_id]);
        if let Some(arn) = State::load(&self.paths)?.callers.get(&key) {
            return Ok(arn.clone());
        }
        let (account, arn, _) = sts
            .caller(keys)
            .await
            .map_err(|e| e.into_error("GetCallerIdentity"))?;
        State::update(&self.paths, |s| {
            s.callers.insert(key, arn.clone());
            if let Some(profile) = profile {
                s.accounts.insert(profile.to_owned(), account);
            }
        })?;
        Ok(arn)
    }

    /// The name that ties a chain to the person (its SourceIdentity, and RoleSessionName where a
    /// role does not set its own): `session_name` in settings, else the caller's own name.
    async fn identity_name(
        &self,
        sts: &Sts,
        credentials: &AwsCredentials,
        base: Option<&Profile>,
    ) -> Result<String, CredentialError> {
        if let Some(name) = &self.settings.session_name {
            return Ok(sanitize_session_name(name));
        }
        let arn = match &credentials.arn {
            Some(arn) => arn.clone(),
            None if credentials.is_long_lived() => {
                self.caller_arn(sts, credentials, base.map(|b| b.name.as_str()))
                    .await?
            }
            None => {
                sts.caller(credentials)
                    .await
                    .map_err(|e| e.into_error_with("GetCallerIdentity", credentials))?
                    .1
            }
        };
        let name = arn.rsplit('/').next().unwrap_or_default();
        let name = if name.is_empty() {
            base.map_or("postern", |b| b.name.as_str())
        } else {
            name
        };
        Ok(sanitize_session_name(name))
    }

    /// A role's credentials: cached, or assumed with the hop's source credentials.
    async fn role(
        &self,
        sts: &Sts,
        hop: Hop<'_>,
        trust_cache: bool,
    ) -> Result<SessionCredentials, CredentialError> {
        let Hop {
            name,
            role,
            entry,
            source,
            session_name,
            identity,
            chained,
            code_for,
            owner,
        } = hop;
        if let Some(session) = self.cached(entry, trust_cache).await? {
            return Ok(session);
        }
        let arn = role.role_arn.as_str();
        let skip_identity = State::load(&self.paths)?
            .roles_without_source_identity
            .contains(arn);
        let mut request = AssumeRole {
            role_arn: arn,
            session_name,
            source_identity: (!skip_identity).then_some(identity),
            external_id: role.external_id.as_deref(),
            duration_seconds: role_duration(role, chained),
            mfa: None,
        };
        // With a code to send, one prompt for the device across callers and processes, and
        // whoever waited finds the role the first one assumed.
        let (_in_process, _across_processes) = match &code_for {
            Some(serial) => {
                let asking = self.device(serial, |d| d.asking.clone());
                let held = asking.lock_owned().await;
                let file = self.lock_device(entry, serial).await?;
                if let Some(session) = self.cached(entry, trust_cache).await? {
                    return Ok(session);
                }
                (Some(held), Some(file))
            }
            None => (None, None),
        };
        let mut refused_identity = false;
        let mut session = loop {
            let attempt = match &code_for {
                Some(serial) => {
                    let request = &request;
                    self.with_code(serial, name, owner, |code| async move {
                        let request = AssumeRole {
                            mfa: Some((serial, code.expose())),
                            ..*request
                        };
                        sts.assume_role(source, &request).await
                    })
                    .await
                }
                None => sts
                    .assume_role(source, &request)
                    .await
                    .map_err(CodeFailure::Sts),
            };
            match attempt {
                Ok(session) => break session,
                Err(CodeFailure::Sts(failure))
                    if request.source_identity.is_some()
                        && failure.is_source_identity_refusal() =>
                {
                    refused_identity = true;
                    request.source_identity = None;
                }
                // The source was a role already (temporary keys from a process or the
                // environment): AWS allows a chained role one hour.
                Err(CodeFailure::Sts(failure))
                    if request.duration_seconds > CHAINED_ROLE_LIMIT
                        && failure.is_chain_limit() =>
                {
                    request.duration_seconds = CHAINED_ROLE_LIMIT;
                }
                Err(CodeFailure::Sts(failure)) => {
                    return Err(failure.into_error_with("AssumeRole", source));
                }
                Err(failure) => return Err(failure.into_error("AssumeRole")),
            }
        };
        if refused_identity {
            tracing::warn!(
                "role {arn} does not allow sts:SetSourceIdentity in its trust policy: \
                 assumed without a source identity (CloudTrail will not tie its sessions to you \
                 across role hops; ask its admins to allow it)"
            );
            State::update(&self.paths, |s| {
                s.roles_without_source_identity.insert(arn.to_owned())
            })?;
        }
        session.identity = Some(identity.to_owned());
        self.store(entry, &session).await?;
        Ok(session)
    }
}

/// Whose clock the offset in `state.toml` is of: the endpoint the environment points at (the
/// sandbox), else AWS.
fn clock_key(env: &Environment) -> String {
    env.service_endpoints
        .get("sts")
        .or(env.endpoint_url.as_ref())
        .cloned()
        .unwrap_or_else(|| "aws".into())
}

/// How long a role is asked for: its `duration_seconds` (an hour by default), at most an hour
/// when it is chained from another role.
fn role_duration(role: &RoleProfile, chained: bool) -> u32 {
    let configured = role.duration_seconds.unwrap_or(3600);
    if chained {
        configured.min(CHAINED_ROLE_LIMIT)
    } else {
        configured
    }
}

/// What [`Resolver::start_of_chain`] finds: credentials, the MFA session used (device and
/// expiry), and the device whose code the first AssumeRole must carry.
type StartOfChain = (AwsCredentials, Option<(String, SystemTime)>, Option<String>);

/// One role on the way to a profile's credentials.
struct Hop<'a> {
    /// The profile the user asked for.
    name: &'a str,
    /// The role.
    role: &'a RoleProfile,
    /// Its keychain entry.
    entry: &'a str,
    /// The credentials that assume it.
    source: &'a AwsCredentials,
    /// RoleSessionName.
    session_name: &'a str,
    /// SourceIdentity: the same for every hop of the chain.
    identity: &'a str,
    /// Whether `source` is itself a role's (a chain: one hour at most).
    chained: bool,
    /// The MFA device whose code this AssumeRole must carry (temporary source credentials).
    code_for: Option<String>,
    /// The profile whose keys start the chain (named when asking for the code).
    owner: Option<&'a str>,
}

fn unix(at: SystemTime) -> u64 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A RoleSessionName and SourceIdentity: `[\w+=,.@-]`, 2 to 64 characters.
fn sanitize_session_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_+=,.@-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect();
    while out.len() < 2 {
        out.push('-');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_names_are_what_sts_accepts() {
        assert_eq!(
            sanitize_session_name("jane.doe@example.com"),
            "jane.doe@example.com"
        );
        assert_eq!(sanitize_session_name("Jane Doe"), "Jane-Doe");
        assert_eq!(sanitize_session_name("x"), "x-");
        assert_eq!(sanitize_session_name(&"a".repeat(80)).len(), 64);
    }
}
