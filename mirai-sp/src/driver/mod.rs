//! A small blocking driver: std sockets (tcp, unix, TLS, WebSocket) and threads around one
//! protocol machine.
//!
//! All state sits behind one mutex; every thread (pipe readers and writers, the timer, callers
//! of send/recv) changes it through the machine, flushes the machine's transmits into the
//! per-pipe write queues, and wakes the others through one condition variable. Simple rather
//! than fast: the project's native transport will drive the same machines later.

mod endpoint;
mod inproc;
mod pipe;
mod stream;
mod tls;
mod url;
mod ws;
mod ws_server;
mod ws_upgrade;

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::{mpsc, Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub use stream::{Addr, TransportOptions};
pub use url::{Family, Scheme, Url};

use crate::error::Error;
use crate::frame::Framing;
use crate::protocol::Protocol;
use crate::sm::{self, ContextId, Machine, PipeId, Received, SmError, SmOption};
use endpoint::ListenerHandle;
use stream::{Bound, Local, Stream, Target};

/// Socket-wide settings, fixed at creation.
#[derive(Debug, Clone)]
pub struct SocketOptions {
    /// Largest message accepted from a peer (`recv-size-max`; 0 = no limit, NNG's default).
    pub recv_max: usize,
    /// Pause between reconnection attempts of a dialer (`reconnect-time-min`).
    pub reconnect: Duration,
}

impl Default for SocketOptions {
    fn default() -> Self {
        SocketOptions {
            recv_max: 0,
            reconnect: Duration::from_millis(1000),
        }
    }
}

pub(crate) struct PipeHandle {
    tx: mpsc::Sender<Vec<u8>>,
    stream: Option<Stream>,
    framing: Framing,
}

pub(crate) struct Inner {
    machine: Box<dyn Machine>,
    pipes: HashMap<PipeId, PipeHandle>,
    listeners: Vec<ListenerHandle>,
    closed: bool,
    next_pipe: u32,
    recv_max: usize,
    reconnect: Duration,
}

impl Inner {
    /// Moves the machine's transmits into the pipes' write queues.
    fn flush(&mut self) {
        while let Some(t) = self.machine.poll_transmit() {
            if let Some(p) = self.pipes.get(&t.pipe) {
                let mut frame = Vec::with_capacity(p.framing.prefix_len() + t.msg.len());
                p.framing.encode_prefix(t.msg.len(), &mut frame);
                frame.extend_from_slice(&t.msg);
                // A dead writer means the pipe is going away; its reader removes it.
                let _queued = p.tx.send(frame);
            }
        }
    }

    /// Positive 31-bit ids that do not look sequential (as NNG's), never reused while live.
    fn alloc_pipe_id(&mut self) -> PipeId {
        loop {
            self.next_pipe = self
                .next_pipe
                .wrapping_mul(1_103_515_245)
                .wrapping_add(12_345);
            let id = self.next_pipe & 0x7fff_ffff;
            if id != 0 && !self.pipes.contains_key(&PipeId(id)) {
                return PipeId(id);
            }
        }
    }
}

pub(crate) struct Shared {
    proto: Protocol,
    inner: Mutex<Inner>,
    cv: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere must not wedge the socket; the state stays consistent per call.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn wait<'a>(&self, g: MutexGuard<'a, Inner>, d: Option<Duration>) -> MutexGuard<'a, Inner> {
        match d {
            Some(d) => self
                .cv
                .wait_timeout(g, d)
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0),
            None => self.cv.wait(g).unwrap_or_else(|e| e.into_inner()),
        }
    }

    fn drop_pipe(&self, pipe: PipeId) {
        let mut g = self.lock();
        if g.pipes.remove(&pipe).is_some() {
            g.machine.remove_pipe(pipe, Instant::now());
            g.flush();
        }
        self.cv.notify_all();
    }

    /// Runs `op` until it stops saying "try again", the timeout passes or the socket closes.
    /// `timeout`: `None` waits forever, zero does not wait (`TryAgain`), else `TimedOut`.
    fn blocking<T>(
        &self,
        timeout: Option<Duration>,
        mut op: impl FnMut(&mut dyn Machine, Instant) -> Result<T, SmError>,
    ) -> Result<T, Error> {
        let deadline = timeout.map(|d| Instant::now() + d);
        let mut g = self.lock();
        let mut waited = false;
        loop {
            if g.closed {
                return Err(Error::Closed);
            }
            let now = Instant::now();
            let r = op(g.machine.as_mut(), now);
            g.flush();
            match r {
                Ok(v) => {
                    self.cv.notify_all();
                    return Ok(v);
                }
                Err(SmError::TryAgain) => {}
                // The state ended while we waited (a survey's deadline): that is a timeout.
                Err(SmError::IncorrectState) if waited => return Err(Error::TimedOut),
                Err(e) => return Err(e.into()),
            }
            let left = match deadline {
                Some(d) if now >= d => {
                    return Err(if timeout == Some(Duration::ZERO) {
                        Error::TryAgain
                    } else {
                        Error::TimedOut
                    })
                }
                Some(d) => Some(d - now),
                None => None,
            };
            g = self.wait(g, left);
            waited = true;
        }
    }
}

