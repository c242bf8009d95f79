//! rustls glue: feeding ciphertext through a TLS session into a frame (listener), and the
//! blocking reads and writes of a TLS dialer.
use super::framing::{Frame, MAX_PARTS};
use super::stream::{write_all_fd, FdWriter};
use super::{lock, SCRATCH};
use crate::sys;
use crate::tls::{self, Side};
use crate::{DisconnectReason, Event, PeerId};
use std::io::{self, IoSlice, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A dialer encrypts and writes a large message in pieces of this size, so its ciphertext is
/// never staged whole.
const SEND_PIECE: usize = 256 * 1024;

/// Writes what rustls has queued until the socket would block. Ok(true) once all is out.
pub(super) fn flush_tls_nonblocking(conn: &mut rustls::Connection, fd: RawFd) -> io::Result<bool> {
    let mut w = FdWriter {
        fd,
        nonblocking: true,
    };
    while conn.wants_write() {
        match conn.write_tls(&mut w) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// Why feeding ciphertext to rustls stopped short.
pub(super) enum IngestError {
    /// The TLS layer failed (bad record, alert, ...). rustls has queued an alert to send.
    Tls(rustls::Error),
    /// The plaintext broke the framing (the sink's reason).
    Frame(String),
}

/// Feeds `data` (ciphertext) to `conn` and passes the plaintext it yields to `sink`, in
/// order. Ok(true) if the peer sent close_notify (anything after it is ignored).
pub(super) fn tls_ingest(
    conn: &mut rustls::Connection,
    mut data: &[u8],
    plain: &mut [u8],
    mut sink: impl FnMut(&[u8]) -> Result<(), String>,
) -> Result<bool, IngestError> {
    loop {
        // Drain first: rustls refuses more ciphertext while its plaintext buffer is full.
        loop {
            match conn.reader().read(plain) {
                Ok(0) => return Ok(true),
                Ok(n) => sink(&plain[..n]).map_err(IngestError::Frame)?,
                // WouldBlock: no plaintext for now. UnexpectedEof cannot happen: EOF is
                // handled on the socket before rustls sees it.
                Err(_) => break,
            }
        }
        if data.is_empty() {
            return Ok(false);
        }
        match conn.read_tls(&mut data) {
            Ok(0) => return Ok(true),
            Ok(_) => {}
            Err(e) => return Err(IngestError::Tls(rustls::Error::General(e.to_string()))),
        }
        conn.process_new_packets().map_err(IngestError::Tls)?;
    }
}

/// Listener: feeds ciphertext from a TLS peer through rustls into its frame, pushing whole
/// messages as events. Ok(true) if the peer sent close_notify; Err with the disconnect reason
/// if the TLS layer or the framing failed. Also says whether rustls now has output to send
/// (a key update reply, an alert).
pub(super) fn tls_feed(
    t: &TlsStream,
    frame: &mut Frame,
    data: &[u8],
    plain: &mut [u8],
    max: usize,
    id: PeerId,
    events: &mut Vec<Event>,
) -> (Result<bool, DisconnectReason>, bool) {
    let mut conn = lock(&t.conn);
    let res = tls_ingest(&mut conn, data, plain, |d| {
        frame.feed(d, max, |m| events.push(Event::Message(id, m)))
    });
    let wants_write = conn.wants_write();
    drop(conn);
    let res = res.map_err(|e| match e {
        IngestError::Frame(reason) => {
            log::warn!("TLS peer {id} ({}) dropped: {reason}", t.peer);
            DisconnectReason::Protocol(reason)
        }
        IngestError::Tls(e) => {
            let (reason, _) = tls::describe(&e, Side::Listener);
            log::warn!("TLS peer {id} ({}) dropped: {reason}", t.peer);
            DisconnectReason::Protocol(format!("TLS: {reason}"))
        }
    });
    (res, wants_write)
}

/// Ciphertext read from a dialer's socket and not yet taken by rustls.
#[derive(Default)]
pub(super) struct CipherBuf {
    pub(super) buf: Vec<u8>,
    pub(super) start: usize,
    pub(super) end: usize,
}

/// One TLS connection: the socket and its rustls state.
pub(super) struct TlsStream {
    pub(super) fd: OwnedFd,
    pub(super) conn: Mutex<rustls::Connection>,
    /// Dialer only: ciphertext waiting to be fed to rustls (taken under the reader's lock).
    pub(super) inbox: Mutex<CipherBuf>,
    /// Dialer only: ciphertext staged for a blocking write. Its lock orders writes to the
    /// socket, since TLS records must go out in sequence. Lock order: `outbox`, then `conn`.
    pub(super) outbox: Mutex<Vec<u8>>,
    /// Dialer only: the socket reached end of file.
    pub(super) eof: AtomicBool,
    /// The peer's address, for log lines.
    pub(super) peer: String,
}

/// An `io::Error` carrying a rustls error, so a caller can tell a TLS failure from I/O.
pub(super) fn tls_io_error(e: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

/// The rustls error inside an `io::Error` made by [`tls_io_error`] (or by rustls itself).
pub(super) fn as_tls_error(e: &io::Error) -> Option<&rustls::Error> {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
}

impl TlsStream {
    pub(super) fn new(fd: OwnedFd, conn: rustls::Connection, peer: String) -> TlsStream {
        TlsStream {
            fd,
            conn: Mutex::new(conn),
            inbox: Mutex::new(CipherBuf::default()),
            outbox: Mutex::new(Vec::new()),
            eof: AtomicBool::new(false),
            peer,
        }
    }

    /// Dialer: plaintext into `buf`, blocking until some is available. Ok(0) after the peer's
    /// close_notify; `UnexpectedEof` if the socket ended without one.
    pub(super) fn read_blocking(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            {
                let mut c = lock(&self.conn);
                match c.reader().read(buf) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    other => return other,
                }
                // A connection that failed earlier yields no more plaintext: report why.
                c.process_new_packets().map_err(tls_io_error)?;
            }
            self.pull(None)?;
        }
    }

    /// Dialer: moves ciphertext into rustls: what is pending, else one read from the socket,
    /// waiting up to `wait` (`None`: blocking). Ok(false) if nothing arrived in time.
    pub(super) fn pull(&self, wait: Option<Duration>) -> io::Result<bool> {
        let mut inbox = lock(&self.inbox);
        if inbox.start == inbox.end {
            if self.eof.load(Ordering::Acquire) {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed",
                ));
            }
            if let Some(t) = wait {
                let mut fds = [libc::pollfd {
                    fd: self.fd.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                }];
                if sys::poll(&mut fds, sys::timeout_ms(Some(t)))? == 0 {
                    return Ok(false);
                }
            }
            if inbox.buf.is_empty() {
                inbox.buf = vec![0u8; SCRATCH];
            }
            let n = loop {
                match sys::read(self.fd.as_raw_fd(), &mut inbox.buf) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            };
            if n == 0 {
                self.eof.store(true, Ordering::Release);
                // Tells rustls the transport ended (its reader then reports a truncation
                // unless close_notify came first).
                let _ = lock(&self.conn).read_tls(&mut io::empty());
                return Ok(true);
            }
            inbox.start = 0;
            inbox.end = n;
        }
        let mut c = lock(&self.conn);
        let CipherBuf { buf, start, end } = &mut *inbox;
        let mut failed = None;
        while *start < *end {
            let mut rd = &buf[*start..*end];
            match c.read_tls(&mut rd) {
                Ok(0) => {
                    // close_notify came: rustls takes nothing more.
                    *start = *end;
                }
                Ok(n) => *start += n,
                Err(e) => {
                    // Its plaintext buffer is full: the rest waits for the next pull. Any
                    // other refusal with nothing to read would never clear.
                    let readable = c
                        .process_new_packets()
                        .map(|s| s.plaintext_bytes_to_read() > 0)
                        .unwrap_or(false);
                    if !readable {
                        failed = Some(e);
                    }
                    break;
                }
            }
            if let Err(e) = c.process_new_packets() {
                failed = Some(tls_io_error(e));
                break;
            }
        }
        let wants_write = c.wants_write();
        drop(c);
        drop(inbox);
        if let Some(e) = failed {
            // Best effort: the alert rustls queued tells the peer why.
            let _ = self.flush_out();
            return Err(e);
        }
        if wants_write {
            self.flush_out()?;
        }
        Ok(true)
    }

    /// Dialer: writes everything rustls has queued, blocking.
    pub(super) fn flush_out(&self) -> io::Result<()> {
        let mut out = lock(&self.outbox);
        loop {
            out.clear();
            {
                let mut c = lock(&self.conn);
                while c.wants_write() {
                    c.write_tls(&mut *out)?;
                }
            }
            if out.is_empty() {
                return Ok(());
            }
            write_all_fd(self.fd.as_raw_fd(), &out)?;
        }
    }

    /// Dialer: encrypts and writes one frame (its length prefix and parts, `iov`), blocking;
    /// the rustls lock is held only while encrypting each piece of at most [`SEND_PIECE`]
    /// bytes, never while the socket blocks.
    pub(super) fn send_frame(&self, mut iov: &mut [IoSlice<'_>]) -> io::Result<()> {
        let mut out = lock(&self.outbox);
        // Drops leading empty parts (and every fully written part below).
        IoSlice::advance_slices(&mut iov, 0);
        while !iov.is_empty() {
            out.clear();
            {
                let mut c = lock(&self.conn);
                let mut budget = SEND_PIECE;
                while budget > 0 && !iov.is_empty() {
                    // At most `budget` bytes of the parts, in one vectored write: rustls puts
                    // them in the same records (the length prefix gets no record of its own).
                    let n = {
                        let mut piece = [IoSlice::new(&[]); MAX_PARTS + 1];
                        let mut k = 0;
                        let mut room = budget;
                        for part in iov.iter().take(piece.len()) {
                            if room == 0 {
                                break;
                            }
                            let take = part.len().min(room);
                            piece[k] = IoSlice::new(&part[..take]);
                            k += 1;
                            room -= take;
                        }
                        c.writer().write_vectored(&piece[..k])?
                    };
                    if n == 0 {
                        return Err(io::Error::new(
                            io::ErrorKind::WriteZero,
                            "the TLS layer took no data",
                        ));
                    }
                    IoSlice::advance_slices(&mut iov, n);
                    budget -= n;
                }
                while c.wants_write() {
                    c.write_tls(&mut *out)?;
                }
            }
            write_all_fd(self.fd.as_raw_fd(), &out)?;
        }
        Ok(())
    }

    /// Dialer: waits up to `t` until plaintext (or the end, or an error) is there to read.
    /// Ok(false) on timeout. Unlike a bare poll of the socket, this does not mistake the
    /// arrival of part of a record, or of a record without data, for a message.
    pub(super) fn wait_readable(&self, t: Duration) -> io::Result<bool> {
        let deadline = Instant::now() + t;
        loop {
            {
                let mut c = lock(&self.conn);
                match c.process_new_packets() {
                    Ok(st)
                        if st.plaintext_bytes_to_read() == 0
                            && !st.peer_has_closed()
                            && !self.eof.load(Ordering::Acquire) => {}
                    _ => return Ok(true),
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if !self.pull(Some(left))? {
                return Ok(false);
            }
        }
    }
}
