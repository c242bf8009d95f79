//! The native dialer: a blocking socket (plain or TLS) with separate locks for its read and
//! write halves.
use super::framing::{reserve_for, with_message, GROW_MIN, HEADER};
use super::stream::Stream;
use super::tls_stream::{as_tls_error, TlsStream};
use super::ws::WsDecoder;
use super::ws_dial::{self, WsIn};
use super::{closed_or_io, lock, SCRATCH};
use crate::sys;
use crate::tls::{self, Side, TlsConfigCause, TlsConfigError, TlsErrorKind, WELCOME};
use crate::{Error, Options, Scheme, Url};
use std::io::{self, IoSlice, Read};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Buffered read half of a dialer.
pub(super) struct Reader {
    pub(super) buf: Box<[u8]>,
    pub(super) start: usize,
    pub(super) end: usize,
    pub(super) eof: bool,
    /// `ws://`: the WebSocket decoder and the messages it has produced.
    pub(super) ws: Option<Box<WsIn>>,
}

impl Reader {
    pub(super) fn buffered(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// One read into the free tail of the buffer (compacting first). Ok(0) is EOF.
    pub(super) fn fill(&mut self, stream: &Stream) -> io::Result<usize> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.end == self.buf.len() {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        loop {
            match stream.read(&mut self.buf[self.end..]) {
                Ok(n) => {
                    self.end += n;
                    if n == 0 {
                        self.eof = true;
                    }
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

pub(crate) struct NativeConnection {
    pub(super) stream: Stream,
    /// As dialed, for TLS error messages.
    pub(super) url: String,
    pub(super) max_message: usize,
    pub(super) reader: Mutex<Reader>,
    /// Orders writes; over `ws://`, holds the buffer frames are masked in.
    pub(super) writer: Mutex<Vec<u8>>,
    pub(super) closed: AtomicBool,
    /// A `ws://` connection.
    pub(super) ws: bool,
}

/// Dialer side of a TLS connection on a connected socket: runs the handshake, then waits for
/// the listener's greeting (which says this peer was accepted), all within
/// [`tls::DIAL_HANDSHAKE_TIMEOUT`].
pub(super) fn tls_dial(
    fd: OwnedFd,
    host: &str,
    url: &str,
    config: Arc<rustls::ClientConfig>,
    welcome: bool,
) -> Result<TlsStream, Error> {
    let tls_err = |reason: String, kind: TlsErrorKind| Error::Tls {
        url: url.to_string(),
        reason,
        kind,
    };
    let name = rustls_pki_types::ServerName::try_from(host.to_string()).map_err(|_| {
        Error::TlsConfig(TlsConfigError::new(
            TlsConfigCause::BadHostName,
            format!(
            "'{host}' in '{url}' is not a host name or IP address a certificate can be checked \
             against"
            ),
        ))
    })?;
    let mut conn = rustls::ClientConnection::new(config, name).map_err(|e| {
        tls_err(
            format!("cannot start a TLS session: {e}"),
            TlsErrorKind::Protocol,
        )
    })?;
    conn.set_buffer_limit(None);
    let t = TlsStream::new(fd, rustls::Connection::Client(conn), String::new());
    let deadline = Instant::now() + tls::DIAL_HANDSHAKE_TIMEOUT;
    let closed = |during: &str| {
        tls_err(
            format!(
                "the listener closed the connection {during} (is it a plain tcp:// listener, \
                 or did it refuse this peer without saying why?)"
            ),
            TlsErrorKind::Protocol,
        )
    };
    let fail = |e: io::Error, during: &str| -> Error {
        if let Some(te) = as_tls_error(&e) {
            let (reason, kind) = tls::describe(te, Side::Dialer);
            tls_err(reason, kind)
        } else if matches!(
            e.kind(),
            io::ErrorKind::UnexpectedEof
                | io::ErrorKind::ConnectionReset
                | io::ErrorKind::BrokenPipe
                | io::ErrorKind::ConnectionAborted
        ) {
            closed(during)
        } else {
            tls_err(format!("I/O error {during}: {e}"), TlsErrorKind::Protocol)
        }
    };
    let timed_out = || {
        tls_err(
            format!(
                "no TLS handshake with the listener within {:?}",
                tls::DIAL_HANDSHAKE_TIMEOUT
            ),
            TlsErrorKind::Timeout,
        )
    };
    let during = "during the TLS handshake";
    loop {
        t.flush_out().map_err(|e| fail(e, during))?;
        if !lock(&t.conn).is_handshaking() {
            break;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || !t.pull(Some(left)).map_err(|e| fail(e, during))? {
            return Err(timed_out());
        }
    }
    // TLS 1.3 ends the client's handshake before the listener has checked its certificate:
    // the greeting (or an alert saying why not) settles it. Over wss the upgrade's response
    // plays that part.
    if !welcome {
        return Ok(t);
    }
    let during = "before accepting this peer";
    let mut got = [0u8; WELCOME.len()];
    let mut have = 0;
    while have < got.len() {
        let res = lock(&t.conn).reader().read(&mut got[have..]);
        match res {
            Ok(0) => return Err(closed(during)),
            Ok(n) => have += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() || !t.pull(Some(left)).map_err(|e| fail(e, during))? {
                    return Err(timed_out());
                }
            }
            Err(e) => return Err(fail(e, during)),
        }
    }
    if &got != WELCOME {
        return Err(tls_err(
            "the TLS server is not a mirai listener (unexpected greeting)".into(),
            TlsErrorKind::Protocol,
        ));
    }
    Ok(t)
}

impl NativeConnection {
    pub(crate) fn dial(url: &Url, opts: &Options) -> Result<Self, Error> {
        let text = url.to_string();
        let connect_err = |source: io::Error| Error::Connect {
            url: text.clone(),
            source,
        };
        // Checked before touching the network: a missing configuration is not worth retrying.
        let tls_client = match &url.scheme {
            Scheme::TlsTcp { .. } | Scheme::Wss { .. } => Some(
                opts.tls
                    .as_ref()
                    .and_then(|t| t.client.clone())
                    .ok_or_else(|| {
                        Error::TlsConfig(TlsConfigError::new(
                            TlsConfigCause::MissingPart,
                            format!(
                                "dialing '{text}' needs Options::tls with a client part (the CA \
                             certificate to verify the listener: TlsConfig::client)"
                            ),
                        ))
                    })?,
            ),
            _ => None,
        };
        let fd: OwnedFd = match &url.scheme {
            Scheme::Ipc(path) => std::os::unix::net::UnixStream::connect(path)
                .map_err(connect_err)?
                .into(),
            Scheme::Abstract(name) => {
                use std::os::linux::net::SocketAddrExt;
                let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
                    .map_err(connect_err)?;
                std::os::unix::net::UnixStream::connect_addr(&addr)
                    .map_err(connect_err)?
                    .into()
            }
            Scheme::Tcp { host, port }
            | Scheme::TlsTcp { host, port }
            | Scheme::Ws { host, port, .. }
            | Scheme::Wss { host, port, .. } => {
                if url.is_wildcard_host() {
                    return Err(Error::InvalidUrl {
                        url: text,
                        reason: "cannot dial without a host".into(),
                    });
                }
                if *port == 0 {
                    return Err(Error::InvalidUrl {
                        url: text,
                        reason: "port 0 can only be used to listen".into(),
                    });
                }
                let s =
                    std::net::TcpStream::connect((host.as_str(), *port)).map_err(connect_err)?;
                s.set_nodelay(true).map_err(connect_err)?;
                s.into()
            }
        };
        let stream = match (tls_client, &url.scheme) {
            (Some(config), Scheme::TlsTcp { host, .. }) => {
                Stream::Tls(Box::new(tls_dial(fd, host, &text, config, true)?))
            }
            (Some(config), Scheme::Wss { host, .. }) => {
                Stream::Tls(Box::new(tls_dial(fd, host, &text, config, false)?))
            }
            _ => Stream::Plain(fd),
        };
        let mut reader = Reader {
            buf: vec![0u8; SCRATCH].into_boxed_slice(),
            start: 0,
            end: 0,
            eof: false,
            ws: None,
        };
        if let Scheme::Ws { host, port, path } | Scheme::Wss { host, port, path } = &url.scheme {
            let host_port = if host.contains(':') {
                format!("[{host}]:{port}")
            } else {
                format!("{host}:{port}")
            };
            ws_dial::upgrade(&stream, url, &host_port, path, &mut reader)?;
            reader.ws = Some(Box::new(WsIn {
                dec: WsDecoder::new(false, None),
                pending: Default::default(),
                closed: false,
            }));
        }
        Ok(NativeConnection {
            stream,
            url: text,
            max_message: opts.max_message,
            reader: Mutex::new(reader),
            writer: Mutex::new(Vec::new()),
            closed: AtomicBool::new(false),
            ws: matches!(url.scheme, Scheme::Ws { .. } | Scheme::Wss { .. }),
        })
    }

    pub(crate) fn send(&self, parts: &[&[u8]]) -> Result<(), Error> {
        if self.ws {
            if self.closed.load(Ordering::Acquire) {
                return Err(Error::Closed);
            }
            return self.send_ws(parts);
        }
        let _w = lock(&self.writer);
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        with_message(parts, |mut iov, total| {
            if let Stream::Tls(t) = &self.stream {
                return t.send_frame(iov).map_err(|e| self.io_err(e));
            }
            let mut written = 0;
            while written < total {
                match self.stream.write_vectored(iov, false) {
                    Ok(n) => {
                        written += n;
                        IoSlice::advance_slices(&mut iov, n);
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(closed_or_io(e)),
                }
            }
            Ok(())
        })
    }

    pub(crate) fn recv(&self, timeout: Option<Duration>) -> Result<Option<Vec<u8>>, Error> {
        let mut r = lock(&self.reader);
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        if self.ws {
            return self.recv_ws(&mut r, timeout);
        }
        if r.start == r.end {
            if r.eof {
                return Err(Error::Closed);
            }
            if let Some(t) = timeout {
                match &self.stream {
                    Stream::Plain(fd) => {
                        let mut fds = [libc::pollfd {
                            fd: fd.as_raw_fd(),
                            events: libc::POLLIN,
                            revents: 0,
                        }];
                        let deadline = Instant::now() + t;
                        loop {
                            let left = deadline.saturating_duration_since(Instant::now());
                            if sys::poll(&mut fds, sys::timeout_ms(Some(left)))? > 0 {
                                break;
                            }
                            if left.is_zero() || Instant::now() >= deadline {
                                return Ok(None);
                            }
                        }
                    }
                    Stream::Tls(tls) => {
                        if !tls.wait_readable(t).map_err(|e| self.io_err(e))? {
                            return Ok(None);
                        }
                    }
                }
            }
            if r.fill(&self.stream).map_err(|e| self.io_err(e))? == 0 {
                return Err(Error::Closed);
            }
        }
        // At least one byte of a frame is here: finish it, blocking, so frames never split.
        self.finish_frame(&mut r).map(Some)
    }

    pub(super) fn finish_frame(&self, r: &mut Reader) -> Result<Vec<u8>, Error> {
        while r.buffered().len() < HEADER {
            if r.fill(&self.stream).map_err(|e| self.io_err(e))? == 0 {
                return Err(self.plaintext_to_tls(r.buffered()).unwrap_or(Error::Closed));
            }
        }
        let mut header = [0u8; HEADER];
        header.copy_from_slice(&r.buffered()[..HEADER]);
        let len64 = u64::from_le_bytes(header);
        let len = match usize::try_from(len64) {
            Ok(len) if len <= self.max_message => len,
            _ => {
                if let Some(e) = self.plaintext_to_tls(r.buffered()) {
                    self.close();
                    return Err(e);
                }
                // The stream cannot be resynchronized: drop the connection.
                self.close();
                return Err(Error::MessageTooLarge {
                    len: usize::try_from(len64).unwrap_or(usize::MAX),
                    max: self.max_message,
                });
            }
        };
        r.start += HEADER;
        if len <= r.buf.len() {
            // Fits in the buffer: read until it is all there, then one copy out.
            if len > r.buf.len() - r.start {
                r.buf.copy_within(r.start..r.end, 0);
                r.end -= r.start;
                r.start = 0;
            }
            while r.buffered().len() < len {
                if r.fill(&self.stream).map_err(|e| self.io_err(e))? == 0 {
                    return Err(Error::Closed);
                }
            }
            let msg = r.buffered()[..len].to_vec();
            r.start += len;
            return Ok(msg);
        }
        // Large: take what is buffered, then read straight into the message.
        let mut body = Vec::new();
        let have = r.buffered().len();
        reserve_for(&mut body, len, have);
        body.extend_from_slice(r.buffered());
        r.start = 0;
        r.end = 0;
        while body.len() < len {
            let remaining = len - body.len();
            reserve_for(&mut body, len, remaining.min(GROW_MIN));
            match self.stream.read_spare(&mut body, remaining) {
                Ok(0) => {
                    r.eof = true;
                    return Err(Error::Closed);
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.io_err(e)),
            }
        }
        Ok(body)
    }

    pub(crate) fn raw_fd(&self) -> RawFd {
        self.stream.fd()
    }

    /// A plaintext dialer on a TLS port reads the listener's TLS alert where it expects a
    /// length prefix. Name that cause instead of reporting a closed connection or a huge
    /// message: a mirai length prefix never starts with a TLS record header, as that would
    /// announce a message of over a terabyte.
    pub(super) fn plaintext_to_tls(&self, bytes: &[u8]) -> Option<Error> {
        let tls_record = bytes.len() >= 3
            && matches!(bytes[0], 0x15 | 0x16)
            && bytes[1] == 0x03
            && bytes[2] <= 0x04;
        (matches!(self.stream, Stream::Plain(_)) && tls_record).then(|| Error::Tls {
            url: self.url.clone(),
            reason: "the listener speaks TLS: dial it as tls+tcp:// with the host's certificate (tlscert)".into(),
            kind: TlsErrorKind::Protocol,
        })
    }

    /// Maps an I/O error of this connection: TLS failures name their cause; a vanished
    /// peer is `Closed`.
    pub(super) fn io_err(&self, e: io::Error) -> Error {
        match as_tls_error(&e) {
            Some(te) => {
                let (reason, kind) = tls::describe(te, Side::Dialer);
                Error::Tls {
                    url: self.url.clone(),
                    reason,
                    kind,
                }
            }
            None => closed_or_io(e),
        }
    }

    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        // Wakes a thread blocked in recv or send; the fd itself closes on drop, so a
        // concurrent call never touches a reused descriptor.
        self.stream.shutdown();
    }
}
