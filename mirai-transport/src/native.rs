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
//! TLS seam: all socket I/O goes through [`Stream`]. A rustls stream becomes one more variant
//! there (its read/write doing the record layer over the same fd); until then `tls+tcp://` is
//! refused with [`Error::UnsupportedScheme`].
use crate::sys::{self, Epoll, EpollEvent, EventFd, RawAddr};
use crate::{DisconnectReason, Error, Event, Options, PeerId, Scheme, Url};
use std::collections::{HashMap, VecDeque};
use std::io::{self, IoSlice};
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
/// Growth step for a message buffer: memory is reserved at most this far (or as far again as
/// has already arrived, whichever is more) beyond the bytes received, so a huge length prefix
/// alone costs nothing.
const CHUNK: usize = 1 << 20;
/// Bytes read from one peer per poll round before others get their turn.
const READ_BUDGET: usize = 8 << 20;
/// iovecs gathered per flush.
const MAX_IOV: usize = 64;

const TOKEN_LISTEN: u64 = u64::MAX;
const TOKEN_WAKE: u64 = u64::MAX - 1;

const EV_IN: u32 = (libc::EPOLLIN | libc::EPOLLRDHUP) as u32;
const EV_OUT: u32 = libc::EPOLLOUT as u32;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere must not wedge the transport: the guarded data stays consistent
    // because every critical section here leaves it valid before anything can panic.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A connected socket. The seam where a TLS stream will slot in as another variant.
enum Stream {
    /// Plain TCP or Unix stream socket.
    Plain(OwnedFd),
}

impl Stream {
    fn fd(&self) -> RawFd {
        match self {
            Stream::Plain(fd) => fd.as_raw_fd(),
        }
    }

    fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(fd) => sys::read(fd.as_raw_fd(), buf),
        }
    }

    fn read_spare(&self, v: &mut Vec<u8>, max: usize) -> io::Result<usize> {
        match self {
            Stream::Plain(fd) => sys::read_spare(fd.as_raw_fd(), v, max),
        }
    }

    fn write_vectored(&self, bufs: &[IoSlice<'_>], nonblocking: bool) -> io::Result<usize> {
        match self {
            Stream::Plain(fd) => sys::send_vectored(fd.as_raw_fd(), bufs, nonblocking),
        }
    }

    fn shutdown(&self) {
        sys::shutdown(self.fd());
    }
}

/// Grows `body` so that `incoming` more bytes fit, never reserving beyond `target` in total
/// and never more than `max(CHUNK, len)` ahead of what has arrived.
fn reserve_for(body: &mut Vec<u8>, target: usize, incoming: usize) {
    let len = body.len();
    if body.capacity() - len >= incoming {
        return;
    }
    let ahead = incoming.max(CHUNK).max(len);
    let new_cap = (len + ahead).min(target).max(len + incoming);
    body.reserve_exact(new_cap - len);
}

fn too_large(len: u64, max: usize) -> String {
    format!("message length prefix of {len} bytes exceeds the maximum of {max} bytes")
}

/// Reassembly state of the frame currently arriving from one peer.
#[derive(Default)]
struct Frame {
    header: [u8; HEADER],
    header_have: usize,
    /// `Some((bytes so far, total length))` once the header is complete.
    body: Option<(Vec<u8>, usize)>,
}

