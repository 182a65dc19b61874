//! AWS profiles: `~/.aws/config` and `~/.aws/credentials`, read in two stages.
//!
//! Stage one ([`ini`]) reads each file as written, the way the AWS CLI reads it. Stage two
//! ([`Profiles::from_files`]) turns sections into [`Profile`]s as the AWS CLI does
//! (`[profile NAME]` and `[default]` in the config file, bare names in the credentials file,
//! whose keys win where both files name a profile) and resolves what each profile is: a role
//! to assume from another profile, static keys, a `credential_process`, an SSO or web-identity
//! profile. Nothing here touches the network or the keychain; [`crate::credentials`] does.
//!
//! Problems never stop the reading: each is a [`Problem`] that names the file, the line and what
//! to do, and everything else stays usable. Postern never writes these files.
//!
//! Where parsers disagree, Postern follows the AWS CLI (botocore), checked by a peer test that
//! runs botocore on the same fixtures. The Rust SDK's `aws-config` (its parser is in
//! `aws-runtime` 1.10, `src/env_config/`, read for this) differs in these ways:
//!
//! - a syntax error in either file makes it drop both files (it warns and goes on as if there were
//!   no profile); botocore refuses the file; Postern reports the line and keeps the rest;
//! - `[profile default]` always beats `[default]`; botocore keeps whichever comes last (Postern
//!   too, with a warning);
//! - it strips an inline ` # comment` from values; botocore and Postern keep it (with a warning);
//! - it refuses `key: value`, which botocore and Postern accept;
//! - it drops `[DEFAULT]`, whose keys botocore and Postern give to every section;
//! - it merges duplicate sections and keys (last wins), which botocore refuses;
//! - it ignores `[profile x]` in the credentials file, which botocore names `profile x`.

pub mod add;
pub mod ini;
mod names;
mod problem;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

pub use ini::Value;
use names::{KNOWN_KEYS, nearest_known, settings_of, value_warnings};
pub use names::{REDACTED, is_secret_key};
pub use problem::{Problem, ProblemKind, Severity};

/// Where the two files are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigFiles {
    /// `~/.aws/config` or `AWS_CONFIG_FILE`.
    pub config: PathBuf,
    /// `~/.aws/credentials` or `AWS_SHARED_CREDENTIALS_FILE`.
    pub credentials: PathBuf,
}

impl ConfigFiles {
    /// The files the AWS CLI would read: `AWS_CONFIG_FILE` and `AWS_SHARED_CREDENTIALS_FILE`
    /// (with `~` and `$VAR` expanded, as the CLI does), else `~/.aws/config` and
    /// `~/.aws/credentials`.
    pub fn from_env() -> Self {
        let pick = |var: &str, default: &str| match std::env::var(var) {
            Ok(value) if !value.is_empty() => PathBuf::from(expand_path(&value)),
            _ => PathBuf::from(expand_path(default)),
        };
        Self {
            config: pick("AWS_CONFIG_FILE", "~/.aws/config"),
            credentials: pick("AWS_SHARED_CREDENTIALS_FILE", "~/.aws/credentials"),
        }
    }
}

/// `$VAR`, `${VAR}` and a leading `~`, as Python's `expandvars` and `expanduser` do (unknown
/// variables are left as written).
fn expand_path(path: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let (name, used) = if let Some(braced) = after.strip_prefix('{') {
            match braced.find('}') {
                Some(end) => (&braced[..end], end + 2),
                None => ("", 0),
            }
        } else {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            (&after[..end], end)
        };
        match std::env::var(name) {
            Ok(value) if !name.is_empty() => {
                out.push_str(&value);
                rest = &after[used..];
            }
            _ => {
                out.push('$');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    if (out == "~" || out.starts_with("~/"))
        && let Some(home) = std::env::var_os("HOME")
    {
        return format!("{}{}", home.to_string_lossy(), &out[1..]);
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Profiles

/// A key of a profile as it ended up after both files were read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Setting {
    /// The value.
    pub value: Value,
    /// The file it came from.
    pub path: PathBuf,
    /// Its line.
    pub line: usize,
}

/// A role ARN, checked.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RoleArn {
    arn: String,
    account: String,
    name: String,
}

impl RoleArn {
    /// Parse `arn:<partition>:iam::<12 digits>:role/<path/>name`.
    pub fn parse(arn: &str) -> Option<Self> {
        let mut parts = arn.splitn(6, ':');
        let (Some("arn"), Some(partition), Some("iam"), Some(""), Some(account), Some(resource)) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return None;
        };
        let path_and_name = resource.strip_prefix("role/")?;
        let name = path_and_name.rsplit('/').next()?;
        let valid_name = !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c));
        (partition.starts_with("aws")
            && account.len() == 12
            && account.bytes().all(|b| b.is_ascii_digit())
            && valid_name)
            .then(|| Self {
                arn: arn.to_owned(),
                account: account.to_owned(),
                name: name.to_owned(),
            })
    }

    /// The ARN.
    pub fn as_str(&self) -> &str {
        &self.arn
    }

    /// The account id.
    pub fn account(&self) -> &str {
        &self.account
    }

    /// The role's name (without its path).
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Display for RoleArn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.arn)
    }
}

