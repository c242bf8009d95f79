//! The WebSocket side of the native dialer (`ws://`): the upgrade request, masked frames out,
//! frames in (pings answered, a close answered and reported as the end).
use super::connection::{NativeConnection, Reader};
use super::stream::write_all_fd;
use super::ws::{self, WsDecoder, WsEvent};
use super::{closed_or_io, lock};
use crate::sys;
use crate::{Error, Url};
use std::collections::VecDeque;
use std::io;
use std::os::fd::RawFd;
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
    fd: RawFd,
    url: &Url,
    host_port: &str,
    path: &str,
    r: &mut Reader,
) -> Result<(), Error> {
    let key = ws::new_key();
    write_all_fd(fd, ws::client_request(host_port, path, &key).as_bytes()).map_err(closed_or_io)?;
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
        let mut fds = [libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        }];
        if left.is_zero() || sys::poll(&mut fds, sys::timeout_ms(Some(left)))? == 0 {
            return Err(Error::Connect {
                url: url.to_string(),
                source: io::Error::new(io::ErrorKind::TimedOut, "no WebSocket upgrade answer"),
            });
        }
        let n = sys::read(fd, &mut r.buf[r.end..]).map_err(closed_or_io)?;
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

impl NativeConnection {
    /// Sends one message as masked frames of at most [`ws::FRAGMENT`] bytes.
    pub(super) fn send_ws(&self, parts: &[&[u8]]) -> Result<(), Error> {
        let mut buf = lock(&self.writer);
        self.write_ws_frames(parts, &mut buf)
    }

    fn write_ws_frames(&self, parts: &[&[u8]], buf: &mut Vec<u8>) -> Result<(), Error> {
        let fd = self.stream.fd();
        ws::for_each_client_frame(parts, buf, |frame| {
            write_all_fd(fd, frame).map_err(closed_or_io)
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
                    let _ = write_all_fd(self.stream.fd(), &f);
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
                let mut fds = [libc::pollfd {
                    fd: self.stream.fd(),
                    events: libc::POLLIN,
                    revents: 0,
                }];
                let left = d.saturating_duration_since(Instant::now());
                if sys::poll(&mut fds, sys::timeout_ms(Some(left)))? == 0 {
                    return Ok(None);
                }
            }
            if r.fill(&self.stream).map_err(|e| self.io_err(e))? == 0 {
                return Err(Error::Closed);
            }
        }
    }
}
