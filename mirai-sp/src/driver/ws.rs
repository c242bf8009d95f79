//! `ws://` and `wss://`: RFC 6455 WebSocket as NNG's ws transport speaks it, one SP message
//! (protocol header and body) per binary WebSocket message, no SP connection header.
//!
//! So that the driver's pipe code stays transport-agnostic, a [`WsStream`] looks like a tcp
//! byte stream: the SP header the pipe writes is dropped (the upgrade already settled the
//! protocols), and the header it reads is made from the protocol the upgrade agreed on;
//! every tcp-framed message written (a 64-bit length, then the message) leaves as one
//! WebSocket message in frames of at most 64 KiB (NNG refuses frames over 1 MiB), masked
//! from the dialer; every WebSocket message read comes back tcp-framed. Pings are answered,
//! a close is echoed and ends the stream. The listener's answer to the upgrade request
//! (which [`super::ws_server`] read to route it) is sent on the connection's own thread at its
//! first read.

use std::io::{self, BufReader, Read, Write};
use std::sync::{Arc, Mutex, MutexGuard};

use super::stream::Stream;
use super::ws_upgrade as up;
use crate::error::{Error, WireError};
use crate::handshake;
use crate::protocol::Protocol;

/// Payload of one data frame sent.
const FRAGMENT: usize = 64 * 1024;
/// Largest message accepted when the socket sets no limit (as the tcp decoder's bound).
const ABSOLUTE_MAX: u64 = 1 << 48;

const OP_CONT: u8 = 0x0;
const OP_BINARY: u8 = 0x2;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xA;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn bad(msg: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        Error::Protocol(WireError::WebSocket(msg.to_string())),
    )
}

struct Rd {
    io: BufReader<Stream>,
    /// Listener only, until answered: the upgrade request's head and the path served.
    upgrade: Option<(String, String)>,
    /// Bytes handed to the pipe next (a made-up SP header, or one tcp-framed message).
    out: Vec<u8>,
    pos: usize,
    closed: bool,
}

struct Wr {
    io: Stream,
    /// SP header bytes still to drop.
    swallow: usize,
    prefix: [u8; 8],
    have: usize,
    /// Inside a message: body bytes not yet sent in frames.
    left: Option<u64>,
    first: bool,
    frag: Vec<u8>,
    frag_cap: usize,
}

struct Inner {
    base: Stream,
    client: bool,
    ours: Protocol,
    max: u64,
    rd: Mutex<Rd>,
    wr: Mutex<Wr>,
}

/// A WebSocket connection that reads and writes like a tcp-framed SP stream; clones share it.
#[derive(Clone)]
pub(crate) struct WsStream(Arc<Inner>);

impl std::fmt::Debug for WsStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WsStream")
            .field("client", &self.0.client)
            .finish()
    }
}

impl WsStream {
    fn new(
        base: Stream,
        io: BufReader<Stream>,
        client: bool,
        upgrade: Option<(String, String)>,
        ours: Protocol,
        recv_max: usize,
    ) -> io::Result<WsStream> {
        let out = if upgrade.is_none() {
            handshake::encode(ours.peer()).to_vec()
        } else {
            Vec::new()
        };
        Ok(WsStream(Arc::new(Inner {
            wr: Mutex::new(Wr {
                io: base.try_clone()?,
                swallow: handshake::HEADER_LEN,
                prefix: [0; 8],
                have: 0,
                left: None,
                first: true,
                frag: Vec::new(),
                frag_cap: 0,
            }),
            rd: Mutex::new(Rd {
                io,
                upgrade,
                out,
                pos: 0,
                closed: false,
            }),
            base,
            client,
            ours,
            max: if recv_max == 0 {
                ABSOLUTE_MAX
            } else {
                recv_max as u64
            },
        })))
    }

    /// The dialer's side: upgrades `base` (tcp, or TLS for wss) at `path` on `host_port`.
    pub(crate) fn connect(
        base: Stream,
        host_port: &str,
        path: &str,
        ours: Protocol,
        recv_max: usize,
    ) -> Result<WsStream, Error> {
        let mut io = BufReader::with_capacity(FRAGMENT, base.try_clone()?);
        let mut rw = ReadWrite {
            r: &mut io,
            w: base.try_clone()?,
        };
        up::client(&mut rw, host_port, path, ours.peer())?;
        Ok(WsStream::new(base, io, true, None, ours, recv_max)?)
    }

