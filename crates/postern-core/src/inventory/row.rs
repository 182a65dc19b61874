//! One instance as the inventory shows it, and whether it is within reach (with the first reason
//! it is not).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::credentials::format_unix;
use crate::reach::{Reach, TagVerdict, Who};

/// The oldest SSM Agent that runs Session Manager sessions at all.
pub const MIN_SESSION_AGENT: &str = "2.3.68.0";
/// The oldest SSM Agent that forwards ports to another host (AWS-StartPortForwardingSessionToRemoteHost).
pub const MIN_REMOTE_HOST_AGENT: &str = "3.1.1374.0";

/// What Systems Manager says of an instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum SsmStatus {
    /// The agent pings: sessions can start.
    Online,
    /// The agent stopped pinging recently.
    ConnectionLost,
    /// Registered, but not pinging for a long time.
    Inactive,
    /// Not registered with Systems Manager (no agent, no instance profile, no route).
    NotManaged,
    /// Not known: DescribeInstanceInformation was refused or failed.
    Unknown,
}

impl SsmStatus {
    /// In words.
    pub fn describe(self) -> &'static str {
        match self {
            SsmStatus::Online => "online",
            SsmStatus::ConnectionLost => "connection lost",
            SsmStatus::Inactive => "inactive",
            SsmStatus::NotManaged => "not managed",
            SsmStatus::Unknown => "SSM status unknown",
        }
    }
}

/// Why an instance is out of reach, the first that applies, in this order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case", tag = "code")]
pub enum Unreachable {
    /// Not running (stopped, stopping, pending…).
    NotRunning {
        /// Its EC2 state.
        state: String,
    },
    /// Not registered with Systems Manager.
    NotManaged,
    /// Registered but its agent is not pinging.
    Offline {
        /// Connection lost or inactive.
        status: SsmStatus,
    },
    /// Systems Manager could not be asked.
    SsmStatusUnknown,
    /// Its agent is older than Session Manager needs.
    AgentTooOld {
        /// Its version.
        version: String,
        /// The version needed.
        needed: String,
    },
    /// The tag rules leave it out.
    OutsideTagRules,
    /// The tag rules cannot be read.
    TagRulesInvalid,
    /// Session Manager refused this identity the last time it tried.
    Denied {
        /// When (seconds since the Unix epoch).
        at: u64,
    },
}

impl Unreachable {
    /// In words, for a table or a tooltip.
    pub fn describe(&self) -> String {
        match self {
            Unreachable::NotRunning { state } => state.clone(),
            Unreachable::NotManaged => "not managed by Systems Manager".into(),
            Unreachable::Offline { status } => format!("agent offline ({})", status.describe()),
            Unreachable::SsmStatusUnknown => "SSM status unknown".into(),
            Unreachable::AgentTooOld { version, needed } => {
                format!("agent {version} too old (Session Manager needs {needed})")
            }
            Unreachable::OutsideTagRules => "outside your tag rules".into(),
            Unreachable::TagRulesInvalid => "tag rules cannot be read".into(),
            Unreachable::Denied { at } => format!("denied when last tried ({})", format_unix(*at)),
        }
    }
}

/// One instance (or hybrid node) of one identity and region.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Row {
    /// `i-…`, or `mi-…` for a hybrid node.
    pub id: String,
    /// The `Name` tag (for a hybrid node, its registered name).
    pub name: Option<String>,
    /// The EC2 state (`running`, `stopped`…); `None` for a hybrid node.
    pub state: Option<String>,
    /// The platform (`Linux/UNIX`, `Windows`…).
    pub platform: Option<String>,
    /// The private IPv4 address.
    pub private_ip: Option<String>,
    /// Every tag.
    pub tags: BTreeMap<String, String>,
    /// What Systems Manager says.
    pub ssm_status: SsmStatus,
    /// The SSM Agent's version, when registered.
    pub agent_version: Option<String>,
    /// The agent's last ping (RFC 3339), when registered.
    pub last_ping: Option<String>,
    /// The account id.
    pub account: String,
    /// The account's alias, when one is set.
    pub account_alias: Option<String>,
    /// The region.
    pub region: String,
    /// The profile it was listed with (`environment` for the environment's credentials).
    pub identity: String,
    /// Whether a session can be opened on it, as far as Postern can tell without trying.
    pub reachable: bool,
    /// Why not, when it is not.
    pub unreachable: Option<Unreachable>,
    /// Whether its agent can forward ports to another host.
    pub remote_host_tunnels: bool,
}

impl Row {
    /// A row for instance `id` before anything is known of it but its id: not managed until
    /// Systems Manager says otherwise, not reachable until judged.
    pub fn unlisted(id: &str) -> Self {
        Self {
            id: id.to_owned(),
            name: None,
            state: None,
            platform: None,
            private_ip: None,
            tags: BTreeMap::new(),
            ssm_status: SsmStatus::NotManaged,
            agent_version: None,
            last_ping: None,
            account: String::new(),
            account_alias: None,
            region: String::new(),
            identity: String::new(),
            reachable: false,
            unreachable: None,
            remote_host_tunnels: false,
        }
    }

    /// The reason in words, when it is out of reach.
    pub fn reason(&self) -> Option<String> {
        self.unreachable.as_ref().map(Unreachable::describe)
    }
}

