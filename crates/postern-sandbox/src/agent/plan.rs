//! What a session runs, from its document and parameters, and which port mode an agent of a
//! version speaks with a client of a version.

use std::collections::BTreeMap;

/// What the session runs.
#[derive(Clone, Debug)]
pub(super) enum Plan {
    /// `Standard_Stream` or `InteractiveCommands`: a PTY, no handshake.
    Shell { command: Option<String> },
    /// `NonInteractiveCommands`: a command with pipes, after a handshake.
    Command { command: String, separate: bool },
    /// `Port`: TCP to 127.0.0.1.
    Port {
        port: u16,
        properties: BTreeMap<String, String>,
    },
}

impl Plan {
    pub(super) fn session_type(&self) -> &'static str {
        match self {
            Self::Shell { command: None } => "Standard_Stream",
            Self::Shell { command: Some(_) } => "InteractiveCommands",
            Self::Command { .. } => "NonInteractiveCommands",
            Self::Port { .. } => "Port",
        }
    }
}

pub(super) fn first(parameters: &BTreeMap<String, Vec<String>>, name: &str) -> Option<String> {
    parameters.get(name).and_then(|v| v.first()).cloned()
}

pub(super) fn plan_for(document: &str, parameters: &BTreeMap<String, Vec<String>>) -> Plan {
    let port = |default: u16| {
        first(parameters, "portNumber")
            .and_then(|p| p.parse().ok())
            .unwrap_or(default)
    };
    match document {
        "AWS-StartInteractiveCommand" => Plan::Shell {
            command: first(parameters, "command"),
        },
        "AWS-StartNonInteractiveCommand" => Plan::Command {
            command: first(parameters, "command").unwrap_or_default(),
            separate: first(parameters, "separateOutputStream").is_some_and(|v| v == "true"),
        },
        "AWS-StartPortForwardingSession" | "AWS-StartPortForwardingSessionToRemoteHost" => {
            let mut properties = BTreeMap::new();
            properties.insert("portNumber".to_owned(), port(80).to_string());
            properties.insert(
                "localPortNumber".to_owned(),
                first(parameters, "localPortNumber").unwrap_or_else(|| "0".into()),
            );
            properties.insert("type".to_owned(), "LocalPortForwarding".to_owned());
            if let Some(host) = first(parameters, "host") {
                properties.insert("host".to_owned(), host);
            }
            Plan::Port {
                port: port(80),
                properties,
            }
        }
        "AWS-StartSSHSession" => {
            let mut properties = BTreeMap::new();
            properties.insert("portNumber".to_owned(), port(22).to_string());
            Plan::Port {
                port: port(22),
                properties,
            }
        }
        _ => Plan::Shell { command: None },
    }
}

/// Dotted numeric version comparison, the agent's own (any parse failure compares as less).
/// How the agent carries a port session (spec §8): a raw stream unless it is local port
/// forwarding; smux when both the client (1.1.70) and the agent (3.0.222.0) know it, with smux
/// keepalives unless both are new enough to drop them (client 1.2.332.0, agent 3.1.1575.0) or the
/// agent is the one release that never sends them; otherwise one connection at a time.
pub(super) fn agent_port_mode(
    forwarding: bool,
    client_version: &str,
    agent_version: &str,
) -> PortMode {
    if !forwarding {
        return PortMode::Stream;
    }
    if !(version_at_least(client_version, "1.1.70") && version_at_least(agent_version, "3.0.222.0"))
    {
        return PortMode::Basic;
    }
    let new_pair = version_at_least(client_version, "1.2.332.0")
        && version_at_least(agent_version, "3.1.1575.0");
    PortMode::Mux {
        keepalive: !new_pair && agent_version.trim() != "3.1.1446.0",
    }
}

pub(super) fn version_at_least(version: &str, floor: &str) -> bool {
    let parse =
        |v: &str| -> Option<Vec<u64>> { v.split('.').map(|c| c.trim().parse().ok()).collect() };
    match (parse(version), parse(floor)) {
        (Some(a), Some(b)) => {
            let len = a.len().max(b.len());
            let pad = |v: &Vec<u64>, i: usize| v.get(i).copied().unwrap_or(0);
            (0..len)
                .map(|i| pad(&a, i).cmp(&pad(&b, i)))
                .find(|o| o.is_ne())
                .is_none_or(|o| o.is_gt())
        }
        _ => false,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum PortMode {
    Stream,
    Basic,
    Mux { keepalive: bool },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_port_mode_follows_both_versions() {
        let mux = |keepalive| PortMode::Mux { keepalive };
        let cases = [
            // (forwarding, client, agent, mode)
            (false, "1.2.694.0", "3.3.1611.0", PortMode::Stream),
            (true, "1.1.61.0", "3.3.1611.0", PortMode::Basic),
            (true, "", "3.3.1611.0", PortMode::Basic),
            (true, "1.2.694.0", "3.0.100.0", PortMode::Basic),
            (true, "1.1.70", "3.0.222.0", mux(true)),
            (true, "1.2.0.0", "3.3.1611.0", mux(true)),
            (true, "1.2.694.0", "3.1.1476.0", mux(true)),
            (true, "1.2.694.0", "3.1.1446.0", mux(false)),
            (true, "1.2.694.0", "3.1.1575.0", mux(false)),
            (true, "1.2.332.0", "3.3.1611.0", mux(false)),
        ];
        for (forwarding, client, agent, mode) in cases {
            assert_eq!(
                agent_port_mode(forwarding, client, agent),
                mode,
                "client {client:?}, agent {agent:?}, forwarding {forwarding}"
            );
        }
    }

    #[test]
    fn agent_versions_compare() {
        assert!(version_at_least("3.0.222.0", "3.0.222.0"));
        assert!(version_at_least("3.3.1611.0", "3.1.1575.0"));
        assert!(!version_at_least("3.0.100.0", "3.0.222.0"));
        assert!(!version_at_least("", "1.1.70"));
        assert!(version_at_least("1.2.694.0", "1.1.70"));
    }
}
