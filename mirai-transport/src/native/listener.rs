//! The native hub: binding, the table of peers, and the event loop of [`NativeListener::poll`].
use super::framing::{with_message, Frame};
use super::handshake::Handshake;
use super::out_queue::OutQueue;
use super::stream::Stream;
use super::ws::{self, WsDecoder};
use super::ws_peer::WsRx;
use super::{lock, EV_OUT, SCRATCH, TOKEN_HANDSHAKE, TOKEN_LISTEN, TOKEN_WAKE};
use crate::sys::{self, Epoll, EpollEvent, EventFd, RawAddr};
use crate::tls::{TlsConfigCause, TlsConfigError};
use crate::{DisconnectReason, Error, Event, Options, PeerId, Scheme, Url};
use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

/// One accepted peer: the only record of it, in [`NativeListener::peers`].
pub(super) struct Peer {
    pub(super) id: PeerId,
    pub(super) stream: Stream,
    /// Output the socket has not taken yet; its lock also orders concurrent sends.
    pub(super) out: Mutex<OutQueue>,
    /// Reassembly of the message arriving. Only the polling thread takes this lock, so it is
    /// never contended; it lets the peer live in one table shared with senders.
    pub(super) rx: Mutex<Frame>,
    /// WebSocket peers (`ws://`): their receive state instead of `rx`.
    pub(super) ws: Option<Mutex<WsRx>>,
}

/// State only the polling thread touches.
pub(super) struct Poller {
    /// Pending TLS handshakes by epoll token (`TOKEN_HANDSHAKE + n`).
    pub(super) handshakes: HashMap<u64, Handshake>,
    pub(super) next_handshake: u64,
    /// The listening socket is unwatched because too many handshakes are pending.
    pub(super) accept_paused: bool,
    /// WebSocket peers still upgrading, with their deadlines.
    pub(super) ws_pending: Vec<(PeerId, Instant)>,
    pub(super) scratch: Box<[u8]>,
    /// Decrypted bytes on their way from rustls to a frame.
    pub(super) plain: Box<[u8]>,
    pub(super) raw_events: Vec<libc::epoll_event>,
    pub(super) ready: Vec<EpollEvent>,
}

/// A listener's TLS settings.
pub(super) struct ListenTls {
    pub(super) config: Arc<rustls::ServerConfig>,
    pub(super) handshake_timeout: Duration,
    pub(super) max_pending: usize,
}

/// A socket file this listener created, removed on drop if it is still ours.
pub(super) struct SocketFile {
    pub(super) path: PathBuf,
    pub(super) dev: u64,
    pub(super) ino: u64,
}

pub(crate) struct NativeListener {
    pub(super) url: String,
    pub(super) epoll: Epoll,
    pub(super) wake: EventFd,
    pub(super) woken: AtomicBool,
    pub(super) listen_fd: OwnedFd,
    pub(super) tcp: bool,
    /// `ws://`: the HTTP path peers must ask for (empty for other schemes).
    pub(super) ws_path: String,
    pub(super) socket_file: Option<SocketFile>,
    pub(super) max_message: usize,
    /// [`Options::max_first_message`].
    pub(super) max_first_message: Option<usize>,
    pub(super) next_id: AtomicU64,
    /// Every connected peer, by id: senders look peers up here, the poller reads them.
    pub(super) peers: RwLock<HashMap<PeerId, Arc<Peer>>>,
    pub(super) local_closes: Mutex<Vec<PeerId>>,
    pub(super) poller: Mutex<Poller>,
    pub(super) tls: Option<ListenTls>,
}

