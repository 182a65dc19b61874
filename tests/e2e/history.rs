//! `postern history`: the sessions a person opened show at once (Postern's journal), are joined
//! to CloudTrail's record once it is delivered, and another person's sessions never show, even
//! on the same role, even under the same role session name. Throttling is waited out.

use std::collections::BTreeSet;
use std::time::Duration;

use aws_sdk_cloudtrail::types::{LookupAttribute, LookupAttributeKey};
use postern_e2e::{DEVELOPER, TempDir, env_of, person_role_credentials, postern};
use serde_json::Value;

const DEMO_ACCOUNT: &str = "210987654321";

/// `person`'s environment on the developer role (SourceIdentity = their name, as Postern
/// assumes roles), with a Postern folder of their own and `settings`.
async fn person_env(
    sandbox: &postern_sandbox::Sandbox,
    person: &str,
    home: &TempDir,
    settings: Option<&str>,
) -> Vec<(String, String)> {
    let credentials =
        person_role_credentials(sandbox, person, DEVELOPER, person, Some(person)).await;
    let mut env = env_of(sandbox, &credentials);
    env.push(("POSTERN_HOME".into(), home.0.display().to_string()));
    env.push(("POSTERN_POLICY".into(), String::new()));
    if let Some(settings) = settings {
        std::fs::write(home.join("settings.toml"), settings).expect("settings");
    }
    env
}

async fn history(env: &[(String, String)], args: &[&str]) -> (Option<i32>, Value, String) {
    let mut all = vec!["history", "--json"];
    all.extend_from_slice(args);
    let out = postern(env, &all, b"").await;
    let json: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("history --json printed JSON ({e}): {out:?}"));
    (
        out.status.code(),
        json,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn sessions(json: &Value) -> &Vec<Value> {
    json["sessions"].as_array().expect("sessions")
}

fn find<'a>(json: &'a Value, id: &str) -> Option<&'a Value> {
    sessions(json).iter().find(|s| s["session_id"] == id)
}

fn has_source(session: &Value, source: &str) -> bool {
    session["sources"]
        .as_array()
        .is_some_and(|list| list.iter().any(|s| s == source))
}

/// The ids of the sessions CloudTrail says `person` (by SourceIdentity) started in us-east-1,
/// read independently of Postern, straight from LookupEvents.
async fn started_by(sandbox: &postern_sandbox::Sandbox, person: &str) -> BTreeSet<String> {
    let credentials = postern_e2e::role_credentials(sandbox, DEVELOPER, "auditor").await;
    let config = aws_sdk_cloudtrail::Config::builder()
        .behavior_version(aws_sdk_cloudtrail::config::BehaviorVersion::latest())
        .region(aws_sdk_cloudtrail::config::Region::new("us-east-1"))
        .endpoint_url(sandbox.endpoint())
        .credentials_provider(credentials)
        .build();
    let client = aws_sdk_cloudtrail::Client::from_conf(config);
    let events = client
        .lookup_events()
        .lookup_attributes(
            LookupAttribute::builder()
                .attribute_key(LookupAttributeKey::EventName)
                .attribute_value("StartSession")
                .build()
                .expect("attribute"),
        )
        .into_paginator()
        .items()
        .send()
        .collect::<Vec<_>>()
        .await;
    let mut ids = BTreeSet::new();
    for event in events {
        let event = event.expect("LookupEvents");
        let record: Value =
            serde_json::from_str(event.cloud_trail_event().expect("record")).expect("JSON");
        if record["userIdentity"]["sessionContext"]["sourceIdentity"] == person {
            ids.insert(
                record["responseElements"]["sessionId"]
                    .as_str()
                    .expect("session id")
                    .to_owned(),
            );
        }
    }
    ids
}

