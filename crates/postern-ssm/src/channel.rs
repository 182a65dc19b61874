//! The client side of a data channel: sequencing, acknowledgement, retransmission, reordering,
//! the handshake and the session-level messages, with no I/O.
//!
//! The caller feeds it what the websocket delivered ([`Channel::handle_frame`]), what the user
//! typed or a local socket produced ([`Channel::send_output`], [`Channel::resize`],
//! [`Channel::send_flag`]) and the passing of time ([`Channel::handle_timeout`]), and polls it for
//! frames to write ([`Channel::poll_transmit`]), events ([`Channel::poll_event`]) and the next
//! deadline ([`Channel::poll_timeout`]). After any `handle_*` or `send_*` call, poll all three
//! again.
//!
//! Reliability follows spec §5, with the choices §5.7 recommends over the official plugin's:
//! duplicates are re-acknowledged; only the oldest unacknowledged message is retransmitted, once
//! per RTO (not every tick); RTT samples skip retransmitted messages; the unacknowledged window is
//! bounded and the producer is held back instead of messages being evicted; and after a
//! reconnect ([`Channel::reconnected`]) every unacknowledged message is resent at once instead of
//! one per RTO. Sequence state survives reconnects.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::frame::{
    self, DigestCheck, FLAGS_ACK, Frame, FrameError, MessageId, MessageType, PayloadType,
};
use crate::pacer::Pacer;
use crate::payload::{
    ACTION_FAILED, ACTION_SUCCESS, ACTION_UNSUPPORTED, Acknowledgement, ChannelClosed, Flag,
    HandshakeComplete, HandshakeRequest, HandshakeResponse, ProcessedAction, SessionTypeRequest,
    TerminalSize, parse_exit_code,
};
use crate::port::{PortMode, port_mode};

/// The largest data payload sent in one message (what AWS's agent and plugin use).
pub const MAX_CHUNK: usize = 1024;

/// How a channel behaves; the defaults suit the real service.
#[derive(Clone, Debug)]
pub struct ChannelConfig {
    /// The version reported in the handshake. It decides the agent's port-forwarding mode
    /// (spec §7.1): at least 1.1.70 for smux, above 1.2.331.0 to turn smux keepalive off.
    pub client_version: String,
    /// Most unacknowledged messages in flight; senders are held back beyond it.
    pub window: usize,
    /// Most out-of-order messages buffered; beyond it they are dropped unacknowledged.
    pub reorder_capacity: usize,
    /// Stream messages per second sent at most (MGS caps at about 1000); `None` sends at once.
    pub pace_per_second: Option<u32>,
    /// Retransmissions of one message before the channel gives up.
    pub max_attempts: u32,
}

impl Default for ChannelConfig {
    fn default() -> Self {
        Self {
            client_version: "1.2.694.0".into(),
            window: 512,
            // The agent resends only its oldest unacknowledged message, about ten times a
            // second: after a burst of loss (a dropped socket) it keeps sending new messages
            // while the gap fills, and those must be held rather than dropped and resent too.
            reorder_capacity: 65_536,
            pace_per_second: Some(900),
            max_attempts: 3000,
        }
    }
}

/// What kind of session the agent runs, learned from the handshake or the first output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionKind {
    /// An interactive shell (`Standard_Stream`) or an interactive command.
    Shell {
        /// `Standard_Stream` or `InteractiveCommands` (empty when there was no handshake).
        session_type: String,
    },
    /// A non-interactive command: output, maybe stderr, then an exit code.
    Command,
    /// A port session.
    Port {
        /// The document's properties (`portNumber`, `host`, `type`, …) as strings.
        properties: BTreeMap<String, String>,
        /// How bytes are carried: stream, basic or smux (decided as the plugin decides).
        mode: PortMode,
    },
}

/// Why a channel stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// The service closed the channel; the text is its `Output` (empty on a normal end).
    ChannelClosed(String),
    /// The account's Session Manager preferences require KMS encryption, which this client
    /// refuses rather than sending data unencrypted.
    KmsEncryptionRequired,
    /// The agent asked for a session type or action this client does not support.
    Unsupported(String),
    /// One message went unacknowledged through `max_attempts` retransmissions.
    Unacknowledged {
        /// Its sequence number.
        sequence: i64,
    },
}

