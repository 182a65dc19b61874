//! Tunnels through the sandbox agent: many concurrent connections echoed byte for byte, in smux
//! and in single-connection mode, with and without faults on the websocket.

use postern_e2e::developer_access;
use std::net::SocketAddr;
use std::time::Duration;

use postern_core::session::{PortMode, SessionOptions};
use postern_core::tunnel::{self, TunnelSpec};
use postern_e2e::tunnel_spec as spec;
use postern_e2e::{
    DEVELOPER, echo_server, instance_with_agent, role_credentials, sandbox, ssm_access,
};
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

const MIB: usize = 1024 * 1024;

#[tokio::test(flavor = "multi_thread")]
async fn sixteen_connections_of_eight_mebibytes_over_smux() {
    let sandbox = sandbox().await;
    let access = developer_access(&sandbox).await;
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
async fn a_tunnel_through_the_instance_reaches_another_host() {
    let sandbox = sandbox().await;
    let access = developer_access(&sandbox).await;
    let port = echo_server().await;
    // AWS-StartPortForwardingSessionToRemoteHost; the sandbox's instances see every host on
    // their loopback.
    let tunnel = tunnel::open(
        &access,
        TunnelSpec {
            host: Some("orders-db.cluster-example.us-east-1.rds.amazonaws.com".into()),
            ..spec(&postern_e2e::instance("payments"), port, 1)
        },
        loopback_options(),
    )
    .await
    .expect("tunnel");
    assert_eq!(tunnel.modes(), [PortMode::Mux { keepalive: false }]);
    many(tunnel.local_addr(), 4, MIB).await;
    let stats = tunnel.stats();
    assert_eq!(
        stats.bytes_down.load(std::sync::atomic::Ordering::Relaxed),
        4 * MIB as u64
    );
    tunnel.close().await;
}

/// A local client that writes 64 MiB and reads nothing for a while: what waits for it in
/// Postern stays bounded (the agent is slowed down instead), and every byte arrives once it
/// reads.
async fn a_client_that_does_not_read(target: &str) {
    use std::sync::atomic::Ordering::Relaxed;

    let sandbox = sandbox().await;
    let access = developer_access(&sandbox).await;
    let port = echo_server().await;
    let tunnel = tunnel::open(&access, spec(target, port, 1), loopback_options())
        .await
        .expect("tunnel");
    let size = 64 * MIB;
    let socket = TcpStream::connect(tunnel.local_addr())
        .await
        .expect("connect");
    let (mut reader, mut writer) = socket.into_split();
    let data: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
    let sent = Sha256::digest(&data);
    let sending = tokio::spawn(async move {
        writer.write_all(&data).await.expect("write");
        writer
    });
    tokio::time::sleep(Duration::from_secs(3)).await;
    let stats = tunnel.stats();
    let waiting = stats.waiting_for_local.load(Relaxed);
    assert!(
        waiting <= tunnel::MAX_BACKLOG + 1024 * 1024,
        "{waiting} bytes wait for the local client"
    );
    assert!(
        !sending.is_finished(),
        "the writer is held back while nobody reads (after {} bytes up)",
        stats.bytes_up.load(Relaxed)
    );
    let mut received = Sha256::new();
    let mut got = 0;
    let mut buf = vec![0u8; 64 * 1024];
    while got < size {
        let n = tokio::time::timeout(Duration::from_secs(60), reader.read(&mut buf))
            .await
            .expect("the echo keeps coming")
            .expect("read");
        assert!(n > 0, "closed after {got} bytes");
        received.update(&buf[..n]);
        got += n;
    }
    let _writer = sending.await.expect("writer");
    assert_eq!(sent, received.finalize());
    // The last write's count is taken off just after it completes.
    tokio::time::timeout(Duration::from_secs(5), async {
        while stats.waiting_for_local.load(Relaxed) != 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("nothing waits once everything was read");
    tunnel.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_does_not_read_holds_the_agent_back_not_memory() {
    a_client_that_does_not_read(&postern_e2e::instance("payments")).await;
    a_client_that_does_not_read(&instance_with_agent("3.0.100.0")).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn smux_with_keepalives_on_agents_that_need_them() {
    let sandbox = sandbox().await;
    let access = ssm_access(
        &sandbox,
        role_credentials(&sandbox, postern_e2e::ADMIN, "demo").await,
    );
    let port = echo_server().await;
    // Agents from 3.0.222.0 up to 3.1.1511.0 expect smux keepalives (spec §8).
    let target = postern_e2e::demo_instance(|i| i.agent_version == "3.1.1476.0")
        .expect("the default world has an agent of 3.1.1476.0");
    let tunnel = tunnel::open(&access, spec(&target, port, 1), loopback_options())
        .await
        .expect("tunnel");
    assert_eq!(tunnel.modes(), [PortMode::Mux { keepalive: true }]);
    many(tunnel.local_addr(), 4, MIB).await;
    tunnel.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn single_connection_mode_carries_connections_one_after_another() {
    let sandbox = sandbox().await;
    let access = developer_access(&sandbox).await;
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
    let access = developer_access(&sandbox).await;
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

/// Push `connections` × `size` through a tunnel of `pool` sessions to `target`, every session
/// started with `faults` on its websocket; then check the faults really happened, every byte was
/// counted both ways, and the sessions were resumed, never replaced.
async fn under_faults(target: &str, pool: usize, faults: Faults, connections: usize, size: usize) {
    use std::sync::atomic::Ordering::Relaxed;

    let sandbox = sandbox().await;
    let credentials = role_credentials(&sandbox, DEVELOPER, "demo").await;
    let access = ssm_access(&sandbox, credentials);
    let port = echo_server().await;
    postern_e2e::arm_faults_for_next_sessions(&sandbox, faults.clone());
    let tunnel = tunnel::open(&access, spec(target, port, pool), loopback_options())
        .await
        .expect("tunnel");
    many(tunnel.local_addr(), connections, size).await;
    let stats = tunnel.stats();
    let total = (connections * size) as u64;
    assert_eq!(stats.bytes_up.load(Relaxed), total, "bytes counted up");
    assert_eq!(stats.bytes_down.load(Relaxed), total, "bytes counted down");
    assert_eq!(stats.connections.load(Relaxed), connections as u64);
    assert_eq!(
        stats.sessions.load(Relaxed),
        pool as u64,
        "every session was resumed, none replaced"
    );
    tunnel.close().await;
    let injected = sandbox.faults_injected();
    if faults.drop_socket_after.is_some() {
        assert!(
            injected.sockets_dropped >= u64::from(faults.drop_socket_times),
            "{injected:?}"
        );
    }
    if faults.stall_after.is_some() {
        assert!(injected.stalls >= 1, "{injected:?}");
    }
    if faults.drop_rate > 0.0 {
        assert!(injected.frames_dropped > 0, "{injected:?}");
    }
    if faults.duplicate_rate > 0.0 {
        assert!(injected.frames_duplicated > 0, "{injected:?}");
    }
    if faults.reorder_rate > 0.0 {
        assert!(injected.frames_reordered > 0, "{injected:?}");
    }
    if faults == Faults::default() {
        assert_eq!(injected, postern_sandbox::agent::Injected::default());
    }
}

fn killed_three_times() -> Faults {
    Faults {
        drop_socket_after: Some(3000),
        drop_socket_times: 3,
        ..Faults::default()
    }
}

fn stalled_once() -> Faults {
    Faults {
        stall_after: Some(4000),
        ..Faults::default()
    }
}

fn lossy() -> Faults {
    Faults {
        drop_rate: 0.02,
        duplicate_rate: 0.02,
        reorder_rate: 0.02,
        ..Faults::default()
    }
}

/// The two ways a port session carries bytes: smux (many connections per session) and the
/// single-connection mode of agents older than smux (connections take turns; a pool of four
/// sessions carries four at a time).
fn smux() -> (String, usize) {
    (postern_e2e::instance("payments"), 1)
}

fn basic() -> (String, usize) {
    (instance_with_agent("3.0.100.0"), 4)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_websocket_killed_three_times_mid_transfer_loses_nothing() {
    let (target, pool) = smux();
    under_faults(&target, pool, killed_three_times(), 16, 8 * MIB).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_websocket_is_noticed_and_resumed() {
    let (target, pool) = smux();
    under_faults(&target, pool, stalled_once(), 16, 8 * MIB).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn two_percent_of_frames_dropped_duplicated_and_reordered_lose_nothing() {
    let (target, pool) = smux();
    under_faults(&target, pool, lossy(), 16, 8 * MIB).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sixteen_concurrent_connections_in_single_connection_mode() {
    let (target, pool) = basic();
    under_faults(&target, pool, Faults::default(), 16, 8 * MIB).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn single_connection_mode_survives_a_killed_a_stalled_and_a_lossy_websocket() {
    let (target, pool) = basic();
    for faults in [killed_three_times(), stalled_once(), lossy()] {
        under_faults(&target, pool, faults, 8, 8 * MIB).await;
    }
}

// ---------------------------------------------------------------------------------------------
// `make soak`: the same at 64 MiB per connection, and a tunnel left idle for an hour.

/// MiB per connection in the soak runs (`POSTERN_SOAK_MIB` to change).
fn soak_size() -> usize {
    std::env::var("POSTERN_SOAK_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64)
        * MIB
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "soak: make soak"]
async fn soak_sixteen_connections_of_64_mib_in_both_modes() {
    for (target, pool) in [smux(), basic()] {
        under_faults(&target, pool, Faults::default(), 16, soak_size()).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "soak: make soak"]
async fn soak_64_mib_connections_through_killed_stalled_and_lossy_websockets() {
    for (target, pool) in [smux(), basic()] {
        for faults in [killed_three_times(), stalled_once(), lossy()] {
            under_faults(&target, pool, faults, 16, soak_size()).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "soak: make soak"]
async fn soak_a_tunnel_idle_for_an_hour_carries_the_next_connection() {
    use std::sync::Arc;

    use postern_core::aws::AwsAccess;
    use postern_core::credentials::Selection;

    postern_e2e::require_keychain();
    let idle = Duration::from_secs(
        std::env::var("POSTERN_SOAK_IDLE_SECS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(3600),
    );
    // Credentials as the app has them: refreshed as they expire (a role lasts an hour).
    let sandbox = Arc::new(sandbox().await);
    let home = postern_e2e::TempDir::new("soak-idle");
    let resolver = Arc::new(postern_e2e::demo_resolver(
        &sandbox,
        &home,
        Arc::new(postern_e2e::SandboxDevice(sandbox.clone())),
    ));
    let access = AwsAccess::new(resolver, Selection::Profile("developer".into()), None)
        .await
        .expect("access");
    let port = echo_server().await;
    let tunnel = tunnel::open(
        &access.ssm(),
        spec(&postern_e2e::instance("payments"), port, 1),
        loopback_options(),
    )
    .await
    .expect("tunnel");
    let (sent, received) = echo_through(tunnel.local_addr(), MIB, 3).await;
    assert_eq!(sent, received);
    tokio::time::sleep(idle).await;
    let (sent, received) = echo_through(tunnel.local_addr(), MIB, 5).await;
    assert_eq!(sent, received, "the connection after {idle:?} idle");
    tunnel.close().await;
}

/// The next tunnel event, within a few seconds.
async fn next_event(
    events: &mut tokio::sync::broadcast::Receiver<tunnel::TunnelEvent>,
) -> tunnel::TunnelEvent {
    tokio::time::timeout(Duration::from_secs(20), events.recv())
        .await
        .expect("an event in time")
        .expect("the tunnel is alive")
}

/// What a front end's live list is told: connections opened and closed by number, a session
/// that ended replaced, a remote port nobody listens on, the close.
async fn tunnel_events(target: &str, mode: PortMode) {
    use tunnel::TunnelEvent;

    let sandbox = sandbox().await;
    let access = developer_access(&sandbox).await;
    let port = echo_server().await;
    let tunnel = tunnel::open(&access, spec(target, port, 1), loopback_options())
        .await
        .expect("tunnel");
    assert_eq!(tunnel.modes(), [mode]);
    let mut events = tunnel.subscribe();
    for i in 1..=2u64 {
        let (sent, received) = echo_through(tunnel.local_addr(), 64 * 1024, i as u8).await;
        assert_eq!(sent, received);
        assert_eq!(
            next_event(&mut events).await,
            TunnelEvent::ConnectionOpened { connection: i }
        );
        assert_eq!(
            next_event(&mut events).await,
            TunnelEvent::ConnectionClosed { connection: i }
        );
    }
    // The service ends the session (an administrator, the idle timeout): the tunnel says so,
    // starts another, and the next connection goes through it.
    let active = access
        .sdk()
        .describe_sessions()
        .state(aws_sdk_ssm::types::SessionState::Active)
        .send()
        .await
        .expect("DescribeSessions");
    let session = active
        .sessions()
        .iter()
        .find(|s| s.target() == Some(target))
        .and_then(|s| s.session_id())
        .expect("the tunnel's session is active")
        .to_owned();
    access
        .sdk()
        .terminate_session()
        .session_id(&session)
        .send()
        .await
        .expect("TerminateSession");
    assert!(
        matches!(
            next_event(&mut events).await,
            TunnelEvent::SessionEnded { .. }
        ),
        "the end is told"
    );
    assert_eq!(next_event(&mut events).await, TunnelEvent::SessionReplaced);
    let (sent, received) = echo_through(tunnel.local_addr(), 64 * 1024, 9).await;
    assert_eq!(sent, received);
    assert_eq!(
        next_event(&mut events).await,
        TunnelEvent::ConnectionOpened { connection: 3 }
    );
    assert_eq!(
        next_event(&mut events).await,
        TunnelEvent::ConnectionClosed { connection: 3 }
    );
    tunnel.close().await;
    assert_eq!(
        next_event(&mut events).await,
        TunnelEvent::Closed { unconfirmed: 0 }
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tunnel_tells_what_happens_in_it() {
    tunnel_events(
        &postern_e2e::instance("payments"),
        PortMode::Mux { keepalive: false },
    )
    .await;
    tunnel_events(&instance_with_agent("3.0.100.0"), PortMode::Basic).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_remote_port_nobody_listens_on_is_told_and_pools_are_bounded() {
    use tunnel::TunnelEvent;

    let sandbox = sandbox().await;
    let access = developer_access(&sandbox).await;
    let closed_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let target = postern_e2e::instance("payments");
    let tunnel = tunnel::open(&access, spec(&target, closed_port, 1), loopback_options())
        .await
        .expect("tunnel");
    let mut events = tunnel.subscribe();
    let mut socket = TcpStream::connect(tunnel.local_addr())
        .await
        .expect("connect");
    socket.write_all(b"hello?").await.expect("write");
    let mut seen = Vec::new();
    while !seen.contains(&TunnelEvent::RemotePortUnreachable {
        port: closed_port,
        host: None,
    }) {
        seen.push(next_event(&mut events).await);
    }
    assert_eq!(seen[0], TunnelEvent::ConnectionOpened { connection: 1 });
    tunnel.close().await;

    for pool in [0, tunnel::MAX_POOL + 1] {
        let refused = tunnel::open(
            &access,
            spec(&target, closed_port, pool),
            loopback_options(),
        )
        .await
        .expect_err("out of bounds");
        assert!(
            matches!(refused, tunnel::TunnelError::Pool(n) if n == pool),
            "{refused}"
        );
    }
}