#[tokio::test(flavor = "multi_thread")]
async fn my_sessions_show_at_once_join_cloudtrail_later_and_erins_never_show() {
    let sandbox = postern_e2e::sandbox().await;
    // CloudTrail delivers a minute late here; the sandbox's clock is moved past it below.
    sandbox.set_cloudtrail_delay(Duration::from_secs(60));
    let demo_home = TempDir::new("history-demo");
    let demo = person_env(&sandbox, "demo", &demo_home, None).await;
    let erin_home = TempDir::new("history-erin");
    let erin = person_env(&sandbox, "erin", &erin_home, None).await;
    let instance = postern_e2e::instance("payments");

    // Each opens a session on the same instance, with the same role.
    let out = postern(&demo, &["run", &instance, "--", "true"], b"").await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let out = postern(&erin, &["run", &instance, "--", "true"], b"").await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");

    // At once: the journal has it, CloudTrail not yet.
    let (code, json, stderr) = history(&demo, &[]).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(json["complete"], true);
    let mine: Vec<&Value> = sessions(&json)
        .iter()
        .filter(|s| has_source(s, "journal"))
        .collect();
    assert_eq!(mine.len(), 1, "the one session this test opened: {json:#}");
    let id = mine[0]["session_id"].as_str().expect("id").to_owned();
    let entry = mine[0];
    assert_eq!(entry["instance_id"], instance.as_str());
    assert_eq!(entry["kind"], "command");
    assert_eq!(entry["region"], "us-east-1");
    assert_eq!(entry["account"], DEMO_ACCOUNT);
    assert_eq!(entry["role"], "developer");
    assert_eq!(entry["identity"], "environment");
    assert_eq!(entry["open"], false);
    assert!(
        entry["start"].is_string() && entry["end"].is_string(),
        "{entry}"
    );
    assert!(entry["ended"].is_string(), "how it ended: {entry}");
    assert!(has_source(entry, "describe_sessions"), "{entry}");
    assert!(
        !has_source(entry, "cloudtrail"),
        "not delivered yet: {entry}"
    );
    assert_eq!(entry["event_ids"], serde_json::json!([]));

    // Seeded sessions of the last 30 days are there (DescribeSessions and CloudTrail), with
    // what only CloudTrail knows; the one from 50 days ago is not, until asked for.
    let tunnel = sessions(&json)
        .iter()
        .find(|s| s["kind"] == "tunnel" && s["port"] == 5432)
        .unwrap_or_else(|| panic!("the seeded tunnel to 5432: {json:#}"));
    assert_eq!(tunnel["instance_id"], "i-04b7f55a506e6e3ab");
    assert_eq!(tunnel["source_ip"], "127.0.0.1");
    assert_eq!(tunnel["mfa"], true);
    assert_eq!(tunnel["source_identity"], "demo");
    assert_eq!(tunnel["ended"], "terminated");
    assert!(has_source(tunnel, "cloudtrail") && has_source(tunnel, "describe_sessions"));
    assert_eq!(tunnel["event_ids"].as_array().map(Vec::len), Some(2));
    let old = |json: &Value| {
        sessions(json)
            .iter()
            .filter(|s| s["instance_id"] == "i-064fd9aea08b3ba6c" && s["kind"] == "shell")
            .filter(|s| !has_source(s, "describe_sessions"))
            .count()
    };
    assert_eq!(old(&json), 0, "50 days ago is outside the default 30 days");

    // Once CloudTrail has delivered, the session is joined to its record.
    sandbox.clock().advance(time::Duration::seconds(61));
    let first = json;
    // Erin's sessions never show: not hers on the same role, not the one she opened under
    // the role session name "demo", not the one she opened just now.
    let hers = started_by(&sandbox, "erin").await;
    assert!(hers.len() >= 3, "erin's seeded and live sessions: {hers:?}");
    assert!(hers.iter().any(|id| id.starts_with("demo-")));
    for id in &hers {
        assert!(find(&first, id).is_none(), "erin's {id} in demo's history");
    }

    let (code, json, stderr) = history(&demo, &["--since", "90d"]).await;
    assert_eq!(code, Some(0), "{stderr}");
    let entry = find(&json, &id).expect("the session is still there");
    assert!(has_source(entry, "cloudtrail"), "joined: {entry}");
    assert!(has_source(entry, "journal"), "{entry}");
    assert_eq!(entry["source_ip"], "127.0.0.1");
    assert_eq!(entry["mfa"], true);
    assert_eq!(entry["source_identity"], "demo");
    assert!(!entry["event_ids"].as_array().expect("ids").is_empty());
    assert_eq!(
        old(&json),
        1,
        "CloudTrail still has the session of 50 days ago"
    );
    for id in &hers {
        assert!(find(&json, id).is_none(), "erin's {id} in demo's history");
    }

    // And erin sees hers, not demo's.
    let (code, json, stderr) = history(&erin, &[]).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        find(&json, &id).is_none(),
        "demo's session in erin's history"
    );
    assert!(
        sessions(&json)
            .iter()
            .all(|s| s["source_identity"].is_null() || s["source_identity"] == "erin"),
        "{json:#}"
    );
    // (Hers under the session name "demo" shows when she works under that name again: the
    // lookup is by session name, see postern_core::history::gather.)
    assert!(
        hers.iter()
            .filter(|h| h.starts_with("erin-"))
            .all(|h| find(&json, h).is_some()),
        "{json:#}"
    );

    // Filters: by instance, and by time.
    let (_, json, _) = history(&demo, &["--instance", &instance, "--since", "1h"]).await;
    let ids: Vec<&str> = sessions(&json)
        .iter()
        .filter_map(|s| s["session_id"].as_str())
        .collect();
    assert_eq!(ids, vec![id.as_str()]);

    // A bad --since is bad usage, with what to write instead.
    let out = postern(&demo, &["history", "--since", "400d"], b"").await;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("90 days"));
}