impl std::fmt::Display for CloseReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::ChannelClosed(text) if text.is_empty() => f.write_str("the session ended"),
            Self::ChannelClosed(text) => write!(f, "the session ended: {text}"),
            Self::KmsEncryptionRequired => f.write_str(
                "this session would be KMS-encrypted, which Postern does not support yet: turn off \
                 \"Enable KMS encryption\" (kmsKeyId) in the Session Manager preferences of this \
                 account and region, or use a port-forwarding or SSH session, which are never encrypted",
            ),
            Self::Unsupported(what) => write!(f, "the agent asked for something Postern does not support: {what}"),
            Self::Unacknowledged { sequence } => {
                write!(f, "the agent stopped acknowledging (message {sequence} was never acknowledged)")
            }
        }
    }
}

/// What the channel tells its driver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChannelEvent {
    /// The session kind is known; for ports and commands the handshake was answered.
    SessionStarted(SessionKind),
    /// The handshake completed; input and resizes flow from now on. The message, if not empty,
    /// is for the user.
    HandshakeComplete {
        /// `CustomerMessage`.
        message: String,
    },
    /// Bytes from the remote side (terminal output, TCP bytes, smux frames), in order.
    Output(Vec<u8>),
    /// Standard error of a non-interactive command.
    StdErr(Vec<u8>),
    /// A non-interactive command's exit code.
    ExitCode(i32),
    /// A flag from the agent (ConnectToPortError).
    Flag(Flag),
    /// The service paused the channel (the far side is inactive); informational.
    Paused,
    /// The service resumed it.
    Resumed,
    /// The channel is over.
    Closed(CloseReason),
}

/// Why a send was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The unacknowledged window is full: wait for acknowledgements (poll again after
    /// `handle_frame`) before sending more.
    #[error("the send window is full")]
    WindowFull,
    /// The handshake has not completed: nothing but handshake messages may be sent yet.
    #[error("the session is not ready for input yet")]
    NotReady,
    /// The channel is closed.
    #[error("the channel is closed")]
    Closed,
    /// Empty payloads are never sent.
    #[error("empty payload")]
    Empty,
}

/// The RTO estimator of spec §5.3: RTT 100 ms and RTO 200 ms until the first sample.
#[derive(Clone, Copy, Debug)]
struct RttEstimator {
    rtt: f64,
    rttvar: f64,
    sampled: bool,
}

impl RttEstimator {
    fn new() -> Self {
        Self {
            rtt: 0.1,
            rttvar: 0.0,
            sampled: false,
        }
    }

    fn sample(&mut self, sample: Duration) {
        let s = sample.as_secs_f64();
        self.rttvar = 0.75 * self.rttvar + 0.25 * (self.rtt - s).abs();
        self.rtt = 0.875 * self.rtt + 0.125 * s;
        self.sampled = true;
    }

    fn rto(&self) -> Duration {
        if !self.sampled {
            return Duration::from_millis(200);
        }
        let rto = self.rtt + (4.0 * self.rttvar).max(0.010);
        Duration::from_secs_f64(rto.min(1.0))
    }
}

/// A stream message waiting for its pacing slot.
#[derive(Debug)]
struct Queued {
    sequence: i64,
    message_id: MessageId,
    payload_type: PayloadType,
    payload: Vec<u8>,
}

/// A stream message written and not acknowledged yet.
#[derive(Debug)]
struct Unacked {
    sequence: i64,
    bytes: Vec<u8>,
    last_sent: Instant,
    attempts: u32,
    /// Acknowledgements of later messages seen since this one was last sent.
    later_acks: u32,
}

/// Acknowledgements of later messages that make the oldest one count as lost (TCP's fast
/// retransmit), rather than waiting out the RTO.
const FAST_RETRANSMIT_AFTER: u32 = 3;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Handshake {
    /// Nothing received yet: a handshake may come, or shell output.
    Waiting,
    /// A handshake request was answered; waiting for HandshakeComplete.
    Answered,
    /// Input may flow.
    Done,
}

