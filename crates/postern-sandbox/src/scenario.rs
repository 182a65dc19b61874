//! Scenarios: the world a sandbox starts with, written in TOML.
//!
//! A scenario lists accounts, each with IAM users (with access keys and virtual MFA devices) and
//! roles (trust policy, permission policies, maximum session duration), then the fleet: EC2
//! instances, each in an account and region, with tags, state, platform, private IP, and whether
//! and how its SSM agent reports. `[demo]` names the user and role `serve` prints as `AWS_ACCESS_KEY_ID`… and
//! `POSTERN_SANDBOX_ROLE_ARN`. Anything secret the scenario leaves out (access keys, MFA seeds) is
//! generated at each start; tests may fix them.
//!
//! ```toml
//! [settings]
//! default_region = "us-east-1"        # what `serve` prints as AWS_REGION
//! regions = ["us-east-1", "eu-west-1"] # the enabled regions (DescribeRegions)
//! lookup_events_throttle = true        # CloudTrail's 2 requests/s per account and region
//! seed = 7                             # optional: generate the same ids and keys every start
//!
//! [demo]
//! account = "210987654321"
//! user = "demo"
//! role = "developer"
//! reach = { team = ["payments", "search"] }   # optional: the instances the role may open, as
//!                                              # tag rules (printed for the desktop's sandbox mode)
//!
//! [[accounts]]
//! id = "210987654321"
//! alias = "postern-demo"
//!
//! [[accounts.users]]
//! name = "demo"
//! mfa_device = "demo"                  # arn:aws:iam::210987654321:mfa/demo
//! # mfa_secret = "JBSWY3DPEHPK3PXP…"   # base32; generated when absent
//! # access_key_id = "AKIA…"            # with secret_access_key; generated when absent
//! policies = ['''{"Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}]}''']
//!
//! [[accounts.roles]]
//! name = "developer"
//! max_session_duration = 43200         # seconds; IAM's default is 3600
//! trust = '''{"Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::210987654321:root"},
//!            "Action": ["sts:AssumeRole", "sts:SetSourceIdentity"],
//!            "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}}}]}'''
//! policies = ['''{"Statement": [{"Effect": "Allow", "Action": "ec2:Describe*", "Resource": "*"}]}''']
//!
//! [fleet]
//! instances = [
//!   { account = "210987654321", id = "i-0a1b2c3d4e5f60001", region = "us-east-1",
//!     name = "payments-api-1",              # the Name tag
//!     tags = { team = "payments", env = "prod" },
//!     state = "running",                    # pending, running, stopping, stopped, shutting-down, terminated
//!     platform = "linux",                   # or "windows"
//!     private_ip = "10.1.0.11",
//!     instance_type = "t3.micro",
//!     ssm = "online",                       # online, connection-lost, inactive, unmanaged
//!     agent_version = "3.3.1611.0" },
//! ]
//! ```
//!
//! (TOML wants an inline table on one line; the example wraps it for reading.)
//!
//! Policies are IAM JSON documents, written as strings (or as TOML tables of the same shape);
//! [`crate::policy`] lists what the sandbox evaluates. Unknown keys anywhere are an error, so a
//! typo never silently changes what is enforced.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::policy::PolicyDocument;

/// The default scenario: 2 accounts, 3 regions, 60 instances, a demo user and its roles.
pub const DEFAULT_TOML: &str = include_str!("../scenarios/default.toml");

/// A whole sandbox world.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Global settings.
    #[serde(default)]
    pub settings: Settings,
    /// Who `serve` prints as the demo identity.
    pub demo: Option<Demo>,
    /// The accounts, with their users and roles.
    pub accounts: Vec<AccountSpec>,
    /// The EC2 instances.
    #[serde(default)]
    pub fleet: Fleet,
    /// Older CloudTrail events, as if made before the sandbox started.
    #[serde(default)]
    pub history: Vec<HistorySpec>,
}

