//! SSM through aws-sdk-ssm: managed nodes, sessions authorised by tag and document, ownership.

use aws_sdk_ssm::types::{
    InstanceInformationStringFilter, SessionFilter, SessionFilterKey, SessionState,
};
use postern_sandbox::Scenario;
use postern_sandbox::scenario::{InstanceSpec, InstanceState, SsmStatus};

use crate::support::*;

const DEMO_ACCOUNT: &str = "210987654321";

fn instances(pick: impl Fn(&InstanceSpec) -> bool) -> Vec<InstanceSpec> {
    Scenario::default_world()
        .fleet
        .instances
        .into_iter()
        .filter(|i| pick(i))
        .collect()
}

fn team(i: &InstanceSpec) -> &str {
    i.tags.get("team").map_or("", String::as_str)
}

fn reachable(i: &InstanceSpec) -> bool {
    i.account == DEMO_ACCOUNT && i.region == "us-east-1" && i.state == InstanceState::Running
}

#[tokio::test]
async fn managed_nodes_exclude_unmanaged_and_stopped_instances() {
    let sandbox = default_sandbox().await;
    let client = ssm(&sandbox, developer(&sandbox).await, "us-east-1");
    let mut seen = Vec::new();
    let mut pages = client
        .describe_instance_information()
        .max_results(5)
        .into_paginator()
        .items()
        .send();
    while let Some(item) = pages.next().await {
        let item = item.expect("item");
        seen.push((
            item.instance_id().expect("id").to_owned(),
            item.ping_status().expect("ping").as_str().to_owned(),
        ));
    }
    seen.sort();
    let mut want: Vec<(String, String)> = instances(|i| {
        i.account == DEMO_ACCOUNT
            && i.region == "us-east-1"
            && i.ssm != SsmStatus::Unmanaged
            && !matches!(i.state, InstanceState::Stopped | InstanceState::Terminated)
    })
    .into_iter()
    .map(|i| {
        (
            i.id,
            if i.ssm == SsmStatus::Online {
                "Online"
            } else {
                "ConnectionLost"
            }
            .to_owned(),
        )
    })
    .collect();
    want.sort();
    assert_eq!(seen, want);

    let online = client
        .describe_instance_information()
        .filters(
            InstanceInformationStringFilter::builder()
                .key("PingStatus")
                .values("Online")
                .build()
                .expect("f"),
        )
        .max_results(50)
        .send()
        .await
        .expect("ok");
    assert!(
        online
            .instance_information_list()
            .iter()
            .all(|i| i.ping_status().map(|p| p.as_str()) == Some("Online"))
    );

    let tagged = client
        .describe_instance_information()
        .filters(
            InstanceInformationStringFilter::builder()
                .key("tag:team")
                .values("search")
                .build()
                .expect("f"),
        )
        .max_results(50)
        .send()
        .await
        .expect("ok");
    let want = want
        .iter()
        .filter(|(id, _)| instances(|i| i.id == *id && team(i) == "search").len() == 1)
        .count();
    assert_eq!(tagged.instance_information_list().len(), want);

    let err = client
        .describe_instance_information()
        .filters(
            InstanceInformationStringFilter::builder()
                .key("tag:team")
                .values("search")
                .build()
                .expect("f"),
        )
        .filters(
            InstanceInformationStringFilter::builder()
                .key("PingStatus")
                .values("Online")
                .build()
                .expect("f"),
        )
        .send()
        .await
        .expect_err("tag and other filters mixed");
    assert_eq!(code_and_status(&err), ("ValidationException".into(), 400));
    let err = client
        .describe_instance_information()
        .filters(
            InstanceInformationStringFilter::builder()
                .key("Colour")
                .values("blue")
                .build()
                .expect("f"),
        )
        .send()
        .await
        .expect_err("unknown key");
    assert_eq!(code_and_status(&err).0, "InvalidFilterKey");
}

