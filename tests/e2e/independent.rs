//! A client no one here wrote — the `aws-ssm-bridge` crate (0.6) — against the sandbox's agent: a
//! shell and an smux tunnel. It speaks the protocol on its own (frames, acks, handshake, smux), so
//! where the sandbox agent agrees with it and with the spec, the agent is not just agreeing with
//! our own client's reading of the spec.
//!
//! Where the crate and the spec (`shared/design/ssm-data-channel.md`) disagree, the spec wins.
//! Read against the spec, the crate:
//!
//! 1. always speaks smux, whatever the agent version (§7.1, §7.3): shown below on the wire;
//! 2. reports client version 1.2.764.0 yet never sends DisconnectToPort (§4.3.5, §7.3);
//! 3. leaves smux keepalive off whatever the agent, which 3.1.1476.0 agents need (§7.1);
//! 4. rejects a HeaderLength other than 116, so MGS's 112-byte `channel_closed` ends the session
//!    as a protocol error (§3.3, §3.4): shown below;
//! 5. slices payloads by PayloadLength rather than HeaderLength + 4 (§3.3);
//! 6. ends the session on an unknown PayloadType or MessageType (§3.4);
//! 7. ends the session on a digest mismatch instead of dropping the frame unacknowledged (§3.3);
//! 8. does not acknowledge duplicates again (§5.2);
//! 9. estimates the retransmission timeout differently (initial variance, clamps) and marks
//!    acknowledgements of buffered messages `IsSequentialMessage: false` (§5.3);
//! 10. lets start/pause_publication gate its sending (§5.5);
//! 11. leaves fields out of HandshakeResponse and ignores the session type's properties (§4.3.5);
//! 12. treats NonInteractiveCommands as a shell (§1.2, §4.3.4);
//! 13. never parses `EXIT_CODE: n`, so commands have no exit code (§4.3.8): shown below;
//! 14. sends no TerminateSession flag, half-closes smux streams with FIN, numbers streams from 1
//!     (§4.3.7, §6.3, §7.4);
//! 15. uses the session id as ClientId and pings differently (§2.2, §2.3).
//!
//! Postern's client does what the spec says in each case; the tests below show the first, the
//! fourth and the thirteenth against the sandbox agent, next to Postern on the same instance, and
//! fail if the crate changes (then this list wants updating).

use postern_e2e::developer_access;
use std::sync::Arc;
use std::time::Duration;

use aws_ssm_bridge::{
    EndpointPolicy, PortForwardConfig, PortForwarder, Session, SessionBuilder, ShutdownSignal,
};
use futures_util::StreamExt;
use postern_core::session::{
    self, PortMode, SessionEnd, SessionEvent, SessionOptions, SessionRequest,
};
use postern_core::tunnel;
use postern_e2e::{echo_server, instance, instance_with_agent, sandbox};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test(flavor = "multi_thread")]
async fn aws_ssm_bridge_opens_a_shell_on_the_sandbox_agent() {
    let sandbox = sandbox().await;
    let access = developer_access(&sandbox).await;
    let target = instance("payments");
    // StartSession through the sandbox's API, then hand the data channel to the other client.
    let started = access
        .sdk()
        .start_session()
        .target(&target)
        .send()
        .await
        .expect("StartSession");
    let config = SessionBuilder::new(&target)
        .endpoint_policy(EndpointPolicy::AllowAny)
        .into_config();
    let session = Session::attach(
        started.session_id().expect("id"),
        started.stream_url().expect("url"),
        started.token_value().expect("token"),
        config,
    )
    .await
    .expect("aws-ssm-bridge attaches to the sandbox's stream URL");
    tokio::time::timeout(Duration::from_secs(15), session.wait_ready())
        .await
        .expect("ready in time")
        .expect("ready");
    let mut output = session.output();
    session
        .send(&b"echo bridge says $((6*7))\r"[..])
        .await
        .expect("send");
    let seen = tokio::time::timeout(Duration::from_secs(15), async {
        let mut seen = Vec::new();
        while let Some(chunk) = output.next().await {
            seen.extend_from_slice(&chunk);
            if String::from_utf8_lossy(&seen).contains("bridge says 42") {
                return String::from_utf8_lossy(&seen).into_owned();
            }
        }
        String::from_utf8_lossy(&seen).into_owned()
    })
    .await
    .expect("output in time");
    assert!(seen.contains("bridge says 42"), "{seen:?}");
    session.terminate().await.expect("terminate");
}

