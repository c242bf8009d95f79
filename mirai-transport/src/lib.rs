//! Message connections for the mirai engine: a hub [`Listener`] that many peers dial into, and
//! a single [`Connection`] that a daemon dials out with.
//!
//! This crate moves whole messages (byte blobs) between processes and reports peers coming and
//! going. It knows nothing of tasks or frames: `mirai-proto` says what the bytes mean.
//!
//! URLs ([`Url`]): `ipc:///abs/path` or `ipc://relative/path`, `abstract://name` (Linux),
//! `tcp://host:port` with a host name, IPv4 or bracketed IPv6 (`tcp://[::1]:0`), or an empty
//! or `*` host for every interface when listening; port 0 binds an ephemeral port and
//! [`Listener::url`] reports the one chosen. An ipc socket file is created owner-only (0600),
//! replaces a stale one left by a dead listener, and is removed when the listener drops.
//! `tls+tcp://host:port` is TCP with TLS (rustls), served by the native backend with the
//! credentials in [`Options::tls`] (see the [`tls`] module: user-supplied PEM, encrypted keys,
//! zero-config generation, mutual authentication). Without a `TlsConfig` of the right side it
//! is [`Error::TlsConfig`]. The NNG backend refuses it with [`Error::UnsupportedScheme`]: one
//! TLS implementation, the native one, carries mirai's TLS semantics (client certificates,
//! refusals before `Connected`, logged reasons); NNG's own TLS would need a second, different
//! one for no gain.
//!
//! `ws://host:port/path` (path optional, default `/`; port 0 resolved as for tcp) is WebSocket
//! (RFC 6455) over TCP, wire-compatible with NNG's `ws` transport: the upgrade negotiates
//! `Sec-WebSocket-Protocol: pair1.sp.nanomsg.org`, and each message is one binary WebSocket
//! message whose payload is pair1's 4-byte header `00 00 00 01` followed by the message,
//! sent in frames of at most 64 KiB (NNG refuses frames over 1 MiB). So a native listener
//! serves NNG dialers and a native dialer talks to NNG listeners. A native listener answers
//! pings, answers a close and reports the peer `Closed`, drops a peer that breaks the protocol
//! (logging why), and reports a peer `Connected` only once its upgrade (at most 8 KiB of
//! headers, within [`tls::DEFAULT_HANDSHAKE_TIMEOUT`], the path as bound) has succeeded; a
//! refused upgrade gets `400 Bad Request` and no event. [`Options::max_first_message`] and the
//! buffer growth rules below apply to ws messages as to tcp ones; the bound is checked at each
//! frame header against the message's size so far. The NNG backend serves `ws://` with NNG's
//! own transport (there, two listeners of one process at port 0 and the same path collide:
//! NNG keys its HTTP servers by the URL as written).
//!
//! `wss://host:port/path` is the same WebSocket protocol inside TLS, served by the native
//! backend with [`Options::tls`] exactly as `tls+tcp://` (zero-config credentials, client
//! certificates, refusals before `Connected`); the upgrade's 101 response takes the place of
//! the `tls+tcp://` greeting. The NNG backend refuses `wss://` with
//! [`Error::UnsupportedScheme`], for the same reason as `tls+tcp://`.
//!
//! Two backends keep the same contract (checked by one conformance suite, `tests/conformance.rs`):
//! - [`Backend::Native`] (default): std sockets driven by one `epoll` set; a send writes straight
//!   from the calling thread and never blocks (what the socket cannot take is queued and flushed
//!   by the polling thread).
//! - [`Backend::Nng`] (feature `nng`): NNG pair sockets in polyamorous mode, for interoperability
//!   and as a reference point. NNG's limits apply: a polyamorous hub queues at most two messages
//!   per peer and drops further ones while that peer's queue is full (fine for one task at a
//!   time per daemon, not for unpaced bursts); messages are at most 4 GiB - 1 bytes; and
//!   [`Connection::raw_fd`] is `None`.
//!
//! Wire format of the native backend: each message is an 8-byte little-endian length followed
//! by its bytes. A peer that announces more than [`Options::max_message`] is dropped with
//! [`DisconnectReason::Protocol`]. Over `tls+tcp://` the same frames travel inside TLS, after
//! an 8-byte greeting from the listener that tells the dialer it was accepted (see [`tls`]).
//!
//! Memory a peer can make a native listener hold (per connection, besides the kernel's socket
//! buffers):
//! - a message's buffer grows with the bytes actually received, reserving at most 64 KiB
//!   (or as much again as has arrived) beyond them, never the announced length: a length
//!   prefix claiming 4 GB and a trickle of bytes costs the trickle plus at most 64 KiB;
//! - a connection's first message is bounded by [`Options::max_first_message`] when set, so a
//!   peer that has not yet proven itself (a daemon before its hello) is dropped as soon as its
//!   first length prefix announces more, with a logged reason that never quotes its bytes;
//! - over `tls+tcp://`, rustls bounds what it buffers: a handshake message is at most 64 KiB,
//!   a record about 16 KiB, decrypted bytes waiting to be framed about 16 KiB; a handshake
//!   must finish within [`TlsConfig::with_handshake_timeout`] and at most
//!   [`TlsConfig::with_max_pending_handshakes`] run at once.
//!
//! The NNG backend has its own rules: it reserves a buffer of the announced length (up to
//! `max_message`, at most 4 GiB - 1) when a length prefix arrives, and ignores
//! `max_first_message`.
//!
//! ```no_run
//! use mirai_transport::{Connection, Event, Listener, Options};
//! let listener = Listener::bind("tcp://127.0.0.1:0", &Options::default())?;
//! let conn = Connection::dial(listener.url(), &Options::default())?;
//! conn.send(b"hi")?;
//! let mut events = Vec::new();
//! while !events.iter().any(|e| matches!(e, Event::Message(..))) {
//!     listener.poll(&mut events, None)?;
//! }
//! # Ok::<(), mirai_transport::Error>(())
//! ```

