//! Dialers and listeners: created on a socket, started (at once or later), closed on their own
//! or with the socket. A listener runs an accept thread and a thread per accepted connection;
//! a dialer runs a thread that keeps its connection and reconnects after it ends.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use super::pipe;
use super::stream::{self, Addr, Bound, Stream, Target, TransportOptions};
use super::url::Url;
use super::{local_of, Shared};
use crate::error::Error;

/// Dialer or listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointKind {
    /// Connects out.
    Dialer,
    /// Accepts connections.
    Listener,
}

/// Counters of an endpoint (NNG's statistics of the same names).
#[derive(Debug, Clone, Copy, Default)]
pub struct EndpointStats {
    /// Connections established (dialer) or accepted (listener).
    pub connect: u64,
    /// Connections refused by the handshake or the protocol.
    pub reject: u64,
    /// Connection attempts refused by the peer's host (dialer).
    pub refused: u64,
}

pub(super) struct Endpoint {
    pub(super) kind: EndpointKind,
    pub(super) url: Url,
    pub(super) opts: TransportOptions,
    pub(super) started: bool,
    pub(super) stop: Arc<AtomicBool>,
    /// A started listener's bound address (to wake its accept and remove its ipc file).
    pub(super) local: Option<Addr>,
    /// Disconnects once a started listener's accept thread has closed its socket.
    pub(super) done: Option<mpsc::Receiver<()>>,
    pub(super) recv_max: Option<usize>,
    pub(super) reconnect: Option<Duration>,
    pub(super) stats: EndpointStats,
}

impl Endpoint {
    pub(super) fn new(kind: EndpointKind, url: Url, opts: TransportOptions) -> Endpoint {
        Endpoint {
            kind,
            url,
            opts,
            started: false,
            stop: Arc::new(AtomicBool::new(false)),
            local: None,
            done: None,
            recv_max: None,
            reconnect: None,
            stats: EndpointStats::default(),
        }
    }

    /// Stops the endpoint's threads: a listener's blocked accept is woken and what it holds
    /// (an ipc file, an inproc name) freed, and the call waits (boundedly) until its listening
    /// socket is closed, so that the address can be listened on again at once, as with NNG.
    /// Not under the socket's lock.
    pub(super) fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(local) = &self.local {
            stream::release(local);
        }
        if let Some(done) = &self.done {
            let _ended = done.recv_timeout(STOP_WAIT);
        }
    }
}

/// Bound on waiting for an accept thread to let go of its socket.
const STOP_WAIT: Duration = Duration::from_secs(2);

