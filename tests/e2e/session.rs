//! Shells and commands through postern-core's session driver and the sandbox agent: real PTYs,
//! real processes, over a real websocket on loopback.

use postern_e2e::{developer_access, open_shell};
use std::time::Duration;

use postern_core::session::{
    self, SessionEnd, SessionEvent, SessionFailure, SessionOptions, SessionRequest,
};
use postern_e2e::{DEVELOPER, instance, output_until, role_credentials, sandbox, ssm_access};
use tokio::sync::mpsc::Receiver;

#[tokio::test(flavor = "multi_thread")]
async fn shell_round_trip_resize_interrupt_and_utf8() {
    let sandbox = sandbox().await;
    let access = developer_access(&sandbox).await;
    let target = instance("payments");
    let shell = open_shell(&access, &target).await;
    assert!(shell.id().as_str().starts_with("demo-"));
    let (mut events, writer, id) = shell.split();
    output_until(&mut events, "sandbox$ ").await;

    writer
        .send(b"echo $((6*7))\r".to_vec())
        .await
        .expect("the session takes input");
    output_until(&mut events, "42").await;

    writer
        .resize(132, 43)
        .await
        .expect("the session takes input");
    writer
        .send(b"stty size\r".to_vec())
        .await
        .expect("the session takes input");
    output_until(&mut events, "43 132").await;

    // Ctrl-C interrupts `sleep` but not the session.
    writer
        .send(b"sleep 30; echo slept\r".to_vec())
        .await
        .expect("the session takes input");
    tokio::time::sleep(Duration::from_millis(400)).await;
    writer
        .send(vec![0x03])
        .await
        .expect("the session takes input");
    writer
        .send(b"echo still $((40+2))\r".to_vec())
        .await
        .expect("the session takes input");
    let text = output_until(&mut events, "still 42\r\n").await;
    assert!(
        text.contains("^C"),
        "the interrupt reached the pty: {text:?}"
    );
    assert!(!text.contains("\nslept"), "sleep ran to the end: {text:?}");

    // Multi-byte UTF-8, in both directions, split across messages however the agent reads it.
    writer
        .send("echo 'snowman ☃ crab 🦀 ünïcødé'\r".as_bytes().to_vec())
        .await
        .expect("the session takes input");
    output_until(&mut events, "snowman ☃ crab 🦀 ünïcødé\r\n").await;
    // A character split between two input messages reaches the shell whole.
    let crab = "🦀".as_bytes();
    writer
        .send(b"echo split-".to_vec())
        .await
        .expect("the session takes input");
    writer
        .send(crab[..2].to_vec())
        .await
        .expect("the session takes input");
    writer
        .send(crab[2..].to_vec())
        .await
        .expect("the session takes input");
    writer
        .send(b"-done\r".to_vec())
        .await
        .expect("the session takes input");
    output_until(&mut events, "split-🦀-done\r\n").await;
    // Output whose characters the agent cuts between messages comes out whole and in order.
    sandbox.set_faults(
        &id,
        postern_sandbox::agent::Faults {
            split_characters: true,
            ..Default::default()
        },
    );
    writer
        .send(b"printf 'snow:'; for i in $(seq 1000); do printf '\\342\\230\\203'; done; echo ':end'\r".to_vec())
        .await.expect("the session takes input");
    let expected = format!("snow:{}:end", "☃".repeat(1000));
    let mut seen = Vec::new();
    let mut cut_inside_a_character = false;
    tokio::time::timeout(Duration::from_secs(15), async {
        while let Some(event) = events.recv().await {
            if let SessionEvent::Output(bytes) = event {
                let mid_character = |b: u8| (0x80..0xc0).contains(&b);
                cut_inside_a_character |= bytes.first().is_some_and(|&b| mid_character(b));
                seen.extend_from_slice(&bytes);
                if String::from_utf8_lossy(&seen).contains(&expected) {
                    return;
                }
            }
        }
    })
    .await
    .expect("the snowmen arrive whole");
    assert!(
        cut_inside_a_character,
        "some message began inside a character, so the split was real"
    );

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

// One thread: the resize and the keys are both queued before the driver next runs, so the
// driver sees them together and must take them in order. Messages are paced 50 ms apart, so keys
// sent before the size would run `stty` well before the size arrives.
#[tokio::test(flavor = "current_thread")]
async fn a_resize_reaches_the_shell_before_the_keys_typed_after_it() {
    let sandbox = sandbox().await;
    let access = developer_access(&sandbox).await;
    let mut options = SessionOptions::default();
    options.channel.pace_per_second = Some(20);
    let shell = session::open(
        &access,
        SessionRequest::shell(&instance("payments")),
        options,
    )
    .await
    .expect("opens");
    let (mut events, writer, _) = shell.split();
    output_until(&mut events, "sandbox$ ").await;
    // Resize and type at once, as a terminal does when its window is dragged: each `stty size`
    // must see the size given just before it (resizes travel on their own queue).
    for step in 0..12u32 {
        let (cols, rows) = (100 + step, 30 + step);
        writer
            .resize(cols, rows)
            .await
            .expect("the session takes input");
        writer
            .send(format!("stty size # step {step}\r").into_bytes())
            .await
            .expect("the session takes input");
        output_until(&mut events, &format!("{rows} {cols}\r\n")).await;
    }
    writer.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_shell_that_exits_ends_the_session_normally() {
    let sandbox = sandbox().await;
    let access = developer_access(&sandbox).await;
    let shell = session::open(
        &access,
        SessionRequest::shell(&instance("search")),
        SessionOptions::default(),
    )
    .await
    .expect("opens");
    let (mut events, writer, _) = shell.split();
    output_until(&mut events, "sandbox$ ").await;
    writer
        .send(b"exit 3\r".to_vec())
        .await
        .expect("the session takes input");
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
    assert_eq!(end, SessionEnd::Closed { reason: None });
}

#[tokio::test(flavor = "multi_thread")]
async fn unreachable_targets_fail_with_the_aws_reason() {
    let sandbox = sandbox().await;
    let access = developer_access(&sandbox).await;
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
    let offline = postern_e2e::offline_instance();
    let refused = session::open(
        &access,
        SessionRequest::shell(&offline),
        SessionOptions::default(),
    )
    .await;
    match refused {
        Err(error @ session::SessionError::TargetNotConnected { .. }) => {
            let said = error.to_string();
            assert!(
                said.contains(&format!("AWS says: {offline} is not connected.")),
                "{said}"
            );
            assert!(said.contains("SSM agent is online"), "{said}");
        }
        other => panic!("expected TargetNotConnected, got {other:?}"),
    }
}

/// Wait for the session's end (or fail after `limit`).
async fn the_end(events: &mut Receiver<SessionEvent>, limit: Duration) -> SessionEnd {
    session::wait_for_end(events, limit)
        .await
        .expect("the session ended in time")
}

/// Type a line every 100 ms, so frames keep flowing until a fault strikes.
fn keep_typing(writer: session::SessionWriter) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if writer.send(b"echo tick\r".to_vec()).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
}

/// Wait until the sandbox has stalled a websocket.
async fn wait_for_a_stall(sandbox: &postern_sandbox::Sandbox) {
    tokio::time::timeout(Duration::from_secs(10), async {
        while sandbox.faults_injected().stalls == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the websocket stalled");
}

fn quick_options() -> SessionOptions {
    SessionOptions {
        ping_interval: Duration::from_millis(300),
        silence_timeout: Duration::from_secs(2),
        ..SessionOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn input_typed_while_the_socket_is_down_is_delivered_after_the_reconnect() {
    let sandbox = sandbox().await;
    let access = developer_access(&sandbox).await;
    // The first websocket dies a few frames in, while the user keeps typing.
    postern_e2e::arm_faults_for_next_sessions(
        &sandbox,
        postern_sandbox::agent::Faults {
            drop_socket_after: Some(25),
            drop_socket_times: 1,
            ..Default::default()
        },
    );
    let shell = session::open(
        &access,
        SessionRequest::shell(&instance("payments")),
        quick_options(),
    )
    .await
    .expect("opens");
    let (mut events, writer, id) = shell.split();
    output_until(&mut events, "sandbox$ ").await;
    for n in 1..=20 {
        writer
            .send(format!("echo line $(({n}*1000))\r").into_bytes())
            .await
            .expect("the session takes input");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut seen = Vec::new();
    let mut reconnected = false;
    tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(event) = events.recv().await {
            match event {
                SessionEvent::Output(bytes) => seen.extend_from_slice(&bytes),
                SessionEvent::Reconnected => reconnected = true,
                SessionEvent::Ended(end) => panic!("ended: {end:?}"),
                _ => {}
            }
            if String::from_utf8_lossy(&seen).contains("\rline 20000\r\n") {
                return;
            }
        }
    })
    .await
    .expect("all the output in time");
    let text = String::from_utf8_lossy(&seen);
    assert!(
        reconnected,
        "the socket was dropped and the session resumed"
    );
    assert_eq!(
        sandbox.signed_upgrades(&id),
        2,
        "the first connection and the resumed one were both signed"
    );
    let mut at = 0;
    for n in 1..=20 {
        let line = format!("\rline {}\r\n", n * 1000);
        assert_eq!(
            text.matches(&line).count(),
            1,
            "line {n} arrived exactly once: {text:?}"
        );
        let position = text.find(&line).unwrap_or_default();
        assert!(position >= at, "line {n} arrived in order");
        at = position;
    }
    writer.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_that_cannot_be_resumed_ends_with_the_reason_quickly() {
    let sandbox = sandbox().await;
    let access = developer_access(&sandbox).await;
    // The websocket goes silent (no data, no pongs) a few frames in.
    postern_e2e::arm_faults_for_next_sessions(
        &sandbox,
        postern_sandbox::agent::Faults {
            stall_after: Some(8),
            ..Default::default()
        },
    );
    let shell = session::open(
        &access,
        SessionRequest::shell(&instance("payments")),
        quick_options(),
    )
    .await
    .expect("opens");
    let id = shell.id().to_owned();
    let (mut events, writer, _) = shell.split();
    let typing = keep_typing(writer.clone());
    wait_for_a_stall(&sandbox).await;
    // Meanwhile the session is ended elsewhere; its channel_closed is lost in the stalled socket.
    access
        .sdk()
        .terminate_session()
        .session_id(id.as_str())
        .send()
        .await
        .expect("TerminateSession");
    let started = std::time::Instant::now();
    let end = the_end(&mut events, Duration::from_secs(30)).await;
    match end {
        SessionEnd::Failed(failure @ SessionFailure::ResumeRefused { .. }) => {
            assert!(
                failure.to_string().contains("cannot be resumed"),
                "{failure}"
            );
        }
        other => panic!("expected a failure with a reason, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(30));
    typing.abort();
}

/// Whether DescribeSessions still lists the session as active.
async fn still_active(access: &postern_core::session::SsmAccess, id: &str) -> bool {
    let listed = access
        .sdk()
        .describe_sessions()
        .state(aws_sdk_ssm::types::SessionState::Active)
        .send()
        .await
        .expect("DescribeSessions");
    listed
        .sessions()
        .iter()
        .any(|session| session.session_id() == Some(id))
}

#[tokio::test(flavor = "multi_thread")]
async fn reconnects_that_hang_end_the_session_at_the_resume_deadline() {
    let sandbox = sandbox().await;
    let access = developer_access(&sandbox).await;
    // The websocket goes silent a few frames in, and every later dial finds a dead path: the
    // upgrade is never answered (a dial alone would wait 15 s).
    postern_e2e::arm_faults_for_next_sessions(
        &sandbox,
        postern_sandbox::agent::Faults {
            stall_after: Some(8),
            hang_upgrades_after: Some(1),
            ..Default::default()
        },
    );
    let options = SessionOptions {
        resume_deadline: Duration::from_secs(3),
        ..quick_options()
    };
    let shell = session::open(
        &access,
        SessionRequest::shell(&instance("payments")),
        options,
    )
    .await
    .expect("opens");
    let (mut events, writer, _) = shell.split();
    let typing = keep_typing(writer.clone());
    let mut down_at = None;
    let end = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match events.recv().await {
                Some(SessionEvent::Reconnecting(_)) => {
                    down_at.get_or_insert_with(std::time::Instant::now);
                }
                Some(SessionEvent::Ended(end)) => return end,
                Some(_) => {}
                None => panic!("no end"),
            }
        }
    })
    .await
    .expect("the session ends, never hangs");
    typing.abort();
    let down_at = down_at.expect("the stall was noticed and a reconnect tried");
    match end {
        SessionEnd::Failed(failure @ SessionFailure::NotResumed { seconds: 3, .. }) => {
            assert!(
                failure
                    .to_string()
                    .contains("could not be resumed within 3 s"),
                "{failure}"
            );
        }
        other => panic!("expected a failure with a reason, got {other:?}"),
    }
    // The deadline holds although one dial alone would take 15 s.
    let after_down = down_at.elapsed();
    assert!(
        after_down < Duration::from_secs(8),
        "ended {after_down:?} after the socket went down, with a 3 s resume deadline"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn closing_never_waits_behind_input_the_agent_has_not_taken() {
    let sandbox = sandbox().await;
    let access = developer_access(&sandbox).await;
    // The agent acknowledges nothing for a minute: the send window fills, input queues up.
    postern_e2e::arm_faults_for_next_sessions(
        &sandbox,
        postern_sandbox::agent::Faults {
            ack_delay_ms: 60_000,
            ..Default::default()
        },
    );
    let shell = session::open(
        &access,
        SessionRequest::shell(&instance("payments")),
        quick_options(),
    )
    .await
    .expect("opens");
    let id = shell.id().to_owned();
    let (mut events, writer, _) = shell.split();
    output_until(&mut events, "sandbox$ ").await;
    let typist = writer.clone();
    // Lines share 1 KiB messages while they wait for their pacing slot: 2 MB is about four
    // times what the window (512 messages) holds.
    let typing = tokio::spawn(async move {
        let line = format!(": {}\r", "x".repeat(96)).into_bytes();
        for _ in 0..20_000 {
            if typist.send(line.clone()).await.is_err() {
                return;
            }
        }
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        !typing.is_finished(),
        "the input is held back by the full window"
    );
    tokio::time::timeout(Duration::from_secs(5), writer.close())
        .await
        .expect("close is taken at once");
    let end = the_end(&mut events, Duration::from_secs(15)).await;
    assert!(matches!(end, SessionEnd::ClosedByUser), "{end:?}");
    assert!(
        !still_active(&access, &id).await,
        "TerminateSession ended it on the service"
    );
    typing.abort();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_closed_session_is_terminated_on_the_service() {
    let sandbox = sandbox().await;
    let access = developer_access(&sandbox).await;
    let shell = session::open(
        &access,
        SessionRequest::shell(&instance("payments")),
        quick_options(),
    )
    .await
    .expect("opens");
    let id = shell.id().to_owned();
    let (mut events, writer, _) = shell.split();
    output_until(&mut events, "sandbox$ ").await;
    assert!(still_active(&access, &id).await, "listed while open");
    assert_eq!(
        sandbox.signed_upgrades(&id),
        1,
        "the websocket upgrade was signed with SigV4, and the signature checked"
    );
    writer.close().await;
    let end = the_end(&mut events, Duration::from_secs(15)).await;
    assert!(matches!(end, SessionEnd::ClosedByUser), "{end:?}");
    assert!(!still_active(&access, &id).await, "gone once closed");
}

/// A websocket to a started session's data channel, opened by hand with `token`.
pub(crate) type RawChannel =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Open the data channel of a started session by hand with `token`: the socket, and the first
/// thing the agent does, a frame (admitted) or a close with its reason (refused).
pub(crate) async fn dial_raw(stream_url: &str, token: &str) -> (RawChannel, Result<(), String>) {
    use futures_util::{SinkExt as _, StreamExt as _};
    use tokio_tungstenite::tungstenite::Message;
    let (mut socket, _) = tokio_tungstenite::connect_async(stream_url)
        .await
        .expect("the stream URL answers");
    let open = serde_json::json!({
        "MessageSchemaVersion": "1.0",
        "RequestId": "00000000-0000-4000-8000-000000000000",
        "TokenValue": token,
        "ClientId": "00000000-0000-4000-8000-000000000001",
        "ClientVersion": "1.2.694.0",
    });
    socket
        .send(Message::Text(open.to_string().into()))
        .await
        .expect("send OpenDataChannel");
    let first = tokio::time::timeout(Duration::from_secs(10), socket.next())
        .await
        .expect("the agent answers");
    let admitted = match first {
        Some(Ok(Message::Binary(_))) => Ok(()),
        Some(Ok(Message::Close(frame))) => {
            Err(frame.map(|f| f.reason.to_string()).unwrap_or_default())
        }
        other => Err(format!("{other:?}")),
    };
    (socket, admitted)
}

async fn open_data_channel(stream_url: &str, token: &str) -> Result<(), String> {
    dial_raw(stream_url, token).await.1
}

#[tokio::test(flavor = "multi_thread")]
async fn the_data_channel_takes_each_token_once_and_no_other() {
    let sandbox = sandbox().await;
    let access = developer_access(&sandbox).await;
    let started = access
        .sdk()
        .start_session()
        .target(instance("payments"))
        .send()
        .await
        .expect("StartSession");
    let id = started.session_id().expect("id").to_owned();
    let url = started.stream_url().expect("url").to_owned();
    let token = started.token_value().expect("token").to_owned();
    assert_eq!(
        open_data_channel(&url, "not-the-token").await,
        Err("invalid or used token".into())
    );
    // A signed upgrade whose signature is wrong is refused before any token is read.
    let credentials = role_credentials(&sandbox, DEVELOPER, "demo").await;
    let now = time::OffsetDateTime::now_utc();
    let stamp = now
        .format(time::macros::format_description!(
            "[year][month][day]T[hour][minute][second]Z"
        ))
        .expect("date");
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
            url.as_str(),
        )
        .expect("request");
    let forged = format!(
        "AWS4-HMAC-SHA256 Credential={}/{}/us-east-1/ssmmessages/aws4_request, SignedHeaders=host;x-amz-date, Signature={}",
        credentials.access_key_id(),
        &stamp[..8],
        "0".repeat(64)
    );
    for (name, value) in [
        ("authorization", forged),
        ("x-amz-date", stamp.clone()),
        (
            "x-amz-security-token",
            credentials.session_token().unwrap_or_default().to_owned(),
        ),
    ] {
        request
            .headers_mut()
            .insert(name, value.parse().expect("header value"));
    }
    match tokio_tungstenite::connect_async(request).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 403);
            let body = String::from_utf8_lossy(response.body().as_deref().unwrap_or_default());
            assert!(body.contains("does not match the signature"), "{body}");
        }
        other => panic!("a forged signature must be refused: {other:?}"),
    }
    assert_eq!(
        open_data_channel(&url, &token).await,
        Ok(()),
        "the right token"
    );
    assert_eq!(
        open_data_channel(&url, &token).await,
        Err("invalid or used token".into()),
        "a token is good for one connection"
    );
    let resumed = access
        .sdk()
        .resume_session()
        .session_id(&id)
        .send()
        .await
        .expect("ResumeSession");
    let fresh = resumed.token_value().expect("token").to_owned();
    assert_ne!(fresh, token);
    assert_eq!(
        open_data_channel(&url, &fresh).await,
        Ok(()),
        "ResumeSession's token"
    );
    access
        .sdk()
        .terminate_session()
        .session_id(id.as_str())
        .send()
        .await
        .expect("TerminateSession");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_first_upgrade_fails_at_once_with_the_reason_and_ends_the_session() {
    let sandbox = sandbox().await;
    let credentials = role_credentials(&sandbox, DEVELOPER, "demo").await;
    // StartSession goes through; the websocket upgrade is signed with a wrong secret, which
    // the service refuses with 403: not a network drop to resume from.
    let good = ssm_access(&sandbox, credentials.clone());
    let forged = aws_credential_types::Credentials::new(
        credentials.access_key_id(),
        "not-the-secret-access-key-of-this-role",
        credentials.session_token().map(str::to_owned),
        None,
        "forged",
    );
    let access = postern_core::session::SsmAccess::from_sdk(
        good.sdk().clone(),
        Some(aws_credential_types::provider::SharedCredentialsProvider::new(forged)),
        good.region(),
        postern_core::aws::AwsClock::system(),
    );
    let shell = session::open(
        &access,
        SessionRequest::shell(&instance("payments")),
        SessionOptions::default(),
    )
    .await
    .expect("StartSession itself is allowed");
    let (mut events, _writer, id) = shell.split();
    let end = the_end(&mut events, Duration::from_secs(20)).await;
    match end {
        SessionEnd::Failed(failure @ SessionFailure::ChannelRefused { status: 403, .. }) => {
            let reason = failure.to_string();
            assert!(
                reason.contains("refused the data channel (HTTP 403)")
                    && reason.contains("signature"),
                "{reason}"
            );
        }
        other => panic!("expected a failure with the reason, got {other:?}"),
    }
    assert_eq!(
        sandbox.refused_upgrades(&id),
        1,
        "dialled once, not resumed"
    );
    assert!(
        !still_active(&access, &id).await,
        "terminated on the service"
    );
}
