//! Searching the inventory: words match the name, id and private IP (any part, any case);
//! `tag:KEY=VALUE` matches a tag (`*` wildcards in the value, `tag:KEY` for any value), and
//! `state:`, `region:`, `account:` (id or alias) and `identity:` filter. Every term must match.
//!
//! `web tag:team=pay* region:eu-west-1` lists the instances in eu-west-1 whose name, id or IP
//! contains "web" and whose `team` tag starts with "pay".

use crate::inventory::row::Row;
use crate::reach::wildcard;

/// One term of a query.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Term {
    Text(String),
    Tag { key: String, value: Option<String> },
    State(String),
    Region(String),
    Account(String),
    Identity(String),
}

/// A parsed query.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Query {
    terms: Vec<Term>,
}

impl Query {
    /// Read a query; a term it does not know (`foo:bar`) is searched as text.
    pub fn parse(text: &str) -> Self {
        let terms = text
            .split_whitespace()
            .map(|word| {
                let (field, rest) = word.split_once(':').unwrap_or(("", word));
                match field {
                    "tag" => match rest.split_once('=') {
                        Some((key, value)) => Term::Tag {
                            key: key.to_owned(),
                            value: Some(value.to_owned()),
                        },
                        None => Term::Tag {
                            key: rest.to_owned(),
                            value: None,
                        },
                    },
                    "state" => Term::State(rest.to_lowercase()),
                    "region" => Term::Region(rest.to_lowercase()),
                    "account" => Term::Account(rest.to_lowercase()),
                    "identity" => Term::Identity(rest.to_owned()),
                    _ => Term::Text(word.to_lowercase()),
                }
            })
            .collect();
        Self { terms }
    }

    /// Whether nothing is asked.
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// Whether `row` matches every term.
    pub fn matches(&self, row: &Row) -> bool {
        self.terms.iter().all(|term| match term {
            Term::Text(text) => {
                row.id.to_lowercase().contains(text)
                    || row
                        .name
                        .as_deref()
                        .is_some_and(|n| n.to_lowercase().contains(text))
                    || row
                        .private_ip
                        .as_deref()
                        .is_some_and(|ip| ip.contains(text))
            }
            Term::Tag { key, value } => row.tags.get(key).is_some_and(|v| match value {
                None => true,
                Some(pattern) => wildcard(pattern, v),
            }),
            Term::State(state) => row.state.as_deref().unwrap_or("hybrid") == state,
            Term::Region(region) => wildcard(region, &row.region),
            Term::Account(account) => {
                row.account == *account
                    || row
                        .account_alias
                        .as_deref()
                        .is_some_and(|a| wildcard(account, &a.to_lowercase()))
            }
            Term::Identity(identity) => row.identity == *identity,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::inventory::row::SsmStatus;

    fn row() -> Row {
        Row {
            id: "i-0abc".into(),
            name: Some("Payments-API-1".into()),
            state: Some("running".into()),
            platform: None,
            private_ip: Some("10.1.2.3".into()),
            tags: BTreeMap::from([("team".to_owned(), "payments".to_owned())]),
            ssm_status: SsmStatus::Online,
            agent_version: None,
            last_ping: None,
            account: "111111111111".into(),
            account_alias: Some("dev".into()),
            region: "eu-west-1".into(),
            identity: "dev".into(),
            reachable: true,
            unreachable: None,
            remote_host_tunnels: true,
        }
    }

    #[test]
    fn terms() {
        let r = row();
        let m = |q: &str| Query::parse(q).matches(&r);
        assert!(m(""));
        assert!(m("api"));
        assert!(m("10.1.2"));
        assert!(m("i-0ab"));
        assert!(m("tag:team=pay*"));
        assert!(m("tag:team"));
        assert!(!m("tag:team=core"));
        assert!(!m("tag:env"));
        assert!(m("state:running region:eu-* account:dev identity:dev"));
        assert!(m("account:111111111111"));
        assert!(!m("state:stopped"));
        assert!(!m("api region:us-east-1"));
        assert!(!m("web"));
    }
}
