//! Byte streams and listening sockets for every NNG transport: `inproc`, `ipc`/`unix`,
//! `abstract`, `tcp[46]`, `tls+tcp[46]`, `ws[46]` and `wss[46]`.
//!
//! Every connection reads and writes like a tcp or ipc stream (SP header, then framed
//! messages), so the pipe code is the same for all: TLS is a shared rustls session
//! ([`super::tls`]), WebSocket an adapter translating tcp framing to messages ([`super::ws`])
//! behind an HTTP server shared by the listeners of one port ([`super::ws_server`]), inproc a
//! connected unix socket pair ([`super::inproc`]).

use std::io::{self, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{self as unix, UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::mpsc::Receiver;
use std::sync::Arc;

pub use super::url::Addr;
use super::url::{Family, Url};
use super::{inproc, tls::TlsStream, ws::WsStream, ws_server};
use crate::error::Error;
use crate::frame::Framing;
use crate::protocol::Protocol;

/// Settings for dialing and listening beyond the URL.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TransportOptions {
    /// TLS for `tls+tcp://` and `wss://`: the server part is used by listeners, the client
    /// part by dialers. Given for any other scheme, dial and listen fail with code 9.
    pub tls: Option<Arc<mirai_transport::TlsConfig>>,
    /// `tcp-nodelay` (default on): Nagle's algorithm off on every tcp connection a dialer
    /// makes (tcp, tls+tcp, ws, wss) and every one a tcp or tls+tcp listener accepts.
    pub nodelay: bool,
    /// `tcp-keepalive` (default off): `SO_KEEPALIVE` on those same connections.
    pub keepalive: bool,
}

impl Default for TransportOptions {
    fn default() -> TransportOptions {
        TransportOptions {
            tls: None,
            nodelay: true,
            keepalive: false,
        }
    }
}

impl TransportOptions {
    /// No options (what `dial` and `listen` use).
    pub fn new() -> TransportOptions {
        TransportOptions::default()
    }

    /// These options with `tcp-nodelay` set to `on`.
    pub fn with_nodelay(mut self, on: bool) -> TransportOptions {
        self.nodelay = on;
        self
    }

    /// These options with `tcp-keepalive` set to `on`.
    pub fn with_keepalive(mut self, on: bool) -> TransportOptions {
        self.keepalive = on;
        self
    }

    /// These options with `tls`.
    pub fn with_tls(mut self, tls: Arc<mirai_transport::TlsConfig>) -> TransportOptions {
        self.tls = Some(tls);
        self
    }
}

/// What a connection needs to know about its own socket.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Local {
    /// The socket's protocol (WebSocket names it in the upgrade).
    pub(crate) proto: Protocol,
    /// The socket's `recv-size-max` (0: none), bounding WebSocket messages.
    pub(crate) recv_max: usize,
}

/// Rejects TLS options for a scheme without TLS (NNG 9).
fn check_tls_scheme(url: &Url, opts: &TransportOptions) -> Result<(), Error> {
    if opts.tls.is_some() && !url.scheme.is_tls() {
        return Err(Error::NotSupported);
    }
    Ok(())
}

fn missing(url: &Url, part: &str) -> Error {
    Error::InvalidOption(format!(
        "{}:// needs a TLS configuration with a {part}",
        url.scheme.name()
    ))
}

/// A dialer's destination: where, how, and for which socket; reconnects reuse it.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    url: Url,
    tls: Option<Arc<rustls::ClientConfig>>,
    local: Local,
    tcp: Tcp,
}

impl Target {
    /// Checks the options against the URL: TLS schemes need a client part, others none.
    pub(crate) fn new(url: Url, opts: &TransportOptions, local: Local) -> Result<Target, Error> {
        check_tls_scheme(&url, opts)?;
        let tls = if url.scheme.is_tls() {
            let cfg = opts.tls.as_ref().and_then(|t| t.rustls_client_config());
            Some(cfg.ok_or_else(|| missing(&url, "client part (dialer)"))?)
        } else {
            None
        };
        Ok(Target {
            url,
            tls,
            local,
            tcp: Tcp::of(opts),
        })
    }

    /// The framing of this target's connections.
    pub(crate) fn framing(&self) -> Framing {
        self.url.addr.framing()
    }