/// A seeded CloudTrail event (and, for StartSession, the ended session it describes).
///
/// ```toml
/// [[history]]
/// event = "StartSession"              # StartSession, ResumeSession, TerminateSession, AssumeRole, GetSessionToken
/// account = "210987654321"
/// region = "us-east-1"
/// principal = "arn:aws:sts::210987654321:assumed-role/developer/demo"   # or arn:aws:iam::…:user/NAME
/// minutes_ago = 2880                  # before the sandbox's start
/// target = "i-0…"                     # StartSession
/// document = "AWS-StartPortForwardingSession"   # StartSession, optional
/// parameters = { portNumber = ["5432"] }        # StartSession, optional: the document's
/// session_id = "demo-0123456789abcdef0"         # optional for StartSession, required otherwise
/// ended_minutes_ago = 2850            # StartSession: also record its TerminateSession
/// role_arn = "arn:aws:iam::…:role/…"  # AssumeRole
/// mfa = true                          # whether the caller's session used MFA (default true)
/// source_identity = "demo"            # optional
/// ```
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistorySpec {
    /// The event name.
    pub event: HistoryEvent,
    /// The account whose trail holds it.
    pub account: String,
    /// The region it happened in.
    pub region: String,
    /// Who made the call: an IAM user ARN or an assumed-role session ARN.
    pub principal: String,
    /// How long before the sandbox started.
    pub minutes_ago: i64,
    /// The instance (StartSession).
    pub target: Option<String>,
    /// The session document (StartSession).
    pub document: Option<String>,
    /// The document's parameters (StartSession).
    #[serde(default)]
    pub parameters: BTreeMap<String, Vec<String>>,
    /// The session id.
    pub session_id: Option<String>,
    /// When the session ended (StartSession), recorded as a TerminateSession event.
    pub ended_minutes_ago: Option<i64>,
    /// The role (AssumeRole).
    pub role_arn: Option<String>,
    /// Whether MFA was used.
    #[serde(default = "yes")]
    pub mfa: bool,
    /// The source identity of the caller's session.
    pub source_identity: Option<String>,
}

/// The events a scenario may seed.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
pub enum HistoryEvent {
    /// ssm:StartSession.
    StartSession,
    /// ssm:ResumeSession.
    ResumeSession,
    /// ssm:TerminateSession.
    TerminateSession,
    /// sts:AssumeRole.
    AssumeRole,
    /// sts:GetSessionToken.
    GetSessionToken,
}

/// The EC2 instances of a scenario.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fleet {
    /// Every instance, in any account and enabled region.
    #[serde(default)]
    pub instances: Vec<InstanceSpec>,
}

/// Global settings of a scenario.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The region `serve` prints as `AWS_REGION`.
    #[serde(default = "default_region")]
    pub default_region: String,
    /// The enabled regions; requests signed for any other region are refused.
    #[serde(default = "default_regions")]
    pub regions: Vec<String>,
    /// Whether CloudTrail LookupEvents is throttled at 2 requests/s per account and region.
    #[serde(default = "yes")]
    pub lookup_events_throttle: bool,
    /// Whether EC2 calls are throttled (token buckets per account, region and action; see
    /// [`crate::throttle`]).
    #[serde(default = "yes")]
    pub ec2_throttle: bool,
    /// Whether SSM calls are throttled.
    #[serde(default = "yes")]
    pub ssm_throttle: bool,
    /// Buckets other than the defaults, by action.
    #[serde(default)]
    pub rate_limits: BTreeMap<String, crate::throttle::RateLimit>,
    /// Latency added to each call of an action, in milliseconds.
    #[serde(default)]
    pub latency_ms: BTreeMap<String, u64>,
    /// How long after a call CloudTrail's LookupEvents shows its event (AWS: typically about
    /// five minutes, up to fifteen); 0 by default, so tests see events at once.
    #[serde(default)]
    pub cloudtrail_delay_seconds: u64,
    /// A seed for every generated id and key, for reproducible runs; random when absent.
    pub seed: Option<u64>,
    /// Whether agents pace output like the real agent (1 KiB messages at 1 ms intervals).
    #[serde(default)]
    pub agent_pacing: bool,
    /// Minutes without data before a session is ended (Session Manager's default is 20).
    #[serde(default = "twenty")]
    pub idle_timeout_minutes: u64,
}

fn twenty() -> u64 {
    20
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            default_region: default_region(),
            regions: default_regions(),
            lookup_events_throttle: true,
            ec2_throttle: true,
            ssm_throttle: true,
            rate_limits: BTreeMap::new(),
            latency_ms: BTreeMap::new(),
            cloudtrail_delay_seconds: 0,
            seed: None,
            agent_pacing: false,
            idle_timeout_minutes: twenty(),
        }
    }
}

fn default_region() -> String {
    "us-east-1".into()
}

