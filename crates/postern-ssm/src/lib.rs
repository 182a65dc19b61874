//! The AWS Systems Manager Session Manager data-channel protocol, without I/O.
//!
//! - [`frame`]: the binary message format (encode, tolerant decode, the message-id byte-order
//!   quirk); "incomplete" is kept apart from "malformed".
//! - [`payload`]: the control payloads (acknowledgements, handshake, sizes, flags, exit codes).
//! - [`channel`]: the client's [`channel::Channel`], fed with received frames, local input and
//!   the time, and polled for frames to send, events and its next deadline.
//! - [`pacer`]: the schedule outgoing stream messages keep to.
//! - [`port`]: how a port session carries bytes, decided from the agent version.
//! - [`smux`]: the client side of smux v1, which multiplexes port-forwarding streams over the
//!   channel's Output byte stream.
//!
//! Nothing here touches a socket, reads a clock or draws randomness of its own: the caller passes
//! `Instant`s, wall-clock milliseconds and a source of random message ids. The protocol is
//! specified in `shared/design/ssm-data-channel.md`; that document wins where anything else
//! disagrees.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod channel;
pub mod frame;
pub mod pacer;
pub mod payload;
pub mod port;
pub mod smux;
