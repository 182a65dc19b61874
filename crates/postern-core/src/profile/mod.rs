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

pub mod ini;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

pub use ini::Value;

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
// Problems

/// How bad a problem is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// The AWS CLI refuses the whole file, or the profile cannot be used.
    Error,
    /// Probably not what was meant; the value is used as the AWS CLI uses it.
    Warning,
    /// Kept and shown, not used by Postern (an unknown key).
    Note,
}

/// What is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProblemKind {
    /// The file starts with a UTF-8 byte-order mark.
    ByteOrderMark,
    /// The file has bytes that are not UTF-8.
    NotUtf8,
    /// A key before any `[section]`.
    KeyOutsideSection,
    /// A line that is neither a section, a comment nor `key = value`.
    NotKeyValue,
    /// `= value` with no key.
    EmptyKey,
    /// The same section header twice.
    DuplicateSection {
        /// The header.
        header: String,
        /// Where it first stood.
        first_line: usize,
    },
    /// The same key twice in a section.
    DuplicateKey {
        /// The section.
        section: String,
        /// The key.
        key: String,
        /// Where it first stood.
        first_line: usize,
    },
    /// `[header` without its `]`.
    UnclosedHeader {
        /// What follows the `[`.
        header: String,
        /// Whether the AWS CLI refuses the file for it (it reads the line as a key when it is
        /// in a section and has a `=` or `:`).
        refused: bool,
    },
    /// A line of an indented block (`s3 =` …) without `=`.
    NestedNotKeyValue {
        /// The block's key.
        key: String,
    },
    /// A value in quotes (the AWS CLI keeps the quotes).
    QuotedValue {
        /// The key.
        key: String,
    },
    /// A value with ` #` or ` ;` in it (the AWS CLI keeps it as part of the value).
    InlineComment {
        /// The key.
        key: String,
    },
    /// A key with an empty value.
    EmptyValue {
        /// The key.
        key: String,
    },
    /// A config-file section that is not a profile (`[dev]` instead of `[profile dev]`).
    NotAProfile {
        /// The header.
        header: String,
    },
    /// A `[profile …]` header the AWS CLI cannot read as a name (bad quoting, several words).
    UnreadableProfileHeader {
        /// The header.
        header: String,
    },
    /// A credentials-file section written `[profile NAME]`: there, sections are bare names.
    ProfilePrefixInCredentials {
        /// The header.
        header: String,
    },
    /// `[default]` and `[profile default]` both: the AWS CLI keeps the later one only.
    TwoDefaults {
        /// The line of the one that is ignored.
        ignored_line: usize,
    },
    /// The same profile in two sections of the config file; the later one replaces the earlier.
    ProfileRedefined {
        /// The profile.
        profile: String,
        /// The line of the earlier section.
        earlier_line: usize,
    },
    /// A key Postern does not know; kept.
    UnknownKey {
        /// The key.
        key: String,
        /// A known key it looks like.
        did_you_mean: Option<&'static str>,
    },
    /// `source_profile` names no profile.
    MissingSourceProfile {
        /// The profile.
        profile: String,
        /// The name it gives.
        source: String,
    },
    /// `source_profile` links go round in a loop.
    SourceProfileLoop {
        /// The chain, ending with the repeated profile.
        chain: Vec<String>,
    },
    /// `role_arn` without `source_profile` or `credential_source`.
    RoleWithoutSource {
        /// The profile.
        profile: String,
    },
    /// Both `source_profile` and `credential_source`.
    TwoSources {
        /// The profile.
        profile: String,
    },
    /// A `credential_source` other than `Environment`, `Ec2InstanceMetadata`, `EcsContainer`.
    BadCredentialSource {
        /// The value.
        value: String,
    },
    /// `role_arn` is not an IAM role ARN.
    BadRoleArn {
        /// The value.
        value: String,
    },
    /// `duration_seconds` is not a number from 900 to 43200.
    BadDuration {
        /// The value.
        value: String,
    },
    /// `duration_seconds` is not a number: ignored, as the AWS CLI ignores it.
    IgnoredDuration {
        /// The value.
        value: String,
    },
    /// `sso_session` names no `[sso-session …]` section.
    MissingSsoSession {
        /// The name.
        name: String,
    },
}

