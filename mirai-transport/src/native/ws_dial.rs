//! The WebSocket side of the native dialer (`ws://`): the upgrade request, masked frames out,
//! frames in (pings answered, a close answered and reported as the end).
use super::connection::{NativeConnection, Reader};
use super::stream::{write_all_fd, Stream};
use super::tls_stream::as_tls_error;
use super::ws::{self, WsDecoder, WsEvent};
use super::{closed_or_io, lock};
use crate::sys;
use crate::tls::{self, Side};
use crate::{Error, Url};
use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::time::{Duration, Instant};

/// Receive state of a WebSocket dialer, kept in its [`Reader`].
pub(super) struct WsIn {
    pub(super) dec: WsDecoder,
    /// Messages decoded and not yet returned by `recv`.
    pub(super) pending: VecDeque<Vec<u8>>,
    /// The listener closed the WebSocket.
    pub(super) closed: bool,
}

fn protocol(reason: String) -> Error {
    Error::Io(io::Error::new(io::ErrorKind::InvalidData, reason))
}

/// Sends the upgrade request for `path` and reads the listener's answer into `r` (what
/// follows it stays buffered), within [`crate::tls::DIAL_HANDSHAKE_TIMEOUT`].
pub(super) fn upgrade(
    stream: &Stream,
    url: &Url,
    host_port: &str,
    path: &str,
    r: &mut Reader,
) -> Result<(), Error> {
    let key = ws::new_key();
    let fail = |e: io::Error| match as_tls_error(&e) {
        Some(te) => {
            let (reason, kind) = tls::describe(te, Side::Dialer);
            Error::Tls {
                url: url.to_string(),
                reason,
                kind,
            }
        }
        None => closed_or_io(e),
    };
    write_all(stream, ws::client_request(host_port, path, &key).as_bytes()).map_err(fail)?;
    let deadline = Instant::now() + crate::tls::DIAL_HANDSHAKE_TIMEOUT;
    loop {
        if let Some(len) =
            ws::parse_response(r.buffered(), &key).map_err(|reason| Error::Connect {
                url: url.to_string(),
                source: io::Error::new(io::ErrorKind::ConnectionRefused, reason),
            })?
        {
            r.start += len;
            return Ok(());
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || !wait_readable(stream, left).map_err(fail)? {
            return Err(Error::Connect {
                url: url.to_string(),
                source: io::Error::new(io::ErrorKind::TimedOut, "no WebSocket upgrade answer"),
            });
        }
        if r.end == r.buf.len() {
            return Err(Error::Connect {
                url: url.to_string(),
                source: io::Error::new(
                    io::ErrorKind::InvalidData,
                    "WebSocket upgrade answer too long",
                ),
            });
        }
        let n = match stream.read(&mut r.buf[r.end..]) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => 0,
            Err(e) => return Err(fail(e)),
        };
        if n == 0 {
            return Err(Error::Connect {
                url: url.to_string(),
                source: io::Error::new(
                    io::ErrorKind::ConnectionRefused,
                    "the listener closed the connection during the WebSocket upgrade",
                ),
            });
        }
        r.end += n;
    }
}

/// Writes all of `bytes` to a blocking stream, through TLS if it has it.
fn write_all(stream: &Stream, bytes: &[u8]) -> io::Result<()> {
    match stream {
        Stream::Plain(_) => write_all_fd(stream.fd(), bytes),
        Stream::Tls(t) => t.send_frame(&mut [IoSlice::new(bytes)]),
    }
}

/// Waits up to `t` for input (decrypted input over TLS). Ok(false) on timeout.
fn wait_readable(stream: &Stream, t: Duration) -> io::Result<bool> {
    match stream {
        Stream::Plain(_) => {
            let mut fds = [libc::pollfd {
                fd: stream.fd(),
                events: libc::POLLIN,
                revents: 0,
            }];
            Ok(sys::poll(&mut fds, sys::timeout_ms(Some(t)))? > 0)
        }
        Stream::Tls(tls) => tls.wait_readable(t),
    }
}

impl NativeConnection {
    /// Sends one message as masked frames of at most [`ws::FRAGMENT`] bytes.
    pub(super) fn send_ws(&self, parts: &[&[u8]]) -> Result<(), Error> {
        let mut buf = lock(&self.writer);
        self.write_ws_frames(parts, &mut buf)
    }

    fn write_ws_frames(&self, parts: &[&[u8]], buf: &mut Vec<u8>) -> Result<(), Error> {
        ws::for_each_client_frame(parts, buf, |frame| {
            write_all(&self.stream, frame).map_err(|e| self.io_err(e))
        })
    }

    /// `recv` over WebSocket: as for the length-prefixed stream, `timeout` bounds only the
    /// wait for a message to start.
    pub(super) fn recv_ws(
        &self,
        r: &mut Reader,
        timeout: Option<Duration>,
    ) -> Result<Option<Vec<u8>>, Error> {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            let Reader {
                buf,
                start,
                end,
                eof,
                ws: Some(w),
            } = r
            else {
                return Err(Error::Closed);
            };
            if let Some(m) = w.pending.pop_front() {
                return Ok(Some(m));
            }
            if w.closed {
                return Err(Error::Closed);
            }
            if *start < *end {
                let mut replies = Vec::new();
                let WsIn {
                    dec,
                    pending,
                    closed,
                } = &mut **w;
                let res = dec.feed(&buf[*start..*end], self.max_message, |e| match e {
                    WsEvent::Message(m) => pending.push_back(m),
                    WsEvent::Reply(f) => replies.push(f),
                    WsEvent::Closed => *closed = true,
                });
                *start = 0;
                *end = 0;
                for f in replies {
                    // Best effort: a pong or the close reply.
                    let _ = write_all(&self.stream, &f);
                }
                if let Err(reason) = res {
                    log::warn!("WebSocket listener {} dropped: {reason}", self.url);
                    self.close();
                    return Err(protocol(reason));
                }
                continue;
            }
            if *eof {
                return Err(Error::Closed);
            }
            if let (Some(d), false) = (deadline, w.dec.mid_message()) {
                let left = d.saturating_duration_since(Instant::now());
                if !wait_readable(&self.stream, left).map_err(|e| self.io_err(e))? {
                    return Ok(None);
                }
            }
            if r.fill(&self.stream).map_err(|e| self.io_err(e))? == 0 {
                return Err(Error::Closed);
            }
        }
    }
}