    /// Connects (TLS handshake and WebSocket upgrade included).
    pub(crate) fn connect(&self) -> Result<Stream, Error> {
        let family = self.url.scheme.family();
        match &self.url.addr {
            Addr::Tcp(host, port) => tcp_connect(host, *port, family, self.tcp).map(Stream::Tcp),
            Addr::Ipc(path) => UnixStream::connect(path)
                .map(Stream::Unix)
                .map_err(map_connect),
            Addr::Abstract(name) => UnixStream::connect_addr(&abstract_addr(name)?)
                .map(Stream::Unix)
                .map_err(map_connect),
            Addr::Inproc(name) => inproc::connect(name).map(Stream::Unix),
            Addr::TlsTcp(host, port) => {
                let tcp = tcp_connect(host, *port, family, self.tcp)?;
                TlsStream::connect(tcp, host, self.client_tls()?, true).map(Stream::Tls)
            }
            Addr::Ws {
                host,
                port,
                path,
                tls,
            } => {
                let tcp = tcp_connect(host, *port, family, self.tcp)?;
                let base = if *tls {
                    Stream::Tls(TlsStream::connect(tcp, host, self.client_tls()?, false)?)
                } else {
                    Stream::Tcp(tcp)
                };
                let host_port = if host.contains(':') {
                    format!("[{host}]:{port}")
                } else {
                    format!("{host}:{port}")
                };
                let path = if path.is_empty() { "/" } else { path };
                let (proto, max) = (self.local.proto, self.local.recv_max);
                WsStream::connect(base, &host_port, path, proto, max).map(Stream::Ws)
            }
        }
    }

    fn client_tls(&self) -> Result<Arc<rustls::ClientConfig>, Error> {
        self.tls
            .clone()
            .ok_or_else(|| missing(&self.url, "client part (dialer)"))
    }
}

fn abstract_addr(name: &str) -> Result<unix::SocketAddr, Error> {
    unix::SocketAddr::from_abstract_name(name.as_bytes())
        .map_err(|_| Error::AddressInvalid(format!("abstract://{name}")))
}

/// Resolves `host:port` to the addresses of `family`.
fn resolve(host: &str, port: u16, family: Family) -> Result<Vec<SocketAddr>, Error> {
    let invalid = || Error::AddressInvalid(format!("{host}:{port}"));
    let all = (host, port).to_socket_addrs().map_err(|_| invalid())?;
    let v: Vec<SocketAddr> = all
        .filter(|a| match family {
            Family::Any => true,
            Family::V4 => a.is_ipv4(),
            Family::V6 => a.is_ipv6(),
        })
        .collect();
    if v.is_empty() {
        return Err(invalid());
    }
    Ok(v)
}

/// Applies `tcp-nodelay` and `tcp-keepalive` to a new tcp connection.
fn tcp_tune(s: &TcpStream, tcp: Tcp) -> io::Result<()> {
    use std::os::fd::AsFd;
    s.set_nodelay(tcp.nodelay)?;
    mirai_transport::set_keepalive(s.as_fd(), tcp.keepalive)
}

/// The tcp settings of [`TransportOptions`], carried by dialers' targets and listeners.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tcp {
    nodelay: bool,
    keepalive: bool,
}

impl Tcp {
    fn of(opts: &TransportOptions) -> Tcp {
        Tcp {
            nodelay: opts.nodelay,
            keepalive: opts.keepalive,
        }
    }
}

