//! Randomized requests against the router: garbage, and signed requests with random parameters,
//! must get an answer in the service's own shape, never a 5xx, a panic or a hang, and leave the
//! sandbox working.
//!
//! The case budget is `POSTERN_FUZZ_CASES` (`make test` uses the default below; `make fuzz` runs
//! far more). `POSTERN_FUZZ_SEED` replays a run; the seed is printed when a case fails.

use std::net::SocketAddr;
use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use axum::body::Body;
use axum::extract::connect_info::MockConnectInfo;
use http::Request;
use http_body_util::BodyExt;
use postern_sandbox::http::router;
use postern_sandbox::shared::Shared;
use postern_sandbox::world::World;
use postern_sandbox::{Clock, Scenario};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tower::ServiceExt;

const DEFAULT_CASES: usize = 600;

const QUERY_ACTIONS: &[&str] = &[
    "GetCallerIdentity",
    "GetSessionToken",
    "AssumeRole",
    "DescribeInstances",
    "DescribeRegions",
    "RunInstances",
    "Nope",
    "",
    "AssumeRoleWithSAML",
];
const QUERY_PARAMS: &[&str] = &[
    "RoleArn",
    "RoleSessionName",
    "DurationSeconds",
    "SerialNumber",
    "TokenCode",
    "SourceIdentity",
    "ExternalId",
    "Tags.member.1.Key",
    "Tags.member.1.Value",
    "Tags.member.2.Key",
    "Policy",
    "InstanceId.1",
    "InstanceId.2",
    "Filter.1.Name",
    "Filter.1.Value.1",
    "Filter.1.Value.2",
    "Filter.2.Name",
    "Filter.2.Value.1",
    "MaxResults",
    "NextToken",
    "DryRun",
    "RegionName.1",
    "Version",
    "Action",
];
const JSON_OPERATIONS: &[&str] = &[
    "StartSession",
    "ResumeSession",
    "TerminateSession",
    "DescribeSessions",
    "GetConnectionStatus",
    "DescribeInstanceInformation",
    "LookupEvents",
    "SendCommand",
    "",
];
const JSON_MEMBERS: &[&str] = &[
    "Target",
    "DocumentName",
    "Parameters",
    "Reason",
    "SessionId",
    "State",
    "Filters",
    "MaxResults",
    "NextToken",
    "InstanceInformationFilterList",
    "LookupAttributes",
    "StartTime",
    "EndTime",
    "EventCategory",
    "Key",
    "Values",
    "key",
    "value",
    "AttributeKey",
    "AttributeValue",
];
const WORDS: &[&str] = &[
    "",
    "0",
    "-1",
    "5",
    "50",
    "1000",
    "99999999999999999999",
    "3600",
    "true",
    "false",
    "null",
    "i-0123456789abcdef0",
    "i-bad",
    "arn:aws:iam::210987654321:role/developer",
    "arn:aws:iam::210987654321:mfa/demo",
    "arn:aws:iam::999:role/x",
    "tag:team",
    "tag:",
    "payments",
    "pay*",
    "*",
    "?",
    "instance-state-name",
    "Active",
    "History",
    "Online",
    "us-east-1",
    "AWS-StartSSHSession",
    "SSM-SessionManagerRunShell",
    "demo",
    "demo-0123456789abcdef0",
    "aws:me",
    "ünïcødé ☃",
    "\u{0}\u{1}<>&\"'",
    "2026-01-01T00:00:00Z",
    "EventName",
];

fn word(rng: &mut StdRng) -> String {
    if rng.random_bool(0.1) {
        let len = rng.random_range(0..300);
        (0..len)
            .map(|_| char::from(rng.random_range(0x20u8..0x7f)))
            .collect()
    } else {
        WORDS[rng.random_range(0..WORDS.len())].to_owned()
    }
}

fn json_value(rng: &mut StdRng, depth: u32) -> serde_json::Value {
    use serde_json::Value;
    match rng.random_range(0..if depth > 2 { 4 } else { 6 }) {
        0 => Value::String(word(rng)),
        1 => Value::from(rng.random_range(-10i64..100_000)),
        2 => Value::Bool(rng.random_bool(0.5)),
        3 => Value::Null,
        4 => Value::Array(
            (0..rng.random_range(0..4))
                .map(|_| json_value(rng, depth + 1))
                .collect(),
        ),
        _ => {
            let mut map = serde_json::Map::new();
            for _ in 0..rng.random_range(0..4) {
                map.insert(
                    JSON_MEMBERS[rng.random_range(0..JSON_MEMBERS.len())].to_owned(),
                    json_value(rng, depth + 1),
                );
            }
            Value::Object(map)
        }
    }
}

