//! Faults a test can inject into one session's data channel, at the websocket.

use serde::Deserialize;

/// What goes wrong on a session's websocket. Everything is off by default.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Close the websocket abruptly after this many frames (both directions counted)...
    pub drop_socket_after: Option<u64>,
    /// ...this many times (each new connection counts afresh).
    pub drop_socket_times: u32,
    /// Close the websocket at random, with this chance per frame.
    pub drop_socket_chance: f64,
    /// After this many frames, stop reading and writing the websocket without closing it
    /// (no data, no pongs), once.
    pub stall_after: Option<u64>,
    /// Lose frames with this chance, each direction.
    pub drop_rate: f64,
    /// Deliver frames twice with this chance, each direction.
    pub duplicate_rate: f64,
    /// Hold frames back behind the next one with this chance, each direction.
    pub reorder_rate: f64,
    /// Delay the agent's acknowledgements by this many milliseconds.
    pub ack_delay_ms: u64,
    /// Have the agent end the session (channel_closed) after this many frames.
    pub close_channel_after: Option<u64>,
    /// Send `channel_closed` with the standard 116-byte header instead of the 112-byte,
    /// NUL-padded layout MGS is reported to use.
    pub standard_channel_closed: bool,
    /// Answer this many websocket upgrades for the session, then leave later ones hanging
    /// (no HTTP answer), as a dead network path does, until the session ends.
    pub hang_upgrades_after: Option<u32>,
    /// Cut terminal output inside multi-byte UTF-8 characters (the real agent usually, not
    /// always, keeps them whole).
    pub split_characters: bool,
}

impl Faults {
    /// Whether any frame-level fault is set.
    pub fn perturbs_frames(&self) -> bool {
        self.drop_rate > 0.0 || self.duplicate_rate > 0.0 || self.reorder_rate > 0.0
    }
}

/// How many faults the sandbox has injected (all sessions together), so a test can show its
/// faults really happened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Injected {
    /// Websockets closed abruptly.
    pub sockets_dropped: u64,
    /// Websockets stalled.
    pub stalls: u64,
    /// Frames lost.
    pub frames_dropped: u64,
    /// Frames delivered twice.
    pub frames_duplicated: u64,
    /// Frames held back behind a later one.
    pub frames_reordered: u64,
}

impl Injected {
    /// Add `other`'s counts to these.
    pub fn add(&mut self, other: &Injected) {
        self.sockets_dropped += other.sockets_dropped;
        self.stalls += other.stalls;
        self.frames_dropped += other.frames_dropped;
        self.frames_duplicated += other.frames_duplicated;
        self.frames_reordered += other.frames_reordered;
    }
}