impl ProblemKind {
    /// Whether the AWS CLI refuses the whole file for this.
    pub fn refuses_file(&self) -> bool {
        matches!(
            self,
            ProblemKind::ByteOrderMark
                | ProblemKind::NotUtf8
                | ProblemKind::KeyOutsideSection
                | ProblemKind::NotKeyValue
                | ProblemKind::EmptyKey
                | ProblemKind::DuplicateSection { .. }
                | ProblemKind::DuplicateKey { .. }
                | ProblemKind::NestedNotKeyValue { .. }
                | ProblemKind::UnclosedHeader { refused: true, .. }
        )
    }

    fn severity(&self) -> Severity {
        match self {
            k if k.refuses_file() => Severity::Error,
            ProblemKind::MissingSourceProfile { .. }
            | ProblemKind::SourceProfileLoop { .. }
            | ProblemKind::RoleWithoutSource { .. }
            | ProblemKind::TwoSources { .. }
            | ProblemKind::BadCredentialSource { .. }
            | ProblemKind::BadRoleArn { .. }
            | ProblemKind::BadDuration { .. }
            | ProblemKind::MissingSsoSession { .. } => Severity::Error,
            ProblemKind::UnknownKey { .. } => Severity::Note,
            _ => Severity::Warning,
        }
    }
}

/// A problem in a file: where, what, and (through `Display`) what to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The file.
    pub path: PathBuf,
    /// The line (1-based).
    pub line: usize,
    /// How bad.
    pub severity: Severity,
    /// What.
    pub kind: ProblemKind,
    /// The profile it makes unusable, if any.
    pub profile: Option<String>,
}

impl Problem {
    pub(crate) fn new(path: &Path, line: usize, kind: ProblemKind) -> Self {
        Self {
            path: path.to_owned(),
            line,
            severity: kind.severity(),
            kind,
            profile: None,
        }
    }