/// Where a role's source credentials come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RoleSource {
    /// Another profile (`source_profile`).
    Profile(String),
    /// `credential_source = Environment`.
    Environment,
    /// `credential_source = Ec2InstanceMetadata`.
    Ec2InstanceMetadata,
    /// `credential_source = EcsContainer`.
    EcsContainer,
}

/// A role to assume.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleProfile {
    /// The role.
    pub role_arn: RoleArn,
    /// Where the credentials that assume it come from.
    pub source: RoleSource,
    /// `external_id`.
    pub external_id: Option<String>,
    /// `role_session_name`.
    pub role_session_name: Option<String>,
    /// `duration_seconds`.
    pub duration_seconds: Option<u32>,
}

/// An IAM Identity Center (SSO) profile: recognised and shown; signing in is not built yet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SsoProfile {
    /// `sso_session`, naming an `[sso-session …]` section.
    pub session: Option<String>,
    /// The start URL (from the profile or its session).
    pub start_url: Option<String>,
    /// The SSO region.
    pub region: Option<String>,
    /// `sso_account_id`.
    pub account_id: Option<String>,
    /// `sso_role_name`.
    pub role_name: Option<String>,
}

/// What a profile is, in the order the AWS CLI tries them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProfileKind {
    /// `role_arn`: a role assumed with another profile's credentials.
    Role(RoleProfile),
    /// `web_identity_token_file` with `role_arn` (not supported yet).
    WebIdentity {
        /// The token file.
        token_file: String,
    },
    /// SSO.
    Sso(SsoProfile),
    /// Long-lived or static credentials: in the keychain, in a file, or from a process.
    Base {
        /// Static keys in a file: which file and line.
        file_keys: Option<(PathBuf, usize)>,
        /// `credential_process`.
        credential_process: Option<String>,
        /// Whether `credential_process` comes before the file keys (keys only in the config
        /// file, which the AWS CLI tries after the process).
        process_first: bool,
    },
}

/// A profile.
#[derive(Clone, PartialEq, Eq)]
pub struct Profile {
    /// Its name.
    pub name: String,
    /// The file and line of its section (the config file's when both files name it).
    pub path: PathBuf,
    /// The line.
    pub line: usize,
    /// Every key, as the AWS CLI sees it.
    pub settings: BTreeMap<String, Setting>,
    /// What it is.
    pub kind: ProfileKind,
    /// Why it cannot be used, when it cannot.
    pub unusable: Option<Problem>,
}

impl fmt::Debug for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys: Vec<&str> = self.settings.keys().map(String::as_str).collect();
        f.debug_struct("Profile")
            .field("name", &self.name)
            .field("path", &self.path)
            .field("line", &self.line)
            .field("keys", &keys)
            .field("kind", &self.kind)
            .field("unusable", &self.unusable)
            .finish()
    }
}

