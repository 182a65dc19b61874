//! Shells and commands through postern-core's session driver and the sandbox agent: real PTYs,
//! real processes, over a real websocket on loopback.

use std::time::Duration;

use postern_core::session::{self, SessionEnd, SessionEvent, SessionOptions, SessionRequest};
use postern_e2e::{DEVELOPER, instance, role_credentials, sandbox, ssm_access};
use tokio::sync::mpsc::Receiver;

/// Read output until it contains `needle` (or fail after a while), returning everything read.
async fn until(events: &mut Receiver<SessionEvent>, needle: &str) -> String {
    let mut seen = Vec::new();
    let found = tokio::time::timeout(Duration::from_secs(15), async {
        while let Some(event) = events.recv().await {
            match event {
                SessionEvent::Output(bytes) => {
                    seen.extend_from_slice(&bytes);
                    if String::from_utf8_lossy(&seen).contains(needle) {
                        return true;
                    }
                }
                SessionEvent::Ended(end) => panic!("ended while waiting for {needle:?}: {end:?}"),
                _ => {}
            }
        }
        false
    })
    .await;
    let text = String::from_utf8_lossy(&seen).into_owned();
    assert!(
        matches!(found, Ok(true)),
        "never saw {needle:?} in {text:?}"
    );
    text
}

#[tokio::test(flavor = "multi_thread")]
async fn shell_round_trip_resize_interrupt_and_utf8() {
    let sandbox = sandbox().await;
    let access = ssm_access(
        &sandbox,
        role_credentials(&sandbox, DEVELOPER, "demo").await,
    );
    let target = instance("payments");
    let shell = session::open(
        &access,
        SessionRequest::shell(&target),
        SessionOptions::default(),
    )
    .await
    .expect("opens");
    assert!(shell.id().starts_with("demo-"));
    let (mut events, writer, _id) = shell.split();
    until(&mut events, "sandbox$ ").await;

    writer.send(b"echo $((6*7))\r".to_vec()).await;
    until(&mut events, "42").await;

    writer.resize(132, 43).await;
    writer.send(b"stty size\r".to_vec()).await;
    until(&mut events, "43 132").await;

    // Ctrl-C interrupts `sleep` but not the session.
    writer.send(b"sleep 30; echo slept\r".to_vec()).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    writer.send(vec![0x03]).await;
    writer.send(b"echo still $((40+2))\r".to_vec()).await;
    let text = until(&mut events, "still 42\r\n").await;
    assert!(
        text.contains("^C"),
        "the interrupt reached the pty: {text:?}"
    );
    assert!(!text.contains("\nslept"), "sleep ran to the end: {text:?}");

    // Multi-byte UTF-8, in both directions, split across messages however the agent reads it.
    writer
        .send("echo 'snowman ☃ crab 🦀 ünïcødé'\r".as_bytes().to_vec())
        .await;
    until(&mut events, "snowman ☃ crab 🦀 ünïcødé\r\n").await;

    writer.close().await;
    let end = loop {
        match events.recv().await {
            Some(SessionEvent::Ended(end)) => break end,
            Some(_) => {}
            None => panic!("no end"),
        }
    };
    assert_eq!(end, SessionEnd::ClosedByUser);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_shell_that_exits_ends_the_session_normally() {
    let sandbox = sandbox().await;
    let access = ssm_access(
        &sandbox,
        role_credentials(&sandbox, DEVELOPER, "demo").await,
    );
    let shell = session::open(
        &access,
        SessionRequest::shell(&instance("search")),
        SessionOptions::default(),
    )
    .await
    .expect("opens");
    let (mut events, writer, _) = shell.split();
    until(&mut events, "sandbox$ ").await;
    writer.send(b"exit 3\r".to_vec()).await;
    let end = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            if let Some(SessionEvent::Ended(end)) = events.recv().await {
                return end;
            }
        }
    })
    .await
    .expect("ends");
    // Interactive shells carry no exit status (spec §9): the service just closes the channel.
    assert_eq!(end, SessionEnd::Closed(String::new()));
}

#[tokio::test(flavor = "multi_thread")]
async fn unreachable_targets_fail_with_the_aws_reason() {
    let sandbox = sandbox().await;
    let access = ssm_access(
        &sandbox,
        role_credentials(&sandbox, DEVELOPER, "demo").await,
    );
    let denied = session::open(
        &access,
        SessionRequest::shell(&instance("data")),
        SessionOptions::default(),
    )
    .await;
    match denied {
        Err(session::SessionError::AccessDenied { message }) => {
            assert!(
                message.contains("not authorized to perform: ssm:StartSession"),
                "{message}"
            );
        }
        other => panic!("expected access denied, got {other:?}"),
    }
}
