//! A client no one here wrote — the `aws-ssm-bridge` crate — against the sandbox's agent: a shell
//! and a tunnel. It speaks the protocol on its own (frames, acks, handshake, smux), so where the
//! sandbox agent agrees with it and with the spec, the agent is not just agreeing with our own
//! client's reading of the spec.

use std::sync::Arc;
use std::time::Duration;

use aws_ssm_bridge::{
    EndpointPolicy, PortForwardConfig, PortForwarder, Session, SessionBuilder, ShutdownSignal,
};
use futures_util::StreamExt;
use postern_e2e::{DEVELOPER, echo_server, instance, role_credentials, sandbox, ssm_access};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test(flavor = "multi_thread")]
async fn aws_ssm_bridge_opens_a_shell_on_the_sandbox_agent() {
    let sandbox = sandbox().await;
    let access = ssm_access(
        &sandbox,
        role_credentials(&sandbox, DEVELOPER, "demo").await,
    );
    let target = instance("payments");
    // StartSession through the sandbox's API, then hand the data channel to the other client.
    let started = access
        .client
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
async fn aws_ssm_bridge_forwards_a_port_through_the_sandbox_agent() {
    let sandbox = sandbox().await;
    let access = ssm_access(
        &sandbox,
        role_credentials(&sandbox, DEVELOPER, "demo").await,
    );
    let target = instance("search");
    let echo = echo_server().await;
    let started = access
        .client
        .start_session()
        .target(&target)
        .document_name("AWS-StartPortForwardingSession")
        .parameters("portNumber", vec![echo.to_string()])
        .parameters("localPortNumber", vec!["0".into()])
        .send()
        .await
        .expect("StartSession");
    let config = SessionBuilder::new(&target)
        .port_forward(echo)
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
    let task = tokio::spawn(forwarder.forward(session.clone(), shutdown.clone()));
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
    shutdown.shutdown();
    let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
    session.terminate().await.expect("terminate");
}
