//! A person's history: 500 past sessions of several people in 2 accounts × 2 regions, throttles
//! on, latency injected. Postern's history (postern-core's gathering, cold: no CloudTrail cache)
//! to its first entries (the journal and DescribeSessions) and to complete, against a sequential
//! boto3 loop over LookupEvents (EventName = StartSession, 90 days, every page) for the same
//! accounts and regions, as an audit script would.
//!
//! The latency (an assumption: CloudTrail is slow, 3.9 s a call has been seen in busy regions):
//! 1 s per LookupEvents call, 150 ms per DescribeSessions call.

use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use postern_core::credentials::{Selection, unix_now};
use postern_core::history::gather::{Event, Gathering, Request, earliest_since};
use postern_core::history::{Book, Filter};
use postern_core::inventory::listing::{Limits, Scope};
use postern_core::settings::Regions;
use postern_e2e::TempDir;

use crate::Row;

const SESSIONS: usize = 500;

/// The boto3 loop: every page of LookupEvents(EventName = StartSession) for each set of keys and
/// region, one after another; prints how many events it read.
const LOOP: &str = r#"
import sys, json, datetime, boto3
endpoint, regions, keys = sys.argv[1], sys.argv[2].split(","), json.loads(sys.argv[3])
start = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=90)
read = 0
for key in keys:
    for region in regions:
        trail = boto3.client("cloudtrail", region_name=region, endpoint_url=endpoint,
                             aws_access_key_id=key[0], aws_secret_access_key=key[1],
                             aws_session_token=key[2])
        pages = trail.get_paginator("lookup_events").paginate(
            LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "StartSession"}],
            StartTime=start, PaginationConfig={"PageSize": 50})
        for page in pages:
            read += len(page["Events"])
print(read)
"#;

fn venv(tool: &str) -> std::path::PathBuf {
    let mut dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    dir.pop();
    dir.join(".venv/bin").join(tool)
}

pub(crate) async fn run() -> Vec<Row> {
    if std::env::var_os("POSTERN_KEYCHAIN_READY").is_none() {
        eprintln!("history: needs the keychain; run under .ci/with-keychain (make bench does)");
        return Vec::new();
    }
    let text = postern_sandbox::fleet::generate_shaped(postern_sandbox::fleet::Shape {
        instances: 400,
        regions: Some(2),
        accounts: Some(2),
        sessions: SESSIONS,
        seed: 2026,
    })
    .expect("generates");
    let mut scenario = postern_sandbox::scenario::Scenario::from_toml(&text).expect("loads");
    scenario
        .settings
        .latency_ms
        .insert("LookupEvents".into(), 1000);
    scenario
        .settings
        .latency_ms
        .insert("DescribeSessions".into(), 150);
    let regions = scenario.settings.regions.clone();
    // The demo user's own sessions, as the scenario seeds them.
    let own = scenario
        .history
        .iter()
        .filter(|h| {
            matches!(
                h.event,
                postern_sandbox::scenario::HistoryEvent::StartSession
            )
        })
        .filter(|h| h.source_identity.as_deref() == Some("demo"))
        .count();
    let starts = scenario
        .history
        .iter()
        .filter(|h| {
            matches!(
                h.event,
                postern_sandbox::scenario::HistoryEvent::StartSession
            )
        })
        .count();
    let sandbox = Arc::new(
        postern_sandbox::Sandbox::builder(scenario)
            .start()
            .await
            .expect("sandbox"),
    );
    let home = TempDir::new("bench-history");
    let resolver = Arc::new(postern_e2e::demo_resolver(
        &sandbox,
        &home,
        Arc::new(postern_e2e::SandboxDevice(sandbox.clone())),
    ));
    // What `postern login` leaves: the MFA session and the roles, in the keychain.
    let mut role_keys = Vec::new();
    for profile in ["developer", "prod-ops"] {
        let resolved = resolver
            .credentials(&Selection::Profile(profile.into()))
            .await
            .expect("role");
        role_keys.push(resolved.credentials);
    }
    let scopes: Vec<Scope> = ["developer", "prod-ops"]
        .iter()
        .map(|profile| Scope {
            identity: (*profile).to_owned(),
            selection: Selection::Profile((*profile).to_owned()),
            regions: Regions::Listed(regions.clone()),
        })
        .collect();

    let mut first = Vec::new();
    let mut complete = Vec::new();
    for _ in 0..3 {
        // Cold: no CloudTrail cache.
        let _ = std::fs::remove_file(home.join("postern").join("history.json"));
        let started = Instant::now();
        let mut gathering = Gathering::start(Request {
            resolver: resolver.clone(),
            scopes: scopes.clone(),
            profile_regions: Vec::new(),
            since: earliest_since(unix_now()),
            limits: Limits::default(),
        });
        let mut book = Book::default();
        let mut first_at = None;
        while let Some(event) = gathering.next().await {
            match event {
                Event::Found { found, .. } => {
                    if first_at.is_none() && !found.entries.is_empty() {
                        first_at = Some(started.elapsed().as_secs_f64());
                    }
                    book.add(found);
                }
                Event::Problem { problem, .. } => panic!("history: {problem}"),
                Event::Progress(_) => {}
            }
        }
        complete.push(started.elapsed().as_secs_f64());
        first.push(first_at.expect("some entries"));
        let shown = book.entries(&Filter::default()).len();
        assert_eq!(shown, own, "every session of the demo user's, once");
    }

    // The boto3 loop over the same accounts and regions.
    let keys: Vec<[String; 3]> = role_keys
        .iter()
        .map(|k| {
            [
                k.access_key_id.clone(),
                k.secret_access_key.expose().to_owned(),
                k.session_token
                    .as_ref()
                    .map_or_else(String::new, |t| t.expose().to_owned()),
            ]
        })
        .collect();
    let keys = serde_json::to_string(&keys).expect("keys");
    let started = Instant::now();
    let out = Command::new(venv("python"))
        .args(["-c", LOOP, &sandbox.endpoint(), &regions.join(","), &keys])
        .env("AWS_CONFIG_FILE", home.join("no-config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", home.join("no-credentials"))
        .env_remove("AWS_PROFILE")
        .output()
        .expect("python");
    let boto = started.elapsed().as_secs_f64();
    assert!(out.status.success(), "the boto3 loop: {out:?}");
    let read: usize = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("a count");
    assert_eq!(read, starts, "the loop read every StartSession");

    let throttled = sandbox.throttled_calls();
    eprintln!("history: throttled calls during the runs: {throttled:?}");
    let s = |v: f64| format!("{v:.2} s");
    let ms = |v: f64| format!("{:.0} ms", v * 1000.0);
    vec![
        Row::repeated(
            format!("history of {SESSIONS} sessions, 2×2: first entries (vs boto3 loop)"),
            &first,
            &[boto],
            ms,
            "",
        )
        .inverted()
        .target(20.0, "≥ 20× sooner"),
        Row::repeated(
            "history complete, CloudTrail included (vs boto3 loop)",
            &complete,
            &[boto],
            s,
            "",
        )
        .inverted(),
    ]
}
