//! Identities: accounts, IAM users and roles, access keys, temporary credentials, and the caller
//! a signed request resolves to.

use std::collections::BTreeMap;

use rand::Rng;
use time::OffsetDateTime;

use crate::policy::PolicyDocument;

/// An AWS account.
#[derive(Debug)]
pub struct Account {
    /// The 12-digit id.
    pub id: String,
    /// The alias, if any.
    pub alias: Option<String>,
    /// Users by name.
    pub users: BTreeMap<String, User>,
    /// Roles by name.
    pub roles: BTreeMap<String, Role>,
}

/// An IAM user.
#[derive(Debug)]
pub struct User {
    /// The user name.
    pub name: String,
    /// The unique id, `AIDA…`.
    pub id: String,
    /// The user's identity policies.
    pub policies: Vec<PolicyDocument>,
    /// The serial of the user's virtual MFA device, if any.
    pub mfa_serial: Option<String>,
}

/// An IAM role.
#[derive(Debug)]
pub struct Role {
    /// The role name.
    pub name: String,
    /// The unique id, `AROA…`.
    pub id: String,
    /// Who may assume it.
    pub trust: PolicyDocument,
    /// What its sessions may do.
    pub policies: Vec<PolicyDocument>,
    /// The longest session AssumeRole may ask for, in seconds.
    pub max_session_duration: i64,
}

/// Who a set of credentials belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Principal {
    /// An IAM user (long-term keys, or a GetSessionToken session).
    User {
        /// The account.
        account: String,
        /// The user name.
        name: String,
        /// The user's unique id (`AIDA…`).
        user_id: String,
    },
    /// A session of an assumed role.
    AssumedRole {
        /// The account that owns the role.
        account: String,
        /// The role's name.
        role_name: String,
        /// The role's unique id (`AROA…`).
        role_id: String,
        /// The role session name.
        session_name: String,
    },
}

impl Principal {
    /// The account the principal belongs to.
    pub fn account(&self) -> &str {
        match self {
            Self::User { account, .. } | Self::AssumedRole { account, .. } => account,
        }
    }

    /// The ARN GetCallerIdentity reports.
    pub fn arn(&self) -> String {
        match self {
            Self::User { account, name, .. } => format!("arn:aws:iam::{account}:user/{name}"),
            Self::AssumedRole {
                account,
                role_name,
                session_name,
                ..
            } => {
                format!("arn:aws:sts::{account}:assumed-role/{role_name}/{session_name}")
            }
        }
    }

    /// `aws:userid`: the user's id, or `AROA…:session-name`.
    pub fn user_id(&self) -> String {
        match self {
            Self::User { user_id, .. } => user_id.clone(),
            Self::AssumedRole {
                role_id,
                session_name,
                ..
            } => format!("{role_id}:{session_name}"),
        }
    }

    /// The IAM user name or the role session name: what session ids start with and what
    /// CloudTrail lists as the user name.
    pub fn short_name(&self) -> &str {
        match self {
            Self::User { name, .. } => name,
            Self::AssumedRole { session_name, .. } => session_name,
        }
    }

    /// `aws:PrincipalArn`: the user's ARN, or the role's (not the session's).
    pub fn principal_arn(&self) -> String {
        match self {
            Self::User { .. } => self.arn(),
            Self::AssumedRole {
                account, role_name, ..
            } => format!("arn:aws:iam::{account}:role/{role_name}"),
        }
    }
}

/// How temporary credentials came to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Issuer {
    /// `sts:GetSessionToken`.
    SessionToken,
    /// `sts:AssumeRole`.
    AssumeRole,
}

/// What is known about a temporary session.
#[derive(Clone, Debug)]
pub struct SessionFacts {
    /// How the credentials were issued.
    pub issuer: Issuer,
    /// When they were issued.
    pub issued: OffsetDateTime,
    /// When they stop working.
    pub expires: OffsetDateTime,
    /// Whether an MFA code was checked for this session (or the one it came from), and when.
    pub mfa_authenticated_at: Option<OffsetDateTime>,
    /// The source identity, fixed for the rest of a role chain once set.
    pub source_identity: Option<String>,
    /// Session tags.
    pub tags: Vec<(String, String)>,
}