mod error;
mod native;
#[cfg(feature = "nng")]
mod nng_backend;
mod sys;
pub mod tls;
mod url;

use std::time::Duration;

pub use error::Error;
pub use sys::{keepalive, send_now, set_keepalive, terminate_self, HangupWatch, WatchEnd};
pub use tls::TlsConfig;
pub use url::{Scheme, Url};

/// Identifies one connected peer of a [`Listener`] for as long as it stays connected.
/// Ids are never reused within one listener.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PeerId(pub u64);

impl PeerId {
    /// The id as a number (for logs and for layers that key their own records by it).
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl std::fmt::Display for PeerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Which implementation carries the messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Backend {
    /// std sockets and epoll (the default, and the fast one).
    #[default]
    Native,
    /// NNG pair sockets (needs the `nng` feature). See the crate docs for NNG's limits.
    Nng,
}

/// Settings shared by listeners and dialers.
#[derive(Debug, Clone)]
pub struct Options {
    /// The backend to use.
    pub backend: Backend,
    /// Largest message accepted from a peer, in bytes. A peer announcing a larger one is
    /// disconnected (with [`DisconnectReason::Protocol`]). On the native backend memory for a
    /// message grows only as its bytes arrive (reserved at most 64 KiB, or as much again as
    /// has arrived, beyond them), so a length prefix alone never makes the receiver allocate
    /// what it announces.
    pub max_message: usize,
    /// Largest FIRST message accepted from each peer a [`Listener`] accepts, in bytes, when
    /// tighter than `max_message`; later messages are bounded by `max_message` alone. A peer
    /// whose first length prefix announces more is dropped as soon as that prefix arrives, with
    /// [`DisconnectReason::Protocol`] (the text gives the two numbers, never the peer's bytes)
    /// and a `log::warn!` naming its address. This bounds what a stranger can make a listener
    /// hold before it has said anything the application accepted: a protocol whose peers open
    /// with a small greeting (a mirai daemon's hello is under a hundred bytes) sets it to a few
    /// KiB, and then a connection that has not yet proven itself costs at most that much plus
    /// the socket's own buffers, whatever its length prefix claims.
    ///
    /// `None` (the default): the first message is bounded by `max_message` like the others.
    /// The transport knows nothing of what a first message means, and a default would
    /// silently break protocols that open with a large message, so the application that knows
    /// its greeting opts in. Ignored by [`Connection::dial`] (the dialer chose whom to trust).
    ///
    /// Native backend only (plain and TLS). The NNG backend ignores it: NNG's receive limit
    /// (`NNG_OPT_RECVMAXSZ`, set from `max_message`) is fixed per socket when a pipe is made
    /// and cannot change after a pipe's first message, and NNG allocates a buffer of the
    /// announced length as soon as a length prefix arrives; so on NNG a stranger can make the
    /// listener reserve up to `max_message` (at most 4 GiB - 1) per connection.
    pub max_first_message: Option<usize>,
    /// TLS credentials for `tls+tcp://` URLs (native backend): a server part to listen, a
    /// client part to dial (see [`TlsConfig`]). Ignored by other schemes. Default `None`.
    pub tls: Option<TlsConfig>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            backend: Backend::Native,
            max_message: 16 << 30,
            max_first_message: None,
            tls: None,
        }
    }
}

/// Why a peer went away.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DisconnectReason {
    /// The peer closed its end (or its process died).
    Closed,
    /// This side closed it with [`Listener::disconnect`].
    Local,
    /// The peer broke the framing (oversized length prefix, or the connection ended in the
    /// middle of a message); the text says how.
    Protocol(String),
    /// An I/O error, as text.
    Io(String),
}

