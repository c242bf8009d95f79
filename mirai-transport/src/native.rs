//! Native backend: std/libc sockets driven by one epoll set.
//!
//! Wire format: each message is an 8-byte little-endian length followed by that many bytes.
//!
//! Listener: the thread in [`NativeListener::poll`] accepts, reads and flushes; any thread may
//! [`NativeListener::send`], which writes straight to the socket when nothing is queued for that
//! peer (one `sendmsg` of header and body), and only queues what the socket cannot take now.
//! So a message costs one syscall each way and no thread hand-off beyond the receiver's wake-up.
//!
//! Dialer: a blocking socket with separate locks for the read and write halves, so a daemon can
//! block in `recv` on one thread while another sends.
//!
//! TLS (`tls+tcp://`): a [`Stream::Tls`] wraps the rustls state of one connection behind its own
//! lock, held only briefly and never across a blocking call. At the listener the handshake runs
//! inside the poller, non-blocking, as a pending handshake that becomes a peer (and an
//! `Event::Connected`) only once it has completed and the client is accepted; `send` encrypts
//! into rustls' own output queue under the peer's lock and writes what the socket takes, like
//! the plain path. The dialer drives the same state with blocking reads and writes, the reader
//! and the writer each taking the rustls lock only to feed, drain or encrypt.
use crate::sys::{self, Epoll, EpollEvent, EventFd, RawAddr};
use crate::tls::{self, Side, TlsErrorKind, WELCOME};
use crate::{DisconnectReason, Error, Event, Options, PeerId, Scheme, Url};
use std::collections::{HashMap, VecDeque};
use std::io::{self, IoSlice, Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::{Duration, Instant};

/// Length prefix size.
const HEADER: usize = 8;
/// The poller reads small messages through this buffer (one syscall for many small frames).
const SCRATCH: usize = 64 * 1024;
/// A message body with at least this much still to come is read straight into its own buffer.
const DIRECT_MIN: usize = 64 * 1024;
/// Smallest growth step of a message buffer: memory is reserved at most this far (or as far
/// again as has already arrived, whichever is more) beyond the bytes received, so a huge
/// length prefix alone costs at most this, and a buffer never holds more than twice what its
/// peer has actually sent (plus this). Doubling keeps large messages to a few reallocations.
const GROW_MIN: usize = 64 * 1024;
/// Bytes read from one peer per poll round before others get their turn.
const READ_BUDGET: usize = 8 << 20;
/// iovecs gathered per flush.
const MAX_IOV: usize = 64;
/// Parts of one message written by a single vectored write (`send_parts`); a message in more
/// parts is joined first (no caller in this workspace needs more than four).
const MAX_PARTS: usize = 7;

const TOKEN_LISTEN: u64 = u64::MAX;
const TOKEN_WAKE: u64 = u64::MAX - 1;
/// Epoll tokens of pending TLS handshakes start here; peer ids never get this far.
const TOKEN_HANDSHAKE: u64 = 1 << 62;
/// A dialer encrypts and writes a large message in pieces of this size, so its ciphertext is
/// never staged whole.
const SEND_PIECE: usize = 256 * 1024;

const EV_IN: u32 = (libc::EPOLLIN | libc::EPOLLRDHUP) as u32;
const EV_OUT: u32 = libc::EPOLLOUT as u32;

/// Calls `f` with the iovecs of one message, length prefix first, built on the stack, so that
/// its parts are written without being joined; more than [`MAX_PARTS`] parts are joined first.
fn with_message<R>(parts: &[&[u8]], f: impl FnOnce(&mut [IoSlice<'_>], usize) -> R) -> R {
    if parts.len() > MAX_PARTS {
        let joined = parts.concat();
        return with_message(&[&joined], f);
    }
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let header = (len as u64).to_le_bytes();
    let mut iov = [IoSlice::new(&[]); MAX_PARTS + 1];
    iov[0] = IoSlice::new(&header);
    for (slot, part) in iov[1..].iter_mut().zip(parts) {
        *slot = IoSlice::new(part);
    }
    f(&mut iov[..parts.len() + 1], HEADER + len)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere must not wedge the transport: the guarded data stays consistent
    // because every critical section here leaves it valid before anything can panic.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A connected socket: plain, or with a TLS layer.
enum Stream {
    /// Plain TCP or Unix stream socket.
    Plain(OwnedFd),
    /// TLS over a TCP socket.
    Tls(Box<TlsStream>),
}

impl Stream {
    fn fd(&self) -> RawFd {
        match self {
            Stream::Plain(fd) => fd.as_raw_fd(),
            Stream::Tls(t) => t.fd.as_raw_fd(),
        }
    }

    /// Plain: one `read(2)`. TLS (dialer): blocks until plaintext is available.
    fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(fd) => sys::read(fd.as_raw_fd(), buf),
            Stream::Tls(t) => t.read_blocking(buf),
        }
    }

    fn read_spare(&self, v: &mut Vec<u8>, max: usize) -> io::Result<usize> {
        match self {
            Stream::Plain(fd) => sys::read_spare(fd.as_raw_fd(), v, max),
            Stream::Tls(t) => {
                // rustls hands out initialized bytes only: zero a bounded window, read, trim.
                let old = v.len();
                let want = (v.capacity() - old).min(max).min(SCRATCH);
                if want == 0 {
                    return Ok(0);
                }
                v.resize(old + want, 0);
                let res = t.read_blocking(&mut v[old..]);
                v.truncate(old + *res.as_ref().unwrap_or(&0));
                res
            }
        }
    }

    /// Plain sockets only: TLS output goes through rustls (see [`TlsStream`]).
    fn write_vectored(&self, bufs: &[IoSlice<'_>], nonblocking: bool) -> io::Result<usize> {
        match self {
            Stream::Plain(fd) => sys::send_vectored(fd.as_raw_fd(), bufs, nonblocking),
            Stream::Tls(_) => Err(io::Error::other("plain write on a TLS stream")),
        }
    }

    fn shutdown(&self) {
        sys::shutdown(self.fd());
    }
}

/// `io::Write` over a socket with `sendmsg`, for rustls' `write_tls`.
struct FdWriter {
    fd: RawFd,
    nonblocking: bool,
}

impl Write for FdWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        sys::send_vectored(self.fd, &[IoSlice::new(buf)], self.nonblocking)
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        sys::send_vectored(self.fd, bufs, self.nonblocking)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Writes all of `data` to a blocking socket.
fn write_all_fd(fd: RawFd, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        match sys::send_vectored(fd, &[IoSlice::new(data)], false) {
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Writes what rustls has queued until the socket would block. Ok(true) once all is out.
fn flush_tls_nonblocking(conn: &mut rustls::Connection, fd: RawFd) -> io::Result<bool> {
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
enum IngestError {
    /// The TLS layer failed (bad record, alert, ...). rustls has queued an alert to send.
    Tls(rustls::Error),
    /// The plaintext broke the framing (the sink's reason).
    Frame(String),
}

/// Feeds `data` (ciphertext) to `conn` and passes the plaintext it yields to `sink`, in
/// order. Ok(true) if the peer sent close_notify (anything after it is ignored).
fn tls_ingest(
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
fn tls_feed(
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
struct CipherBuf {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

/// One TLS connection: the socket and its rustls state.
struct TlsStream {
    fd: OwnedFd,
    conn: Mutex<rustls::Connection>,
    /// Dialer only: ciphertext waiting to be fed to rustls (taken under the reader's lock).
    inbox: Mutex<CipherBuf>,
    /// Dialer only: ciphertext staged for a blocking write. Its lock orders writes to the
    /// socket, since TLS records must go out in sequence. Lock order: `outbox`, then `conn`.
    outbox: Mutex<Vec<u8>>,
    /// Dialer only: the socket reached end of file.
    eof: AtomicBool,
    /// The peer's address, for log lines.
    peer: String,
}

/// An `io::Error` carrying a rustls error, so a caller can tell a TLS failure from I/O.
fn tls_io_error(e: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

/// The rustls error inside an `io::Error` made by [`tls_io_error`] (or by rustls itself).
fn as_tls_error(e: &io::Error) -> Option<&rustls::Error> {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
}

impl TlsStream {
    fn new(fd: OwnedFd, conn: rustls::Connection, peer: String) -> TlsStream {
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
    fn read_blocking(&self, buf: &mut [u8]) -> io::Result<usize> {
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
    fn pull(&self, wait: Option<Duration>) -> io::Result<bool> {
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
    fn flush_out(&self) -> io::Result<()> {
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
    fn send_frame(&self, mut iov: &mut [IoSlice<'_>]) -> io::Result<()> {
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
    fn wait_readable(&self, t: Duration) -> io::Result<bool> {
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

/// Grows `body` so that `incoming` more bytes fit, never reserving beyond `target` in total
/// and never more than `max(incoming, GROW_MIN, len)` ahead of what has arrived.
fn reserve_for(body: &mut Vec<u8>, target: usize, incoming: usize) {
    let len = body.len();
    if body.capacity() - len >= incoming {
        return;
    }
    let ahead = incoming.max(GROW_MIN).max(len);
    let new_cap = (len + ahead).min(target).max(len + incoming);
    body.reserve_exact(new_cap - len);
}

fn too_large(len: u64, max: usize) -> String {
    format!("message length prefix of {len} bytes exceeds the maximum of {max} bytes")
}

fn first_too_large(len: u64, max: usize) -> String {
    format!(
        "first message length prefix of {len} bytes exceeds the maximum of {max} bytes for a \
         connection's first message"
    )
}

/// Reassembly state of the frame currently arriving from one peer.
#[derive(Default)]
struct Frame {
    header: [u8; HEADER],
    header_have: usize,
    /// `Some((bytes so far, total length))` once the header is complete.
    body: Option<(Vec<u8>, usize)>,
    /// The bound on the first message ([`Options::max_first_message`]), until its length
    /// prefix has been read.
    first_max: Option<usize>,
}

impl Frame {
    /// The state of a new connection whose first message is bounded by `first_max` (as well
    /// as by the limit given to [`Frame::feed`]).
    fn new(first_max: Option<usize>) -> Frame {
        Frame {
            first_max,
            ..Frame::default()
        }
    }

    fn mid_frame(&self) -> bool {
        self.header_have > 0 || self.body.is_some()
    }

    fn describe_truncation(&self) -> String {
        match &self.body {
            Some((b, total)) => format!(
                "connection closed after {} of {} bytes of a message",
                b.len(),
                total
            ),
            None => format!(
                "connection closed after {} of {} bytes of a length prefix",
                self.header_have, HEADER
            ),
        }
    }

    /// Bytes still missing from the current body, if a body is being read.
    fn body_remaining(&self) -> Option<usize> {
        self.body.as_ref().map(|(b, total)| total - b.len())
    }

    /// Consumes `data`, calling `emit` for each completed message. Errs (with the reason) when
    /// a length prefix exceeds `max`, or the first one exceeds the first message's bound.
    fn feed(
        &mut self,
        mut data: &[u8],
        max: usize,
        mut emit: impl FnMut(Vec<u8>),
    ) -> Result<(), String> {
        while !data.is_empty() {
            match &mut self.body {
                None => {
                    let take = (HEADER - self.header_have).min(data.len());
                    self.header[self.header_have..self.header_have + take]
                        .copy_from_slice(&data[..take]);
                    self.header_have += take;
                    data = &data[take..];
                    if self.header_have < HEADER {
                        break;
                    }
                    self.header_have = 0;
                    let len64 = u64::from_le_bytes(self.header);
                    let limit = match self.first_max.take() {
                        Some(first) if first < max => Some(first),
                        _ => None,
                    };
                    let len = match usize::try_from(len64) {
                        Ok(len) if len <= limit.unwrap_or(max) => len,
                        _ => {
                            return Err(match limit {
                                Some(first) => first_too_large(len64, first),
                                None => too_large(len64, max),
                            })
                        }
                    };
                    if len <= data.len() {
                        // Whole message already here: one copy, exact size.
                        emit(data[..len].to_vec());
                        data = &data[len..];
                    } else {
                        let mut body = Vec::new();
                        reserve_for(&mut body, len, data.len());
                        body.extend_from_slice(data);
                        data = &[];
                        self.body = Some((body, len));
                    }
                }
                Some((body, total)) => {
                    let take = (*total - body.len()).min(data.len());
                    reserve_for(body, *total, take);
                    body.extend_from_slice(&data[..take]);
                    data = &data[take..];
                    if body.len() == *total {
                        let (done, _) = self.body.take().unwrap_or_default();
                        emit(done);
                    }
                }
            }
        }
        Ok(())
    }
}

/// Output waiting for a peer's socket to drain.
#[derive(Default)]
struct OutQueue {
    chunks: VecDeque<Vec<u8>>,
    /// Bytes of `chunks[0]` already written.
    offset: usize,
    /// `disconnect` was called: refuse further sends.
    closing: bool,
    /// A write failed: the poller will see the error and report the disconnect.
    broken: bool,
    /// TLS: rustls holds output the socket has not taken, and EPOLLOUT is being watched.
    /// (Plain sockets watch EPOLLOUT exactly while `chunks` is non-empty.)
    waiting_out: bool,
}

impl OutQueue {
    /// Queues the bytes of `rest` (what the socket did not take of a message), joined.
    fn push_rest(&mut self, rest: &[IoSlice<'_>]) {
        let mut chunk = Vec::with_capacity(rest.iter().map(|s| s.len()).sum());
        for s in rest {
            chunk.extend_from_slice(s);
        }
        self.chunks.push_back(chunk);
    }

    /// Writes as much as the socket takes now. Ok(true) once empty.
    fn flush(&mut self, stream: &Stream) -> io::Result<bool> {
        while !self.chunks.is_empty() {
            let mut iov: Vec<IoSlice<'_>> = Vec::with_capacity(self.chunks.len().min(MAX_IOV));
            for (i, c) in self.chunks.iter().take(MAX_IOV).enumerate() {
                iov.push(IoSlice::new(if i == 0 { &c[self.offset..] } else { c }));
            }
            let mut n = match stream.write_vectored(&iov, true) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            drop(iov);
            while n > 0 {
                let front_left = self.chunks[0].len() - self.offset;
                if n >= front_left {
                    n -= front_left;
                    self.chunks.pop_front();
                    self.offset = 0;
                } else {
                    self.offset += n;
                    n = 0;
                }
            }
        }
        Ok(true)
    }
}

struct Peer {
    id: PeerId,
    stream: Stream,
    out: Mutex<OutQueue>,
}

/// A TLS connection accepted but not yet authenticated: not a peer, no id, no events.
struct Handshake {
    fd: OwnedFd,
    /// Always the server side.
    conn: rustls::Connection,
    /// The peer's address, for log lines.
    addr: String,
    deadline: Instant,
    /// EPOLLOUT is being watched (the socket did not take a whole handshake flight).
    waiting_out: bool,
}

/// State only the polling thread touches.
struct Poller {
    peers: HashMap<PeerId, (Arc<Peer>, Frame)>,
    /// Pending TLS handshakes by epoll token (`TOKEN_HANDSHAKE + n`).
    handshakes: HashMap<u64, Handshake>,
    next_handshake: u64,
    /// The listening socket is unwatched because too many handshakes are pending.
    accept_paused: bool,
    scratch: Box<[u8]>,
    /// Decrypted bytes on their way from rustls to a frame.
    plain: Box<[u8]>,
    raw_events: Vec<libc::epoll_event>,
    ready: Vec<EpollEvent>,
}

/// A listener's TLS settings.
struct ListenTls {
    config: Arc<rustls::ServerConfig>,
    handshake_timeout: Duration,
    max_pending: usize,
}

/// A socket file this listener created, removed on drop if it is still ours.
struct SocketFile {
    path: PathBuf,
    dev: u64,
    ino: u64,
}

pub(crate) struct NativeListener {
    url: String,
    epoll: Epoll,
    wake: EventFd,
    woken: AtomicBool,
    listen_fd: OwnedFd,
    tcp: bool,
    socket_file: Option<SocketFile>,
    max_message: usize,
    /// [`Options::max_first_message`].
    max_first_message: Option<usize>,
    next_id: AtomicU64,
    peers: RwLock<HashMap<PeerId, Arc<Peer>>>,
    local_closes: Mutex<Vec<PeerId>>,
    poller: Mutex<Poller>,
    tls: Option<ListenTls>,
}

/// Resolves a TCP host for listening or dialing. An empty or `*` host means every IPv4
/// interface.
fn resolve(url: &Url, host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
    if url.is_wildcard_host() {
        return Ok(vec![SocketAddr::from(([0, 0, 0, 0], port))]);
    }
    let addrs: Vec<SocketAddr> = (host, port).to_socket_addrs()?.collect();
    if addrs.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("host '{host}' has no address"),
        ));
    }
    Ok(addrs)
}

/// Removes `path` if it is a Unix socket nobody listens on any more (left by a crashed host).
/// A live listener or a file that is not a socket is an address-in-use error: never steal or
/// delete what is not ours.
fn clear_stale_socket(path: &std::path::Path) -> io::Result<()> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if !meta.file_type().is_socket() {
        return Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            "path exists and is not a socket",
        ));
    }
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            "another process is listening on this socket",
        )),
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => std::fs::remove_file(path),
        Err(e) => Err(e),
    }
}

impl NativeListener {
    pub(crate) fn bind(url: &Url, opts: &Options) -> Result<Self, Error> {
        let given = url.to_string();
        let bind_err = |source: io::Error| Error::Bind {
            url: given.clone(),
            source,
        };
        let tls = match &url.scheme {
            Scheme::TlsTcp { .. } => {
                let t = opts
                    .tls
                    .as_ref()
                    .filter(|t| t.server.is_some())
                    .ok_or_else(|| {
                        Error::TlsConfig(format!(
                            "listening at '{given}' needs Options::tls with a server part \
                         (a certificate and key: TlsConfig::server or tls::zero_config)"
                        ))
                    })?;
                Some(ListenTls {
                    config: t
                        .server
                        .clone()
                        .ok_or_else(|| Error::TlsConfig("no server part".into()))?,
                    handshake_timeout: t.handshake_timeout,
                    max_pending: t.max_pending_handshakes,
                })
            }
            _ => None,
        };
        let mut socket_file = None;
        let mut bound_url = url.clone();
        let (listen_fd, tcp) = match &url.scheme {
            Scheme::Ipc(path) => {
                clear_stale_socket(path).map_err(bind_err)?;
                let addr =
                    RawAddr::unix(path.as_os_str().as_encoded_bytes(), false).map_err(bind_err)?;
                // Owner-only before listen(): nobody else can connect even briefly.
                let fd = sys::listen_socket(&addr, || {
                    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                })
                .map_err(|e| {
                    let _ = std::fs::remove_file(path);
                    bind_err(e)
                })?;
                let meta = std::fs::symlink_metadata(path).map_err(bind_err)?;
                socket_file = Some(SocketFile {
                    path: path.clone(),
                    dev: meta.dev(),
                    ino: meta.ino(),
                });
                (fd, false)
            }
            Scheme::Abstract(name) => {
                let addr = RawAddr::unix(name.as_bytes(), true).map_err(bind_err)?;
                (
                    sys::listen_socket(&addr, || Ok(())).map_err(bind_err)?,
                    false,
                )
            }
            Scheme::Tcp { host, port } | Scheme::TlsTcp { host, port } => {
                let addrs = resolve(url, host, *port).map_err(bind_err)?;
                let mut last = None;
                let mut bound = None;
                for a in addrs {
                    match sys::listen_socket(&RawAddr::inet(&a), || Ok(())) {
                        Ok(fd) => {
                            bound = Some(fd);
                            break;
                        }
                        Err(e) => last = Some(e),
                    }
                }
                let fd = match bound {
                    Some(fd) => fd,
                    None => {
                        return Err(bind_err(
                            last.unwrap_or_else(|| io::Error::other("no address to bind")),
                        ))
                    }
                };
                if *port == 0 {
                    bound_url = url.with_port(sys::local_port(fd.as_raw_fd()).map_err(bind_err)?);
                }
                (fd, true)
            }
        };
        let epoll = Epoll::new()?;
        let wake = EventFd::new()?;
        epoll.add(listen_fd.as_raw_fd(), libc::EPOLLIN as u32, TOKEN_LISTEN)?;
        epoll.add(wake.raw(), libc::EPOLLIN as u32, TOKEN_WAKE)?;
        Ok(NativeListener {
            url: bound_url.to_string(),
            epoll,
            wake,
            woken: AtomicBool::new(false),
            listen_fd,
            tcp,
            socket_file,
            max_message: opts.max_message,
            max_first_message: opts.max_first_message,
            next_id: AtomicU64::new(1),
            peers: RwLock::new(HashMap::new()),
            local_closes: Mutex::new(Vec::new()),
            poller: Mutex::new(Poller {
                peers: HashMap::new(),
                handshakes: HashMap::new(),
                next_handshake: 0,
                accept_paused: false,
                scratch: vec![0u8; SCRATCH].into_boxed_slice(),
                plain: if tls.is_some() {
                    vec![0u8; SCRATCH].into_boxed_slice()
                } else {
                    Box::default()
                },
                raw_events: Vec::with_capacity(256),
                ready: Vec::with_capacity(256),
            }),
            tls,
        })
    }

    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    fn peer(&self, id: PeerId) -> Option<Arc<Peer>> {
        self.peers
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&id)
            .cloned()
    }

    pub(crate) fn poll(
        &self,
        events: &mut Vec<Event>,
        timeout: Option<Duration>,
    ) -> Result<(), Error> {
        let mut guard = lock(&self.poller);
        let p = &mut *guard;
        let deadline = timeout.map(|t| Instant::now() + t);
        let before = events.len();
        loop {
            self.process_local_closes(p, events);
            self.expire_handshakes(p);
            let wait = if events.len() > before {
                0
            } else {
                // Wake for the first handshake deadline too.
                let until = match (deadline, p.handshakes.values().map(|h| h.deadline).min()) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                sys::timeout_ms(until.map(|d| d.saturating_duration_since(Instant::now())))
            };
            self.epoll.wait(&mut p.raw_events, &mut p.ready, wait)?;
            let ready = std::mem::take(&mut p.ready);
            for ev in &ready {
                match ev.token {
                    TOKEN_WAKE => self.wake.drain(),
                    TOKEN_LISTEN => self.accept_all(p, events)?,
                    token if token >= TOKEN_HANDSHAKE => self.drive_handshake(p, token, events),
                    id => {
                        if ev.events & EV_OUT != 0 {
                            self.flush_peer(p, id);
                        }
                        if ev.events & !EV_OUT != 0 {
                            self.read_peer(p, id, ev.events, events);
                        }
                    }
                }
            }
            p.ready = ready;
            self.process_local_closes(p, events);
            if self.woken.swap(false, Ordering::AcqRel) || events.len() > before {
                return Ok(());
            }
            if let Some(d) = deadline {
                if Instant::now() >= d {
                    return Ok(());
                }
            }
        }
    }

    fn accept_all(&self, p: &mut Poller, events: &mut Vec<Event>) -> Result<(), Error> {
        loop {
            if let Some(tls) = &self.tls {
                if p.handshakes.len() >= tls.max_pending {
                    // Leave further connections in the backlog until a handshake finishes
                    // (level-triggered epoll would otherwise report the socket again at once).
                    if let Err(e) = self
                        .epoll
                        .modify(self.listen_fd.as_raw_fd(), 0, TOKEN_LISTEN)
                    {
                        log::warn!("cannot pause accepting on {}: {e}", self.url);
                    } else {
                        p.accept_paused = true;
                        log::debug!(
                            "{} TLS handshakes pending on {}: accepting paused",
                            p.handshakes.len(),
                            self.url
                        );
                    }
                    return Ok(());
                }
            }
            let fd = match sys::accept(self.listen_fd.as_raw_fd()) {
                Ok(fd) => fd,
                Err(e) => match e.kind() {
                    io::ErrorKind::WouldBlock => return Ok(()),
                    io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted => continue,
                    _ => match e.raw_os_error() {
                        // Out of descriptors or memory: the pending connection waits in the
                        // backlog and is retried on the next round.
                        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM) => {
                            log::warn!("cannot accept a connection on {}: {e}", self.url);
                            return Ok(());
                        }
                        Some(libc::EPROTO | libc::EPERM) => continue,
                        _ => return Err(Error::Io(e)),
                    },
                },
            };
            if self.tcp {
                if let Err(e) = sys::set_nodelay(fd.as_raw_fd()) {
                    log::debug!("TCP_NODELAY on an accepted socket failed: {e}");
                }
            } else if let Err(why) = same_user(&fd) {
                // Abstract sockets have no file permissions: the peer's credentials are the
                // only way to keep other local users out of an IPC listener.
                log::warn!("refused connection on {}: {why}", self.url);
                continue;
            }
            if let Some(tls) = &self.tls {
                self.start_handshake(p, tls, fd);
                continue;
            }
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            if let Err(e) = self.epoll.add(fd.as_raw_fd(), EV_IN, id) {
                log::warn!("cannot watch an accepted connection on {}: {e}", self.url);
                continue;
            }
            let peer = Arc::new(Peer {
                id,
                stream: Stream::Plain(fd),
                out: Mutex::new(OutQueue::default()),
            });
            self.peers
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(id, Arc::clone(&peer));
            p.peers
                .insert(id, (peer, Frame::new(self.max_first_message)));
            events.push(Event::Connected(id));
        }
    }

    /// Registers an accepted TLS connection as a pending handshake.
    fn start_handshake(&self, p: &mut Poller, tls: &ListenTls, fd: OwnedFd) {
        // std's TcpStream reports the peer address; the descriptor goes straight back.
        let tcp = std::net::TcpStream::from(fd);
        let addr = tcp
            .peer_addr()
            .map_or_else(|_| "an unknown address".to_string(), |a| a.to_string());
        let fd = OwnedFd::from(tcp);
        let conn = match rustls::ServerConnection::new(Arc::clone(&tls.config)) {
            Ok(c) => c,
            Err(e) => {
                log::warn!("cannot start a TLS session for {addr} on {}: {e}", self.url);
                return;
            }
        };
        let token = TOKEN_HANDSHAKE + p.next_handshake;
        p.next_handshake += 1;
        if let Err(e) = self.epoll.add(fd.as_raw_fd(), EV_IN, token) {
            log::warn!("cannot watch a connection from {addr} on {}: {e}", self.url);
            return;
        }
        p.handshakes.insert(
            token,
            Handshake {
                fd,
                conn: rustls::Connection::Server(conn),
                addr,
                deadline: Instant::now() + tls.handshake_timeout,
                waiting_out: false,
            },
        );
    }

    /// Watches the listening socket again once handshakes are below the bound.
    fn maybe_resume_accept(&self, p: &mut Poller) {
        let Some(tls) = &self.tls else { return };
        if p.accept_paused && p.handshakes.len() < tls.max_pending {
            match self.epoll.modify(
                self.listen_fd.as_raw_fd(),
                libc::EPOLLIN as u32,
                TOKEN_LISTEN,
            ) {
                Ok(()) => p.accept_paused = false,
                Err(e) => log::warn!("cannot resume accepting on {}: {e}", self.url),
            }
        }
    }

    /// Drops handshakes that have run past their deadline.
    fn expire_handshakes(&self, p: &mut Poller) {
        if p.handshakes.is_empty() {
            return;
        }
        let now = Instant::now();
        let late: Vec<u64> = p
            .handshakes
            .iter()
            .filter(|(_, h)| h.deadline <= now)
            .map(|(t, _)| *t)
            .collect();
        for token in late {
            let timeout = self
                .tls
                .as_ref()
                .map_or(Duration::ZERO, |t| t.handshake_timeout);
            self.refuse(
                p,
                token,
                format!("no TLS handshake completed within {timeout:?}"),
            );
        }
    }

    /// Ends a pending handshake: tells the peer why if rustls has an alert for it, logs the
    /// reason, and closes the connection.
    fn refuse(&self, p: &mut Poller, token: u64, reason: String) {
        let Some(mut hs) = p.handshakes.remove(&token) else {
            return;
        };
        let fd = hs.fd.as_raw_fd();
        let _ = self.epoll.delete(fd);
        let _ = flush_tls_nonblocking(&mut hs.conn, fd);
        // Closing with unread input would send a reset that could overtake the alert: read
        // what is there first (a bounded amount: a flooding peer just gets the reset).
        let mut sink = [0u8; 4096];
        for _ in 0..16 {
            match sys::read(fd, &mut sink) {
                Ok(n) if n > 0 => {}
                _ => break,
            }
        }
        log::warn!(
            "refused TLS connection from {} on {}: {reason}",
            hs.addr,
            self.url
        );
        drop(hs.fd);
        self.maybe_resume_accept(p);
    }

    /// Advances a pending handshake with what its socket has; promotes it to a peer once the
    /// handshake is complete, or refuses it.
    fn drive_handshake(&self, p: &mut Poller, token: u64, events: &mut Vec<Event>) {
        let Poller {
            handshakes,
            scratch,
            ..
        } = &mut *p;
        let Some(hs) = handshakes.get_mut(&token) else {
            return;
        };
        let fd = hs.fd.as_raw_fd();
        // Bytes read past the end of the handshake belong to the peer's first messages.
        let mut rest: Vec<u8> = Vec::new();
        // A handshake is a few KiB: a peer that keeps sending may not hold the poller.
        let mut budget = READ_BUDGET;
        let failure: Option<String> = 'io: loop {
            if !hs.conn.is_handshaking() || budget == 0 {
                break None;
            }
            let n = match sys::read(fd, scratch) {
                Ok(0) => {
                    break Some("the peer closed the connection during the TLS handshake".into())
                }
                Ok(n) => n,
                Err(e) => match e.kind() {
                    io::ErrorKind::WouldBlock => break None,
                    io::ErrorKind::Interrupted => continue,
                    _ => break Some(format!("I/O error during the TLS handshake: {e}")),
                },
            };
            budget = budget.saturating_sub(n);
            let mut data = &scratch[..n];
            while !data.is_empty() {
                if !hs.conn.is_handshaking() {
                    rest.extend_from_slice(data);
                    break;
                }
                match hs.conn.read_tls(&mut data) {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e) => break 'io Some(format!("TLS error: {e}")),
                }
                if let Err(e) = hs.conn.process_new_packets() {
                    break 'io Some(tls::describe(&e, Side::Listener).0);
                }
            }
        };
        if let Some(reason) = failure {
            self.refuse(p, token, reason);
            return;
        }
        let all_out = match flush_tls_nonblocking(&mut hs.conn, fd) {
            Ok(all_out) => all_out,
            Err(e) => {
                self.refuse(p, token, format!("I/O error during the TLS handshake: {e}"));
                return;
            }
        };
        if hs.conn.is_handshaking() {
            if all_out == hs.waiting_out {
                let ev = if all_out { EV_IN } else { EV_IN | EV_OUT };
                match self.epoll.modify(fd, ev, token) {
                    Ok(()) => hs.waiting_out = !all_out,
                    Err(e) => {
                        self.refuse(p, token, format!("cannot watch the connection: {e}"));
                    }
                }
            }
            return;
        }
        if let Some(hs) = p.handshakes.remove(&token) {
            self.promote(p, hs, &rest, events);
        }
    }

    /// Turns a completed handshake into a peer: greets it, reports it connected, and delivers
    /// whatever it sent along with the end of its handshake.
    fn promote(&self, p: &mut Poller, hs: Handshake, rest: &[u8], events: &mut Vec<Event>) {
        self.maybe_resume_accept(p);
        let Handshake {
            fd, mut conn, addr, ..
        } = hs;
        // Messages are queued in rustls whatever their size: `send` must never block or refuse.
        conn.set_buffer_limit(None);
        // The greeting goes first, so it precedes anything sent after `Connected`.
        if let Err(e) = conn.writer().write_all(WELCOME) {
            log::warn!("TLS session with {addr} on {} failed: {e}", self.url);
            return;
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = self.epoll.modify(fd.as_raw_fd(), EV_IN, id) {
            log::warn!(
                "cannot watch the connection from {addr} on {}: {e}",
                self.url
            );
            return;
        }
        log::debug!("TLS peer {id} from {addr} accepted on {}", self.url);
        let peer = Arc::new(Peer {
            id,
            stream: Stream::Tls(Box::new(TlsStream::new(fd, conn, addr))),
            out: Mutex::new(OutQueue::default()),
        });
        self.peers
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, Arc::clone(&peer));
        p.peers
            .insert(id, (peer, Frame::new(self.max_first_message)));
        events.push(Event::Connected(id));
        let Poller { peers, plain, .. } = &mut *p;
        let mut outcome = None;
        if let Some((peer, frame)) = peers.get_mut(&id) {
            if let Stream::Tls(t) = &peer.stream {
                outcome = tls_feed(t, frame, rest, plain, self.max_message, id, events)
                    .0
                    .err();
            }
        }
        self.flush_peer(p, id);
        if let Some(reason) = outcome {
            self.remove_peer(p, id, reason, events);
        }
    }

    /// Reads what TLS peer `id` has sent, emitting whole messages, and its disconnect on EOF
    /// or error.
    fn read_tls_peer(&self, p: &mut Poller, id: PeerId, ready: u32, events: &mut Vec<Event>) {
        let Poller {
            peers,
            scratch,
            plain,
            ..
        } = &mut *p;
        let Some((peer, frame)) = peers.get_mut(&id) else {
            return;
        };
        let Stream::Tls(t) = &peer.stream else {
            return;
        };
        let hangup = ready & (libc::EPOLLHUP | libc::EPOLLRDHUP | libc::EPOLLERR) as u32 != 0;
        let ended = |frame: &Frame| {
            if frame.mid_frame() {
                DisconnectReason::Protocol(frame.describe_truncation())
            } else {
                DisconnectReason::Closed
            }
        };
        let mut budget = READ_BUDGET;
        let mut flush = false;
        let outcome: Option<DisconnectReason> = loop {
            if budget == 0 {
                break None;
            }
            match sys::read(t.fd.as_raw_fd(), scratch) {
                Ok(0) => break Some(ended(frame)),
                Ok(n) => {
                    budget = budget.saturating_sub(n);
                    let (res, wants_write) =
                        tls_feed(t, frame, &scratch[..n], plain, self.max_message, id, events);
                    // Processing may have queued TLS output (a key update reply, an alert).
                    flush |= wants_write;
                    match res {
                        Ok(true) => break Some(ended(frame)),
                        Ok(false) => {}
                        Err(reason) => break Some(reason),
                    }
                    if n < scratch.len() && !hangup {
                        break None;
                    }
                }
                Err(e) => match e.kind() {
                    io::ErrorKind::WouldBlock => break None,
                    io::ErrorKind::Interrupted => continue,
                    _ => break Some(io_reason(e)),
                },
            }
        };
        if flush {
            self.flush_peer(p, id);
        }
        if let Some(reason) = outcome {
            self.remove_peer(p, id, reason, events);
        }
    }

    fn flush_peer(&self, p: &mut Poller, id: PeerId) {
        let Some((peer, _)) = p.peers.get(&id) else {
            return;
        };
        let mut out = lock(&peer.out);
        if let Stream::Tls(t) = &peer.stream {
            let fd = t.fd.as_raw_fd();
            let res = flush_tls_nonblocking(&mut lock(&t.conn), fd);
            match res {
                Ok(all_out) => {
                    // Watch EPOLLOUT exactly while rustls holds output the socket refused.
                    if all_out == out.waiting_out {
                        let ev = if all_out { EV_IN } else { EV_IN | EV_OUT };
                        match self.epoll.modify(fd, ev, id) {
                            Ok(()) => out.waiting_out = !all_out,
                            Err(e) => log::debug!("epoll modify failed for peer {id}: {e}"),
                        }
                    }
                }
                Err(e) => {
                    log::debug!("write to peer {id} failed: {e}");
                    out.broken = true;
                    if out.waiting_out {
                        let _ = self.epoll.modify(fd, EV_IN, id);
                        out.waiting_out = false;
                    }
                    peer.stream.shutdown();
                }
            }
            return;
        }
        match out.flush(&peer.stream) {
            Ok(true) => {
                if let Err(e) = self.epoll.modify(peer.stream.fd(), EV_IN, id) {
                    log::debug!("epoll modify failed for peer {id}: {e}");
                }
            }
            Ok(false) => {}
            Err(e) => {
                // Shut the socket so the read side reports the disconnect, whatever the
                // error (a reset peer already shows as EPOLLERR/EPOLLHUP).
                log::debug!("write to peer {id} failed: {e}");
                out.broken = true;
                out.chunks.clear();
                out.offset = 0;
                let _ = self.epoll.modify(peer.stream.fd(), EV_IN, id);
                peer.stream.shutdown();
            }
        }
    }

    /// Reads what `id` has sent, emitting whole messages, and its disconnect on EOF or error.
    fn read_peer(&self, p: &mut Poller, id: PeerId, ready: u32, events: &mut Vec<Event>) {
        if p.peers
            .get(&id)
            .is_some_and(|(peer, _)| matches!(peer.stream, Stream::Tls(_)))
        {
            self.read_tls_peer(p, id, ready, events);
            return;
        }
        let Poller { peers, scratch, .. } = p;
        let Some((peer, frame)) = peers.get_mut(&id) else {
            return;
        };
        let hangup = ready & (libc::EPOLLHUP | libc::EPOLLRDHUP | libc::EPOLLERR) as u32 != 0;
        let max = self.max_message;
        let mut budget = READ_BUDGET;
        let outcome: Option<DisconnectReason> = loop {
            if budget == 0 {
                break None;
            }
            if let Some(remaining) = frame.body_remaining().filter(|r| *r >= DIRECT_MIN) {
                // Large body: read straight into the message's own buffer.
                let Some((body, total)) = frame.body.as_mut() else {
                    break None;
                };
                reserve_for(body, *total, remaining.min(GROW_MIN));
                match peer.stream.read_spare(body, remaining) {
                    Ok(0) => break Some(DisconnectReason::Protocol(frame.describe_truncation())),
                    Ok(n) => {
                        budget = budget.saturating_sub(n);
                        if body.len() == *total {
                            let (done, _) = frame.body.take().unwrap_or_default();
                            events.push(Event::Message(id, done));
                        }
                        continue;
                    }
                    Err(e) => match e.kind() {
                        io::ErrorKind::WouldBlock => break None,
                        io::ErrorKind::Interrupted => continue,
                        _ => break Some(io_reason(e)),
                    },
                }
            }
            match peer.stream.read(scratch) {
                Ok(0) => {
                    break Some(if frame.mid_frame() {
                        DisconnectReason::Protocol(frame.describe_truncation())
                    } else {
                        DisconnectReason::Closed
                    })
                }
                Ok(n) => {
                    budget = budget.saturating_sub(n);
                    if let Err(reason) =
                        frame.feed(&scratch[..n], max, |m| events.push(Event::Message(id, m)))
                    {
                        // Worth an operator's attention (a stranger probing the port, or a
                        // peer of another protocol): say who, and why, never what it sent.
                        log::warn!(
                            "peer {id} ({}) on {} dropped: {reason}",
                            self.describe_peer(&peer.stream),
                            self.url
                        );
                        break Some(DisconnectReason::Protocol(reason));
                    }
                    // A short read means the socket is drained; level-triggered epoll tells us
                    // if more arrives, so skip the read that would only say EAGAIN.
                    if n < scratch.len() && !hangup {
                        break None;
                    }
                }
                Err(e) => match e.kind() {
                    io::ErrorKind::WouldBlock => break None,
                    io::ErrorKind::Interrupted => continue,
                    _ => break Some(io_reason(e)),
                },
            }
        };
        if let Some(reason) = outcome {
            self.remove_peer(p, id, reason, events);
        }
    }

    /// Who is at the other end of a plain connection, for a log line: its address over TCP,
    /// its process id over a Unix socket. Only on the paths that log, so accepting costs no
    /// extra system call.
    fn describe_peer(&self, stream: &Stream) -> String {
        let fd = match stream {
            Stream::Tls(t) => return t.peer.clone(),
            Stream::Plain(fd) => fd,
        };
        if self.tcp {
            // A duplicate descriptor lends std's peer_addr without unsafe code.
            fd.try_clone()
                .and_then(|dup| std::net::TcpStream::from(dup).peer_addr())
                .map_or_else(|_| "an unknown address".to_string(), |a| a.to_string())
        } else {
            sys::peer_pid(fd.as_raw_fd()).map_or_else(
                |_| "a local process".to_string(),
                |pid| format!("local process {pid}"),
            )
        }
    }

    /// Forgets a peer: unregisters it, closes its socket, and reports it gone.
    fn remove_peer(
        &self,
        p: &mut Poller,
        id: PeerId,
        reason: DisconnectReason,
        events: &mut Vec<Event>,
    ) {
        let Some((peer, _)) = p.peers.remove(&id) else {
            return;
        };
        self.peers
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id);
        {
            // Under the queue lock, so a concurrent send either finished before (and its bytes
            // are flushed below or dropped) or sees `closing` and touches neither socket nor
            // epoll registration.
            let mut out = lock(&peer.out);
            if reason == DisconnectReason::Local && !out.broken {
                // Best effort: what fits in the socket now still reaches the peer.
                match &peer.stream {
                    Stream::Plain(_) => {
                        let _ = out.flush(&peer.stream);
                    }
                    Stream::Tls(t) => {
                        let mut c = lock(&t.conn);
                        c.send_close_notify();
                        let _ = flush_tls_nonblocking(&mut c, t.fd.as_raw_fd());
                    }
                }
            }
            out.closing = true;
            out.chunks.clear();
            out.offset = 0;
            let _ = self.epoll.delete(peer.stream.fd());
        }
        // Shut down now, even if a sender still holds the Arc (the fd closes when it drops).
        peer.stream.shutdown();
        log::debug!("peer {} of {} disconnected: {reason:?}", peer.id, self.url);
        events.push(Event::Disconnected(id, reason));
    }

    fn process_local_closes(&self, p: &mut Poller, events: &mut Vec<Event>) {
        let ids = std::mem::take(&mut *lock(&self.local_closes));
        for id in ids {
            self.remove_peer(p, id, DisconnectReason::Local, events);
        }
    }

    pub(crate) fn send(&self, id: PeerId, parts: &[&[u8]]) -> Result<(), Error> {
        let peer = self.peer(id).ok_or(Error::UnknownPeer(id))?;
        with_message(parts, |iov, total| self.send_iov(&peer, iov, total))
    }

    /// `send` of one message, `iov` (length prefix first) of `total` bytes.
    fn send_iov(
        &self,
        peer: &Peer,
        mut iov: &mut [IoSlice<'_>],
        total: usize,
    ) -> Result<(), Error> {
        let id = peer.id;
        let mut out = lock(&peer.out);
        if out.closing {
            return Err(Error::UnknownPeer(id));
        }
        if out.broken {
            // The connection failed; its Disconnected event is on its way. The message is
            // lost as if sent just before the failure.
            return Ok(());
        }
        if let Stream::Tls(t) = &peer.stream {
            self.send_tls(peer, &mut out, t, iov, total);
            return Ok(());
        }
        if !out.chunks.is_empty() {
            out.push_rest(iov);
            return Ok(());
        }
        let mut written = 0;
        while written < total {
            match peer.stream.write_vectored(iov, true) {
                Ok(n) => {
                    written += n;
                    IoSlice::advance_slices(&mut iov, n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    // The message is lost as if sent just before the failure; shutting the
                    // socket makes the poller report the disconnect.
                    log::debug!("write to peer {id} failed: {e}");
                    out.broken = true;
                    peer.stream.shutdown();
                    return Ok(());
                }
            }
        }
        if written < total {
            out.push_rest(iov);
            if let Err(e) = self.epoll.modify(peer.stream.fd(), EV_IN | EV_OUT, id) {
                // Cannot happen while the peer is registered (we hold its queue lock, and
                // removal unregisters under it); if it does, fail the peer rather than stall.
                log::warn!("cannot watch peer {id} for writability: {e}");
                out.broken = true;
                out.chunks.clear();
                out.offset = 0;
                peer.stream.shutdown();
            }
        }
        Ok(())
    }

    /// `send` to a TLS peer, under its queue lock: encrypts into rustls' output queue (which
    /// takes any amount) and writes what the socket takes now; the poller writes the rest.
    fn send_tls(
        &self,
        peer: &Peer,
        out: &mut OutQueue,
        t: &TlsStream,
        mut iov: &mut [IoSlice<'_>],
        total: usize,
    ) {
        let id = peer.id;
        let fd = t.fd.as_raw_fd();
        let mut conn = lock(&t.conn);
        let mut pos = 0;
        // Drops leading empty parts (and every fully written part below).
        IoSlice::advance_slices(&mut iov, 0);
        while pos < total {
            match conn.writer().write_vectored(iov) {
                Ok(n) if n > 0 => {
                    pos += n;
                    IoSlice::advance_slices(&mut iov, n);
                }
                other => {
                    // The TLS session has failed; the poller reports the disconnect. The
                    // message is lost as if sent just before the failure.
                    log::debug!("TLS send to peer {id} failed: {other:?}");
                    return;
                }
            }
        }
        let res = flush_tls_nonblocking(&mut conn, fd);
        drop(conn);
        match res {
            Ok(true) => {}
            Ok(false) => {
                if !out.waiting_out {
                    match self.epoll.modify(fd, EV_IN | EV_OUT, id) {
                        Ok(()) => out.waiting_out = true,
                        Err(e) => {
                            // As for plain sockets: fail the peer rather than stall.
                            log::warn!("cannot watch peer {id} for writability: {e}");
                            out.broken = true;
                            peer.stream.shutdown();
                        }
                    }
                }
            }
            Err(e) => {
                log::debug!("write to peer {id} failed: {e}");
                out.broken = true;
                peer.stream.shutdown();
            }
        }
    }

    pub(crate) fn disconnect(&self, id: PeerId) {
        let Some(peer) = self.peer(id) else { return };
        {
            let mut out = lock(&peer.out);
            if out.closing {
                return;
            }
            out.closing = true;
        }
        lock(&self.local_closes).push(id);
        self.wake.notify();
    }

    pub(crate) fn wake(&self) {
        self.woken.store(true, Ordering::Release);
        self.wake.notify();
    }
}

impl Drop for NativeListener {
    fn drop(&mut self) {
        for peer in self
            .peers
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
        {
            peer.stream.shutdown();
        }
        if let Some(f) = &self.socket_file {
            // Remove the file only if it is still the socket we bound (a later listener may
            // have replaced it).
            if let Ok(meta) = std::fs::symlink_metadata(&f.path) {
                if meta.dev() == f.dev && meta.ino() == f.ino {
                    let _ = std::fs::remove_file(&f.path);
                }
            }
        }
    }
}

fn io_reason(e: io::Error) -> DisconnectReason {
    match e.kind() {
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::BrokenPipe
        | io::ErrorKind::ConnectionAborted => DisconnectReason::Closed,
        _ => DisconnectReason::Io(e.to_string()),
    }
}

/// Buffered read half of a dialer.
struct Reader {
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    eof: bool,
}

impl Reader {
    fn buffered(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// One read into the free tail of the buffer (compacting first). Ok(0) is EOF.
    fn fill(&mut self, stream: &Stream) -> io::Result<usize> {
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
    stream: Stream,
    /// As dialed, for TLS error messages.
    url: String,
    max_message: usize,
    reader: Mutex<Reader>,
    writer: Mutex<()>,
    closed: AtomicBool,
}

fn closed_or_io(e: io::Error) -> Error {
    match e.kind() {
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::BrokenPipe
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::NotConnected
        | io::ErrorKind::UnexpectedEof => Error::Closed,
        _ => Error::Io(e),
    }
}

/// Dialer side of a TLS connection on a connected socket: runs the handshake, then waits for
/// the listener's greeting (which says this peer was accepted), all within
/// [`tls::DIAL_HANDSHAKE_TIMEOUT`].
fn tls_dial(
    fd: OwnedFd,
    host: &str,
    url: &str,
    config: Arc<rustls::ClientConfig>,
) -> Result<TlsStream, Error> {
    let tls_err = |reason: String, kind: TlsErrorKind| Error::Tls {
        url: url.to_string(),
        reason,
        kind,
    };
    let name = rustls_pki_types::ServerName::try_from(host.to_string()).map_err(|_| {
        Error::TlsConfig(format!(
            "'{host}' in '{url}' is not a host name or IP address a certificate can be checked \
             against"
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
    // the greeting (or an alert saying why not) settles it.
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
            Scheme::TlsTcp { .. } => Some(
                opts.tls
                    .as_ref()
                    .and_then(|t| t.client.clone())
                    .ok_or_else(|| {
                        Error::TlsConfig(format!(
                            "dialing '{text}' needs Options::tls with a client part (the CA \
                             certificate to verify the listener: TlsConfig::client)"
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
            Scheme::Tcp { host, port } | Scheme::TlsTcp { host, port } => {
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
                Stream::Tls(Box::new(tls_dial(fd, host, &text, config)?))
            }
            _ => Stream::Plain(fd),
        };
        Ok(NativeConnection {
            stream,
            url: text,
            max_message: opts.max_message,
            reader: Mutex::new(Reader {
                buf: vec![0u8; SCRATCH].into_boxed_slice(),
                start: 0,
                end: 0,
                eof: false,
            }),
            writer: Mutex::new(()),
            closed: AtomicBool::new(false),
        })
    }

    pub(crate) fn send(&self, parts: &[&[u8]]) -> Result<(), Error> {
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

    fn finish_frame(&self, r: &mut Reader) -> Result<Vec<u8>, Error> {
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
    fn plaintext_to_tls(&self, bytes: &[u8]) -> Option<Error> {
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
    fn io_err(&self, e: io::Error) -> Error {
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

/// Accepts a Unix-socket peer only if it runs as this process's user (or as root).
fn same_user(fd: &OwnedFd) -> Result<(), String> {
    let me = sys::euid();
    match sys::peer_uid(fd.as_raw_fd()) {
        Ok(uid) if uid == me || uid == 0 => Ok(()),
        Ok(uid) => Err(format!(
            "peer runs as user {uid}, not as this process's user {me}"
        )),
        Err(e) => Err(format!("cannot read the peer's credentials: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame_bytes(msgs: &[&[u8]]) -> Vec<u8> {
        let mut v = Vec::new();
        for m in msgs {
            v.extend_from_slice(&(m.len() as u64).to_le_bytes());
            v.extend_from_slice(m);
        }
        v
    }

    #[test]
    fn feed_reassembles_across_any_split() {
        let wire = frame_bytes(&[b"hello", b"", b"world!", &[7u8; 300]]);
        for step in 1..wire.len() {
            let mut f = Frame::default();
            let mut got = Vec::new();
            for piece in wire.chunks(step) {
                f.feed(piece, 1 << 20, |m| got.push(m)).unwrap();
            }
            assert_eq!(
                got,
                vec![
                    b"hello".to_vec(),
                    Vec::new(),
                    b"world!".to_vec(),
                    vec![7u8; 300]
                ],
                "step {step}"
            );
            assert!(!f.mid_frame());
        }
    }

    #[test]
    fn feed_rejects_oversized_prefix_without_allocating() {
        let mut f = Frame::default();
        let err = f
            .feed(&(4u64 << 30).to_le_bytes(), 1 << 20, |_| {
                panic!("no message")
            })
            .unwrap_err();
        assert!(err.contains("4294967296"), "{err}");
    }

    #[test]
    fn huge_claim_reserves_little() {
        let mut f = Frame::default();
        let mut wire = (4u64 << 30).to_le_bytes().to_vec();
        wire.extend_from_slice(b"abc");
        f.feed(&wire, usize::MAX, |_| panic!("incomplete")).unwrap();
        let (body, total) = f.body.as_ref().unwrap();
        assert_eq!(*total, 4 << 30);
        assert_eq!(body.len(), 3);
        assert!(
            body.capacity() <= GROW_MIN + 3,
            "capacity {}",
            body.capacity()
        );
    }

    #[test]
    fn first_message_has_its_own_bound_and_later_ones_the_usual() {
        // Over the first-message bound: refused at the prefix, naming both numbers.
        let mut f = Frame::new(Some(100));
        let err = f
            .feed(&101u64.to_le_bytes(), 1 << 20, |_| panic!("no message"))
            .unwrap_err();
        assert!(
            err.contains("first message") && err.contains("101") && err.contains("100"),
            "{err}"
        );

        // At the bound it passes; the next message may be as large as `max`, even when both
        // arrive in one read.
        let mut f = Frame::new(Some(100));
        let mut wire = frame_bytes(&[&[1u8; 100]]);
        wire.extend_from_slice(&frame_bytes(&[&[2u8; 5000]]));
        let mut got = Vec::new();
        f.feed(&wire, 1 << 20, |m| got.push(m.len())).unwrap();
        assert_eq!(got, vec![100, 5000]);
        let err = f
            .feed(&((1u64 << 20) + 1).to_le_bytes(), 1 << 20, |_| {
                panic!("no message")
            })
            .unwrap_err();
        assert!(
            !err.contains("first message") && err.contains("1048577"),
            "{err}"
        );

        // A first-message bound above `max` changes nothing.
        let mut f = Frame::new(Some(1 << 30));
        let err = f
            .feed(&5000u64.to_le_bytes(), 4096, |_| panic!("no message"))
            .unwrap_err();
        assert!(
            !err.contains("first message") && err.contains("4096"),
            "{err}"
        );
    }

    #[test]
    fn first_message_bound_holds_when_the_prefix_trickles_in() {
        let mut f = Frame::new(Some(64 * 1024));
        let wire = (4u64 << 30).to_le_bytes();
        for b in &wire[..HEADER - 1] {
            f.feed(std::slice::from_ref(b), usize::MAX, |_| {
                panic!("no message")
            })
            .unwrap();
        }
        let err = f
            .feed(&wire[HEADER - 1..], usize::MAX, |_| panic!("no message"))
            .unwrap_err();
        assert!(err.contains("4294967296") && err.contains("65536"), "{err}");
        assert!(f.body.is_none(), "nothing reserved for a refused claim");
    }

    #[test]
    fn reserve_grows_geometrically_but_bounded() {
        let mut v = Vec::new();
        let target = 1600 * GROW_MIN;
        let mut reallocs = 0;
        while v.len() < target {
            let cap = v.capacity();
            let n = (target - v.len()).min(SCRATCH);
            reserve_for(&mut v, target, n);
            if v.capacity() != cap {
                reallocs += 1;
            }
            assert!(
                v.capacity() <= (2 * v.len()).max(v.len() + GROW_MIN).max(v.len() + n),
                "too far ahead"
            );
            assert!(v.capacity() <= target);
            v.resize(v.len() + n, 0);
        }
        assert!(reallocs < 20, "{reallocs} reallocations");
    }
}
