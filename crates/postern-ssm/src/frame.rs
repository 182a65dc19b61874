//! The binary message of the data channel ("ClientMessage"/"AgentMessage"): one per websocket
//! binary frame, a 116-byte header after a 4-byte header length, then the payload.
//!
//! Layout (spec §3.1), all integers big-endian:
//!
//! ```text
//!   0   4  HeaderLength (116)         64  16  MessageId (UUID, halves swapped)
//!   4  32  MessageType (space padded)  80  32  SHA-256 of the payload
//!  36   4  SchemaVersion (1)          112   4  PayloadType
//!  40   8  CreatedDate (ms)           116   4  PayloadLength
//!  48   8  SequenceNumber (i64)       120   n  Payload
//!  56   8  Flags
//! ```
//!
//! [`decode`] parses with the tolerance the spec requires of service-generated frames (§3.4): the
//! payload starts at `HeaderLength + 4` whatever the length field says, a 112-byte header (MGS's
//! `channel_closed`) has no PayloadType, and MessageType padding of NULs or spaces at either end is
//! stripped. It reports the digest check rather than acting on it: which messages may be dropped
//! for a bad digest is the channel's decision. A frame too short to hold what it declares is
//! [`FrameError::Incomplete`], a frame that can never be valid is [`FrameError::Malformed`].

use std::fmt;

use sha2::{Digest, Sha256};

/// The header length every frame this crate writes carries: the offset of PayloadLength.
pub const HEADER_LENGTH: u32 = 116;
/// Bytes before the payload in a standard frame.
pub const PAYLOAD_OFFSET: usize = HEADER_LENGTH as usize + 4;
/// The smallest header length a reader accepts (MGS's `channel_closed`, spec §3.4).
pub const MIN_HEADER_LENGTH: u32 = 112;
/// Flags of acknowledgements (SYN | FIN).
pub const FLAGS_ACK: u64 = 3;
/// Flag of the agent's first output message (SYN).
pub const FLAG_SYN: u64 = 1;

/// The kinds of message on the client's websocket (spec §4.1).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum MessageType {
    /// Client → agent data and control payloads (sequenced).
    InputStreamData,
    /// Agent → client data and control payloads (sequenced).
    OutputStreamData,
    /// Acknowledges one sequenced message.
    Acknowledge,
    /// The session ended (sent by MGS).
    ChannelClosed,
    /// The other side became active (sent by MGS; informational).
    StartPublication,
    /// The other side became inactive (sent by MGS; informational).
    PausePublication,
    /// Anything else; ignored by receivers.
    Other(String),
}

impl MessageType {
    /// The name on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            Self::InputStreamData => "input_stream_data",
            Self::OutputStreamData => "output_stream_data",
            Self::Acknowledge => "acknowledge",
            Self::ChannelClosed => "channel_closed",
            Self::StartPublication => "start_publication",
            Self::PausePublication => "pause_publication",
            Self::Other(name) => name,
        }
    }

    /// The type named `name` (already stripped of padding).
    pub fn from_name(name: &str) -> Self {
        match name {
            "input_stream_data" => Self::InputStreamData,
            "output_stream_data" => Self::OutputStreamData,
            "acknowledge" => Self::Acknowledge,
            "channel_closed" => Self::ChannelClosed,
            "start_publication" => Self::StartPublication,
            "pause_publication" => Self::PausePublication,
            other => Self::Other(other.to_owned()),
        }
    }

    /// Whether messages of this type carry a sequence number and are acknowledged.
    pub fn is_stream_data(&self) -> bool {
        matches!(self, Self::InputStreamData | Self::OutputStreamData)
    }
}

impl fmt::Display for MessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a stream message's payload is (spec §4.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PayloadType(pub u32);

impl PayloadType {
    /// No payload type (acknowledgements and other control messages).
    pub const NONE: Self = Self(0x00);
    /// Raw bytes: terminal I/O, TCP bytes, smux frames.
    pub const OUTPUT: Self = Self(0x01);
    /// Defined, unused.
    pub const ERROR: Self = Self(0x02);
    /// Terminal size, JSON `{"cols":…,"rows":…}`.
    pub const SIZE: Self = Self(0x03);
    /// Defined, unused.
    pub const PARAMETER: Self = Self(0x04);
    /// Agent → client handshake request (JSON).
    pub const HANDSHAKE_REQUEST: Self = Self(0x05);
    /// Client → agent handshake response (JSON).
    pub const HANDSHAKE_RESPONSE: Self = Self(0x06);
    /// Agent → client handshake completion (JSON).
    pub const HANDSHAKE_COMPLETE: Self = Self(0x07);
    /// Agent → client KMS challenge.
    pub const ENC_CHALLENGE_REQUEST: Self = Self(0x08);
    /// Client → agent KMS challenge response.
    pub const ENC_CHALLENGE_RESPONSE: Self = Self(0x09);
    /// A 4-byte big-endian flag.
    pub const FLAG: Self = Self(0x0a);
    /// Standard error bytes of a non-interactive command.
    pub const STDERR: Self = Self(0x0b);
    /// `EXIT_CODE: <n>` of a non-interactive command.
    pub const EXIT_CODE: Self = Self(0x0c);
}