impl Profile {
    /// A plain setting's value (trimmed, never empty).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.settings
            .get(key)?
            .value
            .text()
            .filter(|v| !v.is_empty())
    }

    /// `region`.
    pub fn region(&self) -> Option<&str> {
        self.get("region")
    }

    /// `mfa_serial`.
    pub fn mfa_serial(&self) -> Option<&str> {
        self.get("mfa_serial")
    }

    /// `endpoint_url`.
    pub fn endpoint_url(&self) -> Option<&str> {
        self.get("endpoint_url")
    }

    /// The role, for a role profile.
    pub fn role(&self) -> Option<&RoleProfile> {
        match &self.kind {
            ProfileKind::Role(role) => Some(role),
            _ => None,
        }
    }

    /// The account, where the profile alone tells it (a role's, an SSO account).
    pub fn account(&self) -> Option<&str> {
        match &self.kind {
            ProfileKind::Role(role) => Some(role.role_arn.account()),
            ProfileKind::Sso(sso) => sso.account_id.as_deref(),
            _ => None,
        }
    }

    /// Whether it has static keys in one of the files.
    pub fn has_file_keys(&self) -> bool {
        // botocore's _has_static_credentials: the key id or the secret (not a token alone).
        ["aws_access_key_id", "aws_secret_access_key"]
            .iter()
            .any(|k| self.settings.contains_key(*k))
    }
}

/// An `[sso-session NAME]` section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SsoSession {
    /// Its keys.
    pub settings: BTreeMap<String, Setting>,
}

/// All profiles of the two files, and what is wrong with them.
#[derive(Clone, Debug, Default)]
pub struct Profiles {
    profiles: Vec<Profile>,
    index: HashMap<String, usize>,
    sso_sessions: BTreeMap<String, SsoSession>,
    services: BTreeMap<String, BTreeMap<String, Setting>>,
    problems: Vec<Problem>,
    refused: Vec<PathBuf>,
}

/// Why a profile's chain cannot be followed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProfileError {
    /// No such profile.
    #[error("no profile named {0} in the AWS config or credentials file")]
    NotFound(String),
    /// It is there but cannot be used.
    #[error("{0}")]
    Unusable(Box<Problem>),
}

/// Where a chain of roles starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ChainBase {
    Profile(usize),
    Environment,
    Ec2InstanceMetadata,
    EcsContainer,
}

/// Where a profile's credentials start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Base<'a> {
    /// A profile's own credentials: keys (keychain or file), a process, SSO.
    Profile(&'a Profile),
    /// The environment's keys (`credential_source = Environment`).
    Environment,
    /// The instance's role (`credential_source = Ec2InstanceMetadata`).
    Ec2InstanceMetadata,
    /// The container's role (`credential_source = EcsContainer`).
    EcsContainer,
}

/// How to get a profile's credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chain<'a> {
    /// The roles, from the requested profile down to the first one assumed with the base's
    /// credentials (empty when the requested profile is itself the base).
    pub roles: Vec<&'a Profile>,
    /// Where it starts.
    pub base: Base<'a>,
}

/// The profiles of the loop a `source_profile` chain ends in (`a → b → c → b`: `b`, `c`).
fn loop_members(chain: &[String]) -> Vec<&str> {
    let Some(last) = chain.last() else {
        return Vec::new();
    };
    let start = chain.iter().position(|n| n == last).unwrap_or(0);
    let end = chain.len().saturating_sub(1).max(start + 1);
    chain[start..end].iter().map(String::as_str).collect()
}

impl Profiles {
    /// Read both files (a missing file is no profiles, not an error).
    pub fn load(files: &ConfigFiles) -> std::io::Result<Self> {
        let read = |path: &Path| match std::fs::read(path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        };
        let config = read(&files.config)?;
        let credentials = read(&files.credentials)?;
        Ok(Self::from_files(
            config.map(|b| ini::parse(&files.config, &b)),
            credentials.map(|b| ini::parse(&files.credentials, &b)),
        ))
    }