#[tokio::test(flavor = "multi_thread")]
async fn aws_ssm_bridge_forwards_a_port_through_the_sandbox_agent_over_smux() {
    let sandbox = sandbox().await;
    let access = developer_access(&sandbox).await;
    // An agent that speaks smux (3.3.1611.0 with this client version: smux, no keepalive).
    let target = instance("payments");
    let echo = echo_server().await;
    let bridge = BridgeTunnel::open(&access, &target, echo).await;
    let local = bridge.local;
    let mut socket = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            if let Ok(socket) = tokio::net::TcpStream::connect(local).await {
                return socket;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the forwarder listens");
    let payload: Vec<u8> = (0..256 * 1024).map(|i| (i % 251) as u8).collect();
    socket.write_all(&payload).await.expect("write");
    let mut back = vec![0u8; payload.len()];
    tokio::time::timeout(Duration::from_secs(30), socket.read_exact(&mut back))
        .await
        .expect("echo in time")
        .expect("read");
    assert!(back == payload, "the echo through aws-ssm-bridge differs");
    bridge.close().await;
}

/// The crate forwarding a local port to `port` on `target`: StartSession through the sandbox's
/// API, then the crate's own session and forwarder.
struct BridgeTunnel {
    local: std::net::SocketAddr,
    session: Arc<Session>,
    shutdown: ShutdownSignal,
    task: tokio::task::JoinHandle<()>,
}

impl BridgeTunnel {
    async fn open(access: &postern_core::session::SsmAccess, target: &str, port: u16) -> Self {
        let started = access
            .sdk()
            .start_session()
            .target(target)
            .document_name("AWS-StartPortForwardingSession")
            .parameters("portNumber", vec![port.to_string()])
            .parameters("localPortNumber", vec!["0".into()])
            .send()
            .await
            .expect("StartSession");
        let config = SessionBuilder::new(target)
            .port_forward(port)
            .endpoint_policy(EndpointPolicy::AllowAny)
            .into_config();
        let session = Arc::new(
            Session::attach(
                started.session_id().expect("id"),
                started.stream_url().expect("url"),
                started.token_value().expect("token"),
                config,
            )
            .await
            .expect("attach"),
        );
        let forwarder = PortForwarder::bind(PortForwardConfig::default())
            .await
            .expect("bind");
        let local = forwarder.local_addr();
        let shutdown = ShutdownSignal::new();
        let forward = forwarder.forward(session.clone(), shutdown.clone());
        let task = tokio::spawn(async move {
            let _ = forward.await;
        });
        Self {
            local,
            session,
            shutdown,
            task,
        }
    }

    async fn close(self) {
        self.shutdown.shutdown();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.task).await;
        let _ = self.session.terminate().await;
    }
}

/// A server on 127.0.0.1 that records what one connection sends until it has been quiet for a
/// moment, then answers with a banner.
async fn recording_server() -> (u16, tokio::sync::oneshot::Receiver<Vec<u8>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let Ok((mut socket, _)) = listener.accept().await else {
            return;
        };
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(Ok(n)) =
            tokio::time::timeout(Duration::from_millis(700), socket.read(&mut buf)).await
        {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        let _ = socket.write_all(b"SSH-2.0-probe\r\n").await;
        let _ = tx.send(got);
        tokio::time::sleep(Duration::from_secs(2)).await;
    });
    (port, rx)
}