/// A message id: a UUID, held in its canonical (RFC 4122) byte order.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct MessageId(pub [u8; 16]);

impl MessageId {
    /// A random (version 4) id from 16 bytes of randomness supplied by the caller.
    pub fn from_random(mut bytes: [u8; 16]) -> Self {
        bytes[6] = (bytes[6] & 0x0f) | 0x40;
        bytes[8] = (bytes[8] & 0x3f) | 0x80;
        Self(bytes)
    }

    /// The 16 bytes as written on the wire: the two 8-byte halves swapped (spec §3.2).
    pub fn to_wire(self) -> [u8; 16] {
        let mut wire = [0u8; 16];
        wire[..8].copy_from_slice(&self.0[8..]);
        wire[8..].copy_from_slice(&self.0[..8]);
        wire
    }

    /// The id a wire field holds.
    pub fn from_wire(wire: [u8; 16]) -> Self {
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&wire[8..]);
        bytes[8..].copy_from_slice(&wire[..8]);
        Self(bytes)
    }

    /// Parse the canonical hyphenated form (either case).
    pub fn parse(text: &str) -> Option<Self> {
        let hex: Vec<u8> = text.bytes().filter(|b| *b != b'-').collect();
        if hex.len() != 32 || text.len() != 36 {
            return None;
        }
        let mut bytes = [0u8; 16];
        for (i, pair) in hex.chunks(2).enumerate() {
            let digit = |b: u8| (b as char).to_digit(16);
            bytes[i] = (digit(pair[0])? * 16 + digit(pair[1])?) as u8;
        }
        Some(Self(bytes))
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, byte) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MessageId({self})")
    }
}

/// One message of the data channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// What kind of message.
    pub message_type: MessageType,
    /// Always 1 when written by AWS code.
    pub schema_version: u32,
    /// Milliseconds since the Unix epoch.
    pub created_ms: u64,
    /// The stream sequence number; 0 for non-stream messages.
    pub sequence: i64,
    /// SYN (1) / FIN (2) bits; receivers ignore them.
    pub flags: u64,
    /// The message id.
    pub message_id: MessageId,
    /// What the payload is.
    pub payload_type: PayloadType,
    /// The payload bytes.
    pub payload: Vec<u8>,
}

/// The result of checking a received payload against its digest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DigestCheck {
    /// SHA-256 of the payload equals the digest field.
    Matches,
    /// It does not.
    Mismatch,
}

/// A decoded frame and what was noticed while decoding it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decoded {
    /// The frame.
    pub frame: Frame,
    /// The header length field (116, or 112 for MGS's short `channel_closed`).
    pub header_length: u32,
    /// The PayloadLength field as written (diagnostic only; never used for slicing).
    pub declared_length: Option<u32>,
    /// Whether the digest matches.
    pub digest: DigestCheck,
}

/// Why bytes are not a frame.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Fewer bytes than the frame declares: more may be coming (or the frame was truncated).
    #[error("incomplete frame: {have} bytes, at least {need} needed")]
    Incomplete {
        /// Bytes available.
        have: usize,
        /// Bytes the header requires.
        need: usize,
    },
    /// The bytes can never form a valid frame; the message is dropped.
    #[error("malformed frame: {0}")]
    Malformed(Malformation),
}

/// What makes a frame malformed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Malformation {
    /// HeaderLength below 112.
    #[error("header length {0} is below 112")]
    HeaderTooShort(u32),
    /// HeaderLength so large the frame cannot hold it.
    #[error("header length {0} is implausibly large")]
    HeaderTooLong(u32),
    /// The message type is empty or not ASCII text.
    #[error("the message type is empty or not text")]
    BadMessageType,
    /// CreatedDate is zero (only publication messages may omit it).
    #[error("the created date is zero")]
    NoCreatedDate,
}

/// The largest header length accepted: the standard one plus slack for future fields.
const MAX_HEADER_LENGTH: u32 = 1024;

/// Serialize a frame with the standard 116-byte header and a correct digest.
pub fn encode(frame: &Frame) -> Vec<u8> {
    let mut out = Vec::with_capacity(PAYLOAD_OFFSET + frame.payload.len());
    out.extend_from_slice(&HEADER_LENGTH.to_be_bytes());
    let mut name = [b' '; 32];
    let type_name = frame.message_type.as_str().as_bytes();
    let n = type_name.len().min(32);
    name[..n].copy_from_slice(&type_name[..n]);
    out.extend_from_slice(&name);
    out.extend_from_slice(&frame.schema_version.to_be_bytes());
    out.extend_from_slice(&frame.created_ms.to_be_bytes());
    out.extend_from_slice(&frame.sequence.to_be_bytes());
    out.extend_from_slice(&frame.flags.to_be_bytes());
    out.extend_from_slice(&frame.message_id.to_wire());
    out.extend_from_slice(&Sha256::digest(&frame.payload));
    out.extend_from_slice(&frame.payload_type.0.to_be_bytes());
    // Payloads are bounded far below 4 GiB by every caller (1 KiB chunks); saturate defensively.
    let length = u32::try_from(frame.payload.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&length.to_be_bytes());
    out.extend_from_slice(&frame.payload);
    out
}

