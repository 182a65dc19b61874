//! CloudTrail through aws-sdk-cloudtrail: what gets recorded, in AWS's shape, and LookupEvents.

use aws_sdk_cloudtrail::primitives::DateTime;
use aws_sdk_cloudtrail::types::{LookupAttribute, LookupAttributeKey};
use postern_sandbox::Scenario;
use postern_sandbox::scenario::{InstanceSpec, InstanceState, SsmStatus};
use serde_json::Value;

use crate::support::*;

const DEMO_ACCOUNT: &str = "210987654321";

fn attribute(key: LookupAttributeKey, value: &str) -> LookupAttribute {
    LookupAttribute::builder()
        .attribute_key(key)
        .attribute_value(value)
        .build()
        .expect("attribute")
}

fn instances(pick: impl Fn(&InstanceSpec) -> bool) -> Vec<InstanceSpec> {
    Scenario::default_world()
        .fleet
        .instances
        .into_iter()
        .filter(|i| pick(i))
        .collect()
}

fn reachable(team: &str) -> String {
    instances(|i| {
        i.account == DEMO_ACCOUNT
            && i.region == "us-east-1"
            && i.state == InstanceState::Running
            && i.ssm == SsmStatus::Online
            && i.tags.get("team").is_some_and(|t| t == team)
    })
    .remove(0)
    .id
}

/// The parsed CloudTrailEvent of each event LookupEvents returns.
async fn records(
    client: &aws_sdk_cloudtrail::Client,
    key: LookupAttributeKey,
    value: &str,
) -> Vec<Value> {
    let out = client
        .lookup_events()
        .lookup_attributes(attribute(key, value))
        .send()
        .await
        .expect("lookup");
    out.events()
        .iter()
        .map(|e| serde_json::from_str(e.cloud_trail_event().expect("record")).expect("JSON record"))
        .collect()
}

