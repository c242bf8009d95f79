//! WebSocket (RFC 6455) as NNG's `ws` transport speaks it, pure: the HTTP/1.1 upgrade, frame
//! encoding and a frame decoder that reassembles messages. No sockets here.
//!
//! On the wire (found by dumping what NNG 1.5 sends): the upgrade negotiates
//! `Sec-WebSocket-Protocol: pair1.sp.nanomsg.org`; each SP message is one binary WebSocket
//! message whose payload starts with pair1's 4-byte header, a big-endian hop count
//! (`00 00 00 01`), followed by the body. NNG fragments messages into 64 KiB frames, refuses
//! frames over 1 MiB, requires minimal length encodings, and answers a message without the
//! pair1 header by closing (status 1000).
use super::framing::{reserve_for, MAX_PARTS};
use std::io::IoSlice;

/// The SP protocol named in the upgrade (NNG's pair1).
pub(super) const SP_PROTOCOL: &str = "pair1.sp.nanomsg.org";
/// pair1's message header: a hop count of one.
pub(super) const SP_HEADER: [u8; 4] = [0, 0, 0, 1];
/// Payload of one frame sent (as NNG sends: it refuses frames over 1 MiB).
pub(super) const FRAGMENT: usize = 64 * 1024;
/// Bound on the upgrade request or response, headers included.
pub(super) const MAX_HANDSHAKE: usize = 8 * 1024;
/// Longest frame header: 2 bytes, a 64-bit length, a mask.
pub(super) const MAX_FRAME_HEADER: usize = 14;

const OP_CONT: u8 = 0x0;
const OP_TEXT: u8 = 0x1;
const OP_BINARY: u8 = 0x2;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xA;

#[path = "ws_handshake.rs"]
mod handshake;
#[cfg(test)]
use handshake::{accept_key, base64, sha1};
pub(super) use handshake::{client_request, new_key, parse_request, parse_response, random_u64};

/// A frame header of `len` payload bytes (minimal length encoding, as NNG requires), masked
/// with `mask` when given. Returns the bytes and their count.
pub(super) fn frame_header(
    fin: bool,
    opcode: u8,
    len: usize,
    mask: Option<[u8; 4]>,
) -> ([u8; MAX_FRAME_HEADER], usize) {
    let mut h = [0u8; MAX_FRAME_HEADER];
    h[0] = (if fin { 0x80 } else { 0 }) | opcode;
    let m = if mask.is_some() { 0x80 } else { 0 };
    let mut n = 2;
    if len < 126 {
        h[1] = m | len as u8;
    } else if len <= 0xFFFF {
        h[1] = m | 126;
        h[2..4].copy_from_slice(&(len as u16).to_be_bytes());
        n = 4;
    } else {
        h[1] = m | 127;
        h[2..10].copy_from_slice(&(len as u64).to_be_bytes());
        n = 10;
    }
    if let Some(k) = mask {
        h[n..n + 4].copy_from_slice(&k);
        n += 4;
    }
    (h, n)
}

/// XORs `data` with `mask`, `offset` bytes into the masked payload.
pub(super) fn apply_mask(data: &mut [u8], mask: [u8; 4], offset: usize) {
    for (i, b) in data.iter_mut().enumerate() {
        *b ^= mask[(offset + i) & 3];
    }
}

