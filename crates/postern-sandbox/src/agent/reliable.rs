//! The agent's own reliability layer (spec §5, the agent's column), written apart from the
//! client's channel in postern-ssm so the two cannot share a bug; only the frame codec is shared.
//!
//! Output messages are sequenced from 0 (SYN on the first), kept until acknowledged, and the
//! oldest is resent once per RTO; incoming input is acknowledged on arrival (duplicates again),
//! buffered when early and delivered in order.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use postern_ssm::frame::{self, Frame, MessageId, MessageType, PayloadType};

/// What one received frame asks of the agent.
#[derive(Debug, Default)]
pub struct Received {
    /// Acknowledgements to send back at once.
    pub acks: Vec<Vec<u8>>,
    /// Input messages now deliverable, in sequence order.
    pub deliver: Vec<Frame>,
    /// The frame acknowledged one of ours.
    pub acked: bool,
    /// `pause_publication` / `start_publication` seen: `Some(true)` paused, `Some(false)` resumed.
    pub publication: Option<bool>,
}

/// Sequencing, acknowledgement and retransmission state of one session, agent side.
#[derive(Debug)]
pub struct Reliable {
    next_sequence: i64,
    unacked: VecDeque<Pending>,
    expected: i64,
    early: BTreeMap<i64, Frame>,
    rtt: f64,
    rttvar: f64,
    sampled: bool,
    created_anchor: (Instant, u64),
    ids: u64,
    id_seed: u64,
}

#[derive(Debug)]
struct Pending {
    sequence: i64,
    bytes: Vec<u8>,
    last_sent: Instant,
    resent: bool,
}

/// Most unacknowledged output messages the agent keeps before holding its readers back.
pub const WINDOW: usize = 2048;
/// Most early input messages buffered.
pub const EARLY_CAPACITY: usize = 100_000;

impl Reliable {
    /// Fresh state; frames are stamped with `wall_ms` as of `now`; `id_seed` varies the ids.
    pub fn new(now: Instant, wall_ms: u64, id_seed: u64) -> Self {
        Self {
            next_sequence: 0,
            unacked: VecDeque::new(),
            expected: 0,
            early: BTreeMap::new(),
            rtt: 0.1,
            rttvar: 0.0,
            sampled: false,
            created_anchor: (now, wall_ms),
            ids: 0,
            id_seed,
        }
    }