/// Endpoint ids: positive, unique in the process.
pub(super) fn next_id() -> u32 {
    static NEXT: AtomicU32 = AtomicU32::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Binds and starts listener `id`; returns the URL as given with the bound port.
pub(super) fn start_listener(shared: &Arc<Shared>, id: u32) -> Result<String, Error> {
    let (url, opts, stop) = {
        let g = shared.lock();
        if g.closed {
            return Err(Error::Closed);
        }
        let ep = g.endpoints.get(&id).ok_or(Error::NotFound)?;
        if ep.started {
            return Err(Error::IncorrectState);
        }
        (ep.url.clone(), ep.opts.clone(), Arc::clone(&ep.stop))
    };
    let bound = Bound::bind(&url, &opts, local_of(shared))?;
    let local = bound.local();
    let url_out = bound.url().to_string();
    let (done_tx, done) = mpsc::channel::<()>();
    {
        let mut g = shared.lock();
        let closed = g.closed;
        match g.endpoints.get_mut(&id) {
            Some(ep) if !closed => {
                ep.started = true;
                ep.local = Some(local.clone());
                ep.done = Some(done);
            }
            // Closed meanwhile: drop the binding (and an ipc file, an inproc name) again.
            _ => {
                drop(bound);
                stream::release(&local);
                return Err(if closed {
                    Error::Closed
                } else {
                    Error::NotFound
                });
            }
        }
    }
    let framing = url.addr.framing();
    let sh = Arc::clone(shared);
    let spawned = std::thread::Builder::new()
        .name("sp-accept".into())
        .spawn(move || loop {
            let conn = bound.accept();
            if stop.load(Ordering::SeqCst) {
                drop(bound);
                drop(done_tx);
                return;
            }
            let Ok(stream) = conn else {
                // Transient accept errors (e.g. out of files): back off briefly.
                std::thread::sleep(Duration::from_millis(10));
                continue;
            };
            let sh2 = Arc::clone(&sh);
            let spawned = std::thread::Builder::new()
                .name("sp-pipe".into())
                .spawn(move || drop(pipe::run(&sh2, stream, framing, id, &mut None)));
            if spawned.is_err() {
                std::thread::sleep(Duration::from_millis(10));
            }
        });
    if let Err(e) = spawned {
        let mut g = shared.lock();
        if let Some(ep) = g.endpoints.remove(&id) {
            ep.stop();
        }
        return Err(e.into());
    }
    Ok(url_out)
}

/// Starts dialer `id`. `sync`: connect now and wait for the handshake, failing with its error;
/// else connect in the background, retrying until it succeeds.
pub(super) fn start_dialer(shared: &Arc<Shared>, id: u32, sync: bool) -> Result<(), Error> {
    let (url, opts, stop) = {
        let mut g = shared.lock();
        if g.closed {
            return Err(Error::Closed);
        }
        let ep = g.endpoints.get_mut(&id).ok_or(Error::NotFound)?;
        if ep.started {
            return Err(Error::IncorrectState);
        }
        (ep.url.clone(), ep.opts.clone(), Arc::clone(&ep.stop))
    };
    let target = Target::new(url, &opts, local_of(shared))?;
    let mut first = None;
    let mut added = None;
    if sync {
        match target.connect() {
            Ok(s) => first = Some(s),
            Err(e) => {
                if let Some(ep) = shared.lock().endpoints.get_mut(&id) {
                    ep.stats.refused += 1;
                }
                return Err(e);
            }
        }
        let (tx, rx) = mpsc::channel();
        added = Some((tx, rx));
    }
    if let Some(ep) = shared.lock().endpoints.get_mut(&id) {
        ep.started = true;
    }
    let report = added.as_ref().map(|(tx, _)| tx.clone());
    let sh = Arc::clone(shared);
    std::thread::Builder::new()
        .name("sp-dial".into())
        .spawn(move || dial_loop(&sh, id, &target, &stop, first, report))?;
    match added {
        Some((tx, rx)) => {
            drop(tx);
            // The first connection's outcome: added, or the error that ended it.
            rx.recv().unwrap_or(Err(Error::Closed))
        }
        None => Ok(()),
    }
}

fn dial_loop(
    sh: &Arc<Shared>,
    id: u32,
    target: &Target,
    stop: &AtomicBool,
    mut next: Option<Stream>,
    mut report: Option<mpsc::Sender<Result<(), Error>>>,
) {
    let framing = target.framing();
    loop {
        if sh.lock().closed || stop.load(Ordering::SeqCst) {
            return;
        }
        let stream = match next.take() {
            Some(s) => Ok(s),
            None => target.connect(),
        };
        match stream {
            Ok(s) => {
                let end = pipe::run(sh, s, framing, id, &mut report);
                if let Some(tx) = report.take() {
                    // A synchronous start whose first connection failed: it stays unstarted.
                    if let Some(ep) = sh.lock().endpoints.get_mut(&id) {
                        ep.started = false;
                    }
                    let _told = tx.send(Err(end));
                    return;
                }
            }
            Err(_) => {
                if let Some(ep) = sh.lock().endpoints.get_mut(&id) {
                    ep.stats.refused += 1;
                }
            }
        }
        // Wait out the reconnect interval, waking early if the socket or dialer closes.
        let mut g = sh.lock();
        let pause = g
            .endpoints
            .get(&id)
            .and_then(|e| e.reconnect)
            .unwrap_or(g.reconnect);
        let until = Instant::now() + pause;
        loop {
            if g.closed || stop.load(Ordering::SeqCst) {
                return;
            }
            let now = Instant::now();
            if now >= until {
                break;
            }
            g = sh.wait(g, Some(until - now));
        }
    }
}