    fn for_profile(mut self, profile: &str) -> Self {
        self.profile = Some(profile.to_owned());
        self
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ProblemKind as K;
        write!(f, "{}:{}: ", self.path.display(), self.line)?;
        const REFUSED: &str = "the AWS CLI refuses this file";
        match &self.kind {
            K::ByteOrderMark => write!(
                f,
                "the file starts with a byte-order mark ({REFUSED}): save it as UTF-8 without BOM"
            ),
            K::NotUtf8 => write!(
                f,
                "this line is not UTF-8 text ({REFUSED}): save the file as UTF-8"
            ),
            K::KeyOutsideSection => write!(
                f,
                "a key before any section ({REFUSED}): put it under a [profile NAME] or [default] header"
            ),
            K::NotKeyValue => write!(
                f,
                "this line is not `key = value`, a [section] or a comment ({REFUSED}): fix or remove it"
            ),
            K::EmptyKey => write!(f, "`= value` without a key ({REFUSED}): add the key"),
            K::DuplicateSection { header, first_line } => write!(
                f,
                "[{header}] appears again (first on line {first_line}; {REFUSED}): merge the two sections"
            ),
            K::DuplicateKey {
                section,
                key,
                first_line,
            } => write!(
                f,
                "`{key}` is set twice in [{section}] (first on line {first_line}; {REFUSED}): keep one"
            ),
            K::UnclosedHeader {
                header,
                refused: true,
            } => write!(
                f,
                "[{header} has no closing `]` ({REFUSED}): write [{header}]"
            ),
            K::UnclosedHeader {
                header,
                refused: false,
            } => write!(
                f,
                "[{header} has no closing `]`, so the AWS CLI reads this line as a key of the section above: close it with `]` if it is a section header"
            ),
            K::NestedNotKeyValue { key } => write!(
                f,
                "a line of the indented block under `{key}` is not `key = value` ({REFUSED})"
            ),
            K::QuotedValue { key } => write!(
                f,
                "`{key}` is in quotes, and the AWS CLI keeps quotes as part of the value: remove them"
            ),
            K::InlineComment { key } => write!(
                f,
                "`{key}` has a comment after it, and the AWS CLI keeps that as part of the value: put comments on their own line"
            ),
            K::EmptyValue { key } => write!(f, "`{key}` is empty: give it a value or remove it"),
            K::NotAProfile { header } => write!(
                f,
                "[{header}] is not a profile in the config file: write [profile {header}]"
            ),
            K::UnreadableProfileHeader { header } => write!(
                f,
                "[{header}] cannot be read as a profile name (one word, or quoted): the AWS CLI ignores it"
            ),
            K::ProfilePrefixInCredentials { header } => {
                let name = header.trim_start_matches("profile").trim();
                write!(
                    f,
                    "[{header}] in the credentials file is a profile named \"{header}\": write [{name}] there"
                )
            }
            K::TwoDefaults { ignored_line } => write!(
                f,
                "both [default] and [profile default]; the section on line {ignored_line} is ignored: keep one"
            ),
            K::ProfileRedefined {
                profile,
                earlier_line,
            } => write!(
                f,
                "profile {profile} is defined again, replacing the section on line {earlier_line}: keep one"
            ),
            K::UnknownKey { key, did_you_mean } => {
                write!(f, "`{key}` is not a key Postern knows; it is kept")?;
                match did_you_mean {
                    Some(known) => write!(f, " (did you mean `{known}`?)"),
                    None => Ok(()),
                }
            }
            K::MissingSourceProfile { profile, source } => write!(
                f,
                "profile {profile}: source_profile {source} does not exist: add [profile {source}] or fix the name"
            ),
            K::SourceProfileLoop { chain } => write!(
                f,
                "source_profile goes round in a loop: {}: point one of them at a profile with keys",
                chain.join(" → ")
            ),
            K::RoleWithoutSource { profile } => write!(
                f,
                "profile {profile} has a role_arn but no source_profile or credential_source: add one"
            ),
            K::TwoSources { profile } => write!(
                f,
                "profile {profile} has both source_profile and credential_source: keep one"
            ),
            K::BadCredentialSource { value } => write!(
                f,
                "credential_source {value} is not Environment, Ec2InstanceMetadata or EcsContainer"
            ),
            K::BadRoleArn { value } => write!(
                f,
                "role_arn {value} is not an IAM role ARN (arn:aws:iam::123456789012:role/NAME)"
            ),
            K::BadDuration { value } => write!(
                f,
                "duration_seconds {value} is not a whole number of seconds from 900 to 43200"
            ),
            K::IgnoredDuration { value } => write!(
                f,
                "duration_seconds {value} is not a number: it is ignored (as by the AWS CLI) and the role lasts an hour"
            ),
            K::MissingSsoSession { name } => write!(
                f,
                "sso_session {name} names no [sso-session {name}] section: add it or fix the name"
            ),
        }
    }
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

/// Keys whose values are secrets: never printed, in a dump or a Debug view.
pub fn is_secret_key(key: &str) -> bool {
    matches!(
        key,
        "aws_secret_access_key" | "aws_session_token" | "aws_security_token"
    )
}

/// What stands in for a secret value in a dump.
pub const REDACTED: &str = "(secret, not shown)";

/// Keys Postern knows (the AWS CLI's and SDKs', and aws-vault's), for the unknown-key note.
const KNOWN_KEYS: &[&str] = &[
    "region",
    "output",
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
    "aws_security_token",
    "aws_account_id",
    "role_arn",
    "source_profile",
    "credential_source",
    "mfa_serial",
    "external_id",
    "role_session_name",
    "duration_seconds",
    "credential_process",
    "web_identity_token_file",
    "sso_session",
    "sso_start_url",
    "sso_region",
    "sso_account_id",
    "sso_role_name",
    "sso_registration_scopes",
    "ca_bundle",
    "endpoint_url",
    "ignore_configured_endpoint_urls",
    "services",
    "max_attempts",
    "retry_mode",
    "parameter_validation",
    "tcp_keepalive",
    "sts_regional_endpoints",
    "use_fips_endpoint",
    "use_dualstack_endpoint",
    "defaults_mode",
    "metadata_service_timeout",
    "metadata_service_num_attempts",
    "ec2_metadata_service_endpoint",
    "ec2_metadata_service_endpoint_mode",
    "ec2_metadata_v1_disabled",
    "api_versions",
    "account_id_endpoint_mode",
    "request_checksum_calculation",
    "response_checksum_validation",
    "sigv4a_signing_region_set",
    "disable_request_compression",
    "request_min_compression_size_bytes",
    "auth_scheme_preference",
    "cli_pager",
    "cli_timestamp_format",
    "cli_follow_urlparam",
    "cli_binary_format",
    "cli_auto_prompt",
    "cli_history",
    "cli_help_output",
    "s3",
    "s3api",
    "ec2",
    "sts",
    "ssm",
    "dynamodb",
    "mfa_process",
    "include_profile",
    "parent_profile",
    "session_tags",
    "transitive_session_tags",
    "source_identity",
    "color",
    "credential_source_region",
];

/// What a value's text suggests was not meant.
/// Keys whose value Postern uses: an empty one is a mistake (an empty `cli_pager` is not).
const USED_KEYS: &[&str] = &[
    "region",
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
    "role_arn",
    "source_profile",
    "credential_source",
    "mfa_serial",
    "external_id",
    "role_session_name",
    "duration_seconds",
    "credential_process",
    "sso_session",
    "endpoint_url",
];

/// Warnings about the values of one section as written (overridden values included).
fn value_warnings(section: &ini::Section, path: &Path, out: &mut Vec<Problem>) {
    for (key, entry) in &section.entries {
        if let Some(kind) = value_warning(key, &entry.value) {
            out.push(Problem::new(path, entry.line, kind));
        }
    }
}

fn value_warning(key: &str, value: &Value) -> Option<ProblemKind> {
    let text = value.text()?;
    Some(if text.is_empty() {
        if !USED_KEYS.contains(&key) {
            return None;
        }
        ProblemKind::EmptyValue { key: key.into() }
    } else if text.len() >= 2
        && ((text.starts_with('"') && text.ends_with('"'))
            || (text.starts_with('\'') && text.ends_with('\'')))
    {
        ProblemKind::QuotedValue { key: key.into() }
    } else if text.contains(" #") || text.contains(" ;") || text.contains("\t#") {
        ProblemKind::InlineComment { key: key.into() }
    } else {
        return None;
    })
}

/// The known key nearest to `key` (a typo), if one is close.
fn nearest_known(key: &str) -> Option<&'static str> {
    fn distance(a: &str, b: &str) -> usize {
        let b: Vec<char> = b.chars().collect();
        let mut row: Vec<usize> = (0..=b.len()).collect();
        for (i, ca) in a.chars().enumerate() {
            let mut prev = row[0];
            row[0] = i + 1;
            for (j, cb) in b.iter().enumerate() {
                let cur = row[j + 1];
                row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
                prev = cur;
            }
        }
        row[b.len()]
    }
    KNOWN_KEYS
        .iter()
        .map(|k| (distance(key, k), *k))
        .filter(|(d, k)| *d <= 2 && *d < k.len() / 2)
        .min()
        .map(|(_, k)| k)
}