    /// Resolve profiles from the two files, read.
    pub fn from_files(config: Option<ini::IniFile>, credentials: Option<ini::IniFile>) -> Self {
        let mut out = Profiles::default();
        let mut raw: Vec<(String, PathBuf, usize, BTreeMap<String, Setting>)> = Vec::new();
        let mut raw_index: HashMap<String, usize> = HashMap::new();

        let config_path = config.as_ref().map(|f| f.path.clone());
        if let Some(file) = config {
            if file.refused_by_aws_cli() {
                out.refused.push(file.path.clone());
            }
            out.problems.extend(file.problems.iter().cloned());
            for section in &file.sections {
                let header = section.header.as_str();
                let settings = settings_of(section, &file.path);
                value_warnings(section, &file.path, &mut out.problems);
                let named = |prefix: &str| -> Option<Option<String>> {
                    header.starts_with(prefix).then(|| {
                        ini::shell_words(header)
                            .filter(|w| w.len() == 2)
                            .and_then(|mut w| w.pop())
                    })
                };
                let name = if let Some(name) = named("profile") {
                    let Some(name) = name else {
                        out.problems.push(Problem::new(
                            &file.path,
                            section.line,
                            ProblemKind::UnreadableProfileHeader {
                                header: header.into(),
                            },
                        ));
                        continue;
                    };
                    name
                } else if let Some(name) = named("sso-session") {
                    if let Some(name) = name {
                        out.sso_sessions.insert(name, SsoSession { settings });
                    }
                    continue;
                } else if let Some(name) = named("services") {
                    if let Some(name) = name {
                        out.services.insert(name, settings);
                    }
                    continue;
                } else if header == "default" {
                    "default".to_owned()
                } else {
                    if !matches!(header, "plugins" | "preview" | "cli") {
                        out.problems.push(Problem::new(
                            &file.path,
                            section.line,
                            ProblemKind::NotAProfile {
                                header: header.into(),
                            },
                        ));
                    }
                    continue;
                };
                // A later section of the same profile replaces the earlier one, as in botocore.
                if let Some(&i) = raw_index.get(&name) {
                    let earlier_line = raw[i].2;
                    let kind = if name == "default" {
                        ProblemKind::TwoDefaults {
                            ignored_line: earlier_line,
                        }
                    } else {
                        ProblemKind::ProfileRedefined {
                            profile: name.clone(),
                            earlier_line,
                        }
                    };
                    out.problems
                        .push(Problem::new(&file.path, section.line, kind));
                    raw[i] = (name, file.path.clone(), section.line, settings);
                } else {
                    raw_index.insert(name.clone(), raw.len());
                    raw.push((name, file.path.clone(), section.line, settings));
                }
            }
        }

        let credentials_path = credentials.as_ref().map(|f| f.path.clone());
        if let Some(file) = credentials {
            if file.refused_by_aws_cli() {
                out.refused.push(file.path.clone());
            }
            out.problems.extend(file.problems.iter().cloned());
            for section in &file.sections {
                let name = section.header.clone();
                if name.starts_with("profile ") {
                    out.problems.push(Problem::new(
                        &file.path,
                        section.line,
                        ProblemKind::ProfilePrefixInCredentials {
                            header: name.clone(),
                        },
                    ));
                }
                let settings = settings_of(section, &file.path);
                value_warnings(section, &file.path, &mut out.problems);
                match raw_index.get(&name) {
                    Some(&i) => raw[i].3.extend(settings),
                    None => {
                        raw_index.insert(name.clone(), raw.len());
                        raw.push((name, file.path.clone(), section.line, settings));
                    }
                }
            }
        }

        for (name, path, line, settings) in raw {
            if let Some(setting) = settings.get("duration_seconds")
                && let Some(text) = setting.value.text()
                && !text.is_empty()
                && !text.starts_with(|c: char| c.is_ascii_digit() || c == '-')
            {
                out.problems.push(Problem::new(
                    &setting.path,
                    setting.line,
                    ProblemKind::IgnoredDuration { value: text.into() },
                ));
            }
            for (key, setting) in &settings {
                if !KNOWN_KEYS.contains(&key.as_str()) && !key.starts_with("cli_") {
                    out.problems.push(Problem::new(
                        &setting.path,
                        setting.line,
                        ProblemKind::UnknownKey {
                            key: key.clone(),
                            did_you_mean: nearest_known(key),
                        },
                    ));
                }
            }
            let (kind, unusable) = kind_of(
                &name,
                (&path, line),
                &settings,
                &out.sso_sessions,
                credentials_path.as_deref(),
            );
            out.index.insert(name.clone(), out.profiles.len());
            out.profiles.push(Profile {
                name,
                path,
                line,
                settings,
                kind,
                unusable,
            });
        }

        // Source links: missing profiles and loops make every profile on the way unusable.
        for i in 0..out.profiles.len() {
            if out.profiles[i].unusable.is_some() {
                continue;
            }
            if let Err(problem) = out.walk(&out.profiles[i].name) {
                out.profiles[i].unusable = Some(problem);
            }
        }
        // Each cause once: a loop once however many profiles are in it or lead into it (as
        // seen from its first profile in the files), a missing source once however many
        // profiles reach it.
        let mut loops: Vec<Vec<&str>> = Vec::new();
        let mut listed: Vec<Problem> = Vec::new();
        for profile in &out.profiles {
            let Some(mut problem) = profile.unusable.as_ref() else {
                continue;
            };
            if let ProblemKind::SourceProfileLoop { chain } = &problem.kind {
                let mut members = loop_members(chain);
                members.sort_unstable();
                if loops.contains(&members) {
                    continue;
                }
                if let Some(first) = out
                    .profiles
                    .iter()
                    .find(|p| members.contains(&p.name.as_str()))
                    .and_then(|p| p.unusable.as_ref())
                    .filter(|p| matches!(p.kind, ProblemKind::SourceProfileLoop { .. }))
                {
                    problem = first;
                }
                loops.push(members);
            }
            let known = |p: &Problem| {
                p.path == problem.path && p.line == problem.line && p.kind == problem.kind
            };
            if !out.problems.iter().any(known) && !listed.iter().any(known) {
                listed.push(problem.clone());
            }
        }
        out.problems.extend(listed);
        // In file order: the config file's, then the credentials file's, each by line.
        let rank = |path: &Path| {
            if Some(path) == config_path.as_deref() {
                0
            } else if Some(path) == credentials_path.as_deref() {
                1
            } else {
                2
            }
        };
        out.problems.sort_by_key(|p| (rank(&p.path), p.line));
        out
    }

