//! Port sessions: how bytes are carried, decided from the agent's version exactly as AWS's
//! plugin decides it (spec §7.1), so client and agent agree.

use std::cmp::Ordering;
use std::collections::BTreeMap;

/// How a port session carries bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortMode {
    /// `AWS-StartSSHSession` and other non-`LocalPortForwarding` documents: one byte stream.
    Stream,
    /// One local connection at a time, bytes as Output messages, DisconnectToPort between them.
    Basic,
    /// smux v1 streams multiplexed over the Output byte stream.
    Mux {
        /// Whether smux keepalive (NOP every 10 s, 30 s timeout) must run; the agent enables it
        /// for older agents and, with agent 3.1.1446.0's bug, never.
        keepalive: bool,
    },
}

/// The version after which agents speak smux (plugin's check: strictly greater).
pub const MUX_AFTER: &str = "3.0.196.0";
/// The version after which agents disable smux keepalive for new clients.
pub const KEEPALIVE_OFF_AFTER: &str = "3.1.1511.0";
/// The one agent version that disabled keepalive unconditionally.
pub const KEEPALIVE_BUG: &str = "3.1.1446.0";

/// Compare dotted numeric versions component by component; `None` if either does not parse.
/// Missing components count as 0 (`3.0` = `3.0.0.0`).
pub fn compare_versions(a: &str, b: &str) -> Option<Ordering> {
    let parse =
        |v: &str| -> Option<Vec<u64>> { v.trim().split('.').map(|c| c.parse().ok()).collect() };
    let (a, b) = (parse(a)?, parse(b)?);
    let len = a.len().max(b.len());
    for i in 0..len {
        let (x, y) = (
            a.get(i).copied().unwrap_or(0),
            b.get(i).copied().unwrap_or(0),
        );
        match x.cmp(&y) {
            Ordering::Equal => continue,
            other => return Some(other),
        }
    }
    Some(Ordering::Equal)
}

/// The mode of a port session with these document `properties` on an agent of `agent_version`,
/// for a client reporting a version of at least 1.2.332 (which every version Postern reports is).
pub fn port_mode(properties: &BTreeMap<String, String>, agent_version: &str) -> PortMode {
    if properties.get("type").map(String::as_str) != Some("LocalPortForwarding") {
        return PortMode::Stream;
    }
    let newer = |than: &str| compare_versions(agent_version, than) == Some(Ordering::Greater);
    if !newer(MUX_AFTER) {
        return PortMode::Basic;
    }
    let keepalive = !newer(KEEPALIVE_OFF_AFTER) && agent_version.trim() != KEEPALIVE_BUG;
    PortMode::Mux { keepalive }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forwarding() -> BTreeMap<String, String> {
        [
            ("type".to_owned(), "LocalPortForwarding".to_owned()),
            ("portNumber".to_owned(), "80".to_owned()),
        ]
        .into_iter()
        .collect()
    }

    #[test]
    fn versions_compare_numerically() {
        assert_eq!(
            compare_versions("3.0.197.0", "3.0.196.0"),
            Some(Ordering::Greater)
        );
        assert_eq!(
            compare_versions("3.0.1000.0", "3.0.999.9"),
            Some(Ordering::Greater)
        );
        assert_eq!(compare_versions("3.0", "3.0.0.0"), Some(Ordering::Equal));
        assert_eq!(compare_versions("3.x", "3.0"), None);
    }

    #[test]
    fn modes_follow_the_spec_table() {
        let ssh = [("portNumber".to_owned(), "22".to_owned())]
            .into_iter()
            .collect();
        assert_eq!(port_mode(&ssh, "3.3.1611.0"), PortMode::Stream);
        assert_eq!(port_mode(&forwarding(), "3.0.100.0"), PortMode::Basic);
        assert_eq!(port_mode(&forwarding(), "3.0.196.0"), PortMode::Basic);
        assert_eq!(
            port_mode(&forwarding(), "3.0.222.0"),
            PortMode::Mux { keepalive: true }
        );
        assert_eq!(
            port_mode(&forwarding(), "3.1.1476.0"),
            PortMode::Mux { keepalive: true }
        );
        assert_eq!(
            port_mode(&forwarding(), "3.1.1446.0"),
            PortMode::Mux { keepalive: false }
        );
        assert_eq!(
            port_mode(&forwarding(), "3.1.1575.0"),
            PortMode::Mux { keepalive: false }
        );
        assert_eq!(port_mode(&forwarding(), "not a version"), PortMode::Basic);
    }
}