fn default_regions() -> Vec<String> {
    vec!["us-east-1".into()]
}

fn yes() -> bool {
    true
}

/// The identity `serve` advertises.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Demo {
    /// The account of the demo user.
    pub account: String,
    /// The demo user's name; it must have an MFA device.
    pub user: String,
    /// The role (in the same account) printed as `POSTERN_SANDBOX_ROLE_ARN`.
    pub role: String,
    /// The tags of the instances the role may open sessions on (key: allowed values), as
    /// `serve --json` prints them: sandbox mode's tag rules, so the window lists as reachable what
    /// the role's policy lets it open. It must agree with the role's policy.
    #[serde(default)]
    pub reach: std::collections::BTreeMap<String, Vec<String>>,
}

/// One AWS account.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountSpec {
    /// The 12-digit account id.
    pub id: String,
    /// The account alias, if any.
    pub alias: Option<String>,
    /// IAM users.
    #[serde(default)]
    pub users: Vec<UserSpec>,
    /// IAM roles.
    #[serde(default)]
    pub roles: Vec<RoleSpec>,
}

/// An IAM user.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserSpec {
    /// The user name.
    pub name: String,
    /// A fixed access key id (`AKIA…`, 20 characters); generated when absent.
    pub access_key_id: Option<String>,
    /// The secret for `access_key_id`; required with it.
    pub secret_access_key: Option<String>,
    /// The name of the user's virtual MFA device, if it has one.
    pub mfa_device: Option<String>,
    /// The device's base32 seed; generated when absent.
    pub mfa_secret: Option<String>,
    /// Identity policies attached to the user.
    #[serde(default)]
    pub policies: Vec<PolicyDocument>,
}

/// An IAM role.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleSpec {
    /// The role name.
    pub name: String,
    /// The trust policy: who may assume the role, and on what conditions.
    pub trust: PolicyDocument,
    /// The permission policies of the role's sessions.
    #[serde(default)]
    pub policies: Vec<PolicyDocument>,
    /// The longest session AssumeRole may ask for, 3,600 to 43,200 seconds.
    #[serde(default = "one_hour")]
    pub max_session_duration: i64,
}

fn one_hour() -> i64 {
    3600
}

/// An EC2 instance.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceSpec {
    /// The account the instance belongs to.
    pub account: String,
    /// `i-` followed by 8 or 17 hex digits.
    pub id: String,
    /// The region the instance runs in.
    pub region: String,
    /// The `Name` tag.
    pub name: Option<String>,
    /// Other tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// The instance state.
    #[serde(default)]
    pub state: InstanceState,
    /// The platform.
    #[serde(default)]
    pub platform: Platform,
    /// The private IPv4 address.
    pub private_ip: String,
    /// The instance type.
    #[serde(default = "default_instance_type")]
    pub instance_type: String,
    /// How the SSM agent reports.
    #[serde(default)]
    pub ssm: SsmStatus,
    /// The SSM agent's version.
    #[serde(default = "default_agent_version")]
    pub agent_version: String,
}

fn default_instance_type() -> String {
    "t3.micro".into()
}

fn default_agent_version() -> String {
    "3.3.1611.0".into()
}

/// EC2 instance states, as DescribeInstances names them.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum InstanceState {
    /// Starting.
    Pending,
    /// Running.
    #[default]
    Running,
    /// Stopping.
    Stopping,
    /// Stopped.
    Stopped,
    /// Terminating.
    ShuttingDown,
    /// Terminated.
    Terminated,
}

impl InstanceState {
    /// The state's name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Stopping => "stopping",
            Self::Stopped => "stopped",
            Self::ShuttingDown => "shutting-down",
            Self::Terminated => "terminated",
        }
    }

    /// The state's code on the wire (EC2's low byte).
    pub fn code(self) -> u8 {
        match self {
            Self::Pending => 0,
            Self::Running => 16,
            Self::ShuttingDown => 32,
            Self::Terminated => 48,
            Self::Stopping => 64,
            Self::Stopped => 80,
        }
    }
}

/// The operating-system family of an instance.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Platform {
    /// Linux/UNIX.
    #[default]
    Linux,
    /// Windows.
    Windows,
}