    /// Follow `source_profile` from `name` as botocore does. The requested profile is a role
    /// whenever it has a `role_arn`; a source profile is a role only without static keys (its
    /// keys win). A profile may name itself only when it has static keys; any other repeat is a
    /// loop.
    fn walk(&self, name: &str) -> Result<(Vec<usize>, ChainBase), Problem> {
        let fail = |problem: Problem| Err(problem.for_profile(name));
        let Some(&start) = self.index.get(name) else {
            return fail(Problem::new(
                Path::new(""),
                0,
                ProblemKind::MissingSourceProfile {
                    profile: name.into(),
                    source: name.into(),
                },
            ));
        };
        let mut visited = vec![start];
        let mut roles = Vec::new();
        let mut current = start;
        let mut top = true;
        loop {
            let profile = &self.profiles[current];
            // A source profile with keys is used for its keys whatever else is wrong with it,
            // as botocore does.
            let keys_win = !top && profile.has_file_keys();
            if let Some(problem) = profile.unusable.as_ref().filter(|_| !keys_win) {
                return fail(problem.clone());
            }
            let Some(role) = profile.role().filter(|_| top || !profile.has_file_keys()) else {
                return Ok((roles, ChainBase::Profile(current)));
            };
            roles.push(current);
            let source = match &role.source {
                RoleSource::Profile(source) => source,
                RoleSource::Environment => return Ok((roles, ChainBase::Environment)),
                RoleSource::Ec2InstanceMetadata => {
                    return Ok((roles, ChainBase::Ec2InstanceMetadata));
                }
                RoleSource::EcsContainer => return Ok((roles, ChainBase::EcsContainer)),
            };
            let at = profile
                .settings
                .get("source_profile")
                .map_or((profile.path.clone(), profile.line), |s| {
                    (s.path.clone(), s.line)
                });
            let Some(&next) = self.index.get(source) else {
                return fail(Problem::new(
                    &at.0,
                    at.1,
                    ProblemKind::MissingSourceProfile {
                        profile: profile.name.clone(),
                        source: source.clone(),
                    },
                ));
            };
            if visited.contains(&next) && (next != current || !self.profiles[next].has_file_keys())
            {
                let mut chain: Vec<String> = visited
                    .iter()
                    .map(|&i| self.profiles[i].name.clone())
                    .collect();
                chain.push(source.clone());
                return fail(Problem::new(
                    &at.0,
                    at.1,
                    ProblemKind::SourceProfileLoop { chain },
                ));
            }
            visited.push(next);
            current = next;
            top = false;
        }
    }

    /// The profile called `name`.
    pub fn get(&self, name: &str) -> Option<&Profile> {
        self.index.get(name).map(|&i| &self.profiles[i])
    }