/// The identity behind a verified request.
#[derive(Clone, Debug)]
pub struct Caller {
    /// Who.
    pub principal: Principal,
    /// The access key id the request was signed with.
    pub access_key_id: String,
    /// For temporary credentials, what is known of the session; `None` for long-term keys.
    pub session: Option<SessionFacts>,
}

impl Caller {
    /// Whether the caller signed with temporary credentials.
    pub fn is_temporary(&self) -> bool {
        self.session.is_some()
    }

    /// Whether MFA was used, as `aws:MultiFactorAuthPresent` sees it: absent for long-term keys,
    /// "true" or "false" for temporary credentials.
    pub fn mfa_present(&self) -> Option<bool> {
        self.session
            .as_ref()
            .map(|s| s.mfa_authenticated_at.is_some())
    }

    /// The global condition keys of the caller, lowercased, for policy evaluation.
    pub fn context_keys(&self, now: OffsetDateTime) -> BTreeMap<String, String> {
        let mut keys = BTreeMap::new();
        keys.insert("aws:userid".into(), self.principal.user_id());
        keys.insert("aws:principalarn".into(), self.principal.principal_arn());
        keys.insert(
            "aws:principalaccount".into(),
            self.principal.account().to_owned(),
        );
        if let Principal::User { name, .. } = &self.principal {
            keys.insert("aws:username".into(), name.clone());
        }
        if let Some(session) = &self.session {
            let mfa = session.mfa_authenticated_at;
            keys.insert(
                "aws:multifactorauthpresent".into(),
                mfa.is_some().to_string(),
            );
            if let Some(at) = mfa {
                keys.insert(
                    "aws:multifactorauthage".into(),
                    (now - at).whole_seconds().to_string(),
                );
            }
            if let Some(source) = &session.source_identity {
                keys.insert("aws:sourceidentity".into(), source.clone());
            }
            for (key, value) in &session.tags {
                keys.insert(
                    format!("aws:principaltag/{}", key.to_ascii_lowercase()),
                    value.clone(),
                );
            }
        }
        keys
    }
}

/// What an access key id stands for. Its `Debug` leaves the secrets out.
pub enum KeyRecord {
    /// A user's long-term access key.
    LongTerm {
        /// The secret access key.
        secret: String,
        /// The owner.
        principal: Principal,
    },
    /// Temporary credentials from STS.
    Temporary {
        /// The secret access key.
        secret: String,
        /// The session token that must accompany every request.
        session_token: String,
        /// The owner.
        principal: Principal,
        /// The session.
        facts: SessionFacts,
    },
}

impl std::fmt::Debug for KeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::LongTerm { principal, .. } => f
                .debug_struct("LongTerm")
                .field("principal", principal)
                .finish_non_exhaustive(),
            Self::Temporary {
                principal, facts, ..
            } => f
                .debug_struct("Temporary")
                .field("principal", principal)
                .field("facts", facts)
                .finish_non_exhaustive(),
        }
    }
}

/// Random identifiers in the formats AWS uses.
pub mod ids {
    use super::Rng;

    const BASE32: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    const SECRET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const HEX: &[u8] = b"0123456789abcdef";

    fn pick(rng: &mut impl Rng, alphabet: &[u8], len: usize) -> String {
        (0..len)
            .map(|_| char::from(alphabet[rng.random_range(0..alphabet.len())]))
            .collect()
    }

    /// A unique id with a four-letter prefix (`AKIA`, `ASIA`, `AIDA`, `AROA`) and `len` more.
    pub fn unique(rng: &mut impl Rng, prefix: &str, len: usize) -> String {
        format!("{prefix}{}", pick(rng, BASE32, len))
    }

    /// A 40-character secret access key.
    pub fn secret_key(rng: &mut impl Rng) -> String {
        pick(rng, SECRET, 40)
    }

    /// A session token of about the size STS hands out.
    pub fn session_token(rng: &mut impl Rng) -> String {
        format!("IQoJb3JpZ2luX2VjE{}", pick(rng, SECRET, 380))
    }

    /// `n` lowercase hex digits.
    pub fn hex(rng: &mut impl Rng, n: usize) -> String {
        pick(rng, HEX, n)
    }
}