#[tokio::test]
async fn sessions_are_recorded_as_assumed_role_calls_with_mfa_and_hidden_tokens() {
    let sandbox = default_sandbox().await;
    sandbox.set_lookup_events_throttle(false);
    let demo = sandbox.demo().expect("demo");
    // Log in the way Postern will: an MFA session, then the role with the user's source identity.
    let code = sandbox.mfa_code(&demo.mfa_serial).expect("device");
    let session = sts(&sandbox, demo_keys(&sandbox))
        .get_session_token()
        .serial_number(&demo.mfa_serial)
        .token_code(code)
        .send()
        .await
        .expect("session");
    let session = from_sts(session.credentials().expect("credentials"));
    let role = sts(&sandbox, session)
        .assume_role()
        .role_arn(&demo.role_arn)
        .role_session_name("demo")
        .source_identity("demo")
        .send()
        .await
        .expect("role");
    let role = from_sts(role.credentials().expect("credentials"));
    let ssm_client = ssm(&sandbox, role.clone(), "us-east-1");
    let started = ssm_client
        .start_session()
        .target(reachable("payments"))
        .send()
        .await
        .expect("start");
    let session_id = started.session_id().expect("id").to_owned();
    let token = started.token_value().expect("token").to_owned();
    ssm_client
        .terminate_session()
        .session_id(&session_id)
        .send()
        .await
        .expect("terminate");
    let denied = ssm_client
        .start_session()
        .target(reachable("data"))
        .send()
        .await;
    assert!(denied.is_err());

    let trail = cloudtrail(&sandbox, role, "us-east-1");
    let starts = records(&trail, LookupAttributeKey::EventName, "StartSession").await;
    let newest = &starts[0];
    assert_eq!(
        newest["errorCode"], "AccessDeniedException",
        "the denied attempt is recorded too"
    );
    let event = &starts[1];
    assert_eq!(event["eventSource"], "ssm.amazonaws.com");
    assert_eq!(event["eventName"], "StartSession");
    assert_eq!(event["awsRegion"], "us-east-1");
    assert_eq!(event["eventType"], "AwsApiCall");
    assert_eq!(event["eventCategory"], "Management");
    assert_eq!(event["managementEvent"], true);
    assert_eq!(event["readOnly"], false);
    assert_eq!(event["recipientAccountId"], DEMO_ACCOUNT);
    let identity = &event["userIdentity"];
    assert_eq!(identity["type"], "AssumedRole");
    assert_eq!(
        identity["arn"],
        format!("arn:aws:sts::{DEMO_ACCOUNT}:assumed-role/developer/demo")
    );
    assert_eq!(identity["accountId"], DEMO_ACCOUNT);
    assert!(
        identity["principalId"]
            .as_str()
            .is_some_and(|p| p.starts_with("AROA") && p.ends_with(":demo"))
    );
    assert!(
        identity["accessKeyId"]
            .as_str()
            .is_some_and(|k| k.starts_with("ASIA"))
    );
    let context = &identity["sessionContext"];
    assert_eq!(context["attributes"]["mfaAuthenticated"], "true");
    assert!(
        context["attributes"]["creationDate"]
            .as_str()
            .is_some_and(|d| d.ends_with('Z'))
    );
    assert_eq!(context["sessionIssuer"]["type"], "Role");
    assert_eq!(context["sessionIssuer"]["arn"], demo.role_arn);
    assert_eq!(context["sessionIssuer"]["userName"], "developer");
    assert_eq!(context["sourceIdentity"], "demo");
    assert_eq!(event["requestParameters"]["target"], reachable("payments"));
    assert_eq!(event["responseElements"]["sessionId"], session_id);
    assert_eq!(
        event["responseElements"]["tokenValue"],
        "Value hidden due to security reasons."
    );
    assert!(
        !event.to_string().contains(&token),
        "the stream token never reaches the trail"
    );
    for field in [
        "eventTime",
        "sourceIPAddress",
        "userAgent",
        "requestID",
        "eventID",
    ] {
        assert!(
            event[field].as_str().is_some_and(|v| !v.is_empty()),
            "{field}"
        );
    }

    let ends = records(&trail, LookupAttributeKey::EventName, "TerminateSession").await;
    assert_eq!(ends[0]["requestParameters"]["sessionId"], session_id);

    let assumes = records(&trail, LookupAttributeKey::EventName, "AssumeRole").await;
    let assume = &assumes[0];
    assert_eq!(assume["eventSource"], "sts.amazonaws.com");
    assert_eq!(assume["userIdentity"]["type"], "IAMUser");
    assert_eq!(assume["userIdentity"]["userName"], "demo");
    assert_eq!(
        assume["userIdentity"]["sessionContext"]["attributes"]["mfaAuthenticated"],
        "true"
    );
    assert_eq!(assume["requestParameters"]["sourceIdentity"], "demo");
    let credentials = &assume["responseElements"]["credentials"];
    assert!(
        credentials.get("secretAccessKey").is_none(),
        "CloudTrail never records the secret key"
    );
    assert!(
        credentials["expiration"]
            .as_str()
            .is_some_and(|e| e.ends_with(" AM") || e.ends_with(" PM"))
    );

    let gst = records(&trail, LookupAttributeKey::EventName, "GetSessionToken").await;
    assert_eq!(gst[0]["requestParameters"]["serialNumber"], demo.mfa_serial);
    assert!(
        gst[0]["requestParameters"].get("tokenCode").is_none(),
        "MFA codes are not recorded"
    );
}