fn settings_of(section: &ini::Section, path: &Path) -> BTreeMap<String, Setting> {
    section
        .entries
        .iter()
        .map(|(k, e)| {
            (
                k.clone(),
                Setting {
                    value: e.value.clone(),
                    path: path.to_owned(),
                    line: e.line,
                },
            )
        })
        .collect()
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
mod tests {
    use super::*;

    fn profiles(config: &str, credentials: &str) -> Profiles {
        Profiles::from_files(
            Some(ini::parse(Path::new("config"), config.as_bytes())),
            Some(ini::parse(Path::new("credentials"), credentials.as_bytes())),
        )
    }

    #[test]
    fn chains_and_kinds() {
        let p = profiles(
            "[profile base]\nmfa_serial = arn:aws:iam::111111111111:mfa/me\nregion = eu-west-1\n\
             [profile dev]\nrole_arn = arn:aws:iam::111111111111:role/dev\nsource_profile = base\n\
             [profile prod]\nrole_arn = arn:aws:iam::222222222222:role/ops/prod\nsource_profile = dev\nduration_seconds = 3600\n",
            "[base]\naws_access_key_id = AKIAEXAMPLEEXAMPLE01\naws_secret_access_key = x\n",
        );
        assert!(
            p.problems().iter().all(|p| p.severity != Severity::Error),
            "{:?}",
            p.problems()
        );
        let chain = p.chain("prod").expect("chain");
        let roles: Vec<_> = chain.roles.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(roles, ["prod", "dev"]);
        assert!(matches!(chain.base, Base::Profile(p) if p.name == "base"));
        let prod = p.get("prod").expect("prod");
        let role = prod.role().expect("role");
        assert_eq!(role.role_arn.name(), "prod");
        assert_eq!(role.role_arn.account(), "222222222222");
        assert_eq!(role.duration_seconds, Some(3600));
        assert!(matches!(
            p.get("base").expect("base").kind,
            ProfileKind::Base {
                file_keys: Some(_),
                ..
            }
        ));
    }

    #[test]
    fn loops_name_the_chain_and_self_reference_needs_keys() {
        let p = profiles(
            "[profile a]\nrole_arn = arn:aws:iam::111111111111:role/a\nsource_profile = b\n\
             [profile b]\nrole_arn = arn:aws:iam::111111111111:role/b\nsource_profile = a\n\
             [profile me]\nrole_arn = arn:aws:iam::111111111111:role/me\nsource_profile = me\n\
             [profile self]\nrole_arn = arn:aws:iam::111111111111:role/s\nsource_profile = self\naws_access_key_id = AKIAEXAMPLEEXAMPLE02\naws_secret_access_key = y\n",
            "",
        );
        let err = p.chain("a").expect_err("loop");
        assert!(err.to_string().contains("a → b → a"), "{err}");
        assert!(p.chain("me").is_err());
        let chain = p.chain("self").expect("self with keys");
        assert_eq!(chain.roles.len(), 1);
        assert!(matches!(chain.base, Base::Profile(p) if p.name == "self"));
    }

    #[test]
    fn missing_source_and_bad_values_make_only_that_profile_unusable() {
        let p = profiles(
            "[profile a]\nrole_arn = arn:aws:iam::111111111111:role/a\nsource_profile = nowhere\n\
             [profile b]\nrole_arn = \"arn:aws:iam::111111111111:role/b\"\nsource_profile = c\n\
             [profile c]\nregion = us-east-1\nregoin = typo\n",
            "",
        );
        let err = p.chain("a").expect_err("missing");
        assert!(
            err.to_string()
                .contains("source_profile nowhere does not exist")
        );
        assert!(err.to_string().starts_with("config:3:"), "{err}");
        assert!(p.chain("b").is_err(), "quoted ARN is not an ARN");
        assert!(p.chain("c").is_ok());
        let notes: Vec<_> = p
            .problems()
            .iter()
            .filter(|p| p.severity == Severity::Note)
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            notes,
            ["config:9: `regoin` is not a key Postern knows; it is kept (did you mean `region`?)"]
        );
        assert!(
            p.problems()
                .iter()
                .any(|p| matches!(p.kind, ProblemKind::QuotedValue { .. }))
        );
    }

    #[test]
    fn each_loop_and_each_missing_source_is_reported_once_and_problems_are_in_file_order() {
        let p = profiles(
            "[profile into-loop]\nrole_arn = arn:aws:iam::111111111111:role/c\nsource_profile = loop-b\n\
             [profile loop-a]\nrole_arn = arn:aws:iam::111111111111:role/a\nsource_profile = loop-b\nregoin = x\n\
             [profile loop-b]\nrole_arn = arn:aws:iam::111111111111:role/b\nsource_profile = loop-a\n\
             [profile me]\nrole_arn = arn:aws:iam::111111111111:role/me\nsource_profile = me\n\
             [profile x]\nrole_arn = arn:aws:iam::111111111111:role/x\nsource_profile = y\n\
             [profile y]\nrole_arn = arn:aws:iam::111111111111:role/y\nsource_profile = gone\n",
            "[z]\nregoin = 1\n[a]\nregion = \"x\"\n",
        );
        let loops: Vec<String> = p
            .problems()
            .iter()
            .filter(|p| matches!(p.kind, ProblemKind::SourceProfileLoop { .. }))
            .map(ToString::to_string)
            .collect();
        assert_eq!(loops.len(), 2, "{loops:#?}");
        assert!(
            loops[0].contains(": source_profile goes round in a loop: loop-a → loop-b → loop-a:"),
            "{loops:#?}"
        );
        assert!(loops[1].contains("loop: me → me:"), "{loops:#?}");
        // Every profile on the way is unusable all the same, with its own chain.
        let err = p.chain("into-loop").expect_err("into a loop");
        assert!(
            err.to_string()
                .contains("into-loop → loop-b → loop-a → loop-b"),
            "{err}"
        );
        assert!(p.chain("loop-b").is_err());
        let missing = p
            .problems()
            .iter()
            .filter(|p| matches!(p.kind, ProblemKind::MissingSourceProfile { .. }))
            .count();
        assert_eq!(missing, 1, "{:#?}", p.problems());
        assert!(p.chain("x").is_err());
        let order: Vec<(&str, usize)> = p
            .problems()
            .iter()
            .map(|p| (p.path.to_str().unwrap_or_default(), p.line))
            .collect();
        let mut sorted = order.clone();
        sorted.sort_by_key(|(path, line)| (*path != "config", *line));
        assert_eq!(order, sorted);
        assert_eq!(order.first(), Some(&("config", 7)), "{order:?}");
        assert_eq!(order.last(), Some(&("credentials", 4)), "{order:?}");
    }

    #[test]
    fn credentials_file_wins_and_default_sections_follow_botocore() {
        let p = profiles(
            "[default]\nregion = us-east-1\n[profile default]\nregion = eu-west-1\n[profile x]\nregion = a\n[profiles y]\noutput = json\n[z]\nregion = b\n",
            "[x]\nregion = from-credentials\n[only-creds]\naws_access_key_id = AKIAEXAMPLEEXAMPLE03\n",
        );
        assert_eq!(
            p.get("default").and_then(Profile::region),
            Some("eu-west-1")
        );
        assert_eq!(
            p.get("x").and_then(Profile::region),
            Some("from-credentials")
        );
        assert!(p.get("y").is_some(), "botocore reads [profiles y] as y");
        assert!(p.get("z").is_none());
        assert!(p.get("only-creds").is_some());
        assert!(
            p.problems()
                .iter()
                .any(|p| matches!(p.kind, ProblemKind::NotAProfile { .. }))
        );
    }

    #[test]
    fn sso_profiles_are_recognised() {
        let p = profiles(
            "[profile sso]\nsso_session = corp\nsso_account_id = 333333333333\nsso_role_name = Dev\n\
             [sso-session corp]\nsso_start_url = https://corp.awsapps.com/start\nsso_region = eu-west-1\n\
             [profile legacy]\nsso_start_url = https://old.awsapps.com/start\nsso_account_id = 444444444444\n",
            "",
        );
        let ProfileKind::Sso(sso) = &p.get("sso").expect("sso").kind else {
            panic!("not sso");
        };
        assert_eq!(
            sso.start_url.as_deref(),
            Some("https://corp.awsapps.com/start")
        );
        assert_eq!(
            p.get("legacy").and_then(Profile::account),
            Some("444444444444")
        );
    }

    #[test]
    fn role_arns() {
        assert!(RoleArn::parse("arn:aws:iam::123456789012:role/a/b/Name_1").is_some());
        assert!(RoleArn::parse("arn:aws-cn:iam::123456789012:role/x").is_some());
        assert!(RoleArn::parse("arn:aws:iam::12345678901:role/x").is_none());
        assert!(RoleArn::parse("arn:aws:iam::123456789012:user/x").is_none());
        assert!(RoleArn::parse("arn:aws:iam::123456789012:role/").is_none());
    }

    #[test]
    fn paths_expand_like_python() {
        // SAFETY of the test: no other test reads these variables.
        let home = std::env::var("HOME").unwrap_or_default();
        assert_eq!(expand_path("~/x"), format!("{home}/x"));
        assert_eq!(expand_path("$HOME/y"), format!("{home}/y"));
        assert_eq!(expand_path("${HOME}/z"), format!("{home}/z"));
        assert_eq!(
            expand_path("$POSTERN_SURELY_UNSET/a"),
            "$POSTERN_SURELY_UNSET/a"
        );
    }
}
