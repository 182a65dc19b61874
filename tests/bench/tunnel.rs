//! Tunnel throughput on loopback.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use postern_core::session::SessionOptions;
use postern_core::tunnel::{self, TunnelSpec};
use postern_e2e::{DEVELOPER, role_credentials, ssm_access};
use postern_sandbox::agent::pacer::{self, Pacer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{Row, mib_per_s};

const MIB: u64 = 1024 * 1024;

/// A server on 127.0.0.1 that sends as many bytes as each connection asks for (an 8-byte
/// big-endian count), then closes: the far end of every download.
async fn source_server() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let _ = socket.set_nodelay(true);
            tokio::spawn(async move {
                let mut size = [0u8; 8];
                if socket.read_exact(&mut size).await.is_err() {
                    return;
                }
                let mut left = u64::from_be_bytes(size);
                let block = vec![0x5au8; 256 * 1024];
                while left > 0 {
                    let n = left.min(block.len() as u64) as usize;
                    if socket.write_all(&block[..n]).await.is_err() {
                        return;
                    }
                    left -= n as u64;
                }
                let _ = socket.shutdown().await;
            });
        }
    });
    address
}

/// Download `size` bytes over each of `connections` connections to `address` at once; MiB/s
/// over all of them.
async fn download(address: SocketAddr, connections: usize, size: u64) -> f64 {
    let start = Instant::now();
    let tasks: Vec<_> = (0..connections)
        .map(|_| {
            tokio::spawn(async move {
                let mut socket = tokio::net::TcpStream::connect(address)
                    .await
                    .expect("connect");
                let _ = socket.set_nodelay(true);
                socket.write_all(&size.to_be_bytes()).await.expect("ask");
                let mut buf = vec![0u8; 256 * 1024];
                let mut got = 0u64;
                while got < size {
                    let n = socket.read(&mut buf).await.expect("read");
                    assert!(n > 0, "closed after {got} of {size} bytes");
                    got += n as u64;
                }
            })
        })
        .collect();
    for task in tasks {
        tokio::time::timeout(Duration::from_secs(600), task)
            .await
            .expect("in time")
            .expect("download");
    }
    mib_per_s(size * connections as u64, start.elapsed().as_secs_f64())
}

/// A server on 127.0.0.1 that reads as many bytes as each connection announces (an 8-byte
/// big-endian count), then answers one byte: the far end of every upload.
async fn sink_server() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let _ = socket.set_nodelay(true);
            tokio::spawn(async move {
                let mut size = [0u8; 8];
                if socket.read_exact(&mut size).await.is_err() {
                    return;
                }
                let mut left = u64::from_be_bytes(size);
                let mut buf = vec![0u8; 256 * 1024];
                while left > 0 {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => left = left.saturating_sub(n as u64),
                    }
                }
                let _ = socket.write_all(b"!").await;
            });
        }
    });
    address
}

/// Upload `size` bytes to `address` over one connection; MiB/s until the far end has them all.
async fn upload(address: SocketAddr, size: u64) -> f64 {
    let start = Instant::now();
    let mut socket = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    let _ = socket.set_nodelay(true);
    socket
        .write_all(&size.to_be_bytes())
        .await
        .expect("announce");
    let block = vec![0xa5u8; 64 * 1024];
    let mut left = size;
    while left > 0 {
        let n = left.min(block.len() as u64) as usize;
        socket.write_all(&block[..n]).await.expect("write");
        left -= n as u64;
    }
    let mut done = [0u8; 1];
    tokio::time::timeout(Duration::from_secs(600), socket.read_exact(&mut done))
        .await
        .expect("in time")
        .expect("the far end's answer");
    mib_per_s(size, start.elapsed().as_secs_f64())
}

/// The client's pacer alone, on tokio's timer as the session driver uses it, always with a
/// message waiting: messages a second.
async fn client_pacer_ceiling(per_second: u32, duration: Duration) -> f64 {
    let mut pacer = postern_core::postern_ssm::pacer::Pacer::new(Some(per_second));
    let start = Instant::now();
    let mut sent = 0usize;
    while start.elapsed() < duration {
        sent += pacer.release(Instant::now(), usize::MAX);
        if let Some(next) = pacer.next_slot() {
            tokio::time::sleep_until(next.into()).await;
        }
    }
    sent as f64 / start.elapsed().as_secs_f64()
}

fn spec(target: &str, address: SocketAddr, pool: usize) -> TunnelSpec {
    TunnelSpec {
        target: target.to_owned(),
        remote_port: address.port(),
        host: None,
        local: "127.0.0.1:0".parse().expect("address"),
        pool,
    }
}

/// The client as on loopback: no pacing of its own, a wide window.
fn unpaced() -> SessionOptions {
    let mut options = SessionOptions::default();
    options.channel.pace_per_second = None;
    options.channel.window = 1024;
    options
}

