//! Tunnels through the sandbox agent: many concurrent connections echoed byte for byte, in smux
//! and in single-connection mode, with and without faults on the websocket.

use std::net::SocketAddr;
use std::time::Duration;

use postern_core::session::{PortMode, SessionOptions};
use postern_core::tunnel::{self, TunnelSpec};
use postern_e2e::{DEVELOPER, echo_server, role_credentials, sandbox, ssm_access};
use postern_sandbox::agent::Faults;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Options for loopback: no pacing (the sandbox has no MGS rate cap), quick silence detection.
pub(crate) fn loopback_options() -> SessionOptions {
    let mut options = SessionOptions::default();
    options.channel.pace_per_second = None;
    options.channel.window = 1024;
    options.ping_interval = Duration::from_millis(500);
    options.silence_timeout = Duration::from_secs(3);
    options
}

/// Send `size` pseudo-random bytes through `address` and read the echo; returns the SHA-256 of
/// what was sent and of what came back.
async fn echo_through(address: SocketAddr, size: usize, seed: u8) -> ([u8; 32], [u8; 32]) {
    let socket = TcpStream::connect(address)
        .await
        .expect("connect to the tunnel");
    let (mut reader, mut writer) = socket.into_split();
    let data: Vec<u8> = (0..size)
        .map(|i| (i as u8).wrapping_mul(seed).wrapping_add((i >> 13) as u8))
        .collect();
    let sent = Sha256::digest(&data).into();
    let send = tokio::spawn(async move {
        for chunk in data.chunks(16 * 1024) {
            writer.write_all(chunk).await.expect("write");
        }
        writer
    });
    let mut received = Sha256::new();
    let mut got = 0;
    let mut buf = vec![0u8; 64 * 1024];
    while got < size {
        let n = reader.read(&mut buf).await.expect("read");
        assert!(n > 0, "the tunnel closed after {got} of {size} bytes");
        received.update(&buf[..n]);
        got += n;
    }
    let _writer = send.await.expect("sender");
    (sent, received.finalize().into())
}

async fn many(address: SocketAddr, connections: usize, size: usize) {
    let tasks: Vec<_> = (0..connections)
        .map(|i| tokio::spawn(echo_through(address, size, (2 * i + 3) as u8)))
        .collect();
    for (i, task) in tasks.into_iter().enumerate() {
        let (sent, received) = tokio::time::timeout(Duration::from_secs(240), task)
            .await
            .expect("in time")
            .expect("connection task");
        assert_eq!(sent, received, "connection {i}: the echo differs");
    }
}

fn spec(target: &str, port: u16, pool: usize) -> TunnelSpec {
    TunnelSpec {
        target: target.to_owned(),
        remote_port: port,
        host: None,
        local: "127.0.0.1:0".parse().expect("addr"),
        pool,
    }
}

/// An online instance of the demo account (us-east-1, a team the developer role reaches) with
/// the given agent version.
fn instance_with_agent(version: &str) -> String {
    use postern_sandbox::scenario::{InstanceState, SsmStatus};
    postern_sandbox::Scenario::default_world()
        .fleet
        .instances
        .into_iter()
        .find(|i| {
            i.account == "210987654321"
                && i.region == "us-east-1"
                && i.state == InstanceState::Running
                && i.ssm == SsmStatus::Online
                && i.agent_version == version
                && i.tags
                    .get("team")
                    .is_some_and(|t| t == "payments" || t == "search")
        })
        .map(|i| i.id)
        .unwrap_or_else(|| panic!("no reachable instance with agent {version}"))
}

const MIB: usize = 1024 * 1024;

#[tokio::test(flavor = "multi_thread")]
async fn sixteen_connections_of_eight_mebibytes_over_smux() {
    let sandbox = sandbox().await;
    let access = ssm_access(
        &sandbox,
        role_credentials(&sandbox, DEVELOPER, "demo").await,
    );
    let port = echo_server().await;
    let tunnel = tunnel::open(
        &access,
        spec(&postern_e2e::instance("payments"), port, 1),
        loopback_options(),
    )
    .await
    .expect("tunnel");
    assert_eq!(tunnel.modes(), [PortMode::Mux { keepalive: false }]);
    many(tunnel.local_addr(), 16, 8 * MIB).await;
    let stats = tunnel.stats();
    assert_eq!(
        stats.connections.load(std::sync::atomic::Ordering::Relaxed),
        16
    );
    assert_eq!(
        stats.bytes_up.load(std::sync::atomic::Ordering::Relaxed),
        16 * 8 * MIB as u64
    );
    tunnel.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn single_connection_mode_carries_connections_one_after_another() {
    let sandbox = sandbox().await;
    let access = ssm_access(
        &sandbox,
        role_credentials(&sandbox, DEVELOPER, "demo").await,
    );
    let port = echo_server().await;
    // An agent older than smux: basic mode, one connection at a time per session.
    let target = instance_with_agent("3.0.100.0");
    let tunnel = tunnel::open(&access, spec(&target, port, 1), loopback_options())
        .await
        .expect("tunnel");
    assert_eq!(tunnel.modes(), [PortMode::Basic]);
    for i in 0..3 {
        let (sent, received) = echo_through(tunnel.local_addr(), 8 * MIB, 5 + i).await;
        assert_eq!(sent, received, "connection {i}");
    }
    tunnel.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pool_spreads_connections_over_sessions() {
    let sandbox = sandbox().await;
    let access = ssm_access(
        &sandbox,
        role_credentials(&sandbox, DEVELOPER, "demo").await,
    );
    let port = echo_server().await;
    let tunnel = tunnel::open(
        &access,
        spec(&postern_e2e::instance("payments"), port, 4),
        loopback_options(),
    )
    .await
    .expect("tunnel");
    assert_eq!(tunnel.modes().len(), 4);
    many(tunnel.local_addr(), 8, MIB).await;
    tunnel.close().await;
}

/// Start a tunnel whose session gets `faults`, then push `connections` × `size` through it.
async fn under_faults(faults: Faults, connections: usize, size: usize) {
    let sandbox = sandbox().await;
    let credentials = role_credentials(&sandbox, DEVELOPER, "demo").await;
    let access = ssm_access(&sandbox, credentials);
    let port = echo_server().await;
    // Faults are per session: arm them for every session this role starts, through a wrapper
    // that sets them as soon as the session id is known (the sandbox reads them per connection).
    let target = postern_e2e::instance("payments");
    postern_e2e::arm_faults_for_next_sessions(&sandbox, faults);
    let tunnel = tunnel::open(&access, spec(&target, port, 1), loopback_options())
        .await
        .expect("tunnel");
    many(tunnel.local_addr(), connections, size).await;
    tunnel.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_websocket_killed_three_times_mid_transfer_loses_nothing() {
    under_faults(
        Faults {
            drop_socket_after: Some(3000),
            drop_socket_times: 3,
            ..Faults::default()
        },
        16,
        8 * MIB,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_websocket_is_noticed_and_resumed() {
    under_faults(
        Faults {
            stall_after: Some(4000),
            ..Faults::default()
        },
        16,
        8 * MIB,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn two_percent_of_frames_dropped_duplicated_and_reordered_lose_nothing() {
    let faults = Faults {
        drop_rate: 0.02,
        duplicate_rate: 0.02,
        reorder_rate: 0.02,
        ..Faults::default()
    };
    under_faults(faults, 16, 8 * MIB).await;
}