    /// The listener's side of an accepted `base` whose upgrade request `head` (for `path`)
    /// has been read through `io`; the answer goes out at the first read.
    pub(crate) fn accept(
        base: Stream,
        io: BufReader<Stream>,
        head: String,
        path: String,
        ours: Protocol,
        recv_max: usize,
    ) -> io::Result<WsStream> {
        WsStream::new(base, io, false, Some((head, path)), ours, recv_max)
    }

    /// The stream under the WebSocket (shutdown, timeouts).
    pub(crate) fn base(&self) -> &Stream {
        &self.0.base
    }

    /// Writes one whole frame (control frames come from the reader, between data frames).
    fn send_frame(&self, w: &mut Stream, fin: bool, op: u8, payload: &[u8]) -> io::Result<()> {
        let mut f = Vec::with_capacity(payload.len() + 14);
        f.push(if fin { 0x80 | op } else { op });
        let m = if self.0.client { 0x80 } else { 0 };
        match payload.len() {
            n if n < 126 => f.push(m | n as u8),
            n if n <= 0xFFFF => {
                f.push(m | 126);
                f.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                f.push(m | 127);
                f.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        let start = f.len() + if self.0.client { 4 } else { 0 };
        if self.0.client {
            let mask = up::random::<4>();
            f.extend_from_slice(&mask);
            f.extend_from_slice(payload);
            for (i, b) in f[start..].iter_mut().enumerate() {
                *b ^= mask[i & 3];
            }
        } else {
            f.extend_from_slice(payload);
        }
        w.write_all(&f)
    }

    fn control(&self, op: u8, payload: &[u8]) -> io::Result<()> {
        let mut w = lock(&self.0.wr);
        let io = &mut w.io;
        self.send_frame(io, true, op, payload)
    }

    /// The listener's upgrade: checks the request, answers 101 or refuses.
    fn upgrade(&self, head: &str, path: &str) -> io::Result<()> {
        match up::check_request(head, path, self.0.ours) {
            Ok(resp) => lock(&self.0.wr).io.write_all(resp.as_bytes()),
            Err((status, why)) => {
                let _sent = lock(&self.0.wr)
                    .io
                    .write_all(up::refusal(status).as_bytes());
                Err(up::refused(why))
            }
        }
    }

    /// Reads frames up to a whole message; `None` when the peer closed.
    fn read_message(&self, rd: &mut Rd) -> io::Result<Option<Vec<u8>>> {
        let mut msg: Option<Vec<u8>> = None;
        loop {
            let mut h = [0u8; 2];
            match rd.io.read_exact(&mut h) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof && msg.is_none() => {
                    return Ok(None)
                }
                Err(e) => return Err(e),
            }
            let (fin, op) = (h[0] & 0x80 != 0, h[0] & 0x0F);
            if h[0] & 0x70 != 0 {
                return Err(bad("frame with reserved bits set"));
            }
            let masked = h[1] & 0x80 != 0;
            if masked == self.0.client {
                return Err(bad(if masked {
                    "masked frame from the listener"
                } else {
                    "unmasked frame from a dialer"
                }));
            }
            let len = match h[1] & 0x7F {
                126 => {
                    let mut b = [0u8; 2];
                    rd.io.read_exact(&mut b)?;
                    u64::from(u16::from_be_bytes(b))
                }
                127 => {
                    let mut b = [0u8; 8];
                    rd.io.read_exact(&mut b)?;
                    u64::from_be_bytes(b)
                }
                n => u64::from(n),
            };
            let mut mask = [0u8; 4];
            if masked {
                rd.io.read_exact(&mut mask)?;
            }
            if op >= OP_CLOSE {
                if !fin || len > 125 {
                    return Err(bad("fragmented or oversized control frame"));
                }
                let mut p = vec![0u8; len as usize];
                rd.io.read_exact(&mut p)?;
                unmask(&mut p, masked.then_some(mask));
                match op {
                    OP_PING => self.control(OP_PONG, &p)?,
                    OP_PONG => {}
                    OP_CLOSE => {
                        // Echo the status code, as RFC 6455 5.5.1 asks; then the stream ends.
                        let _echoed = self.control(OP_CLOSE, p.get(..2).unwrap_or(&[]));
                        return Ok(None);
                    }
                    _ => return Err(bad("reserved control opcode")),
                }
                continue;
            }
            match (op, msg.is_some()) {
                (OP_BINARY, false) => msg = Some(Vec::new()),
                (OP_CONT, true) => {}
                (OP_BINARY, true) => return Err(bad("new message inside a fragmented one")),
                (OP_CONT, false) => return Err(bad("continuation without a message")),
                _ => return Err(bad("text or reserved data frame (SP messages are binary)")),
            }
            let m = msg.get_or_insert_with(Vec::new);
            if (m.len() as u64).saturating_add(len) > self.0.max {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    Error::Protocol(WireError::TooLarge {
                        len: (m.len() as u64).saturating_add(len),
                        max: self.0.max,
                    }),
                ));
            }
            let start = m.len();
            // Grow with the data, not with the peer's claim.
            let got = (&mut rd.io).take(len).read_to_end(m)?;
            if (got as u64) < len {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            unmask(&mut m[start..], masked.then_some(mask));
            if fin {
                return Ok(msg);
            }
        }
    }

