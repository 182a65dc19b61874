//! What can be wrong in the AWS files: each [`Problem`] names the file, the line and what to do.

use std::fmt;
use std::path::{Path, PathBuf};

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

    pub(super) fn for_profile(mut self, profile: &str) -> Self {
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