/// Something that happened on a [`Listener`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A peer connected. Comes before any message from it.
    Connected(PeerId),
    /// A whole message from a peer.
    Message(PeerId, Vec<u8>),
    /// A peer went away. Comes after every message from it; its id is never seen again.
    Disconnected(PeerId, DisconnectReason),
}

/// The hub side: binds a URL and serves any number of dialing peers.
///
/// `Listener` is `Send + Sync`. [`Listener::poll`] is meant to be driven by one thread at a time;
/// [`Listener::send`] and [`Listener::disconnect`] may be called from any thread, concurrently
/// with `poll`.
pub struct Listener {
    inner: ListenerInner,
}

// One per hub and never moved on a hot path: the size difference does not matter.
#[allow(clippy::large_enum_variant)]
enum ListenerInner {
    Native(native::NativeListener),
    #[cfg(feature = "nng")]
    Nng(nng_backend::NngListener),
}

impl Listener {
    /// Binds `url` (see the crate docs for the forms). Fails at once if the address is taken,
    /// malformed, or of a scheme this build cannot serve.
    pub fn bind(url: &str, opts: &Options) -> Result<Listener, Error> {
        let parsed: Url = url.parse()?;
        let inner = match opts.backend {
            Backend::Native => ListenerInner::Native(native::NativeListener::bind(&parsed, opts)?),
            #[cfg(feature = "nng")]
            Backend::Nng => ListenerInner::Nng(nng_backend::NngListener::bind(&parsed, opts)?),
            #[cfg(not(feature = "nng"))]
            Backend::Nng => return Err(Error::BackendUnavailable("nng")),
        };
        Ok(Listener { inner })
    }

    /// The URL peers dial: as bound, with an ephemeral port resolved.
    pub fn url(&self) -> &str {
        match &self.inner {
            ListenerInner::Native(l) => l.url(),
            #[cfg(feature = "nng")]
            ListenerInner::Nng(l) => l.url(),
        }
    }

    /// Waits up to `timeout` (`None`: until something happens or [`Listener::wake`] is called)
    /// and appends what happened to `events`. Returns early, possibly with no events, after
    /// `wake`. Errors only if the listener itself failed or was closed.
    ///
    /// Over `tls+tcp://`, handshakes advance only inside `poll` (never blocking it): a peer is
    /// reported `Connected` once its handshake is complete and, where client certificates are
    /// required, its certificate verified. Refused peers produce no event, only a
    /// `log::warn!` naming their address and the reason.
    pub fn poll(&self, events: &mut Vec<Event>, timeout: Option<Duration>) -> Result<(), Error> {
        match &self.inner {
            ListenerInner::Native(l) => l.poll(events, timeout),
            #[cfg(feature = "nng")]
            ListenerInner::Nng(l) => l.poll(events, timeout),
        }
    }

    /// Sends one message to `peer`. Never blocks: what the socket cannot take now is queued
    /// and written by the next `poll`. Messages to one peer arrive in the order sent.
    /// Sending to a peer that is gone is [`Error::UnknownPeer`].
    pub fn send(&self, peer: PeerId, msg: &[u8]) -> Result<(), Error> {
        self.send_parts(peer, &[msg])
    }

    /// Sends one message made of `parts`, in order: the peer receives their concatenation, as
    /// if it had been given to [`Listener::send`]. The native backend writes the parts with
    /// the length prefix in one vectored write, without joining them (a message of more than
    /// seven parts is joined first); the NNG backend copies them into one NNG message.
    /// Otherwise as `send`.
    pub fn send_parts(&self, peer: PeerId, parts: &[&[u8]]) -> Result<(), Error> {
        match &self.inner {
            ListenerInner::Native(l) => l.send(peer, parts),
            #[cfg(feature = "nng")]
            ListenerInner::Nng(l) => l.send(peer, parts),
        }
    }

    /// Closes the connection to `peer`; `poll` reports its `Disconnected(_, Local)`.
    pub fn disconnect(&self, peer: PeerId) {
        match &self.inner {
            ListenerInner::Native(l) => l.disconnect(peer),
            #[cfg(feature = "nng")]
            ListenerInner::Nng(l) => l.disconnect(peer),
        }
    }

    /// Makes a concurrent or the next [`Listener::poll`] return promptly. Any thread.
    pub fn wake(&self) {
        match &self.inner {
            ListenerInner::Native(l) => l.wake(),
            #[cfg(feature = "nng")]
            ListenerInner::Nng(l) => l.wake(),
        }
    }
}

/// The dialing side: one connection to a listener, used by a daemon.
///
/// `Connection` is `Send + Sync`: one thread may block in `recv` while another sends.
pub struct Connection {
    inner: ConnectionInner,
}