#[tokio::test]
async fn lookups_filter_page_and_scope_like_cloudtrail() {
    let sandbox = default_sandbox().await;
    sandbox.set_lookup_events_throttle(false);
    let developer = developer(&sandbox).await;
    let trail = cloudtrail(&sandbox, developer.clone(), "us-east-1");

    // The seeded history: the demo user's sessions and a colleague's, newest first.
    let by_demo = trail
        .lookup_events()
        .lookup_attributes(attribute(LookupAttributeKey::Username, "demo"))
        .send()
        .await
        .expect("lookup");
    let names: Vec<&str> = by_demo
        .events()
        .iter()
        .filter_map(|e| e.event_name())
        .collect();
    assert!(
        names.iter().filter(|n| **n == "StartSession").count() >= 3,
        "{names:?}"
    );
    let times: Vec<i64> = by_demo
        .events()
        .iter()
        .filter_map(|e| e.event_time().map(|t| t.secs()))
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] >= w[1]),
        "newest first: {times:?}"
    );
    let carol = records(&trail, LookupAttributeKey::Username, "carol").await;
    let carol_names: Vec<&str> = carol
        .iter()
        .filter_map(|e| e["eventName"].as_str())
        .collect();
    assert_eq!(carol_names, ["TerminateSession", "StartSession"]);
    assert_eq!(
        carol[1]["userIdentity"]["arn"],
        format!("arn:aws:sts::{DEMO_ACCOUNT}:assumed-role/admin/carol")
    );

    let target = reachable("payments");
    let on_target = trail
        .lookup_events()
        .lookup_attributes(attribute(LookupAttributeKey::ResourceName, &target))
        .send()
        .await
        .expect("lookup");
    assert!(on_target.events().iter().all(|e| {
        e.resources()
            .iter()
            .any(|r| r.resource_name() == Some(&target))
    }));
    assert!(!on_target.events().is_empty());

    // A time range: the last 90 minutes hold only the newest seeded session.
    let now = sandbox.clock().now().unix_timestamp();
    let recent = trail
        .lookup_events()
        .lookup_attributes(attribute(LookupAttributeKey::EventName, "StartSession"))
        .start_time(DateTime::from_secs(now - 90 * 60))
        .end_time(DateTime::from_secs(now))
        .send()
        .await
        .expect("lookup");
    assert_eq!(recent.events().len(), 1);

    // Paging.
    let mut seen = Vec::new();
    let mut pages = trail.lookup_events().max_results(2).into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.expect("page");
        assert!(page.events().len() <= 2);
        seen.extend(
            page.events()
                .iter()
                .filter_map(|e| e.event_id().map(str::to_owned)),
        );
    }
    let all = trail.lookup_events().send().await.expect("lookup");
    assert_eq!(seen.len(), all.events().len());
    // A range left open at its end pages as one query while time moves on (AWS's now ends it).
    let mut open = Vec::new();
    let mut pages = trail
        .lookup_events()
        .start_time(DateTime::from_secs(now - 90 * 24 * 3600))
        .max_results(2)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        sandbox.clock().advance(time::Duration::seconds(1));
        open.extend(
            page.expect("page")
                .events()
                .iter()
                .filter_map(|e| e.event_id().map(str::to_owned)),
        );
    }
    assert_eq!(open.len(), seen.len());

    // Another region holds none of it, only its own (a colleague's seeded session there).
    let elsewhere = cloudtrail(&sandbox, developer, "eu-west-1")
        .lookup_events()
        .send()
        .await
        .expect("lookup");
    assert!(!elsewhere.events().is_empty());
    for event in elsewhere.events() {
        assert!(!seen.iter().any(|id| Some(id.as_str()) == event.event_id()));
        let record: serde_json::Value =
            serde_json::from_str(event.cloud_trail_event().unwrap_or("{}")).expect("JSON");
        assert_eq!(record["awsRegion"], "eu-west-1");
    }

    for (request, code) in [
        (
            trail
                .lookup_events()
                .lookup_attributes(attribute(LookupAttributeKey::EventName, "StartSession"))
                .lookup_attributes(attribute(LookupAttributeKey::Username, "demo")),
            "InvalidLookupAttributesException",
        ),
        (
            trail.lookup_events().max_results(51),
            "InvalidMaxResultsException",
        ),
        (
            trail
                .lookup_events()
                .start_time(DateTime::from_secs(now))
                .end_time(DateTime::from_secs(now - 60)),
            "InvalidTimeRangeException",
        ),
        (
            trail.lookup_events().next_token("nope"),
            "InvalidNextTokenException",
        ),
    ] {
        let err = request.send().await.expect_err(code);
        assert_eq!(code_and_status(&err), (code.to_owned(), 400));
    }
}

#[tokio::test]
async fn lookup_events_is_throttled_at_two_per_second() {
    let sandbox = default_sandbox().await;
    let trail = cloudtrail(&sandbox, developer(&sandbox).await, "us-east-1");
    trail.lookup_events().send().await.expect("first");
    trail.lookup_events().send().await.expect("second");
    let err = trail
        .lookup_events()
        .send()
        .await
        .expect_err("third in the same second");
    assert_eq!(code_and_status(&err), ("ThrottlingException".into(), 400));
    assert_eq!(message(&err), "Rate exceeded");
    sandbox.clock().advance(time::Duration::seconds(1));
    trail.lookup_events().send().await.expect("a second later");
    // The throttle is per region.
    let other = cloudtrail(&sandbox, developer(&sandbox).await, "eu-west-1");
    other.lookup_events().send().await.expect("another region");

    // Calls made "later" than a clock moved back are not recent: the throttle starts afresh
    // rather than refusing every call until the clock catches up.
    trail.lookup_events().send().await.expect("first again");
    sandbox.clock().advance(time::Duration::minutes(-10));
    trail
        .lookup_events()
        .send()
        .await
        .expect("after the clock went back");
    trail
        .lookup_events()
        .send()
        .await
        .expect("twice in that second");
    let err = trail
        .lookup_events()
        .send()
        .await
        .expect_err("third in the same second");
    assert_eq!(code_and_status(&err).0, "ThrottlingException");
}
