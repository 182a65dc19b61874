//! smux protocol version 1, client side, without I/O: the multiplexing of port-forwarding
//! streams over one data channel (spec §7.4).
//!
//! The data channel's Output payloads form one continuous byte stream carrying smux frames;
//! message boundaries mean nothing. A frame is an 8-byte header of **little-endian** fields
//! (version 1, command, data length, stream id) and, for PSH, its data:
//!
//! ```text
//! open stream 3     01 00 00 00 03 00 00 00
//! "GET" on stream 3 01 02 03 00 03 00 00 00 47 45 54
//! close stream 3    01 01 00 00 03 00 00 00
//! keepalive         01 03 00 00 00 00 00 00
//! ```
//!
//! The client opens streams with odd ids from 3 upwards; the agent (the smux server) never opens
//! any. Version 1 has no per-stream flow control: the caller holds local readers back when the
//! data channel's window is full. Keepalive, when the agent expects it (see
//! [`crate::port::PortMode`]), sends a NOP every 10 s and declares the session dead after 30 s
//! without any frame from the agent.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

/// The protocol version spoken (v2 adds UPD and per-stream windows; AWS uses v1).
pub const VERSION: u8 = 1;
/// The most data bytes in one PSH frame.
pub const MAX_FRAME: usize = 32_768;
/// How often keepalive NOPs go out.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
/// How long without any frame from the agent kills the session when keepalive is on.
pub const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(30);
/// The size of a frame header.
pub const HEADER: usize = 8;

const SYN: u8 = 0;
const FIN: u8 = 1;
const PSH: u8 = 2;
const NOP: u8 = 3;

/// A stream's id.
pub type StreamId = u32;

/// What the session reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SmuxEvent {
    /// Data for a stream, in order.
    Data {
        /// The stream.
        stream: StreamId,
        /// The bytes.
        data: Vec<u8>,
    },
    /// The agent closed a stream (its destination connection ended, or it could not dial).
    Closed {
        /// The stream.
        stream: StreamId,
    },
    /// The whole session is dead: keepalive timed out.
    Dead,
}

/// A fatal violation of the protocol by the peer: the smux session cannot continue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SmuxError {
    /// A frame of another protocol version.
    #[error("smux frame of version {0}, expected 1")]
    Version(u8),
    /// An unknown command (or v2's UPD).
    #[error("unknown smux command {0}")]
    Command(u8),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct StreamState {
    /// We sent FIN.
    local_closed: bool,
}

/// The client side of one smux session.
#[derive(Debug)]
pub struct Session {
    next_stream: StreamId,
    streams: BTreeMap<StreamId, StreamState>,
    incoming: Vec<u8>,
    outgoing: VecDeque<u8>,
    events: VecDeque<SmuxEvent>,
    keepalive: Option<Keepalive>,
    dead: bool,
}

#[derive(Clone, Copy, Debug)]
struct Keepalive {
    last_received: Instant,
    next_nop: Instant,
}

fn header(command: u8, length: u16, stream: StreamId) -> [u8; HEADER] {
    let mut h = [0u8; HEADER];
    h[0] = VERSION;
    h[1] = command;
    h[2..4].copy_from_slice(&length.to_le_bytes());
    h[4..8].copy_from_slice(&stream.to_le_bytes());
    h
}

impl Session {
    /// A session; with `keepalive`, NOPs go out every 10 s from `now` and silence is watched.
    pub fn new(now: Instant, keepalive: bool) -> Self {
        Self {
            next_stream: 1,
            streams: BTreeMap::new(),
            incoming: Vec::new(),
            outgoing: VecDeque::new(),
            events: VecDeque::new(),
            keepalive: keepalive.then(|| Keepalive {
                last_received: now,
                next_nop: now + KEEPALIVE_INTERVAL,
            }),
            dead: false,
        }
    }

    /// Open a stream (one per local connection) and return its id.
    pub fn open(&mut self) -> StreamId {
        self.next_stream = self.next_stream.wrapping_add(2);
        let id = self.next_stream;
        self.streams.insert(
            id,
            StreamState {
                local_closed: false,
            },
        );
        self.outgoing.extend(header(SYN, 0, id));
        id
    }

    /// Queue `data` for `stream`, in frames of at most 32 KiB. Ignored for unknown or closed
    /// streams.
    pub fn write(&mut self, stream: StreamId, data: &[u8]) {
        if self.streams.get(&stream).is_none_or(|s| s.local_closed) {
            return;
        }
        for chunk in data.chunks(MAX_FRAME) {
            // Chunks are at most 32 KiB, well inside u16.
            let length = u16::try_from(chunk.len()).unwrap_or(u16::MAX);
            self.outgoing.extend(header(PSH, length, stream));
            self.outgoing.extend(chunk);
        }
    }

