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
    /// (no HTTP answer), as a dead network path does.
    pub hang_upgrades_after: Option<u32>,
}

impl Faults {
    /// Whether any frame-level fault is set.
    pub fn perturbs_frames(&self) -> bool {
        self.drop_rate > 0.0 || self.duplicate_rate > 0.0 || self.reorder_rate > 0.0
    }
}