#[tokio::test]
async fn sessions_follow_the_role_s_tag_scope_and_document_rules() {
    let sandbox = default_sandbox().await;
    let client = ssm(&sandbox, developer(&sandbox).await, "us-east-1");
    let allowed = instances(|i| {
        reachable(i) && i.ssm == SsmStatus::Online && ["payments", "search"].contains(&team(i))
    });
    let forbidden = instances(|i| {
        reachable(i) && i.ssm == SsmStatus::Online && ["data", "platform"].contains(&team(i))
    });
    assert!(!allowed.is_empty() && !forbidden.is_empty());

    for instance in &allowed {
        let out = client
            .start_session()
            .target(&instance.id)
            .send()
            .await
            .expect("allowed");
        let id = out.session_id().expect("id");
        assert!(
            id.starts_with("demo-") && id.len() == "demo-".len() + 17,
            "{id}"
        );
        assert!(
            out.stream_url()
                .expect("url")
                .starts_with(&format!("ws://{}/v1/data-channel/{id}?", sandbox.address()))
        );
        assert!(out.token_value().is_some_and(|t| !t.is_empty()));
    }
    for instance in &forbidden {
        let err = client
            .start_session()
            .target(&instance.id)
            .send()
            .await
            .expect_err("outside the tag scope");
        assert_eq!(code_and_status(&err), ("AccessDeniedException".into(), 400));
        assert!(message(&err).contains(&format!(
            "ssm:StartSession on resource: arn:aws:ec2:us-east-1:{DEMO_ACCOUNT}:instance/{}",
            instance.id
        )));
    }
    let offline = instances(|i| {
        reachable(i)
            && i.ssm == SsmStatus::ConnectionLost
            && ["payments", "search"].contains(&team(i))
    });
    for instance in &offline {
        let err = client
            .start_session()
            .target(&instance.id)
            .send()
            .await
            .expect_err("offline");
        assert_eq!(code_and_status(&err).0, "TargetNotConnected");
        assert_eq!(message(&err), format!("{} is not connected.", instance.id));
    }

    let target = &allowed[0].id;
    let tunnel = client
        .start_session()
        .target(target)
        .document_name("AWS-StartPortForwardingSessionToRemoteHost")
        .parameters("host", vec!["db.internal".into()])
        .parameters("portNumber", vec!["5432".into()])
        .parameters("localPortNumber", vec!["0".into()])
        .send()
        .await;
    assert!(tunnel.is_ok(), "{tunnel:?}");
    let err = client
        .start_session()
        .target(target)
        .document_name("AWS-NoSuchDocument")
        .send()
        .await
        .expect_err("doc");
    assert_eq!(code_and_status(&err).0, "InvalidDocument");
    let err = client
        .start_session()
        .target(target)
        .document_name("AWS-StartPortForwardingSession")
        .parameters("portNumber", vec!["99999".into()])
        .send()
        .await
        .expect_err("bad port");
    assert_eq!(code_and_status(&err).0, "InvalidParameters");

    // readonly may look but not connect.
    let readonly = assume(&sandbox, "arn:aws:iam::210987654321:role/readonly", "demo").await;
    let err = ssm(&sandbox, readonly, "us-east-1")
        .start_session()
        .target(target)
        .send()
        .await
        .expect_err("readonly");
    assert_eq!(code_and_status(&err).0, "AccessDeniedException");
}