/// An SP socket: one protocol machine with its listeners, dialers and pipes.
pub struct Socket {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Socket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Socket")
            .field("protocol", &self.shared.proto)
            .finish()
    }
}

impl Socket {
    /// Opens a socket for `proto` with default options.
    pub fn new(proto: Protocol) -> Result<Socket, Error> {
        Socket::with_machine(sm::new_machine(proto), SocketOptions::default())
    }

    /// Opens a pair v1 socket in polyamorous mode (many peers, `send_to` one).
    pub fn poly() -> Result<Socket, Error> {
        Socket::with_machine(Box::new(sm::Pair::v1(true)), SocketOptions::default())
    }

    /// Opens a socket around any machine.
    pub fn with_machine(machine: Box<dyn Machine>, opts: SocketOptions) -> Result<Socket, Error> {
        let proto = machine.protocol();
        let inner = Inner {
            machine,
            pipes: HashMap::new(),
            listeners: Vec::new(),
            closed: false,
            next_pipe: seed(),
            recv_max: opts.recv_max,
            reconnect: opts.reconnect,
        };
        let shared = Arc::new(Shared {
            proto,
            inner: Mutex::new(inner),
            cv: Condvar::new(),
        });
        spawn_timer(&shared)?;
        Ok(Socket { shared })
    }

    /// The socket's protocol.
    pub fn protocol(&self) -> Protocol {
        self.shared.proto
    }

    /// Listens at `url`; returns the bound URL (tcp port 0 replaced by the real port).
    pub fn listen(&self, url: &str) -> Result<String, Error> {
        self.listen_with(url, &TransportOptions::default())
    }

    /// Listens at `url` with transport options (TLS for `tls+tcp://` and `wss://`); returns
    /// the URL as given with port 0 resolved (`tcp://*:0` gives `tcp://:40449`).
    pub fn listen_with(&self, url: &str, opts: &TransportOptions) -> Result<String, Error> {
        let url = Url::parse(url)?;
        if self.shared.lock().closed {
            return Err(Error::Closed);
        }
        let bound = Bound::bind(&url, opts, self.local())?;
        let local = bound.local();
        let url_out = bound.url().to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let done =
            endpoint::spawn_listener(&self.shared, bound, Arc::clone(&stop), url.addr.framing())?;
        let mut g = self.shared.lock();
        g.listeners.push(ListenerHandle { stop, local, done });
        if g.closed {
            // Closed meanwhile: do not leave the listener behind.
            if let Some(l) = g.listeners.pop() {
                l.stop();
            }
            return Err(Error::Closed);
        }
        Ok(url_out)
    }

    /// Dials `url` now (failing with e.g. `ConnectionRefused`), then keeps reconnecting in
    /// the background whenever the connection drops.
    pub fn dial(&self, url: &str) -> Result<(), Error> {
        self.dial_with(url, &TransportOptions::default())
    }

