//! `postern ls` and instance names: what the inventory lists on the sandbox, why an instance is
//! out of reach, tag rules (the user's and the policy's), the cache, and naming an instance by
//! its Name tag or private IP.

use std::collections::BTreeMap;

use postern_e2e::{TempDir, postern, role_env};
use postern_sandbox::scenario::{InstanceState, Scenario, SsmStatus};
use serde_json::Value;

const DEMO_ACCOUNT: &str = "210987654321";

/// The developer role's environment, with its own Postern folder and no policy (or `policy`).
async fn env_with(
    sandbox: &postern_sandbox::Sandbox,
    home: &TempDir,
    settings: Option<&str>,
    policy: Option<&str>,
) -> Vec<(String, String)> {
    let mut env = role_env(sandbox).await;
    env.push(("POSTERN_HOME".into(), home.0.display().to_string()));
    if let Some(settings) = settings {
        std::fs::write(home.join("settings.toml"), settings).expect("settings");
    }
    let policy_path = match policy {
        Some(text) => {
            let path = home.join("policy.toml");
            std::fs::write(&path, text).expect("policy");
            path.display().to_string()
        }
        None => String::new(),
    };
    env.push(("POSTERN_POLICY".into(), policy_path));
    env
}

async fn ls_json(env: &[(String, String)], args: &[&str]) -> (Option<i32>, Value, String) {
    let mut all = vec!["ls", "--json", "--refresh"];
    all.extend_from_slice(args);
    let out = postern(env, &all, b"").await;
    let json: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("ls --json printed JSON ({e}): {out:?}"));
    (
        out.status.code(),
        json,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Each listed instance: id → (reachable, reason code).
fn verdicts(json: &Value) -> BTreeMap<String, (bool, Option<String>)> {
    let rows = json["instances"].as_array().expect("instances");
    let mut out = BTreeMap::new();
    for row in rows {
        let id = row["id"].as_str().expect("id").to_owned();
        let verdict = (
            row["reachable"].as_bool().expect("reachable"),
            row["reason_code"].as_str().map(str::to_owned),
        );
        assert!(
            out.insert(id.clone(), verdict).is_none(),
            "{id} listed twice"
        );
    }
    out
}

/// What the scenario says of the demo account's instances in `region`: id → reason code.
fn expected(region: &str) -> BTreeMap<String, Option<&'static str>> {
    Scenario::default_world()
        .fleet
        .instances
        .into_iter()
        .filter(|i| i.account == DEMO_ACCOUNT && i.region == region)
        .filter(|i| i.state != InstanceState::Terminated)
        .map(|i| (i.id.clone(), reason_for(&i)))
        .collect()
}