#[tokio::test]
async fn users_see_resume_and_terminate_only_their_own_sessions() {
    let sandbox = default_sandbox().await;
    let target = instances(|i| reachable(i) && i.ssm == SsmStatus::Online && team(i) == "payments")
        .first()
        .expect("a payments instance")
        .id
        .clone();
    let mine = ssm(&sandbox, developer(&sandbox).await, "us-east-1");
    let theirs = ssm(
        &sandbox,
        assume(
            &sandbox,
            "arn:aws:iam::210987654321:role/developer",
            "someone-else",
        )
        .await,
        "us-east-1",
    );
    let my_session = mine
        .start_session()
        .target(&target)
        .send()
        .await
        .expect("start")
        .session_id()
        .expect("id")
        .to_owned();
    let their_session = theirs
        .start_session()
        .target(&target)
        .send()
        .await
        .expect("start")
        .session_id()
        .expect("id")
        .to_owned();
    assert!(their_session.starts_with("someone-else-"));

    let active = mine
        .describe_sessions()
        .state(SessionState::Active)
        .send()
        .await
        .expect("ok");
    let listed: Vec<&str> = active
        .sessions()
        .iter()
        .filter_map(|s| s.session_id())
        .collect();
    assert!(listed.contains(&my_session.as_str()) && listed.contains(&their_session.as_str()));
    // The Owner filter takes the owner's ARN, as AWS documents it (nothing else, not "Self").
    let owned_by = |owner: &str| {
        mine.describe_sessions()
            .state(SessionState::Active)
            .filters(
                SessionFilter::builder()
                    .key(SessionFilterKey::Owner)
                    .value(owner)
                    .build()
                    .expect("f"),
            )
            .send()
    };
    let own = owned_by("arn:aws:sts::210987654321:assumed-role/developer/demo")
        .await
        .expect("ok");
    let own: Vec<&str> = own
        .sessions()
        .iter()
        .filter_map(|s| s.session_id())
        .collect();
    assert_eq!(own, [my_session.as_str()]);
    let by_word = owned_by("Self").await.expect("ok");
    assert!(by_word.sessions().is_empty(), "no owner is called Self");

    let err = mine
        .terminate_session()
        .session_id(&their_session)
        .send()
        .await
        .expect_err("not mine");
    assert_eq!(code_and_status(&err).0, "AccessDeniedException");
    let err = mine
        .resume_session()
        .session_id(&their_session)
        .send()
        .await
        .expect_err("not mine");
    assert_eq!(code_and_status(&err).0, "AccessDeniedException");

    let resumed = mine
        .resume_session()
        .session_id(&my_session)
        .send()
        .await
        .expect("my own");
    assert_eq!(resumed.session_id(), Some(my_session.as_str()));
    mine.terminate_session()
        .session_id(&my_session)
        .send()
        .await
        .expect("my own");
    let history = mine
        .describe_sessions()
        .state(SessionState::History)
        .send()
        .await
        .expect("ok");
    let ended = history
        .sessions()
        .iter()
        .find(|s| s.session_id() == Some(my_session.as_str()))
        .expect("listed");
    assert_eq!(ended.status().map(|s| s.as_str()), Some("Terminated"));
    assert!(ended.end_date().is_some());
    let err = mine
        .resume_session()
        .session_id(&my_session)
        .send()
        .await
        .expect_err("ended");
    assert_eq!(code_and_status(&err).0, "DoesNotExistException");

    let err = mine
        .describe_sessions()
        .state(SessionState::Active)
        .filters(
            SessionFilter::builder()
                .key(SessionFilterKey::InvokedAfter)
                .value("yesterday")
                .build()
                .expect("f"),
        )
        .send()
        .await
        .expect_err("bad timestamp");
    assert_eq!(code_and_status(&err).0, "InvalidFilterValue");
}

#[tokio::test]
async fn connection_status_and_json_auth_errors() {
    let sandbox = default_sandbox().await;
    let client = ssm(&sandbox, developer(&sandbox).await, "us-east-1");
    let online = instances(|i| reachable(i) && i.ssm == SsmStatus::Online)
        .remove(0)
        .id;
    let lost = instances(|i| reachable(i) && i.ssm == SsmStatus::ConnectionLost)
        .remove(0)
        .id;
    let status = |out: aws_sdk_ssm::operation::get_connection_status::GetConnectionStatusOutput| {
        out.status().map(|s| s.as_str().to_owned())
    };
    let out = client
        .get_connection_status()
        .target(&online)
        .send()
        .await
        .expect("ok");
    assert_eq!(status(out).as_deref(), Some("connected"));
    let out = client
        .get_connection_status()
        .target(&lost)
        .send()
        .await
        .expect("ok");
    assert_eq!(status(out).as_deref(), Some("notconnected"));

    let unknown = aws_sdk_ssm::config::Credentials::new(
        "AKIAEXAMPLEUNKNOWN01",
        "x".repeat(40),
        None,
        None,
        "t",
    );
    let err = ssm(&sandbox, unknown, "us-east-1")
        .get_connection_status()
        .target(&online)
        .send()
        .await
        .expect_err("key");
    assert_eq!(
        code_and_status(&err),
        ("UnrecognizedClientException".into(), 400)
    );
    let demo = sandbox.demo().expect("demo");
    let wrong =
        aws_sdk_ssm::config::Credentials::new(demo.access_key_id, "y".repeat(40), None, None, "t");
    let err = ssm(&sandbox, wrong, "us-east-1")
        .get_connection_status()
        .target(&online)
        .send()
        .await
        .expect_err("sig");
    assert_eq!(
        code_and_status(&err),
        ("InvalidSignatureException".into(), 400)
    );
    sandbox.clock().advance(time::Duration::hours(2));
    let err = client
        .get_connection_status()
        .target(&online)
        .send()
        .await
        .expect_err("expired");
    assert_eq!(code_and_status(&err), ("ExpiredTokenException".into(), 400));
}