    /// How to get credentials for `name`: the roles to assume and the base their chain starts
    /// from.
    pub fn chain(&self, name: &str) -> Result<Chain<'_>, ProfileError> {
        if !self.index.contains_key(name) {
            return Err(ProfileError::NotFound(name.to_owned()));
        }
        let (roles, base) = self
            .walk(name)
            .map_err(|p| ProfileError::Unusable(Box::new(p)))?;
        Ok(Chain {
            roles: roles.into_iter().map(|i| &self.profiles[i]).collect(),
            base: match base {
                ChainBase::Profile(i) => Base::Profile(&self.profiles[i]),
                ChainBase::Environment => Base::Environment,
                ChainBase::Ec2InstanceMetadata => Base::Ec2InstanceMetadata,
                ChainBase::EcsContainer => Base::EcsContainer,
            },
        })
    }

    /// The region of profile `name` and the profile it is set in: its own `region`, else (a
    /// role) the first one set along its chain of sources, as aws-vault does (the AWS CLI would
    /// fall back to `AWS_REGION` or none).
    pub fn region(&self, name: &str) -> Option<(&str, &str)> {
        let profile = self.get(name)?;
        if let Some(region) = profile.region() {
            return Some((region, &profile.name));
        }
        let chain = self.chain(name).ok()?;
        let base = match chain.base {
            Base::Profile(p) => Some(p),
            _ => None,
        };
        chain
            .roles
            .iter()
            .copied()
            .chain(base)
            .find_map(|p| Some((p.region()?, p.name.as_str())))
    }

    /// Every profile, in file order (config file first).
    pub fn iter(&self) -> impl Iterator<Item = &Profile> {
        self.profiles.iter()
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.profiles.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.profiles.is_empty()
    }

    /// The `[sso-session …]` sections.
    pub fn sso_sessions(&self) -> &BTreeMap<String, SsoSession> {
        &self.sso_sessions
    }

    /// The `endpoint_url` for `service` in the `[services NAME]` section called `services`
    /// (`sts =` followed by an indented `endpoint_url = …`).
    pub fn service_endpoint(&self, services: &str, service: &str) -> Option<String> {
        match &self.services.get(services)?.get(service)?.value {
            Value::Nested(map) => map.get("endpoint_url").cloned(),
            Value::Text(_) => None,
        }
    }

    /// Every problem, in file order.
    pub fn problems(&self) -> &[Problem] {
        &self.problems
    }

    /// The files the AWS CLI would refuse to read at all.
    pub fn refused_files(&self) -> &[PathBuf] {
        &self.refused
    }

    /// The profiles, SSO sessions and services as botocore's `Session.full_config` holds them
    /// (for comparing with the AWS CLI, and for `postern profiles --dump`), secret values
    /// replaced by [`REDACTED`].
    pub fn dump(&self) -> serde_json::Value {
        use serde_json::{Map, Value as Json};
        fn map(settings: &BTreeMap<String, Setting>) -> Json {
            Json::Object(
                settings
                    .iter()
                    .map(|(k, s)| {
                        let v = match &s.value {
                            Value::Text(_) if is_secret_key(k) => Json::String(REDACTED.into()),
                            Value::Text(t) => Json::String(t.clone()),
                            Value::Nested(n) => Json::Object(
                                n.iter()
                                    .map(|(k, v)| (k.clone(), Json::String(v.clone())))
                                    .collect(),
                            ),
                        };
                        (k.clone(), v)
                    })
                    .collect(),
            )
        }
        let profiles: Map<String, Json> = self
            .profiles
            .iter()
            .map(|p| (p.name.clone(), map(&p.settings)))
            .collect();
        serde_json::json!({
            "profiles": profiles,
            "sso_sessions": self.sso_sessions.iter().map(|(k, s)| (k.clone(), map(&s.settings))).collect::<Map<_, _>>(),
            "services": self.services.iter().map(|(k, s)| (k.clone(), map(s))).collect::<Map<_, _>>(),
            "refused": self.refused.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
            "problems": self.problems.iter().map(|p| serde_json::json!({
                "path": p.path.display().to_string(),
                "line": p.line,
                "severity": format!("{:?}", p.severity).to_lowercase(),
                "message": p.to_string(),
            })).collect::<Vec<_>>(),
        })
    }
}

