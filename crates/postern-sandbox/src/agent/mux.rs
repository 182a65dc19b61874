//! The agent's smux v1 server framing: its own small reader and writer, separate from the
//! client's session in postern-ssm (spec §7.4: 8-byte little-endian header, SYN 0, FIN 1,
//! PSH 2, NOP 3).

/// One smux frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MuxFrame {
    /// The client opens a stream.
    Open(u32),
    /// The client closes a stream.
    Close(u32),
    /// Data for a stream.
    Data(u32, Vec<u8>),
    /// Keepalive.
    Nop,
}

/// Reassembles frames from the Output byte stream.
#[derive(Debug, Default)]
pub struct MuxReader {
    buffer: Vec<u8>,
}

impl MuxReader {
    /// Feed bytes; returns the complete frames, or why the stream is not smux v1.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Vec<MuxFrame>, String> {
        self.buffer.extend_from_slice(bytes);
        let mut frames = Vec::new();
        let mut at = 0;
        while self.buffer.len() >= at + 8 {
            let h = &self.buffer[at..at + 8];
            if h[0] != 1 {
                return Err(format!("smux version {} (expected 1)", h[0]));
            }
            let length = usize::from(u16::from_le_bytes([h[2], h[3]]));
            let stream = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
            if self.buffer.len() < at + 8 + length {
                break;
            }
            let command = h[1];
            let data = self.buffer[at + 8..at + 8 + length].to_vec();
            frames.push(match command {
                0 => MuxFrame::Open(stream),
                1 => MuxFrame::Close(stream),
                2 => MuxFrame::Data(stream, data),
                3 => MuxFrame::Nop,
                other => return Err(format!("smux command {other} is not v1")),
            });
            at += 8 + length;
        }
        self.buffer.drain(..at);
        Ok(frames)
    }
}

/// One frame's bytes.
pub fn frame(command: u8, stream: u32, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + data.len());
    out.push(1);
    out.push(command);
    out.extend_from_slice(&(data.len() as u16).to_le_bytes());
    out.extend_from_slice(&stream.to_le_bytes());
    out.extend_from_slice(data);
    out
}

/// FIN for a stream.
pub fn close(stream: u32) -> Vec<u8> {
    frame(1, stream, &[])
}

/// PSH frames for data (at most 32 KiB each).
pub fn data(stream: u32, bytes: &[u8]) -> Vec<u8> {
    bytes
        .chunks(32_768)
        .flat_map(|chunk| frame(2, stream, chunk))
        .collect()
}

/// A keepalive NOP.
pub fn nop() -> Vec<u8> {
    frame(3, 0, &[])
}