/// One generated request, and which service shape its answer must have.
struct Case {
    method: &'static str,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// "xml" or "json" when a signed service request; None for garbage and admin calls.
    expect: Option<&'static str>,
}

fn signed_headers(
    credentials: &Credentials,
    region: &str,
    service: &str,
    method: &str,
    headers: &[(String, String)],
    body: &[u8],
    at: SystemTime,
) -> Vec<(String, String)> {
    let identity = credentials.clone().into();
    let settings = SigningSettings::default();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(at)
        .settings(settings)
        .build()
        .expect("signing params")
        .into();
    let signable = SignableRequest::new(
        method,
        "http://127.0.0.1:4566/",
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Bytes(body),
    )
    .expect("signable");
    let (instructions, _) = sign(signable, &params).expect("sign").into_parts();
    instructions
        .headers()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn generate(rng: &mut StdRng, credentials: &Credentials, at: SystemTime) -> Case {
    let mut headers = vec![("host".to_owned(), "127.0.0.1:4566".to_owned())];
    match rng.random_range(0..10) {
        // Garbage of every kind.
        0..=2 => {
            let method = ["GET", "POST", "PUT", "DELETE", "PATCH"][rng.random_range(0..5)];
            let path = [
                "/",
                "/_sandbox/clock",
                "/_sandbox/nope",
                "/v1/data-channel/x",
                "/?Action=GetCallerIdentity",
            ][rng.random_range(0..5)]
            .to_owned();
            if rng.random_bool(0.5) {
                let auth = [
                    "AWS4-HMAC-SHA256 Credential=AKIA/20260101/us-east-1/sts/aws4_request, SignedHeaders=host, Signature=00",
                    "AWS4-HMAC-SHA256",
                    "Bearer x",
                    "AWS4-HMAC-SHA256 Credential=AKIAEXAMPLEUNKNOWN01/20260101/us-east-1/ssm/aws4_request, SignedHeaders=host;x-amz-date, Signature=0000000000000000000000000000000000000000000000000000000000000000",
                ][rng.random_range(0..4)];
                headers.push(("authorization".into(), auth.into()));
            }
            if rng.random_bool(0.5) {
                let target = format!(
                    "AmazonSSM.{}",
                    JSON_OPERATIONS[rng.random_range(0..JSON_OPERATIONS.len())]
                );
                headers.push(("x-amz-target".into(), target));
            }
            let len = rng.random_range(0..2048);
            let body: Vec<u8> = (0..len).map(|_| rng.random()).collect();
            Case {
                method,
                path,
                headers,
                body,
                expect: None,
            }
        }
        // Signed query requests (STS, EC2) with random parameters.
        3..=5 => {
            let service = if rng.random_bool(0.5) { "sts" } else { "ec2" };
            let mut form = form_urlencoded::Serializer::new(String::new());
            form.append_pair(
                "Action",
                QUERY_ACTIONS[rng.random_range(0..QUERY_ACTIONS.len())],
            );
            for _ in 0..rng.random_range(0..8) {
                form.append_pair(
                    QUERY_PARAMS[rng.random_range(0..QUERY_PARAMS.len())],
                    &word(rng),
                );
            }
            let body = form.finish().into_bytes();
            headers.push((
                "content-type".into(),
                "application/x-www-form-urlencoded; charset=utf-8".into(),
            ));
            let region = ["us-east-1", "eu-west-1", "mars-north-1"][rng.random_range(0..3)];
            let signed = signed_headers(credentials, region, service, "POST", &headers, &body, at);
            headers.extend(signed);
            Case {
                method: "POST",
                path: "/".into(),
                headers,
                body,
                expect: Some("xml"),
            }
        }
        // Signed JSON requests (SSM, CloudTrail), sometimes not even JSON.
        _ => {
            let (service, prefix) = if rng.random_bool(0.7) {
                ("ssm", "AmazonSSM.")
            } else {
                ("cloudtrail", "CloudTrail_20131101.")
            };
            let operation = JSON_OPERATIONS[rng.random_range(0..JSON_OPERATIONS.len())];
            headers.push(("x-amz-target".into(), format!("{prefix}{operation}")));
            headers.push(("content-type".into(), "application/x-amz-json-1.1".into()));
            let body = if rng.random_bool(0.1) {
                b"{\"Target\": \"i-0".to_vec()
            } else {
                let mut object = serde_json::Map::new();
                for _ in 0..rng.random_range(0..6) {
                    object.insert(
                        JSON_MEMBERS[rng.random_range(0..JSON_MEMBERS.len())].to_owned(),
                        json_value(rng, 0),
                    );
                }
                serde_json::Value::Object(object).to_string().into_bytes()
            };
            let signed = signed_headers(
                credentials,
                "us-east-1",
                service,
                "POST",
                &headers,
                &body,
                at,
            );
            headers.extend(signed);
            let mut case = Case {
                method: "POST",
                path: "/".into(),
                headers,
                body,
                expect: Some("json"),
            };
            if rng.random_bool(0.05) && !case.body.is_empty() {
                // Tamper after signing: must be a signature error, still in JSON.
                let i = rng.random_range(0..case.body.len());
                case.body[i] ^= 0x20;
            }
            case
        }
    }
}

/// A cheap well-formedness check for the sandbox's XML: balanced, properly nested tags.
fn well_formed_xml(text: &str) -> bool {
    let mut stack: Vec<&str> = Vec::new();
    let mut rest = text.trim_start();
    if let Some(after) = rest.strip_prefix("<?xml") {
        let Some(end) = after.find("?>") else {
            return false;
        };
        rest = &after[end + 2..];
    }
    while let Some(open) = rest.find('<') {
        let Some(close) = rest[open..].find('>') else {
            return false;
        };
        let tag = &rest[open + 1..open + close];
        if let Some(name) = tag.strip_prefix('/') {
            if stack.pop() != Some(name) {
                return false;
            }
        } else if !tag.ends_with('/') {
            stack.push(tag.split_whitespace().next().unwrap_or(""));
        }
        rest = &rest[open + close + 1..];
    }
    stack.is_empty()
}

#[tokio::test]
async fn random_requests_get_well_shaped_answers_and_never_break_the_sandbox() {
    let cases: usize = std::env::var("POSTERN_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_CASES);
    let seed: u64 = std::env::var("POSTERN_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(rand::random);
    let mut rng = StdRng::seed_from_u64(seed);
    let clock = Clock::frozen(time::OffsetDateTime::now_utc());
    let address: SocketAddr = ([127, 0, 0, 1], 4566).into();
    let mut world = World::new(&Scenario::default_world(), clock.clone(), address);
    world.lookup_throttle = false;
    let demo = world.demo.clone().expect("demo");
    let shared = Shared::new(world);
    let app = router(shared).layer(MockConnectInfo(address));
    let credentials = Credentials::new(
        &demo.access_key_id,
        &demo.secret_access_key,
        None,
        None,
        "fuzz",
    );
    let at = SystemTime::from(clock.now());

    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    for n in 0..cases {
        let case = generate(&mut rng, &credentials, at);
        let mut request = Request::builder().method(case.method).uri(&case.path);
        for (name, value) in &case.headers {
            request = request.header(name.as_str(), value.as_str());
        }
        let request = request
            .body(Body::from(case.body.clone()))
            .expect("request");
        let response = app.clone().oneshot(request).await.expect("infallible");
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        let text = String::from_utf8_lossy(&body);
        let context = || {
            format!(
                "seed {seed}, case {n}: {} {} {:?} → {status}: {text}",
                case.method, case.path, case.headers
            )
        };
        assert!(!status.is_server_error(), "{}", context());
        *statuses.entry(status.as_u16()).or_default() += 1;
        match case.expect {
            Some("json") => {
                let parsed: serde_json::Value = serde_json::from_slice(&body)
                    .unwrap_or_else(|_| panic!("not JSON: {}", context()));
                assert!(parsed.is_object(), "{}", context());
                if !status.is_success() {
                    assert!(parsed.get("__type").is_some(), "{}", context());
                }
            }
            Some(_) => assert!(well_formed_xml(&text), "not well-formed XML: {}", context()),
            None => {}
        }
    }

    // The run reached the operations, not only the front door: some calls succeeded and several
    // kinds of refusal came back.
    if cases >= 200 {
        assert!(
            statuses.get(&200).is_some_and(|n| *n > 0),
            "seed {seed}: no case succeeded: {statuses:?}"
        );
        assert!(
            statuses.len() >= 4,
            "seed {seed}: too few kinds of answer: {statuses:?}"
        );
    }

    // Still serving correctly afterwards.
    let mut headers = vec![
        ("host".to_owned(), "127.0.0.1:4566".to_owned()),
        (
            "content-type".to_owned(),
            "application/x-www-form-urlencoded".to_owned(),
        ),
    ];
    let body = b"Action=GetCallerIdentity&Version=2011-06-15".to_vec();
    headers.extend(signed_headers(
        &credentials,
        "us-east-1",
        "sts",
        "POST",
        &headers,
        &body,
        at,
    ));
    let mut request = Request::builder().method("POST").uri("/");
    for (name, value) in &headers {
        request = request.header(name.as_str(), value.as_str());
    }
    let response = app
        .oneshot(request.body(Body::from(body)).expect("request"))
        .await
        .expect("infallible");
    assert_eq!(
        response.status(),
        200,
        "seed {seed}: the sandbox stopped answering correctly"
    );
}
