//! The AWS Systems Manager Session Manager data-channel protocol, without I/O.
//!
//! This crate will hold the frame codec, the channel state machine (sequence numbers,
//! acknowledgements, retransmission, the handshake) and the port-forwarding framings, all driven
//! by the caller: it is fed bytes and the current time, and polled for bytes to send, events and
//! the next deadline. It never touches a socket, a clock or a random-number generator of its own.
//!
//! The protocol is specified in `shared/design/ssm-data-channel.md`; that document wins where
//! anything else disagrees.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