/// Resolves a TCP host for listening or dialing. An empty or `*` host means every IPv4
/// interface.
pub(super) fn resolve(url: &Url, host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
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
pub(super) fn clear_stale_socket(path: &std::path::Path) -> io::Result<()> {
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
            Scheme::TlsTcp { .. } | Scheme::Wss { .. } => {
                let t = opts
                    .tls
                    .as_ref()
                    .filter(|t| t.server.is_some())
                    .ok_or_else(|| {
                        Error::TlsConfig(TlsConfigError::new(
                            TlsConfigCause::MissingPart,
                            format!(
                                "listening at '{given}' needs Options::tls with a server part \
                         (a certificate and key: TlsConfig::server or tls::zero_config)"
                            ),
                        ))
                    })?;
                Some(ListenTls {
                    config: t.server.clone().ok_or_else(|| {
                        Error::TlsConfig(TlsConfigError::new(
                            TlsConfigCause::MissingPart,
                            "no server part",
                        ))
                    })?,
                    handshake_timeout: t.handshake_timeout,
                    max_pending: t.max_pending_handshakes,
                })
            }
            _ => None,
        };
        let ws_path = match &url.scheme {
            Scheme::Ws { path, .. } | Scheme::Wss { path, .. } => path.clone(),
            _ => String::new(),
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
            Scheme::Tcp { host, port }
            | Scheme::TlsTcp { host, port }
            | Scheme::Ws { host, port, .. }
            | Scheme::Wss { host, port, .. } => {
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
            ws_path,
            socket_file,
            max_message: opts.max_message,
            max_first_message: opts.max_first_message,
            next_id: AtomicU64::new(1),
            peers: RwLock::new(HashMap::new()),
            local_closes: Mutex::new(Vec::new()),
            poller: Mutex::new(Poller {
                handshakes: HashMap::new(),
                next_handshake: 0,
                accept_paused: false,
                ws_pending: Vec::new(),
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

    /// Records a newly accepted peer (not yet reported `Connected`).
    pub(super) fn add_peer(&self, id: PeerId, stream: Stream) -> Arc<Peer> {
        let peer = Arc::new(Peer {
            id,
            stream,
            out: Mutex::new(OutQueue::default()),
            rx: Mutex::new(Frame::new(self.max_first_message)),
            ws: None,
        });
        self.peers
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, Arc::clone(&peer));
        peer
    }

    /// Records a newly accepted WebSocket peer, upgrading (reported `Connected` once
    /// upgraded).
    pub(super) fn add_ws_peer(&self, p: &mut Poller, id: PeerId, stream: Stream) -> Arc<Peer> {
        let deadline = Instant::now() + crate::tls::DEFAULT_HANDSHAKE_TIMEOUT;
        let peer = Arc::new(Peer {
            id,
            stream,
            out: Mutex::new(OutQueue::default()),
            rx: Mutex::new(Frame::new(None)),
            ws: Some(Mutex::new(WsRx {
                upgrade: Some(Vec::new()),
                dec: WsDecoder::new(true, self.max_first_message),
            })),
        });
        self.peers
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, Arc::clone(&peer));
        p.ws_pending.push((id, deadline));
        peer
    }

    pub(super) fn peer(&self, id: PeerId) -> Option<Arc<Peer>> {
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
            self.expire_ws_upgrades(p, events);
            let wait = if events.len() > before {
                0
            } else {
                // Wake for the first handshake deadline too.
                let first = p
                    .handshakes
                    .values()
                    .map(|h| h.deadline)
                    .chain(p.ws_pending.iter().map(|w| w.1))
                    .min();
                let until = match (deadline, first) {
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
                    token => {
                        let id = PeerId(token);
                        if ev.events & EV_OUT != 0 {
                            self.flush_peer(id);
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

    pub(super) fn process_local_closes(&self, p: &mut Poller, events: &mut Vec<Event>) {
        let ids = std::mem::take(&mut *lock(&self.local_closes));
        for id in ids {
            self.remove_peer(p, id, DisconnectReason::Local, events);
        }
    }

    pub(crate) fn send(&self, id: PeerId, parts: &[&[u8]]) -> Result<(), Error> {
        let peer = self.peer(id).ok_or(Error::UnknownPeer(id))?;
        if peer.ws.is_some() {
            return ws::with_server_message(parts, |iov, total| self.send_iov(&peer, iov, total));
        }
        with_message(parts, |iov, total| self.send_iov(&peer, iov, total))
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