/// The reason code the scenario implies for an instance (with no tag rules or refusals).
fn reason_for(instance: &postern_sandbox::scenario::InstanceSpec) -> Option<&'static str> {
    if instance.state != InstanceState::Running {
        return Some("not_running");
    }
    match instance.ssm {
        SsmStatus::Online => None,
        SsmStatus::Unmanaged => Some("not_managed"),
        SsmStatus::ConnectionLost | SsmStatus::Inactive => Some("offline"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_instance_once_with_the_first_reason_it_is_out_of_reach() {
    let sandbox = postern_e2e::sandbox().await;
    let home = TempDir::new("ls-world");
    let env = env_with(&sandbox, &home, None, None).await;
    for region in ["us-east-1", "eu-west-1"] {
        let (code, json, stderr) = ls_json(&env, &["--region", region]).await;
        assert_eq!(code, Some(0), "{stderr}");
        assert_eq!(json["complete"], true);
        let listed = verdicts(&json);
        let expected = expected(region);
        assert_eq!(
            listed.keys().collect::<Vec<_>>(),
            expected.keys().collect::<Vec<_>>(),
            "{region}: every instance of the account and region, once"
        );
        for (id, reason) in &expected {
            let (reachable, code) = &listed[id];
            assert_eq!(code.as_deref(), *reason, "{region} {id}");
            assert_eq!(*reachable, reason.is_none(), "{region} {id}");
        }
        assert!(
            expected.values().any(|r| r.is_none()) && expected.values().any(|r| r.is_some()),
            "{region}: the world has reachable and unreachable instances"
        );
        let row = &json["instances"][0];
        for field in [
            "id",
            "name",
            "state",
            "account",
            "region",
            "identity",
            "reachable",
            "reason",
            "ssm_status",
            "platform",
            "private_ip",
            "tags",
        ] {
            assert!(row.get(field).is_some(), "{field} in {row}");
        }
        assert_eq!(row["account"], DEMO_ACCOUNT);
        assert_eq!(row["region"], region);
        assert_eq!(row["identity"], "environment");
    }

    // The table: reachable only, then --all with the reasons.
    let out = postern(&env, &["ls"], b"").await;
    let table = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(table.starts_with("NAME "), "{table}");
    assert!(table.contains("payments-api-dev-1"), "{table}");
    assert!(!table.contains("not managed"), "{table}");
    assert!(table.contains("--all shows them"), "{table}");
    let out = postern(&env, &["ls", "--all", "search"], b"").await;
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("agent offline (connection lost)"), "{table}");
    assert!(!table.contains("payments"), "the query filters: {table}");
}

#[tokio::test(flavor = "multi_thread")]
async fn tag_rules_the_policy_manages_and_rules_that_cannot_be_read() {
    let sandbox = postern_e2e::sandbox().await;
    let online: Vec<(String, String)> = Scenario::default_world()
        .fleet
        .instances
        .into_iter()
        .filter(|i| {
            i.account == DEMO_ACCOUNT
                && i.region == "us-east-1"
                && i.state == InstanceState::Running
                && i.ssm == SsmStatus::Online
        })
        .map(|i| (i.id, i.tags.get("team").cloned().unwrap_or_default()))
        .collect();
    let within = |json: &Value| -> Vec<String> {
        verdicts(json)
            .into_iter()
            .filter(|(_, (reachable, _))| *reachable)
            .map(|(id, _)| id)
            .collect()
    };
    let teams = |wanted: &[&str]| -> Vec<String> {
        let mut ids: Vec<String> = online
            .iter()
            .filter(|(_, team)| wanted.contains(&team.as_str()))
            .map(|(id, _)| id.clone())
            .collect();
        ids.sort();
        ids
    };

    // The user's rules: a wildcard, and a rule scoped to another account that does not apply.
    let home = TempDir::new("ls-rules");
    let settings = r#"
[[inventory.reach]]
tags = { team = ["pay*", "data"], env = "*" }

[[inventory.reach]]
account = "345678901234"
tags = {}
"#;
    let env = env_with(&sandbox, &home, Some(settings), None).await;
    let (code, json, stderr) = ls_json(&env, &[]).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(within(&json), teams(&["payments", "data"]));
    let outside = verdicts(&json)
        .into_values()
        .filter(|(_, code)| code.as_deref() == Some("outside_tag_rules"))
        .count();
    assert_eq!(outside, teams(&["search", "platform"]).len());

    // The policy's rule replaces the user's: managed.
    let policy = "[[inventory.reach]]\ntags = { team = \"search\" }\n";
    let env = env_with(&sandbox, &home, Some(settings), Some(policy)).await;
    let (_, json, _) = ls_json(&env, &[]).await;
    assert_eq!(within(&json), teams(&["search"]));

    // A rule that cannot be read: its place, and nothing within reach.
    let broken = "[inventory]\nregions = [\"us-east-1\"]\n\n[[inventory.reach]]\ntags = { team = [\"payments\", 7] }\n";
    let env = env_with(&sandbox, &home, Some(broken), None).await;
    let (code, json, stderr) = ls_json(&env, &[]).await;
    assert_eq!(code, Some(1), "a broken rule fails the command");
    assert!(
        stderr.contains("settings.toml:5:10: tag `team`: values must be strings"),
        "{stderr}"
    );
    assert!(stderr.contains("no instance is within reach"), "{stderr}");
    assert!(within(&json).is_empty());
    assert!(
        verdicts(&json)
            .into_values()
            .any(|(_, code)| code.as_deref() == Some("tag_rules_invalid"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cache_answers_at_once_and_a_refused_session_is_remembered() {
    let sandbox = postern_e2e::sandbox().await;
    let home = TempDir::new("ls-cache");
    let env = env_with(&sandbox, &home, None, None).await;
    let (_, first, _) = ls_json(&env, &[]).await;
    // Without --refresh, a list younger than a minute comes from the cache.
    let before = sandbox.requests_served();
    let out = postern(&env, &["ls", "--json"], b"").await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let cached: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(verdicts(&cached), verdicts(&first));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("s ago (--refresh to list again)"),
        "{out:?}"
    );
    // Only the identity's credentials were checked (no listing).
    let calls = sandbox.requests_served() - before;
    assert!(calls <= 1, "{calls} calls for a cached list");
    // The cache answers only what it was asked: another region is listed, not taken from it.
    let out = postern(&env, &["ls", "--json", "--region", "eu-west-1"], b"").await;
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("s ago"),
        "{out:?}"
    );
    let other: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(
        other["instances"]
            .as_array()
            .is_some_and(|rows| !rows.is_empty() && rows.iter().all(|r| r["region"] == "eu-west-1")),
        "{other}"
    );
    assert_eq!(other["parts"][0]["region"], "eu-west-1");
    // …and the first request is still answered from the cache, with only its own region.
    let out = postern(&env, &["ls", "--json"], b"").await;
    let again: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(verdicts(&again), verdicts(&first));
    // Credentials AWS refuses: the identity cannot be listed; its last list shows, flagged.
    let mut refused = env.clone();
    for (key, value) in &mut refused {
        if key == "AWS_SECRET_ACCESS_KEY" {
            *value = "not-the-secret".into();
        }
    }
    let out = postern(&refused, &["ls", "--json", "--refresh"], b"").await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot list environment") && stderr.contains("(showing the last list)"),
        "{stderr}"
    );
    let kept: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(kept["complete"], false);
    assert_eq!(verdicts(&kept), verdicts(&first));
    let cache = std::fs::read_to_string(home.join("inventory.json")).expect("cache");
    for secret in [&env[1].1, &env[2].1, &env[3].1] {
        assert!(
            !cache.contains(secret.as_str()),
            "no credentials in the cache"
        );
    }

    // A data team instance: the developer role may not start sessions there.
    let data = postern_e2e::instance("data");
    let out = postern(&env, &["run", &data, "--", "true"], b"").await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let (_, json, _) = ls_json(&env, &[]).await;
    assert_eq!(
        verdicts(&json)[&data],
        (false, Some("denied".to_owned())),
        "denied when last tried"
    );
    let row = json["instances"]
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["id"] == data.as_str()))
        .expect("row");
    assert!(
        row["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("denied when last tried (20")),
        "{row}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_instance_by_name_or_private_ip() {
    let sandbox = postern_e2e::sandbox().await;
    let home = TempDir::new("ls-names");
    let env = env_with(&sandbox, &home, None, None).await;
    let world = Scenario::default_world();
    let target = world
        .fleet
        .instances
        .iter()
        .find(|i| i.id == postern_e2e::instance("payments"))
        .expect("instance");
    let name = target.name.clone().expect("a Name");
    for given in [name.as_str(), target.private_ip.as_str()] {
        let out = postern(&env, &["run", given, "--", "echo", "hi"], b"").await;
        assert_eq!(out.status.code(), Some(0), "{given}: {out:?}");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "hi\n");
    }
    let out = postern(&env, &["run", "no-such-host", "--", "true"], b"").await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no instance is named \"no-such-host\"") && stderr.contains("us-east-1"),
        "{stderr}"
    );
    let stopped = world
        .fleet
        .instances
        .iter()
        .find(|i| {
            i.account == DEMO_ACCOUNT
                && i.region == "us-east-1"
                && i.state == InstanceState::Stopped
        })
        .expect("a stopped instance");
    let out = postern(&env, &["run", &stopped.private_ip, "--", "true"], b"").await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("stopped") && stderr.contains("start it first"),
        "{stderr}"
    );
    // Something that looks like an id but is not one is bad usage, before any call.
    let out = postern(&env, &["run", "i-nothex", "--", "true"], b"").await;
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

