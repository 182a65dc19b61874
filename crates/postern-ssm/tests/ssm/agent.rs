//! A minimal agent side of the data channel, written apart from the client's channel so the two
//! do not share bugs: it uses postern-ssm only for framing. Reliability as the real agent's
//! (spec §5): re-acks duplicates, buffers out-of-order input, resends the oldest unacknowledged
//! message once per (fixed) timeout.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use postern_ssm::frame::{self, Frame, MessageId, MessageType, PayloadType};

const RESEND_AFTER: Duration = Duration::from_millis(60);

pub(crate) struct Agent {
    next_sequence: i64,
    unacked: VecDeque<(i64, Vec<u8>, Instant)>,
    expected: i64,
    reorder: BTreeMap<i64, Frame>,
    out: VecDeque<Vec<u8>>,
    ids: u64,
    /// Output payload bytes the client sent, in order.
    pub(crate) received: Vec<u8>,
    /// Sizes the client sent.
    pub(crate) sizes: Vec<String>,
    /// Flags the client sent.
    pub(crate) flags: Vec<u32>,
    /// Input messages received more than once.
    pub(crate) duplicates: u64,
    handshake_done: bool,
    pub(crate) window: usize,
}

impl Agent {
    pub(crate) fn new() -> Self {
        Self {
            next_sequence: 0,
            unacked: VecDeque::new(),
            expected: 0,
            reorder: BTreeMap::new(),
            out: VecDeque::new(),
            ids: 0,
            received: Vec::new(),
            sizes: Vec::new(),
            flags: Vec::new(),
            duplicates: 0,
            handshake_done: false,
            window: 256,
        }
    }

    fn id(&mut self) -> MessageId {
        self.ids += 1;
        let mut bytes = [0xa5u8; 16];
        bytes[8..].copy_from_slice(&self.ids.to_be_bytes());
        MessageId(bytes)
    }

    fn frame(
        &mut self,
        message_type: MessageType,
        sequence: i64,
        flags: u64,
        payload_type: PayloadType,
        payload: Vec<u8>,
    ) -> Vec<u8> {
        let message_id = self.id();
        frame::encode(&Frame {
            message_type,
            schema_version: 1,
            created_ms: 1_700_000_000_000 + self.ids,
            sequence,
            flags,
            message_id,
            payload_type,
            payload,
        })
    }

    /// Send a sequenced output message; false when the window is full.
    pub(crate) fn send(
        &mut self,
        now: Instant,
        payload_type: PayloadType,
        payload: Vec<u8>,
    ) -> bool {
        if self.unacked.len() >= self.window {
            return false;
        }
        let sequence = self.next_sequence;
        let flags = if sequence == 0 { 1 } else { 0 };
        let bytes = self.frame(
            MessageType::OutputStreamData,
            sequence,
            flags,
            payload_type,
            payload,
        );
        self.next_sequence += 1;
        self.unacked.push_back((sequence, bytes.clone(), now));
        self.out.push_back(bytes);
        true
    }

    pub(crate) fn start_port(&mut self, now: Instant, agent_version: &str) {
        let request = format!(
            r#"{{"AgentVersion":"{agent_version}","RequestedClientActions":[{{"ActionType":"SessionType","ActionParameters":{{"SessionType":"Port","Properties":{{"localPortNumber":"0","portNumber":"5432","type":"LocalPortForwarding"}}}}}}]}}"#
        );
        self.send(now, PayloadType::HANDSHAKE_REQUEST, request.into_bytes());
    }

    pub(crate) fn start_kms_shell(&mut self, now: Instant) {
        let request = r#"{"AgentVersion":"3.3.1142.0","RequestedClientActions":[{"ActionType":"SessionType","ActionParameters":{"SessionType":"Standard_Stream","Properties":null}},{"ActionType":"KMSEncryption","ActionParameters":{"KMSKeyId":"arn:aws:kms:us-east-1:1:key/x","Challenge":"AAAA"}}]}"#;
        self.send(
            now,
            PayloadType::HANDSHAKE_REQUEST,
            request.as_bytes().to_vec(),
        );
    }

