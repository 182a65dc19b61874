//! Fleets of any size: `postern-sandbox generate` writes the default scenario with a generated
//! fleet in place of its 60 instances, for scale tests (10,000 instances and more).
//!
//! The default scenario's own fleet was written by this generator (60 instances, seed 2026): four
//! teams in turn, dev and staging in the first account and prod in the second, spread evenly over
//! every enabled region; in every ten instances of an account and region, one offline, one
//! unmanaged, one stopped and three on older agents; some Windows hosts. The same seed always
//! writes the same fleet.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use toml::{Table, Value};

use crate::scenario::DEFAULT_TOML;

const TEAMS: &[(&str, &[&str])] = &[
    ("payments", &["api", "worker", "db-proxy"]),
    ("search", &["indexer", "query"]),
    ("data", &["etl", "jupyter"]),
    ("platform", &["bastion-legacy", "ci-runner", "monitor"]),
];
const OWNERS: &[&str] = &["alice", "bob", "carol", "dave"];

/// Why a fleet could not be generated.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    /// The built-in scenario could not be read as TOML (a bug in the crate).
    #[error("the default scenario is not valid TOML: {0}")]
    Default(#[from] toml::de::Error),
    /// The scenario could not be written out.
    #[error("cannot write the scenario: {0}")]
    Write(#[from] toml::ser::Error),
}

/// Regions a generated scenario may enable, the default world's first.
const REGIONS: &[&str] = &[
    "us-east-1",
    "eu-west-1",
    "ap-southeast-2",
    "us-west-2",
    "eu-central-1",
    "ap-northeast-1",
    "sa-east-1",
    "ca-central-1",
    "eu-north-1",
    "ap-south-1",
];

/// The shape of a generated scenario.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    /// Instances in all.
    pub instances: usize,
    /// Enabled regions (the default world's three when `None`; at most 10).
    pub regions: Option<usize>,
    /// Accounts (the default world's two when `None`): the demo account, then copies of the
    /// prod account (same roles, trusting the demo account) with ids of their own.
    pub accounts: Option<usize>,
    /// Past sessions to seed in CloudTrail (and DescribeSessions, for the last 30 days), of
    /// several people: the demo user, erin on the same developer role, carol as admin, and
    /// the demo user again on prod-ops in the other accounts.
    pub sessions: usize,
    /// The seed: the same seed writes the same fleet.
    pub seed: u64,
}

/// The default scenario, with `count` generated instances as its fleet, as TOML text.
pub fn generate(count: usize, seed: u64) -> Result<String, GenerateError> {
    generate_shaped(Shape {
        instances: count,
        regions: None,
        accounts: None,
        sessions: 0,
        seed,
    })
}

/// The default scenario reshaped: its regions and accounts, and a generated fleet.
pub fn generate_shaped(shape: Shape) -> Result<String, GenerateError> {
    let Shape {
        instances: count,
        seed,
        ..
    } = shape;
    let mut scenario: Table = toml::from_str(DEFAULT_TOML)?;
    if let Some(n) = shape.regions {
        let n = n.clamp(1, REGIONS.len());
        if let Some(settings) = scenario.get_mut("settings").and_then(Value::as_table_mut) {
            settings.insert(
                "regions".into(),
                Value::Array(
                    REGIONS[..n]
                        .iter()
                        .map(|r| Value::String((*r).into()))
                        .collect(),
                ),
            );
        }
    }
    if let Some(n) = shape.accounts
        && let Some(list) = scenario.get_mut("accounts").and_then(Value::as_array_mut)
    {
        let n = n.max(1);
        if list.len() > n {
            list.truncate(n);
        }
        let template = list.get(1).cloned();
        let mut next = list.len();
        while list.len() < n {
            let Some(Value::Table(mut copy)) = template.clone() else {
                break;
            };
            next += 1;
            copy.insert("id".into(), Value::String(format!("4567890{next:05}")));
            copy.insert(
                "alias".into(),
                Value::String(format!("postern-prod-{next}")),
            );
            list.push(Value::Table(copy));
        }
    }
    let accounts: Vec<String> = scenario
        .get("accounts")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|a| a.get("id").and_then(Value::as_str).map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let regions: Vec<String> = scenario
        .get("settings")
        .and_then(|s| s.get("regions"))
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|r| r.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let instances = instances(count, seed, &accounts, &regions);
    if shape.sessions > 0 {
        let seeded = sessions(shape.sessions, seed, &accounts, &regions, &instances);
        if let Some(history) = scenario.get_mut("history").and_then(Value::as_array_mut) {
            history.extend(seeded.into_iter().map(Value::Table));
        }
    }
    let mut fleet = Table::new();
    fleet.insert(
        "instances".into(),
        Value::Array(instances.into_iter().map(Value::Table).collect()),
    );
    scenario.insert("fleet".into(), Value::Table(fleet));
    let header = format!(
        "# A generated scenario: the default world with {count} instances (seed {seed}).\n\
         # Written by `postern-sandbox generate`; see crates/postern-sandbox/src/scenario.rs.\n\n"
    );
    Ok(header + &toml::to_string(&scenario)?)
}