    /// Close `stream` (the local connection ended). smux v1 has no half-close: the agent closes
    /// its destination connection.
    pub fn close(&mut self, stream: StreamId) {
        if let Some(state) = self.streams.get_mut(&stream)
            && !state.local_closed
        {
            state.local_closed = true;
            self.outgoing.extend(header(FIN, 0, stream));
        }
        self.streams.remove(&stream);
    }

    /// Whether `stream` is open.
    pub fn is_open(&self, stream: StreamId) -> bool {
        self.streams.contains_key(&stream)
    }

    /// Open streams.
    pub fn open_streams(&self) -> usize {
        self.streams.len()
    }

    /// Bytes queued to go into the data channel.
    pub fn pending(&self) -> usize {
        self.outgoing.len()
    }

    /// Take up to `max` queued bytes for the data channel (Output payloads).
    pub fn poll_bytes(&mut self, max: usize) -> Option<Vec<u8>> {
        if self.outgoing.is_empty() || max == 0 {
            return None;
        }
        let n = max.min(self.outgoing.len());
        Some(self.outgoing.drain(..n).collect())
    }

    /// Put back bytes taken with [`Session::poll_bytes`] that the data channel did not accept.
    pub fn unpoll_bytes(&mut self, bytes: &[u8]) {
        for b in bytes.iter().rev() {
            self.outgoing.push_front(*b);
        }
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<SmuxEvent> {
        self.events.pop_front()
    }

    /// Whether keepalive killed the session.
    pub fn is_dead(&self) -> bool {
        self.dead
    }

    /// Feed bytes the data channel delivered (Output payloads, in order).
    pub fn handle_bytes(&mut self, now: Instant, bytes: &[u8]) -> Result<(), SmuxError> {
        self.incoming.extend_from_slice(bytes);
        let mut at = 0;
        while self.incoming.len() - at >= HEADER {
            let h = &self.incoming[at..at + HEADER];
            if h[0] != VERSION {
                return Err(SmuxError::Version(h[0]));
            }
            let command = h[1];
            let length = usize::from(u16::from_le_bytes([h[2], h[3]]));
            let stream = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
            if self.incoming.len() - at < HEADER + length {
                break;
            }
            let data = &self.incoming[at + HEADER..at + HEADER + length];
            match command {
                PSH => {
                    if self.streams.contains_key(&stream) && !data.is_empty() {
                        self.events.push_back(SmuxEvent::Data {
                            stream,
                            data: data.to_vec(),
                        });
                    }
                }
                FIN => {
                    if self.streams.remove(&stream).is_some() {
                        self.events.push_back(SmuxEvent::Closed { stream });
                    }
                }
                // The server never opens streams in Session Manager; refuse one by closing it.
                SYN => self.outgoing.extend(header(FIN, 0, stream)),
                NOP => {}
                other => return Err(SmuxError::Command(other)),
            }
            at += HEADER + length;
        }
        self.incoming.drain(..at);
        if let Some(keepalive) = &mut self.keepalive
            && at > 0
        {
            keepalive.last_received = now;
        }
        Ok(())
    }

    /// When [`Session::handle_timeout`] should run next (keepalive only).
    pub fn poll_timeout(&self) -> Option<Instant> {
        let k = self.keepalive.filter(|_| !self.dead)?;
        Some(k.next_nop.min(k.last_received + KEEPALIVE_TIMEOUT))
    }

    /// The caller is not reading the agent's bytes for now (its local readers are behind):
    /// silence until `now` is not the agent's, so the keepalive watch starts again from here.
    pub fn reading_paused(&mut self, now: Instant) {
        if let Some(keepalive) = &mut self.keepalive {
            keepalive.last_received = keepalive.last_received.max(now);
        }
    }

    /// Send keepalive NOPs and notice a silent agent.
    pub fn handle_timeout(&mut self, now: Instant) {
        let Some(keepalive) = &mut self.keepalive else {
            return;
        };
        if self.dead {
            return;
        }
        if now.saturating_duration_since(keepalive.last_received) >= KEEPALIVE_TIMEOUT {
            self.dead = true;
            self.streams.clear();
            self.events.push_back(SmuxEvent::Dead);
            return;
        }
        if now >= keepalive.next_nop {
            keepalive.next_nop = now + KEEPALIVE_INTERVAL;
            self.outgoing.extend(header(NOP, 0, 0));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_match_the_spec_examples() {
        let now = Instant::now();
        let mut session = Session::new(now, false);
        let stream = session.open();
        assert_eq!(stream, 3, "client ids start at 3");
        session.write(stream, b"GET");
        session.close(stream);
        let bytes = session.poll_bytes(usize::MAX).expect("bytes");
        assert_eq!(
            bytes,
            [
                0x01, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, // SYN 3
                0x01, 0x02, 0x03, 0x00, 0x03, 0x00, 0x00, 0x00, b'G', b'E',
                b'T', // PSH 3 "GET"
                0x01, 0x01, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, // FIN 3
            ]
        );
        assert_eq!(session.open(), 5);
    }

    #[test]
    fn incoming_frames_reassemble_across_arbitrary_splits() {
        let now = Instant::now();
        let mut session = Session::new(now, false);
        let stream = session.open();
        let mut wire = Vec::new();
        wire.extend(header(PSH, 5, stream));
        wire.extend(b"hello");
        wire.extend(header(NOP, 0, 0));
        wire.extend(header(PSH, 6, stream));
        wire.extend(b" world");
        wire.extend(header(PSH, 3, 99)); // unknown stream: discarded
        wire.extend(b"???");
        wire.extend(header(FIN, 0, stream));
        for piece in wire.chunks(3) {
            session.handle_bytes(now, piece).expect("valid");
        }
        let events: Vec<_> = std::iter::from_fn(|| session.poll_event()).collect();
        assert_eq!(
            events,
            [
                SmuxEvent::Data {
                    stream,
                    data: b"hello".to_vec()
                },
                SmuxEvent::Data {
                    stream,
                    data: b" world".to_vec()
                },
                SmuxEvent::Closed { stream },
            ]
        );
        assert!(!session.is_open(stream));
    }

    #[test]
    fn large_writes_split_at_32_kib() {
        let mut session = Session::new(Instant::now(), false);
        let stream = session.open();
        session.write(stream, &vec![7u8; MAX_FRAME + 10]);
        let bytes = session.poll_bytes(usize::MAX).expect("bytes");
        assert_eq!(bytes.len(), HEADER + HEADER + MAX_FRAME + HEADER + 10);
        assert_eq!(&bytes[HEADER..HEADER + 4], &[1, PSH, 0x00, 0x80]);
    }

    #[test]
    fn wrong_versions_and_v2_commands_are_fatal() {
        let now = Instant::now();
        let mut session = Session::new(now, false);
        assert_eq!(
            session.handle_bytes(now, &[2, 0, 0, 0, 1, 0, 0, 0]),
            Err(SmuxError::Version(2))
        );
        let mut session = Session::new(now, false);
        assert_eq!(
            session.handle_bytes(now, &[1, 4, 0, 0, 1, 0, 0, 0]),
            Err(SmuxError::Command(4))
        );
    }

    #[test]
    fn keepalive_sends_nops_and_declares_silence_dead() {
        let start = Instant::now();
        let mut session = Session::new(start, true);
        assert_eq!(session.poll_timeout(), Some(start + KEEPALIVE_INTERVAL));
        session.handle_timeout(start + KEEPALIVE_INTERVAL);
        assert_eq!(session.poll_bytes(64), Some(vec![1, NOP, 0, 0, 0, 0, 0, 0]));
        // A frame from the agent resets the silence clock.
        session
            .handle_bytes(start + Duration::from_secs(25), &[1, NOP, 0, 0, 0, 0, 0, 0])
            .expect("nop");
        session.handle_timeout(start + Duration::from_secs(40));
        assert!(!session.is_dead());
        session.handle_timeout(start + Duration::from_secs(56));
        assert!(session.is_dead());
        assert!(std::iter::from_fn(|| session.poll_event()).any(|e| e == SmuxEvent::Dead));
        let mut quiet = Session::new(start, false);
        assert_eq!(quiet.poll_timeout(), None);
        quiet.handle_timeout(start + Duration::from_secs(3600));
        assert!(!quiet.is_dead());
    }

    #[test]
    fn a_pause_in_reading_is_not_taken_for_a_dead_agent() {
        let start = Instant::now();
        let mut session = Session::new(start, true);
        // The caller stops reading for 40 s (its local client is slow), telling the session.
        let mut now = start;
        while now < start + Duration::from_secs(40) {
            now += Duration::from_secs(5);
            session.reading_paused(now);
            session.handle_timeout(now);
        }
        assert!(
            !std::iter::from_fn(|| session.poll_event()).any(|e| e == SmuxEvent::Dead),
            "not dead while the caller was not reading"
        );
        // Real silence afterwards is still noticed.
        session.handle_timeout(now + KEEPALIVE_TIMEOUT);
        assert!(std::iter::from_fn(|| session.poll_event()).any(|e| e == SmuxEvent::Dead));
    }
}