#[tokio::test(flavor = "multi_thread")]
async fn throttling_is_waited_out_across_regions_and_accounts_never_an_error() {
    let text = postern_sandbox::fleet::generate_shaped(postern_sandbox::fleet::Shape {
        instances: 400,
        regions: Some(2),
        accounts: Some(2),
        sessions: 300,
        seed: 11,
    })
    .expect("generates");
    let scenario = postern_sandbox::scenario::Scenario::from_toml(&text).expect("loads");
    // What the demo user started in the demo account, in the two regions, per the scenario.
    let expected = scenario
        .history
        .iter()
        .filter(|h| h.account == DEMO_ACCOUNT)
        .filter(|h| {
            matches!(
                h.event,
                postern_sandbox::scenario::HistoryEvent::StartSession
            )
        })
        .filter(|h| h.source_identity.as_deref() == Some("demo"))
        .count();
    let sandbox = postern_sandbox::Sandbox::builder(scenario)
        .start()
        .await
        .expect("the sandbox starts on 127.0.0.1");
    sandbox.refuse_next_calls("DescribeSessions", 3);
    sandbox.refuse_next_calls("LookupEvents", 3);
    let home = TempDir::new("history-throttled");
    let settings = "[inventory]\nregions = [\"us-east-1\", \"eu-west-1\"]\n";
    let env = person_env(&sandbox, "demo", &home, Some(settings)).await;
    let (code, json, stderr) = history(&env, &["--since", "90d"]).await;
    assert_eq!(code, Some(0), "throttling is not an error: {stderr}");
    assert_eq!(json["complete"], true);
    assert!(!stderr.contains("cannot read"), "{stderr}");
    let throttled = sandbox.throttled_calls();
    assert!(
        throttled.get("DescribeSessions") >= Some(&3) && throttled.get("LookupEvents") >= Some(&3),
        "both were throttled: {throttled:?}"
    );
    let list = sessions(&json);
    assert_eq!(
        list.len(),
        expected,
        "every session the demo user started, once"
    );
    assert!(
        list.iter().all(|s| s["source_identity"] == "demo"),
        "only the demo user's"
    );
    let regions: BTreeSet<&str> = list.iter().filter_map(|s| s["region"].as_str()).collect();
    assert_eq!(regions, BTreeSet::from(["eu-west-1", "us-east-1"]));

    // The second time, CloudTrail's record comes from the cache: only the last hour is read.
    let before = sandbox.requests_served();
    let (code, again, _) = history(&env, &["--since", "90d"]).await;
    assert_eq!(code, Some(0));
    assert_eq!(sessions(&again).len(), expected);
    let calls = sandbox.requests_served() - before;
    assert!(calls < 20, "{calls} calls for a cached history");
}