impl Frame {
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
    /// a length prefix exceeds `max`.
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
                    let len = match usize::try_from(len64) {
                        Ok(len) if len <= max => len,
                        _ => return Err(too_large(len64, max)),
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
}

impl OutQueue {
    fn push_remainder(&mut self, header: &[u8; HEADER], msg: &[u8], written: usize) {
        let mut chunk = Vec::with_capacity(HEADER + msg.len() - written);
        if written < HEADER {
            chunk.extend_from_slice(&header[written..]);
            chunk.extend_from_slice(msg);
        } else {
            chunk.extend_from_slice(&msg[written - HEADER..]);
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

/// State only the polling thread touches.
struct Poller {
    peers: HashMap<PeerId, (Arc<Peer>, Frame)>,
    scratch: Box<[u8]>,
    raw_events: Vec<libc::epoll_event>,
    ready: Vec<EpollEvent>,
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
    next_id: AtomicU64,
    peers: RwLock<HashMap<PeerId, Arc<Peer>>>,
    local_closes: Mutex<Vec<PeerId>>,
    poller: Mutex<Poller>,
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
            Scheme::Tcp { host, port } => {
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
            Scheme::TlsTcp { .. } => return Err(Error::UnsupportedScheme("tls+tcp".into())),
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
            next_id: AtomicU64::new(1),
            peers: RwLock::new(HashMap::new()),
            local_closes: Mutex::new(Vec::new()),
            poller: Mutex::new(Poller {
                peers: HashMap::new(),
                scratch: vec![0u8; SCRATCH].into_boxed_slice(),
                raw_events: Vec::with_capacity(256),
                ready: Vec::with_capacity(256),
            }),
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
            let wait = if events.len() > before {
                0
            } else {
                sys::timeout_ms(deadline.map(|d| d.saturating_duration_since(Instant::now())))
            };
            self.epoll.wait(&mut p.raw_events, &mut p.ready, wait)?;
            let ready = std::mem::take(&mut p.ready);
            for ev in &ready {
                match ev.token {
                    TOKEN_WAKE => self.wake.drain(),
                    TOKEN_LISTEN => self.accept_all(p, events)?,
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
            p.peers.insert(id, (peer, Frame::default()));
            events.push(Event::Connected(id));
        }
    }

    fn flush_peer(&self, p: &mut Poller, id: PeerId) {
        let Some((peer, _)) = p.peers.get(&id) else {
            return;
        };
        let mut out = lock(&peer.out);
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
                reserve_for(body, *total, remaining.min(CHUNK));
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
                let _ = out.flush(&peer.stream);
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

    pub(crate) fn send(&self, id: PeerId, msg: &[u8]) -> Result<(), Error> {
        let peer = self.peer(id).ok_or(Error::UnknownPeer(id))?;
        let header = (msg.len() as u64).to_le_bytes();
        let mut out = lock(&peer.out);
        if out.closing {
            return Err(Error::UnknownPeer(id));
        }
        if out.broken {
            // The connection failed; its Disconnected event is on its way. The message is
            // lost as if sent just before the failure.
            return Ok(());
        }
        if !out.chunks.is_empty() {
            out.push_remainder(&header, msg, 0);
            return Ok(());
        }
        let total = HEADER + msg.len();
        let mut written = 0;
        while written < total {
            let res = if written < HEADER {
                peer.stream
                    .write_vectored(&[IoSlice::new(&header[written..]), IoSlice::new(msg)], true)
            } else {
                peer.stream
                    .write_vectored(&[IoSlice::new(&msg[written - HEADER..])], true)
            };
            match res {
                Ok(n) => written += n,
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
            out.push_remainder(&header, msg, written);
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

impl NativeConnection {
    pub(crate) fn dial(url: &Url, opts: &Options) -> Result<Self, Error> {
        let text = url.to_string();
        let connect_err = |source: io::Error| Error::Connect {
            url: text.clone(),
            source,
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
            Scheme::Tcp { host, port } => {
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
            Scheme::TlsTcp { .. } => return Err(Error::UnsupportedScheme("tls+tcp".into())),
        };
        Ok(NativeConnection {
            stream: Stream::Plain(fd),
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

    pub(crate) fn send(&self, msg: &[u8]) -> Result<(), Error> {
        let _w = lock(&self.writer);
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        let header = (msg.len() as u64).to_le_bytes();
        let total = HEADER + msg.len();
        let mut written = 0;
        while written < total {
            let res = if written < HEADER {
                self.stream.write_vectored(
                    &[IoSlice::new(&header[written..]), IoSlice::new(msg)],
                    false,
                )
            } else {
                self.stream
                    .write_vectored(&[IoSlice::new(&msg[written - HEADER..])], false)
            };
            match res {
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(closed_or_io(e)),
            }
        }
        Ok(())
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
                let mut fds = [libc::pollfd {
                    fd: self.stream.fd(),
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
            if r.fill(&self.stream).map_err(closed_or_io)? == 0 {
                return Err(Error::Closed);
            }
        }
        // At least one byte of a frame is here: finish it, blocking, so frames never split.
        self.finish_frame(&mut r).map(Some)
    }

    fn finish_frame(&self, r: &mut Reader) -> Result<Vec<u8>, Error> {
        while r.buffered().len() < HEADER {
            if r.fill(&self.stream).map_err(closed_or_io)? == 0 {
                return Err(Error::Closed);
            }
        }
        let mut header = [0u8; HEADER];
        header.copy_from_slice(&r.buffered()[..HEADER]);
        let len64 = u64::from_le_bytes(header);
        let len = match usize::try_from(len64) {
            Ok(len) if len <= self.max_message => len,
            _ => {
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
                if r.fill(&self.stream).map_err(closed_or_io)? == 0 {
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
            reserve_for(&mut body, len, remaining.min(CHUNK));
            match self.stream.read_spare(&mut body, remaining) {
                Ok(0) => {
                    r.eof = true;
                    return Err(Error::Closed);
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(closed_or_io(e)),
            }
        }
        Ok(body)
    }

    pub(crate) fn raw_fd(&self) -> RawFd {
        self.stream.fd()
    }

    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        // Wakes a thread blocked in recv or send; the fd itself closes on drop, so a
        // concurrent call never touches a reused descriptor.
        self.stream.shutdown();
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
        assert!(body.capacity() <= CHUNK + 3, "capacity {}", body.capacity());
    }

    #[test]
    fn reserve_grows_geometrically_but_bounded() {
        let mut v = Vec::new();
        let target = 100 * CHUNK;
        let mut reallocs = 0;
        while v.len() < target {
            let cap = v.capacity();
            let n = (target - v.len()).min(SCRATCH);
            reserve_for(&mut v, target, n);
            if v.capacity() != cap {
                reallocs += 1;
            }
            assert!(
                v.capacity() <= (2 * v.len()).max(v.len() + CHUNK).max(v.len() + n),
                "too far ahead"
            );
            assert!(v.capacity() <= target);
            v.resize(v.len() + n, 0);
        }
        assert!(reallocs < 20, "{reallocs} reallocations");
    }
}
