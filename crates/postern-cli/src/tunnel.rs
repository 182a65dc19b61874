//! `postern tunnel`.

use std::sync::atomic::Ordering;

use anyhow::Context as _;
use postern_core::session::{PortMode, SessionOptions, SsmAccess};
use postern_core::tunnel::{self, TunnelSpec};

use crate::interrupt::{Interrupts, Opened, open_unless_stopped, say};

/// Parse `<local>:<remote>` (the local port may be 0 for any free port).
pub(crate) fn parse_ports(text: &str) -> anyhow::Result<(u16, u16)> {
    let (local, remote) = text.split_once(':').with_context(|| {
        format!("ports must be <local>:<remote>, like 5432:5432 (got {text:?})")
    })?;
    let local = local.parse::<u16>().with_context(|| {
        format!("the local port {local:?} is not a port number (0 picks a free one)")
    })?;
    let remote = remote
        .parse::<u16>()
        .ok()
        .filter(|p| *p != 0)
        .with_context(|| {
            format!("the remote port {remote:?} is not a port number from 1 to 65535")
        })?;
    Ok((local, remote))
}

/// Refuse bad ports and pool sizes before any call is made.
pub(crate) fn check(ports: &str, pool: usize) -> anyhow::Result<()> {
    parse_ports(ports)?;
    anyhow::ensure!(
        (1..=postern_core::tunnel::MAX_POOL).contains(&pool),
        "--pool must be from 1 to {} (got {pool})",
        postern_core::tunnel::MAX_POOL
    );
    Ok(())
}

fn describe(mode: PortMode) -> &'static str {
    match mode {
        PortMode::Mux { .. } => "multiplexed",
        PortMode::Basic => "one connection at a time (old agent)",
        PortMode::Stream => "stream",
    }
}

pub(crate) async fn tunnel(
    access: &SsmAccess,
    instance: &str,
    ports: &str,
    host: Option<&str>,
    pool: usize,
) -> anyhow::Result<u8> {
    check(ports, pool)?;
    let (local, remote) = parse_ports(ports)?;
    let spec = TunnelSpec {
        target: instance.to_owned(),
        remote_port: remote,
        host: host.map(str::to_owned),
        local: std::net::SocketAddr::from(([127, 0, 0, 1], local)),
        pool,
    };
    let mut interrupts = Interrupts::install()?;
    let opening = tunnel::open(access, spec, SessionOptions::default());
    let tunnel = match open_unless_stopped(&mut interrupts, opening).await? {
        Opened::Yes(tunnel) => tunnel,
        Opened::Stopped(signal, late) => {
            if let Some(tunnel) = late {
                let _ = tunnel.close().await;
            }
            say(&format!(
                "postern: {} before the tunnel opened.",
                signal.name()
            ));
            return Ok(signal.exit_code());
        }
    };
    let to = match host {
        Some(host) => format!("{host}:{remote} through {instance}"),
        None => format!("{instance}:{remote}"),
    };
    let mode = tunnel.modes().first().copied().map_or("", describe);
    // The first line is for scripts: the address to connect to.
    println!("{}", tunnel.local_addr());
    say(&format!(
        "Forwarding {} to {to} over {pool} session{} ({mode}). Ctrl-C stops.",
        tunnel.local_addr(),
        if pool == 1 { "" } else { "s" }
    ));
    // Ctrl-C is how a tunnel is meant to end: every way of stopping it closes its sessions on
    // the service and succeeds.
    let _ = interrupts.next().await;
    let stats = tunnel.stats();
    let (up, down, connections) = (
        stats.bytes_up.load(Ordering::Relaxed),
        stats.bytes_down.load(Ordering::Relaxed),
        stats.connections.load(Ordering::Relaxed),
    );
    let unconfirmed = tunnel.close().await;
    say(&format!(
        "Closed: {connections} connections, {up} bytes sent, {down} bytes received."
    ));
    if unconfirmed > 0 {
        say(&format!(
            "postern: warning: AWS did not confirm that {unconfirmed} of the tunnel's sessions ended; they end after the account's idle timeout"
        ));
        return Ok(1);
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::parse_ports;

    #[test]
    fn ports_parse_with_clear_errors() {
        assert_eq!(parse_ports("5432:5432").expect("ok"), (5432, 5432));
        assert_eq!(parse_ports("0:22").expect("ok"), (0, 22));
        for bad in ["5432", "a:22", "22:0", "22:70000", ":22"] {
            assert!(parse_ports(bad).is_err(), "{bad}");
        }
    }
}