/// Difference 1: against an agent older than smux (3.0.100.0: the single-connection mode, §7.1),
/// the crate still speaks smux, so the server behind the instance receives smux frames instead
/// of the bytes the user sent, and the reply never reaches the user. Postern, on the same
/// instance, picks the single-connection mode and both directions arrive intact.
#[tokio::test(flavor = "multi_thread")]
async fn against_an_agent_without_smux_the_crate_sends_smux_frames_and_postern_does_not() {
    let sandbox = sandbox().await;
    let access = developer_access(&sandbox).await;
    let target = instance_with_agent("3.0.100.0");

    // The crate.
    let (port, recorded) = recording_server().await;
    let bridge = BridgeTunnel::open(&access, &target, port).await;
    let local = bridge.local;
    let mut socket = tokio::net::TcpStream::connect(local)
        .await
        .expect("connect");
    socket.write_all(b"ping").await.expect("write");
    let mut reply = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), socket.read_to_end(&mut reply)).await;
    let received = tokio::time::timeout(Duration::from_secs(10), recorded)
        .await
        .expect("the server saw the connection")
        .expect("recorded");
    // smux v1 frames (version 1; SYN then PSH on stream 1), not "ping".
    assert_ne!(received, b"ping");
    assert!(
        received.starts_with(&[1, 0, 0, 0, 1, 0, 0, 0]),
        "expected an smux SYN first: {received:02x?}"
    );
    assert!(
        received.ends_with(b"ping") && received.len() == 20,
        "{received:02x?}"
    );
    assert!(
        !reply.starts_with(b"SSH-2.0-probe"),
        "the banner reached the user through the crate: {reply:?}"
    );
    bridge.close().await;

    // Postern on the same instance.
    let (port, recorded) = recording_server().await;
    let tunnel = tunnel::open(
        &access,
        postern_e2e::tunnel_spec(&target, port, 1),
        SessionOptions::default(),
    )
    .await
    .expect("tunnel");
    assert_eq!(tunnel.modes(), [PortMode::Basic]);
    let mut socket = tokio::net::TcpStream::connect(tunnel.local_addr())
        .await
        .expect("connect");
    socket.write_all(b"ping").await.expect("write");
    let mut banner = vec![0u8; 15];
    tokio::time::timeout(Duration::from_secs(10), socket.read_exact(&mut banner))
        .await
        .expect("in time")
        .expect("the banner");
    assert_eq!(banner, b"SSH-2.0-probe\r\n");
    let received = tokio::time::timeout(Duration::from_secs(10), recorded)
        .await
        .expect("in time")
        .expect("recorded");
    assert_eq!(received, b"ping");
    tunnel.close().await;
}

/// Differences 4 and 13: a command's `EXIT_CODE: 3` is not parsed, and MGS's 112-byte
/// `channel_closed` (HeaderLength 112, §3.4) is taken for a protocol error. Postern reads both.
#[tokio::test(flavor = "multi_thread")]
async fn the_crate_misses_exit_codes_and_the_short_channel_closed_and_postern_does_not() {
    let sandbox = sandbox().await;
    let access = developer_access(&sandbox).await;
    let target = instance("payments");
    let started = access
        .sdk()
        .start_session()
        .target(&target)
        .document_name("AWS-StartNonInteractiveCommand")
        .parameters("command", vec!["exit 3".into()])
        .parameters("separateOutputStream", vec!["true".into()])
        .send()
        .await
        .expect("StartSession");
    let config = SessionBuilder::new(&target)
        .endpoint_policy(EndpointPolicy::AllowAny)
        .into_config();
    let session = Session::attach(
        started.session_id().expect("id"),
        started.stream_url().expect("url"),
        started.token_value().expect("token"),
        config,
    )
    .await
    .expect("attach");
    let _ = tokio::time::timeout(Duration::from_secs(15), session.wait_ready()).await;
    tokio::time::timeout(Duration::from_secs(15), session.closed())
        .await
        .expect("closed in time");
    assert_eq!(session.exit_code(), None, "the crate now reads exit codes");
    let reason = format!("{:?}", session.close_reason());
    assert!(reason.contains("Protocol"), "{reason}");

    let mut postern = session::open(
        &access,
        SessionRequest::command(&target, "exit 3"),
        SessionOptions::default(),
    )
    .await
    .expect("postern");
    let mut code = None;
    let end = loop {
        match tokio::time::timeout(Duration::from_secs(15), postern.next_event())
            .await
            .expect("in time")
        {
            Some(SessionEvent::ExitCode(c)) => code = Some(c),
            Some(SessionEvent::Ended(end)) => break end,
            Some(_) => {}
            None => panic!("the driver stopped without an end"),
        }
    };
    assert_eq!(code, Some(3));
    assert_eq!(end, SessionEnd::Closed { reason: None });
}
