//! Message framing on byte streams, after the connection header.
//!
//! tcp: a 64-bit big-endian body length, then the body. ipc: a 1-byte message type (`0x01`,
//! the only one defined), then the same length and body. The decoder is push-based (feed it
//! whatever bytes arrived) so that both a blocking reader and an event loop can use it.

use crate::error::WireError;

/// The ipc message type for an SP message.
pub const IPC_MSG: u8 = 0x01;

/// Largest body accepted when no limit is configured: a length that cannot be a real message
/// (above 2^48 bytes) is refused rather than trusted.
const ABSOLUTE_MAX: u64 = 1 << 48;

/// Which stream framing a connection uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// `tcp://`: length + body.
    Tcp,
    /// `ipc://`: type byte + length + body.
    Ipc,
}

impl Framing {
    /// Bytes before each body.
    pub const fn prefix_len(self) -> usize {
        match self {
            Framing::Tcp => 8,
            Framing::Ipc => 9,
        }
    }

    /// Appends the frame prefix for a body of `len` bytes to `out`.
    pub fn encode_prefix(self, len: usize, out: &mut Vec<u8>) {
        if self == Framing::Ipc {
            out.push(IPC_MSG);
        }
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }

    /// The whole frame (prefix, header, body) as one buffer, ready to write.
    pub fn encode(self, header: &[u8], body: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.prefix_len() + header.len() + body.len());
        self.encode_prefix(header.len() + body.len(), &mut out);
        out.extend_from_slice(header);
        out.extend_from_slice(body);
        out
    }
}

#[derive(Debug)]
enum State {
    Prefix { buf: [u8; 9], have: usize },
    Body { buf: Vec<u8>, len: usize },
}

/// Incremental decoder of framed messages.
#[derive(Debug)]
pub struct FrameDecoder {
    framing: Framing,
    max: u64,
    state: State,
}

impl FrameDecoder {
    /// A decoder refusing bodies above `max` bytes (`0`: no limit, as NNG's `recv-size-max` 0).
    pub fn new(framing: Framing, max: usize) -> FrameDecoder {
        FrameDecoder {
            framing,
            max: max as u64,
            state: State::Prefix {
                buf: [0; 9],
                have: 0,
            },
        }
    }

    /// Consumes bytes from the front of `input` and returns a message once one is complete.
    ///
    /// Call again with the rest of `input` while it is not empty: one call yields at most one
    /// message. After an error the stream is unusable and the connection must be dropped.
    pub fn decode(&mut self, input: &mut &[u8]) -> Result<Option<Vec<u8>>, WireError> {
        loop {
            match &mut self.state {
                State::Prefix { buf, have } => {
                    let need = self.framing.prefix_len();
                    let take = (need - *have).min(input.len());
                    buf[*have..*have + take].copy_from_slice(&input[..take]);
                    *have += take;
                    *input = &input[take..];
                    if *have < need {
                        return Ok(None);
                    }
                    let len_bytes = match self.framing {
                        Framing::Tcp => &buf[..8],
                        Framing::Ipc => {
                            if buf[0] != IPC_MSG {
                                return Err(WireError::BadIpcType { kind: buf[0] });
                            }
                            &buf[1..9]
                        }
                    };
                    let mut be = [0u8; 8];
                    be.copy_from_slice(len_bytes);
                    let len = u64::from_be_bytes(be);
                    let limit = if self.max == 0 {
                        ABSOLUTE_MAX
                    } else {
                        self.max
                    };
                    if len > limit {
                        return Err(WireError::TooLarge { len, max: limit });
                    }
                    let len = usize::try_from(len)
                        .map_err(|_| WireError::TooLarge { len, max: limit })?;
                    // Grow with the data, not with the peer's claim.
                    let buf = Vec::with_capacity(len.min(64 * 1024));
                    self.state = State::Body { buf, len };
                }
                State::Body { buf, len } => {
                    let take = (*len - buf.len()).min(input.len());
                    buf.extend_from_slice(&input[..take]);
                    *input = &input[take..];
                    if buf.len() < *len {
                        return Ok(None);
                    }
                    let msg = std::mem::take(buf);
                    self.state = State::Prefix {
                        buf: [0; 9],
                        have: 0,
                    };
                    return Ok(Some(msg));
                }
            }
        }
    }

    /// True between messages (no partial frame held).
    pub fn is_idle(&self) -> bool {
        matches!(self.state, State::Prefix { have: 0, .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(d: &mut FrameDecoder, mut bytes: &[u8]) -> Result<Vec<Vec<u8>>, WireError> {
        let mut out = Vec::new();
        while !bytes.is_empty() {
            if let Some(m) = d.decode(&mut bytes)? {
                out.push(m);
            }
        }
        Ok(out)
    }

    #[test]
    fn tcp_frame_layout() {
        let f = Framing::Tcp.encode(&[0x80, 0, 0, 1], b"hi");
        assert_eq!(f, [0, 0, 0, 0, 0, 0, 0, 6, 0x80, 0, 0, 1, b'h', b'i']);
    }

    #[test]
    fn ipc_frame_layout() {
        let f = Framing::Ipc.encode(&[], b"x");
        assert_eq!(f, [1, 0, 0, 0, 0, 0, 0, 0, 1, b'x']);
    }

    #[test]
    fn decodes_split_and_joined_frames() {
        for framing in [Framing::Tcp, Framing::Ipc] {
            let mut bytes = framing.encode(&[], b"hello");
            bytes.extend(framing.encode(&[], b""));
            bytes.extend(framing.encode(&[], &[7; 1000]));
            let mut d = FrameDecoder::new(framing, 0);
            // One byte at a time exercises every partial state.
            let mut got = Vec::new();
            for b in &bytes {
                let mut s: &[u8] = std::slice::from_ref(b);
                if let Some(m) = d.decode(&mut s).unwrap() {
                    got.push(m);
                }
            }
            assert_eq!(got, vec![b"hello".to_vec(), vec![], vec![7; 1000]]);
            let mut d = FrameDecoder::new(framing, 0);
            assert_eq!(decode_all(&mut d, &bytes).unwrap().len(), 3);
            assert!(d.is_idle());
        }
    }

    #[test]
    fn refuses_oversized_before_reading_body() {
        let mut d = FrameDecoder::new(Framing::Tcp, 4);
        let bytes = Framing::Tcp.encode(&[], b"12345");
        assert_eq!(
            decode_all(&mut d, &bytes[..8]),
            Err(WireError::TooLarge { len: 5, max: 4 })
        );
        let mut d = FrameDecoder::new(Framing::Tcp, 0);
        let huge = u64::MAX.to_be_bytes();
        assert!(matches!(
            decode_all(&mut d, &huge),
            Err(WireError::TooLarge { .. })
        ));
    }

    #[test]
    fn refuses_unknown_ipc_type() {
        let mut d = FrameDecoder::new(Framing::Ipc, 0);
        let bytes = [2u8, 0, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(
            decode_all(&mut d, &bytes),
            Err(WireError::BadIpcType { kind: 2 })
        );
    }
}