/// Calls `f` with the iovecs of one unmasked message (the listener's side): frame headers of
/// at most [`FRAGMENT`] payload bytes each, the pair1 header, then `parts`, never joined.
pub(super) fn with_server_message<R>(
    parts: &[&[u8]],
    f: impl FnOnce(&mut [IoSlice<'_>], usize) -> R,
) -> R {
    let body: usize = parts.iter().map(|p| p.len()).sum();
    let len = body + SP_HEADER.len();
    if len <= FRAGMENT && parts.len() <= MAX_PARTS {
        // One frame: header and parts on the stack.
        let (h, n) = frame_header(true, OP_BINARY, len, None);
        let mut first = [0u8; MAX_FRAME_HEADER + 4];
        first[..n].copy_from_slice(&h[..n]);
        first[n..n + 4].copy_from_slice(&SP_HEADER);
        let mut iov = [IoSlice::new(&[]); MAX_PARTS + 1];
        iov[0] = IoSlice::new(&first[..n + 4]);
        for (slot, part) in iov[1..].iter_mut().zip(parts) {
            *slot = IoSlice::new(part);
        }
        return f(&mut iov[..parts.len() + 1], n + len);
    }
    let frames = len.div_ceil(FRAGMENT);
    let mut headers: Vec<([u8; MAX_FRAME_HEADER + 4], usize)> = Vec::with_capacity(frames);
    for i in 0..frames {
        let payload = (len - i * FRAGMENT).min(FRAGMENT);
        let op = if i == 0 { OP_BINARY } else { OP_CONT };
        let (h, n) = frame_header(i + 1 == frames, op, payload, None);
        let mut b = [0u8; MAX_FRAME_HEADER + 4];
        b[..n].copy_from_slice(&h[..n]);
        let mut n = n;
        if i == 0 {
            b[n..n + 4].copy_from_slice(&SP_HEADER);
            n += 4;
        }
        headers.push((b, n));
    }
    let mut iov: Vec<IoSlice<'_>> = Vec::with_capacity(frames + parts.len() + 1);
    let mut total = 0;
    // Room left in the current frame (the first one already holds the pair1 header).
    let mut room = FRAGMENT - SP_HEADER.len();
    let mut next = 1;
    iov.push(IoSlice::new(&headers[0].0[..headers[0].1]));
    total += headers[0].1;
    for part in parts {
        let mut p: &[u8] = part;
        while !p.is_empty() {
            if room == 0 {
                let (b, n) = &headers[next];
                iov.push(IoSlice::new(&b[..*n]));
                total += n;
                next += 1;
                room = FRAGMENT;
            }
            let take = p.len().min(room);
            iov.push(IoSlice::new(&p[..take]));
            total += take;
            room -= take;
            p = &p[take..];
        }
    }
    f(&mut iov, total)
}

/// Masked frames of one message (the dialer's side), built into `buf` one frame at a time
/// and handed to `write`: masking needs a copy, so the copy is bounded by [`FRAGMENT`].
pub(super) fn for_each_client_frame<E>(
    parts: &[&[u8]],
    buf: &mut Vec<u8>,
    mut write: impl FnMut(&[u8]) -> Result<(), E>,
) -> Result<(), E> {
    let body: usize = parts.iter().map(|p| p.len()).sum();
    let len = body + SP_HEADER.len();
    let frames = len.div_ceil(FRAGMENT).max(1);
    let mut src = parts.iter().copied().filter(|p| !p.is_empty());
    let mut cur: &[u8] = &[];
    for i in 0..frames {
        let payload = (len - i * FRAGMENT).min(FRAGMENT);
        let mask = random_u64().to_le_bytes();
        let mask = [mask[0], mask[1], mask[2], mask[3]];
        let op = if i == 0 { OP_BINARY } else { OP_CONT };
        let (h, n) = frame_header(i + 1 == frames, op, payload, Some(mask));
        buf.clear();
        buf.extend_from_slice(&h[..n]);
        let start = buf.len();
        if i == 0 {
            buf.extend_from_slice(&SP_HEADER);
        }
        while buf.len() - start < payload {
            if cur.is_empty() {
                cur = src.next().unwrap_or(&[]);
                if cur.is_empty() {
                    break;
                }
            }
            let take = cur.len().min(payload - (buf.len() - start));
            buf.extend_from_slice(&cur[..take]);
            cur = &cur[take..];
        }
        apply_mask(&mut buf[start..], mask, 0);
        write(buf)?;
    }
    Ok(())
}

/// What the decoder found besides message bodies.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum WsEvent {
    /// A whole message (pair1 header removed).
    Message(Vec<u8>),
    /// A frame to send back (a pong, or the close reply).
    Reply(Vec<u8>),
    /// The peer closed the WebSocket (its close has been answered with a `Reply`).
    Closed,
}

/// A frame being read.
struct InFrame {
    opcode: u8,
    fin: bool,
    remaining: u64,
    mask: Option<[u8; 4]>,
    /// Payload bytes of this frame already read (for the mask's position).
    done: usize,
    /// Control frames collect their (short) payload here.
    control: Vec<u8>,
}

/// Reassembles messages from WebSocket frames, in any split of the byte stream.
pub(super) struct WsDecoder {
    /// The listener requires masked frames, the dialer unmasked ones (RFC 6455 5.1).
    server: bool,
    header: [u8; MAX_FRAME_HEADER],
    header_have: usize,
    frame: Option<InFrame>,
    /// The message being reassembled, once its first data frame began.
    msg: Option<Vec<u8>>,
    /// pair1 header bytes of the current message still to skip.
    sp_skip: usize,
    /// Bound on the first message, until it is complete.
    first_max: Option<usize>,
    closed: bool,
}

impl WsDecoder {
    /// A decoder for the listener (`server`) or dialer side.
    pub(super) fn new(server: bool, first_max: Option<usize>) -> WsDecoder {
        WsDecoder {
            server,
            header: [0; MAX_FRAME_HEADER],
            header_have: 0,
            frame: None,
            msg: None,
            sp_skip: 0,
            first_max,
            closed: false,
        }
    }

    /// True in the middle of a frame or of a fragmented message.
    pub(super) fn mid_message(&self) -> bool {
        self.header_have > 0 || self.frame.is_some() || self.msg.is_some()
    }

    pub(super) fn describe_truncation(&self) -> String {
        match &self.msg {
            Some(m) => format!(
                "connection closed after {} bytes of a WebSocket message",
                m.len()
            ),
            None => "connection closed in the middle of a WebSocket frame".into(),
        }
    }

    /// A reply frame from this side (masked when this is the dialer).
    fn reply(&self, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mask = (!self.server).then(|| {
            let m = random_u64().to_le_bytes();
            [m[0], m[1], m[2], m[3]]
        });
        let (h, n) = frame_header(true, opcode, payload.len(), mask);
        let mut v = h[..n].to_vec();
        let start = v.len();
        v.extend_from_slice(payload);
        if let Some(m) = mask {
            apply_mask(&mut v[start..], m, 0);
        }
        v
    }

    /// Needed header length once its first two bytes are known.
    fn header_len(&self) -> usize {
        let ext = match self.header[1] & 0x7F {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        2 + ext + if self.header[1] & 0x80 != 0 { 4 } else { 0 }
    }

    /// Consumes `data`, reporting messages, replies and the peer's close through `emit`.
    /// Errs (with the reason) on a protocol violation or a message over the bound.
    pub(super) fn feed(
        &mut self,
        mut data: &[u8],
        max: usize,
        mut emit: impl FnMut(WsEvent),
    ) -> Result<(), String> {
        while !data.is_empty() && !self.closed {
            let Some(frame) = self.frame.as_mut() else {
                // Frame header.
                let want = if self.header_have < 2 {
                    2
                } else {
                    self.header_len()
                };
                let take = (want - self.header_have).min(data.len());
                self.header[self.header_have..self.header_have + take]
                    .copy_from_slice(&data[..take]);
                self.header_have += take;
                data = &data[take..];
                if self.header_have < 2 || self.header_have < self.header_len() {
                    continue;
                }
                self.start_frame(max, &mut emit)?;
                continue;
            };
            let take = usize::try_from(frame.remaining)
                .unwrap_or(usize::MAX)
                .min(data.len());
            let (chunk, rest) = data.split_at(take);
            data = rest;
            frame.remaining -= take as u64;
            let offset = frame.done;
            frame.done += take;
            if frame.opcode >= OP_CLOSE {
                frame.control.extend_from_slice(chunk);
                if let Some(m) = frame.mask {
                    let from = frame.control.len() - take;
                    apply_mask(&mut frame.control[from..], m, offset);
                }
            } else {
                let mut chunk = chunk;
                let skip = self.sp_skip.min(chunk.len());
                // pair1's header is checked for length only: its hop count is NNG's concern.
                self.sp_skip -= skip;
                let masked_skip = skip;
                chunk = &chunk[skip..];
                let limit = limit(self.first_max, max);
                let msg = self.msg.get_or_insert_with(Vec::new);
                if msg.len() + chunk.len() > limit {
                    return Err(over(self.first_max, msg.len() + chunk.len(), max));
                }
                reserve_for(msg, limit, chunk.len());
                let from = msg.len();
                msg.extend_from_slice(chunk);
                if let Some(m) = frame.mask {
                    apply_mask(&mut msg[from..], m, offset + masked_skip);
                }
            }
            if frame.remaining == 0 {
                self.end_frame(&mut emit)?;
            }
        }
        Ok(())
    }

    /// Validates the header just completed and starts its frame.
    fn start_frame(&mut self, max: usize, emit: &mut impl FnMut(WsEvent)) -> Result<(), String> {
        let h = self.header;
        let n = self.header_len();
        self.header_have = 0;
        let fin = h[0] & 0x80 != 0;
        let opcode = h[0] & 0x0F;
        if h[0] & 0x70 != 0 {
            return Err("WebSocket frame with reserved bits set (no extension was agreed)".into());
        }
        let masked = h[1] & 0x80 != 0;
        if masked != self.server {
            return Err(if self.server {
                "unmasked WebSocket frame from a client".into()
            } else {
                "masked WebSocket frame from the listener".into()
            });
        }
        let len = match h[1] & 0x7F {
            126 => u64::from(u16::from_be_bytes([h[2], h[3]])),
            127 => u64::from_be_bytes([h[2], h[3], h[4], h[5], h[6], h[7], h[8], h[9]]),
            l => u64::from(l),
        };
        if len >> 63 != 0 {
            return Err("WebSocket frame length with its top bit set".into());
        }
        let mask = masked.then(|| [h[n - 4], h[n - 3], h[n - 2], h[n - 1]]);
        match opcode {
            OP_CLOSE | OP_PING | OP_PONG => {
                if !fin || len > 125 {
                    return Err("fragmented or oversized WebSocket control frame".into());
                }
            }
            OP_BINARY => {
                if self.msg.is_some() {
                    return Err("new WebSocket message inside a fragmented one".into());
                }
                self.msg = Some(Vec::new());
                self.sp_skip = SP_HEADER.len();
            }
            OP_CONT => {
                if self.msg.is_none() {
                    return Err("WebSocket continuation frame without a message to continue".into());
                }
            }
            OP_TEXT => return Err("WebSocket text frame: SP messages are binary".into()),
            _ => return Err(format!("WebSocket frame with reserved opcode {opcode}")),
        }
        if opcode <= OP_BINARY {
            let have = self.msg.as_ref().map_or(0, Vec::len) as u64;
            let payload_body = (len.saturating_sub(self.sp_skip as u64)).saturating_add(have);
            let bound = limit(self.first_max, max) as u64;
            if payload_body > bound {
                let len = usize::try_from(payload_body).unwrap_or(usize::MAX);
                return Err(over(self.first_max, len, max));
            }
        }
        self.frame = Some(InFrame {
            opcode,
            fin,
            remaining: len,
            mask,
            done: 0,
            control: Vec::new(),
        });
        if len == 0 {
            self.end_frame(emit)?;
        }
        Ok(())
    }

    /// A frame's payload is complete.
    fn end_frame(&mut self, emit: &mut impl FnMut(WsEvent)) -> Result<(), String> {
        let Some(frame) = self.frame.take() else {
            return Ok(());
        };
        match frame.opcode {
            OP_PING => emit(WsEvent::Reply(self.reply(OP_PONG, &frame.control))),
            OP_PONG => {}
            OP_CLOSE => {
                // Echo the status code (if any), as RFC 6455 5.5.1 asks.
                let code = frame.control.get(..2).unwrap_or(&[]);
                emit(WsEvent::Reply(self.reply(OP_CLOSE, code)));
                self.closed = true;
                emit(WsEvent::Closed);
            }
            _ if frame.fin => {
                if self.sp_skip > 0 {
                    return Err("WebSocket message shorter than pair1's 4-byte header".into());
                }
                let msg = self.msg.take().unwrap_or_default();
                self.first_max = None;
                emit(WsEvent::Message(msg));
            }
            _ => {}
        }
        Ok(())
    }
}

/// The bound on a message: the first message's when tighter than `max`.
fn limit(first_max: Option<usize>, max: usize) -> usize {
    match first_max {
        Some(f) if f < max => f,
        _ => max,
    }
}

fn over(first_max: Option<usize>, len: usize, max: usize) -> String {
    match first_max {
        Some(f) if f < max => format!(
            "first WebSocket message of at least {len} bytes exceeds the maximum of {f} bytes \
             for a connection's first message"
        ),
        _ => {
            format!("WebSocket message of at least {len} bytes exceeds the maximum of {max} bytes")
        }
    }
}

#[cfg(test)]
#[path = "ws_tests.rs"]
mod tests;