    pub(crate) fn handshake_done(&self) -> bool {
        self.handshake_done
    }

    fn ack(&mut self, frame: &Frame) {
        let payload = format!(
            r#"{{"AcknowledgedMessageType":"{}","AcknowledgedMessageId":"{}","AcknowledgedMessageSequenceNumber":{},"IsSequentialMessage":true}}"#,
            frame.message_type, frame.message_id, frame.sequence
        );
        let bytes = self.frame(
            MessageType::Acknowledge,
            0,
            3,
            PayloadType::NONE,
            payload.into_bytes(),
        );
        self.out.push_back(bytes);
    }

    pub(crate) fn handle(&mut self, now: Instant, bytes: &[u8]) {
        let Ok(decoded) = frame::decode(bytes) else {
            return;
        };
        let frame = decoded.frame;
        match frame.message_type {
            MessageType::Acknowledge => {
                let value: serde_json::Value =
                    serde_json::from_slice(&frame.payload).unwrap_or_default();
                if let Some(sequence) = value["AcknowledgedMessageSequenceNumber"].as_i64() {
                    self.unacked.retain(|(s, _, _)| *s != sequence);
                }
            }
            MessageType::InputStreamData => {
                if frame.sequence < self.expected || self.reorder.contains_key(&frame.sequence) {
                    self.duplicates += 1;
                    self.ack(&frame);
                } else if frame.sequence > self.expected {
                    self.ack(&frame);
                    self.reorder.insert(frame.sequence, frame);
                } else {
                    self.ack(&frame);
                    self.expected += 1;
                    self.process(now, frame);
                    while let Some(next) = self.reorder.remove(&self.expected) {
                        self.expected += 1;
                        self.process(now, next);
                    }
                }
            }
            _ => {}
        }
    }

    fn process(&mut self, now: Instant, frame: Frame) {
        match frame.payload_type {
            PayloadType::HANDSHAKE_RESPONSE => {
                let value: serde_json::Value =
                    serde_json::from_slice(&frame.payload).unwrap_or_default();
                let ok = value["ProcessedClientActions"]
                    .as_array()
                    .is_some_and(|a| a.iter().all(|x| x["ActionStatus"] == 1));
                if ok {
                    self.handshake_done = true;
                    self.send(
                        now,
                        PayloadType::HANDSHAKE_COMPLETE,
                        br#"{"HandshakeTimeToComplete":1000,"CustomerMessage":""}"#.to_vec(),
                    );
                }
            }
            PayloadType::OUTPUT => self.received.extend_from_slice(&frame.payload),
            PayloadType::SIZE => self
                .sizes
                .push(String::from_utf8_lossy(&frame.payload).into_owned()),
            PayloadType::FLAG => {
                if let Ok(word) = <[u8; 4]>::try_from(frame.payload.as_slice()) {
                    self.flags.push(u32::from_be_bytes(word));
                }
            }
            _ => {}
        }
    }

    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        let resend = match self.unacked.front_mut() {
            Some((_, bytes, last)) if now.saturating_duration_since(*last) >= RESEND_AFTER => {
                *last = now;
                Some(bytes.clone())
            }
            _ => None,
        };
        if let Some(bytes) = resend {
            self.out.push_back(bytes);
        }
    }

    pub(crate) fn next_timeout(&self) -> Option<Instant> {
        self.unacked
            .front()
            .map(|(_, _, last)| *last + RESEND_AFTER)
    }

    pub(crate) fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.out.pop_front()
    }

    pub(crate) fn unacked(&self) -> usize {
        self.unacked.len()
    }

    /// A raw frame for tests that need to misbehave.
    pub(crate) fn raw_output(
        &mut self,
        sequence: i64,
        payload_type: PayloadType,
        payload: Vec<u8>,
    ) -> Vec<u8> {
        self.frame(
            MessageType::OutputStreamData,
            sequence,
            0,
            payload_type,
            payload,
        )
    }

    pub(crate) fn raw(&mut self, message_type: MessageType, payload: Vec<u8>) -> Vec<u8> {
        self.frame(message_type, 0, 0, PayloadType::NONE, payload)
    }
}