/// Every figure of one round, each beside its baseline.
#[derive(Default)]
struct Samples {
    raw1: Vec<f64>,
    raw8: Vec<f64>,
    one: Vec<f64>,
    eight: Vec<f64>,
    ceiling: Vec<f64>,
    single: Vec<f64>,
    pooled: Vec<f64>,
    pacer_ceiling: Vec<f64>,
    up: Vec<f64>,
}

/// A throughput to three significant digits (MiB/s).
fn digits(v: f64) -> String {
    let decimals = if v < 1.0 {
        3
    } else if v < 10.0 {
        2
    } else if v < 100.0 {
        1
    } else {
        0
    };
    format!("{v:.decimals$}")
}

pub(crate) async fn run() -> Vec<Row> {
    let sandbox = postern_e2e::sandbox().await;
    let access = ssm_access(
        &sandbox,
        role_credentials(&sandbox, DEVELOPER, "demo").await,
    );
    let source = source_server().await;
    let sink = sink_server().await;
    let target = postern_e2e::instance("payments");
    let runs = crate::runs();
    let mut s = Samples::default();
    // Each round measures every figure once, its baseline right beside it, so a load that comes
    // and goes during the bench weighs on both alike.
    for round in 1..=runs {
        eprintln!("tunnel: round {round} of {runs}");
        // The limit: raw loopback TCP.
        s.raw1.push(download(source, 1, 256 * MIB).await);
        s.raw8.push(download(source, 8, 64 * MIB).await);

        // Pacing off: what the protocol and Postern cost.
        sandbox.set_agent_pacing(false);
        let tunnel = tunnel::open(&access, spec(&target, source, 1), unpaced())
            .await
            .expect("tunnel");
        let _warm = download(tunnel.local_addr(), 1, 4 * MIB).await;
        s.one.push(download(tunnel.local_addr(), 1, 64 * MIB).await);
        s.eight
            .push(download(tunnel.local_addr(), 8, 16 * MIB).await);
        tunnel.close().await;

        // Pacing on, as the real agent: one session against its schedule alone, a pool against
        // one.
        sandbox.set_agent_pacing(true);
        s.ceiling.push(mib_per_s(
            (Pacer::ceiling(Duration::from_secs(2)).await * pacer::MESSAGE as f64) as u64,
            1.0,
        ));
        let size = 4 * MIB;
        let tunnel = tunnel::open(&access, spec(&target, source, 1), SessionOptions::default())
            .await
            .expect("tunnel");
        let _warm = download(tunnel.local_addr(), 1, 256 * 1024).await;
        s.single.push(download(tunnel.local_addr(), 1, size).await);
        tunnel.close().await;
        let tunnel = tunnel::open(&access, spec(&target, source, 8), SessionOptions::default())
            .await
            .expect("tunnel");
        let _warm = download(tunnel.local_addr(), 8, 256 * 1024).await;
        s.pooled.push(download(tunnel.local_addr(), 8, size).await);
        tunnel.close().await;
        sandbox.set_agent_pacing(false);

        // Uploads are paced by the client (below MGS's cap): against its pacer alone.
        let options = SessionOptions::default();
        let per_second = options.channel.pace_per_second.unwrap_or(1000);
        s.pacer_ceiling.push(mib_per_s(
            (client_pacer_ceiling(per_second, Duration::from_secs(2)).await
                * postern_core::postern_ssm::channel::MAX_CHUNK as f64) as u64,
            1.0,
        ));
        let tunnel = tunnel::open(&access, spec(&target, sink, 1), options)
            .await
            .expect("tunnel");
        let _warm = upload(tunnel.local_addr(), 256 * 1024).await;
        s.up.push(upload(tunnel.local_addr(), 4 * MIB).await);
        tunnel.close().await;
    }
    vec![
        Row::repeated(
            "unpaced tunnel, 1 connection (vs raw loopback TCP)",
            &s.one,
            &s.raw1,
            digits,
            "MiB/s",
        ),
        Row::repeated(
            "unpaced tunnel, 8 connections (vs raw loopback TCP)",
            &s.eight,
            &s.raw8,
            digits,
            "MiB/s",
        ),
        Row::repeated(
            "paced agent, 1 session (vs the agent's pacing alone)",
            &s.single,
            &s.ceiling,
            digits,
            "MiB/s",
        )
        .target(0.90, "≥ 0.90"),
        Row::repeated(
            "paced agent, pool of 8 sessions, 8 connections (vs 1 session)",
            &s.pooled,
            &s.single,
            digits,
            "MiB/s",
        )
        .target(6.0, "≥ 6×"),
        Row::repeated(
            "upload, client pacing on, 1 session (vs the client pacer alone)",
            &s.up,
            &s.pacer_ceiling,
            digits,
            "MiB/s",
        ),
    ]
}