/// Whether an instance is a managed node, and its agent's ping status.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum SsmStatus {
    /// Managed, agent online.
    #[default]
    Online,
    /// Managed, but the agent stopped reporting.
    ConnectionLost,
    /// Managed node deregistered or instance stopped.
    Inactive,
    /// No SSM agent or no instance profile: not a managed node.
    Unmanaged,
}

/// A scenario that cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("cannot read the scenario {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The TOML does not parse or does not fit the schema.
    #[error("the scenario is not valid: {0}")]
    Syntax(#[from] toml::de::Error),
    /// The scenario parses but contradicts itself.
    #[error("the scenario is not consistent: {0}")]
    Inconsistent(String),
}

impl Scenario {
    /// Parse a scenario from TOML text.
    pub fn from_toml(text: &str) -> Result<Self, ScenarioError> {
        let scenario: Self = toml::from_str(text)?;
        scenario.check()?;
        Ok(scenario)
    }

    /// Read a scenario file.
    pub fn from_file(path: &Path) -> Result<Self, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_toml(&text)
    }

    /// The default scenario shipped with the sandbox.
    pub fn default_world() -> Self {
        match Self::from_toml(DEFAULT_TOML) {
            Ok(scenario) => scenario,
            // The file is part of the crate and `default_scenario_loads` tests it.
            Err(error) => panic!("the built-in default scenario is broken: {error}"),
        }
    }

    fn check(&self) -> Result<(), ScenarioError> {
        let bad = |msg: String| Err(ScenarioError::Inconsistent(msg));
        if !self
            .settings
            .regions
            .contains(&self.settings.default_region)
        {
            return bad(format!(
                "default_region {} is not among the enabled regions",
                self.settings.default_region
            ));
        }
        let mut account_ids = std::collections::BTreeSet::new();
        let mut instance_ids = std::collections::BTreeSet::new();
        for account in &self.accounts {
            if account.id.len() != 12 || !account.id.bytes().all(|b| b.is_ascii_digit()) {
                return bad(format!("account id {:?} is not 12 digits", account.id));
            }
            if !account_ids.insert(&account.id) {
                return bad(format!("account {} is listed twice", account.id));
            }
            let mut names = std::collections::BTreeSet::new();
            for user in &account.users {
                if !names.insert(&user.name) {
                    return bad(format!(
                        "user {} is listed twice in {}",
                        user.name, account.id
                    ));
                }
                if user.access_key_id.is_some() != user.secret_access_key.is_some() {
                    return bad(format!(
                        "user {}: give access_key_id and secret_access_key together",
                        user.name
                    ));
                }
                if let Some(key) = &user.access_key_id
                    && (!key.starts_with("AKIA") || key.len() != 20)
                {
                    return bad(format!(
                        "user {}: access_key_id must be AKIA + 16 characters",
                        user.name
                    ));
                }
                if user.mfa_secret.is_some() && user.mfa_device.is_none() {
                    return bad(format!("user {}: mfa_secret without mfa_device", user.name));
                }
                if let Some(secret) = &user.mfa_secret {
                    crate::mfa::MfaSecret::from_base32(secret).map_err(|e| {
                        ScenarioError::Inconsistent(format!("user {}: {e}", user.name))
                    })?;
                }
            }
            let mut roles = std::collections::BTreeSet::new();
            for role in &account.roles {
                if !roles.insert(&role.name) {
                    return bad(format!(
                        "role {} is listed twice in {}",
                        role.name, account.id
                    ));
                }
                if !(3600..=43200).contains(&role.max_session_duration) {
                    return bad(format!(
                        "role {}: max_session_duration must be 3600 to 43200 seconds",
                        role.name
                    ));
                }
            }
        }
        for instance in &self.fleet.instances {
            if !is_instance_id(&instance.id) {
                return bad(format!(
                    "instance id {:?} is not i- and 8 or 17 hex digits",
                    instance.id
                ));
            }
            if !instance_ids.insert(&instance.id) {
                return bad(format!("instance {} is listed twice", instance.id));
            }
            if !account_ids.contains(&instance.account) {
                return bad(format!(
                    "instance {} is in account {}, which the scenario does not list",
                    instance.id, instance.account
                ));
            }
            if !self.settings.regions.contains(&instance.region) {
                return bad(format!(
                    "instance {} is in {}, which is not an enabled region",
                    instance.id, instance.region
                ));
            }
            if instance.private_ip.parse::<std::net::Ipv4Addr>().is_err() {
                return bad(format!(
                    "instance {}: private_ip is not an IPv4 address",
                    instance.id
                ));
            }
        }
        for (n, seed) in self.history.iter().enumerate() {
            let at = format!("history entry {} ({:?})", n + 1, seed.event);
            if !account_ids.contains(&seed.account) || !self.settings.regions.contains(&seed.region)
            {
                return bad(format!(
                    "{at}: unknown account {} or region {}",
                    seed.account, seed.region
                ));
            }
            let user = seed
                .principal
                .strip_prefix(&format!("arn:aws:iam::{}:user/", seed.account));
            let role = seed
                .principal
                .strip_prefix(&format!("arn:aws:sts::{}:assumed-role/", seed.account));
            let known = match (user, role) {
                (Some(name), _) => self
                    .accounts
                    .iter()
                    .any(|a| a.id == seed.account && a.users.iter().any(|u| u.name == name)),
                (_, Some(rest)) => rest.split_once('/').is_some_and(|(role, session)| {
                    !session.is_empty()
                        && self
                            .accounts
                            .iter()
                            .any(|a| a.id == seed.account && a.roles.iter().any(|r| r.name == role))
                }),
                _ => false,
            };
            if !known {
                return bad(format!(
                    "{at}: principal {} is not a user or role session of account {}",
                    seed.principal, seed.account
                ));
            }
            if seed.minutes_ago < 0
                || seed
                    .ended_minutes_ago
                    .is_some_and(|e| e < 0 || e > seed.minutes_ago)
            {
                return bad(format!(
                    "{at}: minutes_ago must be positive, and the end after the start"
                ));
            }
            let needs = |present: bool, what: &str| {
                if present {
                    Ok(())
                } else {
                    Err(ScenarioError::Inconsistent(format!("{at}: needs {what}")))
                }
            };
            match seed.event {
                HistoryEvent::StartSession => needs(seed.target.is_some(), "target")?,
                HistoryEvent::ResumeSession | HistoryEvent::TerminateSession => {
                    needs(seed.session_id.is_some(), "session_id")?
                }
                HistoryEvent::AssumeRole => needs(seed.role_arn.is_some(), "role_arn")?,
                HistoryEvent::GetSessionToken => needs(user.is_some(), "an IAM user as principal")?,
            }
        }
        if let Some(demo) = &self.demo {
            let account = self.accounts.iter().find(|a| a.id == demo.account);
            let Some(account) = account else {
                return bad(format!(
                    "demo account {} is not in the scenario",
                    demo.account
                ));
            };
            match account.users.iter().find(|u| u.name == demo.user) {
                Some(user) if user.mfa_device.is_some() => {}
                Some(_) => return bad(format!("demo user {} has no mfa_device", demo.user)),
                None => {
                    return bad(format!(
                        "demo user {} is not in account {}",
                        demo.user, demo.account
                    ));
                }
            }
            if !account.roles.iter().any(|r| r.name == demo.role) {
                return bad(format!(
                    "demo role {} is not in account {}",
                    demo.role, demo.account
                ));
            }
        }
        Ok(())
    }
}

/// Whether `id` is shaped like an EC2 instance id.
pub fn is_instance_id(id: &str) -> bool {
    id.strip_prefix("i-").is_some_and(|hex| {
        (hex.len() == 8 || hex.len() == 17)
            && hex
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_scenario_loads() {
        let scenario = Scenario::default_world();
        assert!(scenario.accounts.len() >= 2);
        assert!(scenario.settings.regions.len() >= 3);
        let instances = scenario.fleet.instances.len();
        assert!(instances >= 60, "{instances} instances");
    }

    #[test]
    fn unknown_keys_and_contradictions_are_errors() {
        let typo = "[[accounts]]\nid = \"123456789012\"\nalais = \"x\"\n";
        assert!(matches!(
            Scenario::from_toml(typo),
            Err(ScenarioError::Syntax(_))
        ));
        let twice = "[[accounts]]\nid = \"123456789012\"\n[[accounts]]\nid = \"123456789012\"\n";
        assert!(matches!(
            Scenario::from_toml(twice),
            Err(ScenarioError::Inconsistent(_))
        ));
        let short = "[[accounts]]\nid = \"1234\"\n";
        assert!(matches!(
            Scenario::from_toml(short),
            Err(ScenarioError::Inconsistent(_))
        ));
    }
}