fn tcp_connect(host: &str, port: u16, family: Family, tcp: Tcp) -> Result<TcpStream, Error> {
    if host.is_empty() || host == "*" {
        return Err(Error::AddressInvalid(format!(
            "a dialer needs a host, not '{host}'"
        )));
    }
    let mut last = None;
    for a in resolve(host, port, family)? {
        match TcpStream::connect(a) {
            Ok(s) => {
                tcp_tune(&s, tcp)?;
                return Ok(s);
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.map_or(Error::ConnectionRefused, map_connect))
}

/// The addresses a listener at `host:port` binds (empty or `*`: every interface).
fn bind_addrs(host: &str, port: u16, family: Family) -> Result<Vec<SocketAddr>, Error> {
    let host = match (host, family) {
        ("" | "*", Family::V6) => "::",
        ("" | "*", _) => "0.0.0.0",
        (h, _) => h,
    };
    resolve(host, port, family)
}

fn tcp_bind(host: &str, port: u16, family: Family) -> Result<TcpListener, Error> {
    let mut last = None;
    for a in bind_addrs(host, port, family)? {
        match TcpListener::bind(a) {
            Ok(l) => return Ok(l),
            Err(e) => last = Some(e),
        }
    }
    Err(last.map_or(Error::AddressInvalid(host.to_string()), map_bind))
}

/// A connected byte stream.
#[derive(Debug)]
pub(crate) enum Stream {
    /// TCP.
    Tcp(TcpStream),
    /// Unix domain socket (ipc, abstract, inproc).
    Unix(UnixStream),
    /// TLS over TCP.
    Tls(TlsStream),
    /// WebSocket (over TCP or TLS), adapted to tcp framing.
    Ws(WsStream),
}

impl Stream {
    /// A second handle on the same stream (for the writer thread).
    pub(crate) fn try_clone(&self) -> io::Result<Stream> {
        Ok(match self {
            Stream::Tcp(s) => Stream::Tcp(s.try_clone()?),
            Stream::Unix(s) => Stream::Unix(s.try_clone()?),
            Stream::Tls(s) => Stream::Tls(s.clone()),
            Stream::Ws(s) => Stream::Ws(s.clone()),
        })
    }

    /// The socket of a plain tcp or unix stream, which may be written directly; `None` for
    /// TLS and WebSocket, whose writes go through their session.
    pub(crate) fn socket_fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        use std::os::fd::AsFd;
        match self {
            Stream::Tcp(s) => Some(s.as_fd()),
            Stream::Unix(s) => Some(s.as_fd()),
            Stream::Tls(_) | Stream::Ws(_) => None,
        }
    }

    /// Shuts both directions down, waking any thread blocked on it.
    pub(crate) fn shutdown(&self) {
        // Already-closed streams report an error that changes nothing.
        let _ = match self {
            Stream::Tcp(s) => s.shutdown(Shutdown::Both),
            Stream::Unix(s) => s.shutdown(Shutdown::Both),
            Stream::Tls(s) => s.tcp().shutdown(Shutdown::Both),
            Stream::Ws(s) => {
                s.base().shutdown();
                Ok(())
            }
        };
    }

    /// Sets the read timeout (used during the handshake only).
    pub(crate) fn set_read_timeout(&self, d: Option<std::time::Duration>) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.set_read_timeout(d),
            Stream::Unix(s) => s.set_read_timeout(d),
            Stream::Tls(s) => s.tcp().set_read_timeout(d),
            Stream::Ws(s) => s.base().set_read_timeout(d),
        }
    }
}

fn map_connect(e: io::Error) -> Error {
    match e.kind() {
        // A missing ipc path means nobody listens there.
        io::ErrorKind::ConnectionRefused | io::ErrorKind::NotFound => Error::ConnectionRefused,
        _ => Error::Io(e),
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
            Stream::Ws(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
            Stream::Ws(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.flush(),
            Stream::Unix(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
            Stream::Ws(s) => s.flush(),
        }
    }
}

enum Sock {
    /// tcp, or tls+tcp with its server configuration.
    Tcp(TcpListener, Option<Arc<rustls::ServerConfig>>),
    Unix(UnixListener),
    Inproc(Receiver<UnixStream>),
    /// ws/wss: upgraded connections for this path from the shared HTTP server.
    Ws(Receiver<ws_server::Upgrading>, String),
}

/// A bound listening socket.
pub(crate) struct Bound {
    sock: Sock,
    /// Where it listens (the bound address; what `release` wakes and frees).
    local: Addr,
    /// The URL to report: as given, with the bound port.
    url: String,
    me: Local,
    tcp: Tcp,
}

impl std::fmt::Debug for Bound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bound").field("url", &self.url).finish()
    }
}

impl Bound {
    /// Binds `url`. A stale ipc file (nobody accepting) is replaced, as NNG does. TLS schemes
    /// need the server part of `opts.tls`; other schemes refuse TLS options (code 9).
    pub(crate) fn bind(url: &Url, opts: &TransportOptions, me: Local) -> Result<Bound, Error> {
        check_tls_scheme(url, opts)?;
        let server_tls = || {
            opts.tls
                .as_ref()
                .and_then(|t| t.rustls_server_config())
                .ok_or_else(|| missing(url, "server part (certificate and key)"))
        };
        let family = url.scheme.family();
        let (sock, local) = match &url.addr {
            Addr::Tcp(h, p) | Addr::TlsTcp(h, p) => {
                let tls = match &url.addr {
                    Addr::TlsTcp(..) => Some(server_tls()?),
                    _ => None,
                };
                let l = tcp_bind(h, *p, family)?;
                let a = l.local_addr()?;
                let local = Addr::Tcp(a.ip().to_string(), a.port());
                (Sock::Tcp(l, tls), local)
            }
            Addr::Ws {
                host,
                port,
                path,
                tls,
            } => {
                let cfg = if *tls { Some(server_tls()?) } else { None };
                let path = if path.is_empty() { "/" } else { path };
                let addrs = bind_addrs(host, *port, family)?;
                let (a, rx) = ws_server::serve(&addrs, path, cfg)?;
                let local = Addr::Ws {
                    host: a.ip().to_string(),
                    port: a.port(),
                    path: path.to_string(),
                    tls: *tls,
                };
                (Sock::Ws(rx, path.to_string()), local)
            }
            Addr::Ipc(path) => (Sock::Unix(bind_ipc(path)?), Addr::Ipc(path.clone())),
            Addr::Abstract(name) => {
                let l = UnixListener::bind_addr(&abstract_addr(name)?).map_err(map_bind)?;
                (Sock::Unix(l), Addr::Abstract(name.clone()))
            }
            Addr::Inproc(name) => (
                Sock::Inproc(inproc::bind(name)?),
                Addr::Inproc(name.clone()),
            ),
        };
        let url = match local.port() {
            Some(p) => url.with_port(p).to_string(),
            None => url.to_string(),
        };
        Ok(Bound {
            sock,
            local,
            url,
            me,
            tcp: Tcp::of(opts),
        })
    }

