//! The JSON and binary payloads of control messages (spec §4.3).
//!
//! Serialization writes keys in the order AWS's Go structs declare them (the digest is computed
//! over whatever bytes are sent, so order only matters for golden tests); deserialization accepts
//! any order, missing optional members and unknown extra members.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The body of an `acknowledge` message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Acknowledgement {
    /// The type of the acknowledged message.
    pub acknowledged_message_type: String,
    /// The canonical text of the acknowledged message id.
    pub acknowledged_message_id: String,
    /// The acknowledged message's sequence number: what identifies it.
    pub acknowledged_message_sequence_number: i64,
    /// Always true in AWS code; ignored by receivers.
    #[serde(default = "yes")]
    pub is_sequential_message: bool,
}

fn yes() -> bool {
    true
}

/// The body of `channel_closed`: only `Output` matters to a client.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ChannelClosed {
    /// Empty on a normal end; otherwise why the session ended.
    #[serde(default)]
    pub output: String,
    /// The session id, if given.
    #[serde(default)]
    pub session_id: Option<String>,
}

/// One action the agent asks the client to take in the handshake.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RequestedAction {
    /// `SessionType` or `KMSEncryption` (others may appear).
    pub action_type: String,
    /// The action's parameters, shaped by its type.
    #[serde(default)]
    pub action_parameters: Value,
}

/// HandshakeRequest (agent → client).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HandshakeRequest {
    /// The agent's version: the client's only way to learn it.
    #[serde(default)]
    pub agent_version: String,
    /// What the agent asks for, SessionType first.
    #[serde(default)]
    pub requested_client_actions: Vec<RequestedAction>,
}

/// The parameters of a `SessionType` action.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SessionTypeRequest {
    /// `Standard_Stream`, `InteractiveCommands`, `NonInteractiveCommands` or `Port`.
    pub session_type: String,
    /// The document's properties (for `Port`), or null.
    #[serde(default)]
    pub properties: Value,
}

/// How the client handled one requested action.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ProcessedAction {
    /// The action's type, as requested.
    pub action_type: String,
    /// 1 success, 2 failed, 3 unsupported.
    pub action_status: u32,
    /// The action's result (KMS only), or null.
    pub action_result: Value,
    /// Why it failed; empty on success.
    pub error: String,
}

/// Action status: success.
pub const ACTION_SUCCESS: u32 = 1;
/// Action status: failed.
pub const ACTION_FAILED: u32 = 2;
/// Action status: unsupported.
pub const ACTION_UNSUPPORTED: u32 = 3;

/// The first websocket frame (text), OpenDataChannel (spec §2.2), with its keys in the order
/// AWS's client sends them. Its Debug view leaves the token out.
#[derive(Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct OpenDataChannel<'a> {
    /// Literally `1.0`.
    pub message_schema_version: &'a str,
    /// A fresh UUID per connection attempt.
    pub request_id: &'a str,
    /// StartSession's or the latest ResumeSession's token (a secret).
    pub token_value: &'a str,
    /// A UUID made once per client and reused on every reconnect.
    pub client_id: &'a str,
    /// The client's version.
    pub client_version: &'a str,
}

impl std::fmt::Debug for OpenDataChannel<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenDataChannel")
            .field("request_id", &self.request_id)
            .field("client_id", &self.client_id)
            .field("client_version", &self.client_version)
            .finish_non_exhaustive()
    }
}

/// HandshakeResponse (client → agent).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct HandshakeResponse {
    /// The version the client reports: it decides the agent's port-forwarding mode.
    pub client_version: String,
    /// One entry per requested action, in order.
    pub processed_client_actions: Vec<ProcessedAction>,
    /// Errors, or null.
    pub errors: Option<Vec<String>>,
}

/// HandshakeComplete (agent → client).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HandshakeComplete {
    /// Nanoseconds the handshake took.
    #[serde(default)]
    pub handshake_time_to_complete: i64,
    /// A line to show the user, if not empty.
    #[serde(default)]
    pub customer_message: String,
}

/// A terminal size (PayloadType 3), lower-case keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TerminalSize {
    /// Columns.
    pub cols: u32,
    /// Rows.
    pub rows: u32,
}

/// The 4-byte flags of PayloadType 10.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flag {
    /// Client: the local TCP connection closed (basic port mode).
    DisconnectToPort,
    /// Client: end the port session.
    TerminateSession,
    /// Agent: it could not reach the destination for a new smux stream.
    ConnectToPortError,
    /// Any other value.
    Other(u32),
}

impl Flag {
    /// The wire value.
    pub fn value(self) -> u32 {
        match self {
            Self::DisconnectToPort => 1,
            Self::TerminateSession => 2,
            Self::ConnectToPortError => 3,
            Self::Other(v) => v,
        }
    }

    /// The 4 big-endian bytes.
    pub fn to_bytes(self) -> [u8; 4] {
        self.value().to_be_bytes()
    }

    /// Parse a flag payload; anything but 4 bytes is not a flag.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let word: [u8; 4] = bytes.try_into().ok()?;
        Some(match u32::from_be_bytes(word) {
            1 => Self::DisconnectToPort,
            2 => Self::TerminateSession,
            3 => Self::ConnectToPortError,
            other => Self::Other(other),
        })
    }
}

/// Parse an ExitCode payload, `EXIT_CODE: <n>`.
pub fn parse_exit_code(payload: &[u8]) -> Option<i32> {
    let text = std::str::from_utf8(payload).ok()?;
    text.trim().strip_prefix("EXIT_CODE:")?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acknowledgement_serializes_in_go_order() {
        let ack = Acknowledgement {
            acknowledged_message_type: "output_stream_data".into(),
            acknowledged_message_id: "0b9c5c27-8f4e-4a3b-9d21-6f1e2a7c4d55".into(),
            acknowledged_message_sequence_number: 1,
            is_sequential_message: true,
        };
        assert_eq!(
            serde_json::to_string(&ack).expect("json"),
            r#"{"AcknowledgedMessageType":"output_stream_data","AcknowledgedMessageId":"0b9c5c27-8f4e-4a3b-9d21-6f1e2a7c4d55","AcknowledgedMessageSequenceNumber":1,"IsSequentialMessage":true}"#
        );
    }

    #[test]
    fn handshake_request_parses_with_unknown_members() {
        let text = r#"{"AgentVersion":"3.3.1142.0","Extra":1,"RequestedClientActions":[
            {"ActionType":"SessionType","ActionParameters":{"SessionType":"Port","Properties":{"portNumber":"22","type":"LocalPortForwarding"}}}]}"#;
        let request: HandshakeRequest = serde_json::from_str(text).expect("parses");
        assert_eq!(request.agent_version, "3.3.1142.0");
        let session: SessionTypeRequest = serde_json::from_value(
            request.requested_client_actions[0]
                .action_parameters
                .clone(),
        )
        .expect("session type");
        assert_eq!(session.session_type, "Port");
        assert_eq!(session.properties["type"], "LocalPortForwarding");
    }

    #[test]
    fn flags_and_exit_codes() {
        assert_eq!(Flag::TerminateSession.to_bytes(), [0, 0, 0, 2]);
        assert_eq!(
            Flag::from_bytes(&[0, 0, 0, 3]),
            Some(Flag::ConnectToPortError)
        );
        assert_eq!(Flag::from_bytes(&[0, 0, 2]), None);
        assert_eq!(parse_exit_code(b"EXIT_CODE: 42"), Some(42));
        assert_eq!(parse_exit_code(b"EXIT_CODE: -1\n"), Some(-1));
        assert_eq!(parse_exit_code(b"exit 3"), None);
    }
}