/// The client side of one Session Manager data channel.
pub struct Channel {
    config: ChannelConfig,
    ids: Box<dyn FnMut() -> [u8; 16] + Send>,
    clock_anchor: (Instant, u64),
    next_sequence: i64,
    unacked: VecDeque<Unacked>,
    /// Stream messages sequenced but not yet released by the pacer. They are encoded (with
    /// their CreatedDate) and their retransmission timer starts only when released, that is
    /// when they are written (spec §5.3).
    paced: VecDeque<Queued>,
    /// Frames ready to write now (acks, retransmissions, paced messages).
    transmit: VecDeque<Vec<u8>>,
    pacer: Pacer,
    rtt: RttEstimator,
    expected: i64,
    reorder: BTreeMap<i64, Frame>,
    events: VecDeque<ChannelEvent>,
    handshake: Handshake,
    kind: Option<SessionKind>,
    pending_size: Option<TerminalSize>,
    last_size: Option<TerminalSize>,
    paused: bool,
    closed: bool,
    dropped: u64,
    /// The latest messages acknowledged, to acknowledge again after a reconnect.
    recent: VecDeque<(i64, MessageId)>,
}

/// How many recent acknowledgements are repeated after a reconnect (about the agent's window).
const RECENT_ACKS: usize = 4096;

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channel")
            .field("next_sequence", &self.next_sequence)
            .field("unacked", &self.unacked.len())
            .field("expected", &self.expected)
            .field("reordered", &self.reorder.len())
            .field("handshake", &self.handshake)
            .field("kind", &self.kind)
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

impl Channel {
    /// A channel that stamps frames with wall-clock time `wall_ms` as of `now` (milliseconds
    /// since the Unix epoch), and draws message ids from `ids` (16 random bytes per call).
    pub fn new(
        config: ChannelConfig,
        now: Instant,
        wall_ms: u64,
        ids: impl FnMut() -> [u8; 16] + Send + 'static,
    ) -> Self {
        Self {
            pacer: Pacer::new(config.pace_per_second),
            config,
            ids: Box::new(ids),
            clock_anchor: (now, wall_ms),
            next_sequence: 0,
            unacked: VecDeque::new(),
            paced: VecDeque::new(),
            transmit: VecDeque::new(),
            rtt: RttEstimator::new(),
            expected: 0,
            reorder: BTreeMap::new(),
            events: VecDeque::new(),
            handshake: Handshake::Waiting,
            kind: None,
            pending_size: None,
            last_size: None,
            paused: false,
            closed: false,
            dropped: 0,
            recent: VecDeque::new(),
        }
    }

    fn wall_ms(&self, now: Instant) -> u64 {
        let (anchor, wall) = self.clock_anchor;
        wall + u64::try_from(now.saturating_duration_since(anchor).as_millis()).unwrap_or(0)
    }

    fn new_id(&mut self) -> MessageId {
        MessageId::from_random((self.ids)())
    }

    // ------------------------------------------------------------------------------------------
    // Polling

    /// The next frame to write to the websocket, if any. Poll until `None` after every call.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Vec<u8>> {
        if let Some(bytes) = self.transmit.pop_front() {
            return Some(bytes);
        }
        self.release_paced(now);
        self.transmit.pop_front()
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<ChannelEvent> {
        self.events.pop_front()
    }