    /// The bound address (tcp port 0 resolved, wildcard hosts as bound).
    pub(crate) fn local(&self) -> Addr {
        self.local.clone()
    }

    /// The URL as given with the bound port (`tcp://*:0` gives `tcp://:40449`).
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// Waits for the next connection. TLS handshakes happen later, on the connection's own
    /// thread (WebSocket requests on the HTTP server's), so a slow peer holds up nobody else.
    pub(crate) fn accept(&self) -> io::Result<Stream> {
        match &self.sock {
            Sock::Tcp(l, tls) => {
                let (s, _) = l.accept()?;
                tcp_tune(&s, self.tcp)?;
                match tls {
                    None => Ok(Stream::Tcp(s)),
                    Some(cfg) => TlsStream::accept(s, Arc::clone(cfg))
                        .map(Stream::Tls)
                        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e)),
                }
            }
            Sock::Unix(l) => Ok(Stream::Unix(l.accept()?.0)),
            Sock::Inproc(rx) => rx
                .recv()
                .map(Stream::Unix)
                .map_err(|_| io::ErrorKind::NotConnected.into()),
            Sock::Ws(rx, path) => {
                let c = rx.recv().map_err(|_| io::ErrorKind::NotConnected)?;
                let (proto, max) = (self.me.proto, self.me.recv_max);
                WsStream::accept(c.base, c.io, c.head, path.clone(), proto, max).map(Stream::Ws)
            }
        }
    }
}

fn bind_ipc(path: &PathBuf) -> Result<UnixListener, Error> {
    match UnixListener::bind(path) {
        Ok(l) => Ok(l),
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
            if UnixStream::connect(path).is_ok() {
                return Err(Error::AddressInUse);
            }
            std::fs::remove_file(path)?;
            UnixListener::bind(path).map_err(map_bind)
        }
        Err(e) => Err(map_bind(e)),
    }
}

/// After a listener's stop flag is set: wakes its blocked accept (a throwaway connection),
/// and frees what it holds (the ipc file, the inproc name).
pub(crate) fn release(local: &Addr) {
    match local {
        Addr::Tcp(h, p) => {
            let ip: IpAddr = match h.parse() {
                Ok(IpAddr::V4(a)) if a.is_unspecified() => IpAddr::from([127, 0, 0, 1]),
                Ok(IpAddr::V6(a)) if a.is_unspecified() => {
                    IpAddr::from(std::net::Ipv6Addr::LOCALHOST)
                }
                Ok(ip) => ip,
                Err(_) => return,
            };
            let _woken = TcpStream::connect((ip, *p));
        }
        Addr::Ipc(path) => {
            let _woken = UnixStream::connect(path);
            let _gone = std::fs::remove_file(path);
        }
        Addr::Abstract(name) => {
            if let Ok(a) = abstract_addr(name) {
                let _woken = UnixStream::connect_addr(&a);
            }
        }
        Addr::Inproc(name) => inproc::release(name),
        Addr::Ws {
            host, port, path, ..
        } => {
            if let Ok(ip) = host.parse::<IpAddr>() {
                ws_server::release(SocketAddr::new(ip, *port), path);
            }
        }
        Addr::TlsTcp(..) => {}
    }
}

fn map_bind(e: io::Error) -> Error {
    match e.kind() {
        io::ErrorKind::AddrInUse => Error::AddressInUse,
        io::ErrorKind::AddrNotAvailable => Error::AddressInvalid(e.to_string()),
        _ => Error::Io(e),
    }
}

#[cfg(test)]
mod tests;