    /// [`Socket::dial`] with transport options: the TLS handshake (and a WebSocket upgrade)
    /// completes before it returns, so a refused certificate fails here (27).
    pub fn dial_with(&self, url: &str, opts: &TransportOptions) -> Result<(), Error> {
        let target = Target::new(Url::parse(url)?, opts, self.local())?;
        if self.shared.lock().closed {
            return Err(Error::Closed);
        }
        let first = target.connect()?;
        endpoint::spawn_dialer(&self.shared, target, Some(first))?;
        Ok(())
    }

    /// Dials `url` in the background, retrying until it connects (never fails for an
    /// unreachable address).
    pub fn dial_async(&self, url: &str) -> Result<(), Error> {
        self.dial_async_with(url, &TransportOptions::default())
    }

    /// [`Socket::dial_async`] with transport options (fails only for a bad URL or options).
    pub fn dial_async_with(&self, url: &str, opts: &TransportOptions) -> Result<(), Error> {
        let target = Target::new(Url::parse(url)?, opts, self.local())?;
        if self.shared.lock().closed {
            return Err(Error::Closed);
        }
        endpoint::spawn_dialer(&self.shared, target, None)?;
        Ok(())
    }

    /// What connections need to know about this socket.
    fn local(&self) -> Local {
        Local {
            proto: self.shared.proto,
            recv_max: self.shared.lock().recv_max,
        }
    }

    /// Sends `body` (`timeout`: `None` blocks, zero is non-blocking).
    pub fn send(&self, body: &[u8], timeout: Option<Duration>) -> Result<(), Error> {
        self.send_on(ContextId::SOCKET, body, None, timeout)
    }

    /// Sends `body` to one pipe (poly sockets; other protocols ignore `pipe`).
    pub fn send_to(
        &self,
        pipe: PipeId,
        body: &[u8],
        timeout: Option<Duration>,
    ) -> Result<(), Error> {
        self.send_on(ContextId::SOCKET, body, Some(pipe), timeout)
    }

    /// Receives a message body.
    pub fn recv(&self, timeout: Option<Duration>) -> Result<Vec<u8>, Error> {
        self.recv_msg(timeout).map(|r| r.body)
    }

    /// Receives a message with the id of the pipe it came from.
    pub fn recv_msg(&self, timeout: Option<Duration>) -> Result<Received, Error> {
        self.recv_on(ContextId::SOCKET, timeout)
    }

    fn send_on(
        &self,
        ctx: ContextId,
        body: &[u8],
        pipe: Option<PipeId>,
        timeout: Option<Duration>,
    ) -> Result<(), Error> {
        self.shared
            .blocking(timeout, |m, now| m.send(ctx, body.to_vec(), pipe, now))
    }

    fn recv_on(&self, ctx: ContextId, timeout: Option<Duration>) -> Result<Received, Error> {
        self.shared.blocking(timeout, |m, now| m.recv(ctx, now))
    }

    /// Sets a protocol option on the socket (contexts opened later inherit it).
    pub fn set_option(&self, opt: SmOption) -> Result<(), Error> {
        self.set_option_on(ContextId::SOCKET, opt)
    }

    fn set_option_on(&self, ctx: ContextId, opt: SmOption) -> Result<(), Error> {
        let mut g = self.shared.lock();
        if g.closed {
            return Err(Error::Closed);
        }
        g.machine.set_option(ctx, opt)?;
        self.shared.cv.notify_all();
        Ok(())
    }

    /// Subscribes a sub socket to messages starting with `topic` (empty: all).
    pub fn subscribe(&self, topic: &[u8]) -> Result<(), Error> {
        self.set_option(SmOption::Subscribe(topic.to_vec()))
    }

    /// Removes a subscription (`NotFound` if there was none).
    pub fn unsubscribe(&self, topic: &[u8]) -> Result<(), Error> {
        self.set_option(SmOption::Unsubscribe(topic.to_vec()))
    }

    /// Opens a context (req, rep, sub, surveyor, respondent).
    pub fn context(&self) -> Result<Context, Error> {
        let mut g = self.shared.lock();
        if g.closed {
            return Err(Error::Closed);
        }
        let id = g.machine.open_context()?;
        Ok(Context {
            shared: Arc::clone(&self.shared),
            id,
        })
    }

    /// Ids of the connected pipes.
    pub fn pipes(&self) -> Vec<PipeId> {
        let mut v: Vec<_> = self.shared.lock().pipes.keys().copied().collect();
        v.sort();
        v
    }