fn be_u32(bytes: &[u8], at: usize) -> u32 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&bytes[at..at + 4]);
    u32::from_be_bytes(word)
}

fn be_u64(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_be_bytes(word)
}

/// Parse one frame, with the tolerance spec §3.4 requires.
pub fn decode(bytes: &[u8]) -> Result<Decoded, FrameError> {
    if bytes.len() < 4 {
        return Err(FrameError::Incomplete {
            have: bytes.len(),
            need: 4,
        });
    }
    let header_length = be_u32(bytes, 0);
    if header_length < MIN_HEADER_LENGTH {
        return Err(FrameError::Malformed(Malformation::HeaderTooShort(
            header_length,
        )));
    }
    if header_length > MAX_HEADER_LENGTH {
        return Err(FrameError::Malformed(Malformation::HeaderTooLong(
            header_length,
        )));
    }
    let payload_start = header_length as usize + 4;
    if bytes.len() < payload_start {
        return Err(FrameError::Incomplete {
            have: bytes.len(),
            need: payload_start,
        });
    }
    let raw_type = &bytes[4..36];
    let Ok(type_text) = std::str::from_utf8(raw_type) else {
        return Err(FrameError::Malformed(Malformation::BadMessageType));
    };
    let type_name = type_text.trim_matches(|c: char| c == '\0' || c.is_ascii_whitespace());
    if type_name.is_empty() || !type_name.is_ascii() {
        return Err(FrameError::Malformed(Malformation::BadMessageType));
    }
    let message_type = MessageType::from_name(type_name);
    let created_ms = be_u64(bytes, 40);
    let publication = matches!(
        message_type,
        MessageType::StartPublication | MessageType::PausePublication
    );
    if created_ms == 0 && !publication {
        return Err(FrameError::Malformed(Malformation::NoCreatedDate));
    }
    let mut wire_id = [0u8; 16];
    wire_id.copy_from_slice(&bytes[64..80]);
    let digest_field = &bytes[80..112];
    let (payload_type, declared_length) = if header_length >= HEADER_LENGTH {
        (PayloadType(be_u32(bytes, 112)), Some(be_u32(bytes, 116)))
    } else {
        (PayloadType::NONE, None)
    };
    let payload = bytes[payload_start..].to_vec();
    let digest = if Sha256::digest(&payload).as_slice() == digest_field {
        DigestCheck::Matches
    } else {
        DigestCheck::Mismatch
    };
    let frame = Frame {
        message_type,
        schema_version: be_u32(bytes, 36),
        created_ms,
        sequence: be_u64(bytes, 48) as i64,
        flags: be_u64(bytes, 56),
        message_id: MessageId::from_wire(wire_id),
        payload_type,
        payload,
    };
    Ok(Decoded {
        frame,
        header_length,
        declared_length,
        digest,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_id_text_round_trips_and_swaps_halves_on_the_wire() {
        let id = MessageId::parse("0b9c5c27-8f4e-4a3b-9d21-6f1e2a7c4d55").expect("valid");
        assert_eq!(id.to_string(), "0b9c5c27-8f4e-4a3b-9d21-6f1e2a7c4d55");
        assert_eq!(
            id.to_wire(),
            [
                0x9d, 0x21, 0x6f, 0x1e, 0x2a, 0x7c, 0x4d, 0x55, 0x0b, 0x9c, 0x5c, 0x27, 0x8f, 0x4e,
                0x4a, 0x3b
            ]
        );
        assert_eq!(MessageId::from_wire(id.to_wire()), id);
        assert!(MessageId::parse("not-a-uuid").is_none());
        assert!(MessageId::parse("0b9c5c278f4e4a3b9d216f1e2a7c4d55").is_none());
        let random = MessageId::from_random([0xff; 16]);
        assert_eq!(random.to_string().as_bytes()[14], b'4', "version 4");
    }

    #[test]
    fn short_and_bad_headers_are_told_apart() {
        assert_eq!(
            decode(&[0, 0]),
            Err(FrameError::Incomplete { have: 2, need: 4 })
        );
        assert_eq!(
            decode(&[0, 0, 0, 0x74, 1, 2]),
            Err(FrameError::Incomplete { have: 6, need: 120 })
        );
        assert_eq!(
            decode(&[0, 0, 0, 5]),
            Err(FrameError::Malformed(Malformation::HeaderTooShort(5)))
        );
        assert_eq!(
            decode(&[0xff, 0xff, 0xff, 0xff]),
            Err(FrameError::Malformed(Malformation::HeaderTooLong(u32::MAX)))
        );
        let mut blank = vec![0u8; 120];
        blank[3] = 116;
        assert_eq!(
            decode(&blank),
            Err(FrameError::Malformed(Malformation::BadMessageType))
        );
    }
}