    fn read_bytes(&self, buf: &mut [u8]) -> io::Result<usize> {
        let mut rd = lock(&self.0.rd);
        loop {
            if rd.pos < rd.out.len() {
                let n = buf.len().min(rd.out.len() - rd.pos);
                buf[..n].copy_from_slice(&rd.out[rd.pos..rd.pos + n]);
                rd.pos += n;
                return Ok(n);
            }
            if rd.closed {
                return Ok(0);
            }
            if let Some((head, path)) = rd.upgrade.take() {
                self.upgrade(&head, &path)?;
                rd.out = handshake::encode(self.0.ours.peer()).to_vec();
                rd.pos = 0;
                continue;
            }
            match self.read_message(&mut rd)? {
                Some(m) => {
                    let mut out = Vec::with_capacity(8 + m.len());
                    out.extend_from_slice(&(m.len() as u64).to_be_bytes());
                    out.extend_from_slice(&m);
                    rd.out = out;
                    rd.pos = 0;
                }
                None => rd.closed = true,
            }
        }
    }

    fn write_bytes(&self, buf: &[u8]) -> io::Result<usize> {
        let mut guard = lock(&self.0.wr);
        let w = &mut *guard;
        if w.swallow > 0 {
            let n = w.swallow.min(buf.len());
            w.swallow -= n;
            return Ok(n);
        }
        let mut used = 0;
        while used < buf.len() {
            let Some(left) = w.left else {
                let take = (8 - w.have).min(buf.len() - used);
                w.prefix[w.have..w.have + take].copy_from_slice(&buf[used..used + take]);
                w.have += take;
                used += take;
                if w.have == 8 {
                    w.have = 0;
                    let len = u64::from_be_bytes(w.prefix);
                    w.first = true;
                    if len == 0 {
                        self.send_frame(&mut w.io, true, OP_BINARY, &[])?;
                    } else {
                        w.left = Some(len);
                    }
                }
                continue;
            };
            if w.frag.is_empty() {
                w.frag_cap = usize::try_from(left).unwrap_or(usize::MAX).min(FRAGMENT);
            }
            let take = (w.frag_cap - w.frag.len()).min(buf.len() - used);
            w.frag.extend_from_slice(&buf[used..used + take]);
            used += take;
            if w.frag.len() == w.frag_cap {
                let left = left - w.frag_cap as u64;
                let op = if w.first { OP_BINARY } else { OP_CONT };
                let frag = std::mem::take(&mut w.frag);
                self.send_frame(&mut w.io, left == 0, op, &frag)?;
                w.frag = frag;
                w.frag.clear();
                w.first = false;
                w.left = (left > 0).then_some(left);
            }
        }
        Ok(used)
    }
}

fn unmask(data: &mut [u8], mask: Option<[u8; 4]>) {
    if let Some(m) = mask {
        for (i, b) in data.iter_mut().enumerate() {
            *b ^= m[i & 3];
        }
    }
}

/// The buffered reader and a writer of one stream, as one value for the client upgrade.
struct ReadWrite<'a> {
    r: &'a mut BufReader<Stream>,
    w: Stream,
}

impl Read for ReadWrite<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.r.read(buf)
    }
}

impl io::BufRead for ReadWrite<'_> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.r.fill_buf()
    }
    fn consume(&mut self, n: usize) {
        self.r.consume(n)
    }
}

impl Write for ReadWrite<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.w.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.w.flush()
    }
}

impl Read for WsStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_bytes(buf)
    }
}

impl Write for WsStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_bytes(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