    fn id(&mut self) -> MessageId {
        self.ids += 1;
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&self.id_seed.to_be_bytes());
        bytes[8..].copy_from_slice(&self.ids.to_be_bytes());
        MessageId::from_random(bytes)
    }

    fn wall(&self, now: Instant) -> u64 {
        self.created_anchor.1
            + u64::try_from(
                now.saturating_duration_since(self.created_anchor.0)
                    .as_millis(),
            )
            .unwrap_or(0)
    }

    fn rto(&self) -> Duration {
        if !self.sampled {
            return Duration::from_millis(200);
        }
        Duration::from_secs_f64((self.rtt + (4.0 * self.rttvar).max(0.010)).min(1.0))
    }

    /// Whether more output may be sent.
    pub fn has_room(&self) -> bool {
        self.unacked.len() < WINDOW
    }

    /// Unacknowledged output messages.
    pub fn in_flight(&self) -> usize {
        self.unacked.len()
    }

    /// A new sequenced output message; returns its bytes to send now.
    pub fn output(&mut self, now: Instant, payload_type: PayloadType, payload: Vec<u8>) -> Vec<u8> {
        let sequence = self.next_sequence;
        self.next_sequence += 1;
        let message_id = self.id();
        let bytes = frame::encode(&Frame {
            message_type: MessageType::OutputStreamData,
            schema_version: 1,
            created_ms: self.wall(now),
            sequence,
            flags: if sequence == 0 { frame::FLAG_SYN } else { 0 },
            message_id,
            payload_type,
            payload,
        });
        self.unacked.push_back(Pending {
            sequence,
            bytes: bytes.clone(),
            last_sent: now,
            resent: false,
        });
        bytes
    }

    /// A non-sequenced message (channel_closed), standard layout.
    pub fn control(
        &mut self,
        now: Instant,
        message_type: MessageType,
        payload: Vec<u8>,
    ) -> Vec<u8> {
        let message_id = self.id();
        frame::encode(&Frame {
            message_type,
            schema_version: 1,
            created_ms: self.wall(now),
            sequence: 0,
            flags: 0,
            message_id,
            payload_type: PayloadType::NONE,
            payload,
        })
    }

    fn ack(&mut self, now: Instant, of: &Frame) -> Vec<u8> {
        let body = serde_json::json!({
            "AcknowledgedMessageType": of.message_type.as_str(),
            "AcknowledgedMessageId": of.message_id.to_string(),
            "AcknowledgedMessageSequenceNumber": of.sequence,
            "IsSequentialMessage": true,
        });
        let message_id = self.id();
        frame::encode(&Frame {
            message_type: MessageType::Acknowledge,
            schema_version: 1,
            created_ms: self.wall(now),
            sequence: 0,
            flags: frame::FLAGS_ACK,
            message_id,
            payload_type: PayloadType::NONE,
            payload: body.to_string().into_bytes(),
        })
    }

    /// Take one frame from the client. The agent's tolerance (spec §3.3): no digest or flag checks.
    pub fn receive(&mut self, now: Instant, bytes: &[u8]) -> Received {
        let mut out = Received::default();
        let Ok(decoded) = frame::decode(bytes) else {
            return out;
        };
        let frame = decoded.frame;
        match frame.message_type {
            MessageType::Acknowledge => {
                let Ok(body) = serde_json::from_slice::<serde_json::Value>(&frame.payload) else {
                    return out;
                };
                let Some(sequence) = body
                    .get("AcknowledgedMessageSequenceNumber")
                    .and_then(|v| v.as_i64())
                else {
                    return out;
                };
                if let Some(i) = self.unacked.iter().position(|p| p.sequence == sequence)
                    && let Some(pending) = self.unacked.remove(i)
                {
                    out.acked = true;
                    if !pending.resent {
                        let sample = now
                            .saturating_duration_since(pending.last_sent)
                            .as_secs_f64();
                        self.rttvar = 0.75 * self.rttvar + 0.25 * (self.rtt - sample).abs();
                        self.rtt = 0.875 * self.rtt + 0.125 * sample;
                        self.sampled = true;
                    }
                }
            }
            MessageType::InputStreamData => {
                let sequence = frame.sequence;
                if sequence < self.expected || self.early.contains_key(&sequence) {
                    out.acks.push(self.ack(now, &frame));
                } else if sequence > self.expected {
                    if self.early.len() < EARLY_CAPACITY {
                        out.acks.push(self.ack(now, &frame));
                        self.early.insert(sequence, frame);
                    }
                } else {
                    out.acks.push(self.ack(now, &frame));
                    self.expected += 1;
                    out.deliver.push(frame);
                    while let Some(next) = self.early.remove(&self.expected) {
                        self.expected += 1;
                        out.deliver.push(next);
                    }
                }
            }
            MessageType::PausePublication => out.publication = Some(true),
            MessageType::StartPublication => out.publication = Some(false),
            _ => {}
        }
        out
    }

    /// The oldest unacknowledged message, if its RTO has passed; marks it resent now.
    pub fn due(&mut self, now: Instant) -> Option<Vec<u8>> {
        let rto = self.rto();
        let head = self.unacked.front_mut()?;
        if now.saturating_duration_since(head.last_sent) < rto {
            return None;
        }
        head.last_sent = now;
        head.resent = true;
        Some(head.bytes.clone())
    }

    /// Every unacknowledged message whose RTO has passed, oldest first, at most `max`; marks them
    /// resent now. Not what the real agent does (it resends only the oldest, spec §5.3): the
    /// sandbox uses it when it runs unpaced, far faster than a real agent, where head-only
    /// recovery from a dropped socket could never catch up with what is sent meanwhile.
    pub fn due_many(&mut self, now: Instant, max: usize) -> Vec<Vec<u8>> {
        let rto = self.rto();
        let mut out = Vec::new();
        for pending in self.unacked.iter_mut() {
            if out.len() >= max {
                break;
            }
            if now.saturating_duration_since(pending.last_sent) >= rto {
                pending.last_sent = now;
                pending.resent = true;
                out.push(pending.bytes.clone());
            }
        }
        out
    }

    /// Whether everything sent was acknowledged.
    pub fn drained(&self) -> bool {
        self.unacked.is_empty()
    }
}