/// What a profile is, from its keys, as botocore decides: a role first, then web identity, then
/// SSO, then static keys or a credential process.
fn kind_of(
    name: &str,
    (path, line): (&Path, usize),
    settings: &BTreeMap<String, Setting>,
    sso_sessions: &BTreeMap<String, SsoSession>,
    credentials_path: Option<&Path>,
) -> (ProfileKind, Option<Problem>) {
    let get = |key: &str| -> Option<&str> {
        settings
            .get(key)
            .and_then(|s| s.value.text())
            .filter(|v| !v.is_empty())
    };
    let at = |key: &str| settings.get(key).map_or(line, |s| s.line);
    let at_path = |key: &str| {
        settings
            .get(key)
            .map_or_else(|| path.to_owned(), |s| s.path.clone())
    };
    let problem = |key: &str, kind: ProblemKind| {
        Some(Problem::new(&at_path(key), at(key), kind).for_profile(name))
    };
    let base = || {
        let keys = settings.get("aws_access_key_id");
        let credential_process = get("credential_process").map(str::to_owned);
        // The AWS CLI tries the credentials file, then credential_process, then keys in the
        // config file.
        let process_first = credential_process.is_some()
            && keys.is_some_and(|k| Some(k.path.as_path()) != credentials_path);
        ProfileKind::Base {
            file_keys: keys.map(|s| (s.path.clone(), s.line)),
            credential_process,
            process_first,
        }
    };

    if let Some(arn) = get("role_arn") {
        let Some(role_arn) = RoleArn::parse(arn) else {
            return (
                base(),
                problem("role_arn", ProblemKind::BadRoleArn { value: arn.into() }),
            );
        };
        if let Some(token_file) = get("web_identity_token_file") {
            return (
                ProfileKind::WebIdentity {
                    token_file: token_file.into(),
                },
                None,
            );
        }
        let duration_seconds = match get("duration_seconds") {
            None => None,
            Some(text) => match text.parse::<u32>() {
                Ok(d) if (900..=43_200).contains(&d) => Some(d),
                // Not a number: botocore ignores it (a warning says so), and so does Postern.
                Err(_) if !text.starts_with(|c: char| c.is_ascii_digit() || c == '-') => None,
                _ => {
                    return (
                        base(),
                        problem(
                            "duration_seconds",
                            ProblemKind::BadDuration { value: text.into() },
                        ),
                    );
                }
            },
        };
        let source = match (get("source_profile"), get("credential_source")) {
            (Some(_), Some(_)) => {
                return (
                    base(),
                    problem(
                        "role_arn",
                        ProblemKind::TwoSources {
                            profile: name.into(),
                        },
                    ),
                );
            }
            (Some(source), None) => RoleSource::Profile(source.into()),
            (None, Some("Environment")) => RoleSource::Environment,
            (None, Some("Ec2InstanceMetadata")) => RoleSource::Ec2InstanceMetadata,
            (None, Some("EcsContainer")) => RoleSource::EcsContainer,
            (None, Some(other)) => {
                return (
                    base(),
                    problem(
                        "credential_source",
                        ProblemKind::BadCredentialSource {
                            value: other.into(),
                        },
                    ),
                );
            }
            (None, None) => {
                return (
                    base(),
                    problem(
                        "role_arn",
                        ProblemKind::RoleWithoutSource {
                            profile: name.into(),
                        },
                    ),
                );
            }
        };
        return (
            ProfileKind::Role(RoleProfile {
                role_arn,
                source,
                external_id: get("external_id").map(str::to_owned),
                role_session_name: get("role_session_name").map(str::to_owned),
                duration_seconds,
            }),
            None,
        );
    }
    if let Some(session) = get("sso_session") {
        let Some(section) = sso_sessions.get(session) else {
            return (
                base(),
                problem(
                    "sso_session",
                    ProblemKind::MissingSsoSession {
                        name: session.into(),
                    },
                ),
            );
        };
        let from_session = |key: &str| {
            section
                .settings
                .get(key)
                .and_then(|s| s.value.text())
                .map(str::to_owned)
        };
        return (
            ProfileKind::Sso(SsoProfile {
                session: Some(session.into()),
                start_url: from_session("sso_start_url"),
                region: from_session("sso_region"),
                account_id: get("sso_account_id").map(str::to_owned),
                role_name: get("sso_role_name").map(str::to_owned),
            }),
            None,
        );
    }
    if get("sso_start_url").is_some() || get("sso_account_id").is_some() {
        return (
            ProfileKind::Sso(SsoProfile {
                session: None,
                start_url: get("sso_start_url").map(str::to_owned),
                region: get("sso_region").map(str::to_owned),
                account_id: get("sso_account_id").map(str::to_owned),
                role_name: get("sso_role_name").map(str::to_owned),
            }),
            None,
        );
    }
    (base(), None)
}

#[cfg(test)]
mod tests;