/// What reachability is judged with, besides the row itself.
pub struct Judge<'a> {
    /// Whose view.
    pub who: Who<'a>,
    /// The tag rules.
    pub reach: &'a Reach,
    /// When StartSession last refused this identity, by instance id.
    pub denied: &'a BTreeMap<String, u64>,
}

impl Judge<'_> {
    /// Set `row.reachable` and `row.unreachable`.
    pub fn judge(&self, row: &mut Row) {
        row.remote_host_tunnels = row
            .agent_version
            .as_deref()
            .is_some_and(|v| version_at_least(v, MIN_REMOTE_HOST_AGENT));
        row.unreachable = self.first_reason(row);
        row.reachable = row.unreachable.is_none();
    }

    fn first_reason(&self, row: &Row) -> Option<Unreachable> {
        if let Some(state) = &row.state
            && state != "running"
        {
            return Some(Unreachable::NotRunning {
                state: state.clone(),
            });
        }
        match row.ssm_status {
            SsmStatus::Online => {}
            SsmStatus::NotManaged => return Some(Unreachable::NotManaged),
            SsmStatus::Unknown => return Some(Unreachable::SsmStatusUnknown),
            status @ (SsmStatus::ConnectionLost | SsmStatus::Inactive) => {
                return Some(Unreachable::Offline { status });
            }
        }
        if let Some(version) = &row.agent_version
            && !version_at_least(version, MIN_SESSION_AGENT)
        {
            return Some(Unreachable::AgentTooOld {
                version: version.clone(),
                needed: MIN_SESSION_AGENT.into(),
            });
        }
        match self.reach.judge(&self.who, &row.tags) {
            TagVerdict::Within => {}
            TagVerdict::Outside => return Some(Unreachable::OutsideTagRules),
            TagVerdict::RulesInvalid => return Some(Unreachable::TagRulesInvalid),
        }
        self.denied
            .get(&row.id)
            .map(|&at| Unreachable::Denied { at })
    }
}

/// Whether dotted version `version` is at least `minimum` (numeric parts; junk compares low).
pub fn version_at_least(version: &str, minimum: &str) -> bool {
    let parts = |v: &str| -> Vec<u64> {
        v.trim()
            .split('.')
            .map(|p| p.parse().unwrap_or(0))
            .collect()
    };
    let (mut a, mut b) = (parts(version), parts(minimum));
    let len = a.len().max(b.len());
    a.resize(len, 0);
    b.resize(len, 0);
    a >= b
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> Row {
        Row {
            id: "i-0123456789abcdef0".into(),
            name: Some("web".into()),
            state: Some("running".into()),
            platform: Some("Linux/UNIX".into()),
            private_ip: Some("10.0.0.1".into()),
            tags: BTreeMap::from([("team".to_owned(), "payments".to_owned())]),
            ssm_status: SsmStatus::Online,
            agent_version: Some("3.3.1611.0".into()),
            last_ping: None,
            account: "111111111111".into(),
            account_alias: None,
            region: "eu-west-1".into(),
            identity: "dev".into(),
            reachable: false,
            unreachable: None,
            remote_host_tunnels: false,
        }
    }

    #[test]
    fn the_first_reason_that_applies() {
        let denied = BTreeMap::from([("i-0123456789abcdef0".to_owned(), 1_700_000_000)]);
        let none = BTreeMap::new();
        let reach = Reach::Unlimited;
        let judge = |row: &mut Row, denied: &BTreeMap<String, u64>| {
            Judge {
                who: Who {
                    account: "111111111111",
                    role: Some("dev"),
                },
                reach: &reach,
                denied,
            }
            .judge(row);
        };
        let mut r = row();
        judge(&mut r, &none);
        assert!(r.reachable && r.unreachable.is_none() && r.remote_host_tunnels);
        judge(&mut r, &denied);
        assert_eq!(
            r.reason().as_deref(),
            Some("denied when last tried (2023-11-14T22:13:20Z)")
        );
        r.agent_version = Some("2.3.50.0".into());
        judge(&mut r, &denied);
        assert!(matches!(
            r.unreachable,
            Some(Unreachable::AgentTooOld { .. })
        ));
        assert!(!r.remote_host_tunnels);
        r.ssm_status = SsmStatus::ConnectionLost;
        judge(&mut r, &denied);
        assert_eq!(
            r.reason().as_deref(),
            Some("agent offline (connection lost)")
        );
        r.state = Some("stopped".into());
        judge(&mut r, &denied);
        assert_eq!(r.reason().as_deref(), Some("stopped"));
        assert!(!r.reachable);
        // A hybrid node has no EC2 state.
        let mut hybrid = row();
        hybrid.state = None;
        judge(&mut hybrid, &none);
        assert!(hybrid.reachable);
    }

    #[test]
    fn versions_compare_by_number() {
        assert!(version_at_least("3.1.1374.0", MIN_REMOTE_HOST_AGENT));
        assert!(version_at_least("3.10.0.0", "3.9.9999.0"));
        assert!(!version_at_least("3.0.100.0", MIN_REMOTE_HOST_AGENT));
        assert!(version_at_least("2.3.68", MIN_SESSION_AGENT));
        assert!(!version_at_least("garbage", MIN_SESSION_AGENT));
    }
}