    /// Waits until at least `n` pipes are connected (test and startup helper).
    pub fn wait_pipes(&self, n: usize, timeout: Duration) -> Result<(), Error> {
        let deadline = Instant::now() + timeout;
        let mut g = self.shared.lock();
        loop {
            if g.closed {
                return Err(Error::Closed);
            }
            if g.pipes.len() >= n {
                return Ok(());
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(Error::TimedOut);
            }
            g = self.shared.wait(g, Some(deadline - now));
        }
    }

    /// Closes the socket: endpoints stop, pipes drop, blocked calls fail with `Closed`.
    /// Closing twice reports `Closed`.
    pub fn close(&self) -> Result<(), Error> {
        let mut g = self.shared.lock();
        if g.closed {
            return Err(Error::Closed);
        }
        g.closed = true;
        for l in g.listeners.drain(..) {
            l.stop();
        }
        for (_, p) in g.pipes.drain() {
            if let Some(s) = &p.stream {
                s.shutdown();
            }
        }
        self.shared.cv.notify_all();
        Ok(())
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        // Dropping the owner closes the socket, as nng_close; contexts then report Closed.
        let _already_closed = self.close();
    }
}

/// Independent request/reply, survey or subscription state on a socket.
pub struct Context {
    shared: Arc<Shared>,
    id: ContextId,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context").field("id", &self.id.0).finish()
    }
}

impl Context {
    /// The context's id within its socket.
    pub fn id(&self) -> ContextId {
        self.id
    }

    /// Sends on this context (a request, survey or reply).
    pub fn send(&self, body: &[u8], timeout: Option<Duration>) -> Result<(), Error> {
        let ctx = self.id;
        self.shared
            .blocking(timeout, |m, now| m.send(ctx, body.to_vec(), None, now))
            .map_err(ctx_closed)
    }

    /// Receives on this context.
    pub fn recv(&self, timeout: Option<Duration>) -> Result<Vec<u8>, Error> {
        let ctx = self.id;
        self.shared
            .blocking(timeout, |m, now| m.recv(ctx, now))
            .map(|r| r.body)
            .map_err(ctx_closed)
    }

    /// Sets a protocol option for this context only.
    pub fn set_option(&self, opt: SmOption) -> Result<(), Error> {
        let mut g = self.shared.lock();
        if g.closed {
            return Err(Error::Closed);
        }
        g.machine.set_option(self.id, opt).map_err(|e| match e {
            SmError::NotFound => Error::Closed,
            e => e.into(),
        })
    }

    /// Closes the context; later operations on it report `Closed`.
    pub fn close(&self) -> Result<(), Error> {
        let mut g = self.shared.lock();
        if g.closed {
            return Err(Error::Closed);
        }
        g.machine
            .close_context(self.id)
            .map_err(|_| Error::Closed)?;
        self.shared.cv.notify_all();
        Ok(())
    }
}

/// A context the machine no longer knows has been closed.
fn ctx_closed(e: Error) -> Error {
    match e {
        Error::NotFound => Error::Closed,
        e => e,
    }
}

/// The timer thread: runs the machine's timers when due, until the socket closes.
fn spawn_timer(shared: &Arc<Shared>) -> Result<(), Error> {
    let sh = Arc::clone(shared);
    std::thread::Builder::new()
        .name("sp-timer".into())
        .spawn(move || {
            let mut g = sh.lock();
            loop {
                if g.closed {
                    return;
                }
                let now = Instant::now();
                match g.machine.poll_timeout() {
                    Some(t) if t <= now => {
                        g.machine.handle_timeout(now);
                        g.flush();
                        sh.cv.notify_all();
                    }
                    Some(t) => g = sh.wait(g, Some(t - now)),
                    None => g = sh.wait(g, None),
                }
            }
        })?;
    Ok(())
}

/// Seed for pipe ids: differs between sockets and runs.
fn seed() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static SOCKETS: AtomicU32 = AtomicU32::new(0);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    t ^ SOCKETS.fetch_add(0x9e37_79b9, Ordering::Relaxed) ^ std::process::id().rotate_left(16)
}