/// The scale test: 10,000 instances in 4 regions and 2 accounts, listed by two identities (one
/// per account) with SSM's DescribeInstanceInformation throttled hard.
#[tokio::test(flavor = "multi_thread")]
async fn ten_thousand_instances_in_four_regions_and_two_accounts_while_throttled() {
    use std::sync::Arc;

    use postern_core::inventory::listing::{Event, Limits, Listing, Request, Scope};
    use postern_core::reach::Reach;
    use postern_core::settings::Regions;
    use postern_sandbox::throttle::RateLimit;

    let mut scenario = postern_e2e::big_fleet();
    scenario.settings.rate_limits.insert(
        "DescribeInstanceInformation".into(),
        RateLimit {
            burst: 5.0,
            per_second: 20.0,
        },
    );
    let regions = scenario.settings.regions.clone();
    assert_eq!(regions.len(), 4);
    let sandbox = Arc::new(
        postern_sandbox::Sandbox::builder(scenario.clone())
            .start()
            .await
            .expect("sandbox"),
    );
    let home = TempDir::new("fleet-10k");
    let resolver = Arc::new(postern_e2e::demo_resolver(
        &sandbox,
        &home,
        Arc::new(postern_e2e::SandboxDevice(sandbox.clone())),
    ));
    let request = || Request {
        resolver: resolver.clone(),
        scopes: ["developer", "prod-ops"]
            .iter()
            .map(|profile| Scope {
                identity: (*profile).to_owned(),
                selection: postern_core::credentials::Selection::Profile((*profile).to_owned()),
                regions: Regions::Listed(regions.clone()),
            })
            .collect(),
        profile_regions: Vec::new(),
        reach: Reach::Unlimited,
        aliases: BTreeMap::new(),
        denied: BTreeMap::new(),
        limits: Limits {
            first_backoff: std::time::Duration::from_millis(20),
            ..Limits::default()
        },
    };
    // The buckets throttle a fast machine; the first 40 calls are refused on any machine.
    sandbox.refuse_next_calls("DescribeInstanceInformation", 40);
    let before = sandbox.requests_served();
    let mut listing = Listing::start(request());
    let mut parts = Vec::new();
    let mut progress = Vec::new();
    while let Some(event) = listing.next().await {
        match event {
            Event::Progress(p) => progress.push(p),
            Event::Part(part) => parts.push(part),
        }
    }
    assert_eq!(parts.len(), 8, "2 identities × 4 regions");
    for part in &parts {
        assert!(
            part.problem.is_none(),
            "{}/{}: {:?}",
            part.identity,
            part.region,
            part.problem
        );
    }
    let last = progress.last().expect("progress");
    assert_eq!((last.done, last.total), (8, 8));
    let refused = sandbox.throttled_calls();
    assert!(
        progress.iter().any(|p| p.throttled > 0),
        "throttling shows as progress (the sandbox refused {refused:?})"
    );
    assert!(
        refused
            .get("DescribeInstanceInformation")
            .copied()
            .unwrap_or(0)
            >= 40,
        "the sandbox did throttle: {refused:?}"
    );

    // Every instance of the two accounts, once, with the reason the scenario implies.
    let mut listed: BTreeMap<String, (bool, Option<String>)> = BTreeMap::new();
    for row in parts.iter().flat_map(|p| &p.rows) {
        let reason = row.unreachable.as_ref().map(|u| {
            serde_json::to_value(u).expect("json")["code"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        });
        assert!(
            listed
                .insert(row.id.clone(), (row.reachable, reason))
                .is_none(),
            "{} listed twice",
            row.id
        );
    }
    let expected: BTreeMap<String, Option<&str>> = scenario
        .fleet
        .instances
        .iter()
        .map(|i| (i.id.clone(), reason_for(i)))
        .collect();
    assert_eq!(listed.len(), 10_000);
    assert_eq!(expected.len(), 10_000);
    for (id, reason) in &expected {
        let (reachable, code) = listed.get(id).unwrap_or_else(|| panic!("{id} not listed"));
        assert_eq!(code.as_deref(), *reason, "{id}");
        assert_eq!(*reachable, reason.is_none(), "{id}");
    }

    let full = sandbox.requests_served() - before;

    // Dropping a listing cancels it. With every DescribeInstanceInformation slowed to 300 ms a
    // listing takes seconds; dropped after half a second, its calls stop: the count settles
    // (no new call for a second) far below a whole listing's.
    sandbox.set_latency(
        "DescribeInstanceInformation",
        std::time::Duration::from_millis(300),
    );
    let before = sandbox.requests_served();
    let listing = Listing::start(request());
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    drop(listing);
    let mut seen = sandbox.requests_served();
    let mut quiet_since = std::time::Instant::now();
    let started = std::time::Instant::now();
    while quiet_since.elapsed() < std::time::Duration::from_secs(1) {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "calls kept coming after the listing was dropped"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let now = sandbox.requests_served();
        if now != seen {
            seen = now;
            quiet_since = std::time::Instant::now();
        }
    }
    let cancelled = seen - before;
    assert!(
        cancelled * 4 < full,
        "a dropped listing made {cancelled} calls, a whole one {full}"
    );
}
