//! The HTTP server under `ws://` and `wss://` listeners: as in NNG, listeners on one
//! host:port share one server, each serving its own path (`ws://h:5555/a` and
//! `ws://h:5555/b` on two sockets). The server accepts, reads each upgrade request on a
//! short-lived thread of its own (bounded by [`HEAD_TIMEOUT`]), and hands the connection to
//! the listener of its path, or answers 404.

use std::collections::HashMap;
use std::io::{BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use super::stream::Stream;
use super::tls::TlsStream;
use super::ws_upgrade as up;
use crate::error::Error;

/// How long a client may take to send its upgrade request (and, for wss, its handshake).
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);

/// A connection whose upgrade request has been read: for the listener of its path.
pub(crate) struct Upgrading {
    /// The connection (tcp, or TLS for wss).
    pub(crate) base: Stream,
    /// Its buffered reader (it may already hold the first frames).
    pub(crate) io: BufReader<Stream>,
    /// The request head.
    pub(crate) head: String,
}

struct Server {
    tls: Option<Arc<rustls::ServerConfig>>,
    routes: Mutex<HashMap<String, Sender<Upgrading>>>,
    stop: AtomicBool,
    /// Disconnects once the accept thread has closed the listening socket.
    done: Mutex<Option<Receiver<()>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn servers() -> MutexGuard<'static, HashMap<SocketAddr, Arc<Server>>> {
    static S: OnceLock<Mutex<HashMap<SocketAddr, Arc<Server>>>> = OnceLock::new();
    lock(S.get_or_init(|| Mutex::new(HashMap::new())))
}

/// Serves `path` on the server at `want` (an explicit port: a server already there is
/// shared; port 0: a new one). Returns the bound address and the listener's connections.
/// A path already served, or wss and ws mixed on one port, is `AddressInUse`.
pub(crate) fn serve(
    want: &[SocketAddr],
    path: &str,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> Result<(SocketAddr, Receiver<Upgrading>), Error> {
    let mut all = servers();
    let (tx, rx) = mpsc::channel();
    if let Some((addr, server)) = want
        .iter()
        .filter(|a| a.port() != 0)
        .find_map(|a| all.get(a).map(|s| (*a, s)))
    {
        let mut routes = lock(&server.routes);
        if routes.contains_key(path) || server.tls.is_some() != tls.is_some() {
            return Err(Error::AddressInUse);
        }
        routes.insert(path.to_string(), tx);
        return Ok((addr, rx));
    }
    let mut last = None;
    let mut bound = None;
    for a in want {
        match TcpListener::bind(a) {
            Ok(l) => {
                bound = Some(l);
                break;
            }
            Err(e) => last = Some(e),
        }
    }
    let l = match (bound, last) {
        (Some(l), _) => l,
        (None, Some(e)) if e.kind() == std::io::ErrorKind::AddrInUse => {
            return Err(Error::AddressInUse)
        }
        (None, Some(e)) => return Err(Error::Io(e)),
        (None, None) => return Err(Error::AddressInvalid("no address to bind".into())),
    };
    let addr = l.local_addr()?;
    let (done_tx, done) = mpsc::channel::<()>();
    let server = Arc::new(Server {
        tls,
        routes: Mutex::new(HashMap::from([(path.to_string(), tx)])),
        stop: AtomicBool::new(false),
        done: Mutex::new(Some(done)),
    });
    let sv = Arc::clone(&server);
    std::thread::Builder::new()
        .name("sp-ws-http".into())
        .spawn(move || {
            accept_loop(&l, &sv);
            drop(l);
            drop(done_tx);
        })?;
    all.insert(addr, server);
    Ok((addr, rx))
}

/// Stops serving `path` at `addr`; the last path closes the server.
pub(crate) fn release(addr: SocketAddr, path: &str) {
    let mut all = servers();
    let Some(server) = all.get(&addr).cloned() else {
        return;
    };
    let empty = {
        let mut routes = lock(&server.routes);
        routes.remove(path);
        routes.is_empty()
    };
    if empty {
        server.stop.store(true, Ordering::SeqCst);
        all.remove(&addr);
        // Wake the blocked accept (wildcard addresses through loopback).
        let wake = match addr {
            SocketAddr::V4(a) if a.ip().is_unspecified() => {
                SocketAddr::from(([127, 0, 0, 1], a.port()))
            }
            SocketAddr::V6(a) if a.ip().is_unspecified() => {
                SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, a.port()))
            }
            a => a,
        };
        let _woken = TcpStream::connect(wake);
        // Let the port go before returning, so it can be listened on again at once.
        if let Some(done) = lock(&server.done).take() {
            let _ended = done.recv_timeout(Duration::from_secs(2));
        }
    }
}

fn accept_loop(l: &TcpListener, server: &Arc<Server>) {
    loop {
        let conn = l.accept();
        if server.stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok((tcp, _)) = conn else {
            // Transient accept errors (e.g. out of files): back off briefly.
            std::thread::sleep(Duration::from_millis(10));
            continue;
        };
        let sv = Arc::clone(server);
        let spawned = std::thread::Builder::new()
            .name("sp-ws-upgrade".into())
            .spawn(move || route(tcp, &sv));
        if spawned.is_err() {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Reads one upgrade request and hands the connection to its path's listener.
fn route(tcp: TcpStream, server: &Server) {
    if tcp.set_nodelay(true).is_err() || tcp.set_read_timeout(Some(HEAD_TIMEOUT)).is_err() {
        return;
    }
    let base = match &server.tls {
        Some(cfg) => match TlsStream::accept(tcp, Arc::clone(cfg)) {
            Ok(s) => Stream::Tls(s),
            Err(_) => return,
        },
        None => Stream::Tcp(tcp),
    };
    let Ok(reader) = base.try_clone() else {
        return;
    };
    let mut io = BufReader::with_capacity(64 * 1024, reader);
    // A peer that sends no request (or a wake-up connection) just goes away.
    let Ok(head) = up::read_head(&mut io) else {
        return;
    };
    if base.set_read_timeout(None).is_err() {
        return;
    }
    let target = head.lines().next().and_then(|l| l.split(' ').nth(1));
    let path = target.map(|t| t.split('?').next().unwrap_or(t));
    let tx = path.and_then(|p| lock(&server.routes).get(p).cloned());
    let refused = match tx {
        Some(tx) => tx
            .send(Upgrading {
                base: match base.try_clone() {
                    Ok(b) => b,
                    Err(_) => return,
                },
                io,
                head,
            })
            .is_err(),
        None => true,
    };
    if refused {
        let mut w = base;
        let _sent = w.write_all(up::refusal(404).as_bytes());
        w.shutdown();
    }
}