enum ConnectionInner {
    Native(native::NativeConnection),
    #[cfg(feature = "nng")]
    Nng(nng_backend::NngConnection),
}

impl Connection {
    /// Dials once: fails at once, with an error naming the URL, if nobody listens there.
    ///
    /// Over `tls+tcp://` it also runs the TLS handshake and returns only once the listener has
    /// accepted this peer (its greeting arrived), so the listener must be polling meanwhile;
    /// a refusal is [`Error::Tls`] naming the cause (unknown issuer, expired or missing
    /// client certificate, not a TLS listener, ...). The wait is bounded by
    /// [`tls::DIAL_HANDSHAKE_TIMEOUT`].
    pub fn dial(url: &str, opts: &Options) -> Result<Connection, Error> {
        let parsed: Url = url.parse()?;
        let inner = match opts.backend {
            Backend::Native => {
                ConnectionInner::Native(native::NativeConnection::dial(&parsed, opts)?)
            }
            #[cfg(feature = "nng")]
            Backend::Nng => ConnectionInner::Nng(nng_backend::NngConnection::dial(&parsed, opts)?),
            #[cfg(not(feature = "nng"))]
            Backend::Nng => return Err(Error::BackendUnavailable("nng")),
        };
        Ok(Connection { inner })
    }

    /// Dials until a listener appears (asynchronous dial), retrying with a short back-off
    /// (10 ms growing to 1 s). Gives up only when `give_up` returns true (checked between
    /// attempts) or the URL itself is invalid.
    pub fn dial_retry(
        url: &str,
        opts: &Options,
        mut give_up: impl FnMut() -> bool,
    ) -> Result<Connection, Error> {
        let mut wait = Duration::from_millis(10);
        loop {
            match Connection::dial(url, opts) {
                Ok(c) => return Ok(c),
                Err(e) if !e.is_retryable() => return Err(e),
                Err(e) => {
                    if give_up() {
                        return Err(e);
                    }
                    std::thread::sleep(wait);
                    wait = (wait * 2).min(Duration::from_secs(1));
                }
            }
        }
    }

    /// Sends one message, blocking until the socket has taken it all.
    pub fn send(&self, msg: &[u8]) -> Result<(), Error> {
        self.send_parts(&[msg])
    }

    /// Sends one message made of `parts`, in order, blocking as [`Connection::send`]: the
    /// listener receives their concatenation. The native backend writes the parts without
    /// joining them (see [`Listener::send_parts`]).
    pub fn send_parts(&self, parts: &[&[u8]]) -> Result<(), Error> {
        match &self.inner {
            ConnectionInner::Native(c) => c.send(parts),
            #[cfg(feature = "nng")]
            ConnectionInner::Nng(c) => c.send(parts),
        }
    }

    /// Receives one message, waiting up to `timeout` (`None`: forever). `Ok(None)` on timeout;
    /// [`Error::Closed`] once the listener has gone (after every message it sent).
    ///
    /// The timeout bounds the wait for a message to start arriving: once its first bytes are
    /// here, the rest is read to the end, so messages are never split.
    pub fn recv(&self, timeout: Option<Duration>) -> Result<Option<Vec<u8>>, Error> {
        match &self.inner {
            ConnectionInner::Native(c) => c.recv(timeout),
            #[cfg(feature = "nng")]
            ConnectionInner::Nng(c) => c.recv(timeout),
        }
    }

    /// Receives a message if one has started to arrive; `Ok(None)` at once otherwise. A message
    /// whose first bytes are here is read to its end (briefly waiting for the rest of it).
    pub fn try_recv(&self) -> Result<Option<Vec<u8>>, Error> {
        self.recv(Some(Duration::ZERO))
    }

    /// A file descriptor that becomes readable when data arrives, for event-loop integration
    /// (R's input handlers). `None` where the backend has none.
    ///
    /// One read may bring in several messages, which then wait in this connection's buffer
    /// while the fd is no longer readable: when it fires, call [`Connection::try_recv`] until
    /// it returns `Ok(None)`. Only watch it; never read from or close it.
    ///
    /// Over TLS the same holds for decrypted messages, and messages the listener sent right
    /// after accepting this peer may already wait here when `dial` returns: call `try_recv`
    /// until `Ok(None)` before the first wait on the fd.
    pub fn raw_fd(&self) -> Option<std::os::fd::RawFd> {
        match &self.inner {
            ConnectionInner::Native(c) => Some(c.raw_fd()),
            #[cfg(feature = "nng")]
            ConnectionInner::Nng(_) => None,
        }
    }

    /// Closes the connection; the listener sees the peer disconnect.
    pub fn close(&self) {
        match &self.inner {
            ConnectionInner::Native(c) => c.close(),
            #[cfg(feature = "nng")]
            ConnectionInner::Nng(c) => c.close(),
        }
    }
}