/// `count` past sessions spread over `accounts` and `regions` (on `instances` there), up to 85
/// days back: a quarter each of the demo user and erin on the developer role, carol as admin,
/// and in the other accounts the demo user on prod-ops.
pub fn sessions(
    count: usize,
    seed: u64,
    accounts: &[String],
    regions: &[String],
    instances: &[Table],
) -> Vec<Table> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5e55_1015);
    let mut out = Vec::with_capacity(count);
    if accounts.is_empty() || regions.is_empty() {
        return out;
    }
    let home = &accounts[0];
    for n in 0..count {
        let account = &accounts[n % accounts.len()];
        let region = &regions[(n / accounts.len()) % regions.len()];
        let (role, session, source) = if account == home {
            [
                ("developer", "demo", "demo"),
                ("developer", "erin", "erin"),
                ("admin", "carol", "carol"),
            ][rng.random_range(0..3)]
        } else {
            [("prod-ops", "demo", "demo"), ("prod-ops", "erin", "erin")][rng.random_range(0..2)]
        };
        let target = instances
            .iter()
            .filter(|i| {
                i.get("account").and_then(Value::as_str) == Some(account.as_str())
                    && i.get("region").and_then(Value::as_str) == Some(region.as_str())
            })
            .nth(rng.random_range(0..8))
            .and_then(|i| i.get("id").and_then(Value::as_str))
            .map_or_else(|| format!("i-0{:016x}", rng.random::<u64>()), str::to_owned);
        let minutes_ago: i64 = rng.random_range(30..85 * 24 * 60);
        let mut entry = Table::new();
        let mut put = |key: &str, value: Value| {
            entry.insert(key.to_owned(), value);
        };
        put("event", Value::String("StartSession".into()));
        put("account", Value::String(account.clone()));
        put("region", Value::String(region.clone()));
        put(
            "principal",
            Value::String(format!(
                "arn:aws:sts::{account}:assumed-role/{role}/{session}"
            )),
        );
        put("source_identity", Value::String(source.into()));
        put("target", Value::String(target));
        match n % 4 {
            1 => {
                put(
                    "document",
                    Value::String("AWS-StartPortForwardingSession".into()),
                );
                let mut parameters = Table::new();
                parameters.insert(
                    "portNumber".into(),
                    Value::Array(vec![Value::String("5432".into())]),
                );
                put("parameters", Value::Table(parameters));
            }
            3 => put("document", Value::String("AWS-StartSSHSession".into())),
            _ => {}
        }
        put("minutes_ago", Value::Integer(minutes_ago));
        put(
            "ended_minutes_ago",
            Value::Integer(minutes_ago - rng.random_range(1..30)),
        );
        out.push(entry);
    }
    out
}