    /// When [`Channel::handle_timeout`] should be called next, if ever.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.closed {
            return None;
        }
        let resend = self
            .unacked
            .front()
            .filter(|_| !self.paused)
            .map(|head| head.last_sent + self.rtt.rto());
        let pace = (!self.paced.is_empty())
            .then(|| self.pacer.next_slot())
            .flatten();
        match (resend, pace) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Let time pass: retransmit the oldest unacknowledged message if its timeout expired.
    /// (Paced messages are released by [`Channel::poll_transmit`], when they are written.)
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.closed {
            return;
        }
        if self.paused {
            return;
        }
        let rto = self.rtt.rto();
        let Some(head) = self.unacked.front_mut() else {
            return;
        };
        if now.saturating_duration_since(head.last_sent) < rto {
            return;
        }
        head.attempts += 1;
        head.last_sent = now;
        let (sequence, attempts, bytes) = (head.sequence, head.attempts, head.bytes.clone());
        if attempts > self.config.max_attempts {
            self.close(CloseReason::Unacknowledged { sequence });
            return;
        }
        self.transmit.push_back(bytes);
    }

    /// The websocket was re-opened after a drop: resend every unacknowledged message now (the
    /// agent acknowledges what it already had). Sequence numbers and buffers are unchanged.
    pub fn reconnected(&mut self, now: Instant) {
        self.paused = false;
        // Whatever was queued for the dead socket is covered by the resends below (stream
        // messages) or by the agent's retransmissions (acknowledgements).
        self.transmit.clear();
        // Acknowledge again what arrived lately: acknowledgements lost with the old socket would
        // otherwise each wait for the agent's one-per-RTO retransmission of its oldest message.
        let recent: Vec<(i64, MessageId)> = self.recent.iter().copied().collect();
        for (sequence, id) in recent {
            self.push_ack(now, MessageType::OutputStreamData, id, sequence);
        }
        let early: Vec<(i64, MessageId)> = self
            .reorder
            .values()
            .map(|f| (f.sequence, f.message_id))
            .collect();
        for (sequence, id) in early {
            self.push_ack(now, MessageType::OutputStreamData, id, sequence);
        }
        for entry in &mut self.unacked {
            entry.last_sent = now;
            entry.attempts += 1;
            entry.later_acks = 0;
            self.transmit.push_back(entry.bytes.clone());
        }
    }

    /// Release the messages whose pacing slot has come: encode them with the time of writing as
    /// their CreatedDate, start their retransmission timers, and queue them for writing.
    fn release_paced(&mut self, now: Instant) {
        let released = self.pacer.release(now, self.paced.len());
        if released == 0 {
            return;
        }
        let created_ms = self.wall_ms(now);
        for queued in self.paced.drain(..released) {
            let bytes = frame::encode(&Frame {
                message_type: MessageType::InputStreamData,
                schema_version: 1,
                created_ms,
                sequence: queued.sequence,
                flags: 0,
                message_id: queued.message_id,
                payload_type: queued.payload_type,
                payload: queued.payload,
            });
            self.unacked.push_back(Unacked {
                sequence: queued.sequence,
                bytes: bytes.clone(),
                last_sent: now,
                attempts: 0,
                later_acks: 0,
            });
            self.transmit.push_back(bytes);
        }
    }

    // ------------------------------------------------------------------------------------------
    // State

    /// The session kind, once known.
    pub fn session_kind(&self) -> Option<&SessionKind> {
        self.kind.as_ref()
    }

    /// Whether input (output data, resizes) may be sent now.
    pub fn is_ready(&self) -> bool {
        !self.closed
            && (self.handshake == Handshake::Done
                || self.kind.is_some() && self.handshake != Handshake::Answered)
    }

    /// Messages sent and not acknowledged yet, including those waiting for their pacing slot.
    pub fn in_flight(&self) -> usize {
        self.unacked.len() + self.paced.len()
    }

    /// Messages sent that wait for their pacing slot (not written yet).
    pub fn waiting_for_pacing(&self) -> usize {
        self.paced.len()
    }

    /// Messages that may still be sent before the window is full.
    pub fn send_capacity(&self) -> usize {
        self.config.window.saturating_sub(self.in_flight())
    }

    /// Whether every sent message has been acknowledged.
    pub fn is_idle(&self) -> bool {
        self.unacked.is_empty() && self.paced.is_empty() && self.transmit.is_empty()
    }

    /// Whether the channel is closed.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Incoming frames dropped so far (malformed, bad digest, reorder buffer full).
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    fn close(&mut self, reason: CloseReason) {
        if !self.closed {
            self.closed = true;
            self.transmit.clear();
            self.paced.clear();
            self.events.push_back(ChannelEvent::Closed(reason));
        }
    }

    // ------------------------------------------------------------------------------------------
    // Sending

    fn send_stream(&mut self, payload_type: PayloadType, payload: &[u8]) -> Result<(), SendError> {
        if self.closed {
            return Err(SendError::Closed);
        }
        if payload.is_empty() {
            return Err(SendError::Empty);
        }
        if self.in_flight() >= self.config.window {
            return Err(SendError::WindowFull);
        }
        let message_id = self.new_id();
        self.paced.push_back(Queued {
            sequence: self.next_sequence,
            message_id,
            payload_type,
            payload: payload.to_vec(),
        });
        self.next_sequence += 1;
        Ok(())
    }

    /// Send bytes to the remote side (keystrokes, TCP bytes, smux frames) in ≤1 KiB messages.
    /// Returns how many bytes were taken: fewer than given when the window filled up (send the
    /// rest after acknowledgements arrive).
    ///
    /// Bytes first top up the last message still waiting for its pacing slot: under pacing a
    /// message slot is what is scarce, and input handed over in pieces (a 32 KiB read and its
    /// 8-byte smux header) would otherwise leave a short message every few dozen.
    pub fn send_output(&mut self, data: &[u8]) -> Result<usize, SendError> {
        if !self.is_ready() {
            return Err(if self.closed {
                SendError::Closed
            } else {
                SendError::NotReady
            });
        }
        let mut taken = 0;
        if let Some(last) = self.paced.back_mut()
            && last.payload_type == PayloadType::OUTPUT
            && last.payload.len() < MAX_CHUNK
        {
            taken = (MAX_CHUNK - last.payload.len()).min(data.len());
            last.payload.extend_from_slice(&data[..taken]);
        }
        for chunk in data[taken..].chunks(MAX_CHUNK) {
            match self.send_stream(PayloadType::OUTPUT, chunk) {
                Ok(()) => taken += chunk.len(),
                Err(SendError::WindowFull) if taken > 0 => break,
                Err(error) => return Err(error),
            }
        }
        Ok(taken)
    }

    /// Tell the agent the terminal size. Before the handshake completes, or while the send
    /// window is full, it is remembered and sent as soon as it can be (only the latest size);
    /// unchanged sizes are not sent again.
    pub fn resize(&mut self, cols: u32, rows: u32) -> Result<(), SendError> {
        let size = TerminalSize { cols, rows };
        if self.closed {
            return Err(SendError::Closed);
        }
        if !self.is_ready() {
            self.pending_size = Some(size);
            return Ok(());
        }
        if self.last_size == Some(size) {
            self.pending_size = None;
            return Ok(());
        }
        let payload = serde_json::to_vec(&size).map_err(|_| SendError::Empty)?;
        match self.send_stream(PayloadType::SIZE, &payload) {
            Ok(_) => {
                self.last_size = Some(size);
                self.pending_size = None;
                Ok(())
            }
            Err(SendError::WindowFull | SendError::NotReady) => {
                self.pending_size = Some(size);
                Ok(())
            }
            Err(other) => Err(other),
        }
    }

    /// Send a size that waited for room in the window.
    fn flush_pending_size(&mut self) {
        if self.is_ready()
            && let Some(size) = self.pending_size.take()
        {
            let _ = self.resize(size.cols, size.rows);
        }
    }

    /// Send a flag (TerminateSession, DisconnectToPort).
    pub fn send_flag(&mut self, flag: Flag) -> Result<(), SendError> {
        if self.closed {
            return Err(SendError::Closed);
        }
        self.send_stream(PayloadType::FLAG, &flag.to_bytes())
    }

    fn acknowledge(&mut self, now: Instant, frame: &Frame) {
        if self.recent.len() == RECENT_ACKS {
            self.recent.pop_front();
        }
        self.recent.push_back((frame.sequence, frame.message_id));
        self.push_ack(
            now,
            frame.message_type.clone(),
            frame.message_id,
            frame.sequence,
        );
    }

    fn push_ack(&mut self, now: Instant, message_type: MessageType, id: MessageId, sequence: i64) {
        let ack = Acknowledgement {
            acknowledged_message_type: message_type.as_str().to_owned(),
            acknowledged_message_id: id.to_string(),
            acknowledged_message_sequence_number: sequence,
            is_sequential_message: true,
        };
        let Ok(payload) = serde_json::to_vec(&ack) else {
            return;
        };
        let reply = Frame {
            message_type: MessageType::Acknowledge,
            schema_version: 1,
            created_ms: self.wall_ms(now),
            sequence: 0,
            flags: FLAGS_ACK,
            message_id: self.new_id(),
            payload_type: PayloadType::NONE,
            payload,
        };
        // Acknowledgements are not paced: a late ack makes the agent retransmit.
        self.transmit.push_back(frame::encode(&reply));
    }

    // ------------------------------------------------------------------------------------------
    // Receiving

    /// Feed one message the websocket delivered.
    pub fn handle_frame(&mut self, now: Instant, bytes: &[u8]) {
        if self.closed {
            return;
        }
        let decoded = match frame::decode(bytes) {
            Ok(decoded) => decoded,
            Err(FrameError::Incomplete { .. } | FrameError::Malformed(_)) => {
                self.dropped += 1;
                return;
            }
        };
        let frame = decoded.frame;
        let verified = decoded.digest == DigestCheck::Matches || frame.payload.is_empty();
        match frame.message_type {
            MessageType::OutputStreamData => {
                if !verified {
                    // Dropped unacknowledged: the agent retransmits it.
                    self.dropped += 1;
                    return;
                }
                self.paused_off();
                self.receive_stream(now, frame);
            }
            MessageType::Acknowledge => {
                if !verified {
                    self.dropped += 1;
                    return;
                }
                self.paused_off();
                self.receive_ack(now, &frame);
            }
            MessageType::ChannelClosed => {
                // Acted on even with a bad digest: it carries no data.
                let closed: ChannelClosed =
                    serde_json::from_slice(&frame.payload).unwrap_or_default();
                self.close(CloseReason::ChannelClosed(closed.output));
            }
            MessageType::PausePublication => {
                if !self.paused {
                    self.paused = true;
                    self.events.push_back(ChannelEvent::Paused);
                }
            }
            MessageType::StartPublication => self.paused_off(),
            MessageType::InputStreamData | MessageType::Other(_) => {}
        }
    }

    fn paused_off(&mut self) {
        if self.paused {
            self.paused = false;
            self.events.push_back(ChannelEvent::Resumed);
        }
    }

    fn receive_ack(&mut self, now: Instant, frame: &Frame) {
        let Ok(ack) = serde_json::from_slice::<Acknowledgement>(&frame.payload) else {
            self.dropped += 1;
            return;
        };
        let sequence = ack.acknowledged_message_sequence_number;
        let Some(index) = self.unacked.iter().position(|u| u.sequence == sequence) else {
            return;
        };
        if let Some(entry) = self.unacked.remove(index)
            && entry.attempts == 0
        {
            self.rtt
                .sample(now.saturating_duration_since(entry.last_sent));
        }
        self.flush_pending_size();
        // A later message got through while the oldest did not: after a few such
        // acknowledgements the oldest is taken for lost and sent again at once.
        if index > 0
            && let Some(head) = self.unacked.front_mut()
        {
            head.later_acks += 1;
            if head.later_acks == FAST_RETRANSMIT_AFTER {
                head.later_acks = 0;
                head.attempts += 1;
                head.last_sent = now;
                let bytes = head.bytes.clone();
                self.transmit.push_back(bytes);
            }
        }
    }

    fn receive_stream(&mut self, now: Instant, frame: Frame) {
        let sequence = frame.sequence;
        if sequence < self.expected {
            // A duplicate: our acknowledgement was lost. Acknowledge it again.
            self.acknowledge(now, &frame);
            return;
        }
        if sequence > self.expected {
            if self.reorder.contains_key(&sequence) {
                self.acknowledge(now, &frame);
                return;
            }
            if self.reorder.len() >= self.config.reorder_capacity {
                self.dropped += 1;
                return;
            }
            self.acknowledge(now, &frame);
            self.reorder.insert(sequence, frame);
            return;
        }
        self.acknowledge(now, &frame);
        self.expected += 1;
        self.process(now, frame);
        while let Some(next) = self.reorder.remove(&self.expected) {
            self.expected += 1;
            self.process(now, next);
            if self.closed {
                return;
            }
        }
    }

    fn process(&mut self, now: Instant, frame: Frame) {
        match frame.payload_type {
            PayloadType::HANDSHAKE_REQUEST => self.answer_handshake(now, &frame.payload),
            PayloadType::HANDSHAKE_COMPLETE => {
                let complete: HandshakeComplete =
                    serde_json::from_slice(&frame.payload).unwrap_or_default();
                self.handshake = Handshake::Done;
                self.events.push_back(ChannelEvent::HandshakeComplete {
                    message: complete.customer_message,
                });
                if let Some(size) = self.pending_size.take() {
                    let _ = self.resize(size.cols, size.rows);
                }
            }
            PayloadType::ENC_CHALLENGE_REQUEST => self.close(CloseReason::KmsEncryptionRequired),
            PayloadType::OUTPUT => {
                if self.kind.is_none() {
                    // No handshake: the first output makes this a shell (spec §6.1).
                    self.kind = Some(SessionKind::Shell {
                        session_type: String::new(),
                    });
                    self.handshake = Handshake::Done;
                    self.events
                        .push_back(ChannelEvent::SessionStarted(SessionKind::Shell {
                            session_type: String::new(),
                        }));
                    if let Some(size) = self.pending_size.take() {
                        let _ = self.resize(size.cols, size.rows);
                    }
                }
                self.events.push_back(ChannelEvent::Output(frame.payload));
            }
            PayloadType::STDERR => self.events.push_back(ChannelEvent::StdErr(frame.payload)),
            PayloadType::EXIT_CODE => {
                if let Some(code) = parse_exit_code(&frame.payload) {
                    self.events.push_back(ChannelEvent::ExitCode(code));
                }
            }
            PayloadType::FLAG => {
                if let Some(flag) = Flag::from_bytes(&frame.payload) {
                    self.events.push_back(ChannelEvent::Flag(flag));
                }
            }
            _ => {}
        }
    }

    fn answer_handshake(&mut self, now: Instant, payload: &[u8]) {
        let Ok(request) = serde_json::from_slice::<HandshakeRequest>(payload) else {
            self.close(CloseReason::Unsupported(
                "a handshake request that is not valid JSON".into(),
            ));
            return;
        };
        let mut processed = Vec::new();
        let mut failure = None;
        for action in &request.requested_client_actions {
            let (status, error) = match action.action_type.as_str() {
                "SessionType" => match serde_json::from_value::<SessionTypeRequest>(
                    action.action_parameters.clone(),
                ) {
                    Ok(session) => match self.adopt_session(&session, &request.agent_version) {
                        Ok(()) => (ACTION_SUCCESS, String::new()),
                        Err(reason) => {
                            let text = reason.to_string();
                            failure = Some(reason);
                            (ACTION_UNSUPPORTED, text)
                        }
                    },
                    Err(_) => {
                        failure = Some(CloseReason::Unsupported(
                            "a malformed SessionType action".into(),
                        ));
                        (ACTION_FAILED, "malformed SessionType parameters".to_owned())
                    }
                },
                "KMSEncryption" => {
                    failure = Some(CloseReason::KmsEncryptionRequired);
                    (
                        ACTION_FAILED,
                        "KMS encryption is not supported by this client".to_owned(),
                    )
                }
                other => {
                    failure.get_or_insert(CloseReason::Unsupported(format!(
                        "the handshake action {other}"
                    )));
                    (ACTION_UNSUPPORTED, format!("unsupported action {other}"))
                }
            };
            processed.push(ProcessedAction {
                action_type: action.action_type.clone(),
                action_status: status,
                action_result: Value::Null,
                error,
            });
        }
        let response = HandshakeResponse {
            client_version: self.config.client_version.clone(),
            processed_client_actions: processed,
            errors: None,
        };
        if let Ok(bytes) = serde_json::to_vec(&response) {
            let _ = self.send_stream(PayloadType::HANDSHAKE_RESPONSE, &bytes);
        }
        match failure {
            // The agent ends the session when any action fails; the reason is ours to report.
            Some(reason) => {
                // Let the response go out first so the agent learns why.
                self.release_paced(now);
                let pending: Vec<Vec<u8>> = self.transmit.drain(..).collect();
                self.close(reason);
                self.transmit.extend(pending);
            }
            None => {
                self.handshake = Handshake::Answered;
                if let Some(kind) = self.kind.clone() {
                    self.events.push_back(ChannelEvent::SessionStarted(kind));
                }
            }
        }
    }

    fn adopt_session(
        &mut self,
        session: &SessionTypeRequest,
        agent_version: &str,
    ) -> Result<(), CloseReason> {
        let kind = match session.session_type.as_str() {
            "Standard_Stream" | "InteractiveCommands" => SessionKind::Shell {
                session_type: session.session_type.clone(),
            },
            "NonInteractiveCommands" => SessionKind::Command,
            "Port" => {
                let properties: BTreeMap<String, String> = match &session.properties {
                    Value::Object(map) => map
                        .iter()
                        .map(|(k, v)| {
                            (
                                k.clone(),
                                v.as_str().map_or_else(|| v.to_string(), str::to_owned),
                            )
                        })
                        .collect(),
                    _ => BTreeMap::new(),
                };
                let mode = port_mode(&properties, agent_version);
                SessionKind::Port { properties, mode }
            }
            other => {
                return Err(CloseReason::Unsupported(format!(
                    "the session type {other}"
                )));
            }
        };
        self.kind = Some(kind);
        Ok(())
    }
}