/// `count` instances spread over `accounts` and `regions`.
pub fn instances(count: usize, seed: u64, accounts: &[String], regions: &[String]) -> Vec<Table> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out = Vec::with_capacity(count);
    if accounts.is_empty() || regions.is_empty() {
        return out;
    }
    let cells = accounts.len() * regions.len();
    for n in 0..count {
        // Instances go round the (account, region) cells; `k` counts within a cell, so every
        // cell gets the same mix: teams in turn, and the same share of special cases.
        let cell = n % cells;
        let k = n / cells;
        let account = &accounts[cell % accounts.len()];
        let region = &regions[cell / accounts.len()];
        let (team, services) = TEAMS[(k + cell) % TEAMS.len()];
        let service = services[(k / TEAMS.len()) % services.len()];
        let env = if cell.is_multiple_of(accounts.len()) {
            ["dev", "staging"][k % 2]
        } else {
            "prod"
        };
        let id = format!("i-0{:016x}", rng.random::<u64>());
        let mut instance = Table::new();
        let mut put = |key: &str, value: Value| {
            instance.insert(key.to_owned(), value);
        };
        put("account", Value::String(account.clone()));
        put("id", Value::String(id));
        put("region", Value::String(region.clone()));
        put(
            "name",
            Value::String(format!("{team}-{service}-{env}-{}", k + 1)),
        );
        let mut tags = Table::new();
        tags.insert("team".into(), Value::String(team.into()));
        tags.insert("env".into(), Value::String(env.into()));
        tags.insert(
            "owner".into(),
            Value::String(OWNERS[rng.random_range(0..OWNERS.len())].into()),
        );
        put("tags", Value::Table(tags));
        put(
            "private_ip",
            Value::String(format!(
                "10.{}.{}.{}",
                cell + 1,
                (k / 250) % 250 + 1,
                k % 250 + 4
            )),
        );
        match k % 10 {
            1 => put("ssm", Value::String("connection-lost".into())),
            5 => put("ssm", Value::String("unmanaged".into())),
            7 => {
                put("state", Value::String("stopped".into()));
                put("ssm", Value::String("inactive".into()));
            }
            6 => put("agent_version", Value::String("3.1.1476.0".into())),
            8 => put("agent_version", Value::String("3.0.100.0".into())),
            9 => put("agent_version", Value::String("2.3.722.0".into())),
            _ => {}
        }
        if k % 10 == 4 && cell % 3 == 1 {
            put("platform", Value::String("windows".into()));
            put("instance_type", Value::String("t3.large".into()));
        }
        out.push(instance);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Scenario;

    #[test]
    fn generated_scenarios_load_and_repeat() {
        let text = generate(500, 7).expect("generates");
        let scenario = Scenario::from_toml(&text).expect("loads");
        assert_eq!(scenario.fleet.instances.len(), 500);
        assert_eq!(scenario.accounts.len(), 2);
        assert_eq!(
            text,
            generate(500, 7).expect("generates"),
            "same seed, same fleet"
        );
        assert_ne!(text, generate(500, 8).expect("generates"));
        let regions: std::collections::BTreeSet<_> = scenario
            .fleet
            .instances
            .iter()
            .map(|i| i.region.as_str())
            .collect();
        assert_eq!(regions.len(), 3);
    }

    #[test]
    fn regions_and_accounts_as_asked() {
        let text = generate_shaped(Shape {
            instances: 800,
            regions: Some(4),
            accounts: Some(3),
            sessions: 60,
            seed: 1,
        })
        .expect("generates");
        let scenario = Scenario::from_toml(&text).expect("loads");
        let default = Scenario::from_toml(DEFAULT_TOML).expect("loads");
        assert_eq!(scenario.history.len(), default.history.len() + 60);
        let people: std::collections::BTreeSet<_> = scenario.history[default.history.len()..]
            .iter()
            .map(|h| h.principal.rsplit('/').next().unwrap_or_default())
            .collect();
        assert!(people.len() >= 3, "several people: {people:?}");
        assert_eq!(scenario.settings.regions.len(), 4);
        assert_eq!(scenario.accounts.len(), 3);
        let cells: std::collections::BTreeSet<_> = scenario
            .fleet
            .instances
            .iter()
            .map(|i| (i.account.as_str(), i.region.as_str()))
            .collect();
        assert_eq!(cells.len(), 12, "every account in every region");
        // The third account is a copy of prod: its roles trust the demo account.
        let third = &scenario.accounts[2];
        assert_ne!(third.id, scenario.accounts[1].id);
        assert!(third.roles.iter().any(|r| r.name == "prod-readonly"));
    }
}
