//! A small blocking driver: std sockets (tcp, unix, TLS, WebSocket) and threads around one
//! protocol machine.
//!
//! All state sits behind one mutex (module `shared`); every thread (pipe readers and writers, the
//! timer, callers of send/recv) changes it through the machine, then writes the machine's
//! transmits: straight from that thread when the pipe is idle and the bytes fit the socket
//! buffer, else through the pipe's writer thread. Blocked callers wait on one condition
//! variable, the timer on its own, so a message wakes only who waits for it.

mod aio;
mod context;
mod endpoint;
mod handles;
mod inproc;
mod pipe;
mod shared;
mod stream;
mod tls;
mod url;
mod wire;
mod ws;
mod ws_server;
mod ws_upgrade;

use std::sync::Arc;
use std::time::{Duration, Instant};

pub use aio::{Done, OpId};
pub use context::Context;
pub use endpoint::{EndpointKind, EndpointStats};
pub use handles::{Dialer, Listener};
pub use stream::{Addr, TransportOptions};
pub use url::{Family, Scheme, Url};

use crate::error::Error;
use crate::protocol::Protocol;
use crate::sm::{self, ContextId, Machine, PipeId, Received, SmOption};
use aio::Op;
use shared::{cancel, fire, local_of, Inner, PipeHandle, Shared};

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

/// A pipe (connection) was added to or removed from a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PipeEvent {
    /// Fully connected (handshake done, known to the protocol).
    Added(PipeId),
    /// Gone.
    Removed(PipeId),
}

/// Told of every pipe event of a socket, on the driver thread where it happened, after the
/// socket's state reflects it. Must not block on the socket.
pub type PipeObserver = Arc<dyn Fn(PipeEvent) + Send + Sync>;

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
        let shared = Shared::start(machine, &opts, seed())?;
        Ok(Socket { shared })
    }

    /// The socket's protocol.
    pub fn protocol(&self) -> Protocol {
        self.shared.proto
    }

    /// A listener for `url`, not started (options may be set first).
    pub fn listener(&self, url: &str) -> Result<Listener, Error> {
        self.listener_with(url, &TransportOptions::default())
    }

    /// A listener for `url` with transport options (TLS for `tls+tcp://` and `wss://`).
    pub fn listener_with(&self, url: &str, opts: &TransportOptions) -> Result<Listener, Error> {
        handles::create(&self.shared, EndpointKind::Listener, url, opts).map(Listener)
    }

    /// A dialer for `url`, not started.
    pub fn dialer(&self, url: &str) -> Result<Dialer, Error> {
        self.dialer_with(url, &TransportOptions::default())
    }

    /// A dialer for `url` with transport options.
    pub fn dialer_with(&self, url: &str, opts: &TransportOptions) -> Result<Dialer, Error> {
        handles::create(&self.shared, EndpointKind::Dialer, url, opts).map(Dialer)
    }

    /// Listens at `url`; returns the bound URL (tcp port 0 replaced by the real port).
    pub fn listen(&self, url: &str) -> Result<String, Error> {
        self.listen_with(url, &TransportOptions::default())
    }

    /// Listens at `url` with transport options; returns the URL as given with port 0
    /// resolved (`tcp://*:0` gives `tcp://:40449`).
    pub fn listen_with(&self, url: &str, opts: &TransportOptions) -> Result<String, Error> {
        let l = self.listener_with(url, opts)?;
        match l.start() {
            Ok(url) => Ok(url),
            Err(e) => {
                let _gone = l.close();
                Err(e)
            }
        }
    }

    /// Dials `url` now (failing with e.g. `ConnectionRefused`), then keeps reconnecting in
    /// the background whenever the connection drops.
    pub fn dial(&self, url: &str) -> Result<(), Error> {
        self.dial_with(url, &TransportOptions::default())
    }

    /// [`Socket::dial`] with transport options: the TLS handshake (and a WebSocket upgrade)
    /// completes before it returns, so a refused certificate fails here (27).
    pub fn dial_with(&self, url: &str, opts: &TransportOptions) -> Result<(), Error> {
        let d = self.dialer_with(url, opts)?;
        d.start(true).inspect_err(|_| {
            let _gone = d.close();
        })
    }

    /// Dials `url` in the background, retrying until it connects (never fails for an
    /// unreachable address).
    pub fn dial_async(&self, url: &str) -> Result<(), Error> {
        self.dial_async_with(url, &TransportOptions::default())
    }

    /// [`Socket::dial_async`] with transport options (fails only for a bad URL or options).
    pub fn dial_async_with(&self, url: &str, opts: &TransportOptions) -> Result<(), Error> {
        self.dialer_with(url, opts)?.start(false)
    }

    /// Sends `body` (`timeout`: `None` blocks, zero is non-blocking).
    pub fn send(&self, body: &[u8], timeout: Option<Duration>) -> Result<(), Error> {
        self.send_on(ContextId::SOCKET, body.to_vec(), None, timeout)
    }

    /// [`Socket::send`] of a body the caller gives up: no copy is made.
    pub fn send_vec(&self, body: Vec<u8>, timeout: Option<Duration>) -> Result<(), Error> {
        self.send_on(ContextId::SOCKET, body, None, timeout)
    }

    /// Sends `body` to one pipe (poly sockets; other protocols ignore `pipe`).
    pub fn send_to(
        &self,
        pipe: PipeId,
        body: &[u8],
        timeout: Option<Duration>,
    ) -> Result<(), Error> {
        self.send_on(ContextId::SOCKET, body.to_vec(), Some(pipe), timeout)
    }

    /// Receives a message body.
    pub fn recv(&self, timeout: Option<Duration>) -> Result<Vec<u8>, Error> {
        self.recv_msg(timeout).map(Received::into_body)
    }

    /// Receives a message with the id of the pipe it came from.
    pub fn recv_msg(&self, timeout: Option<Duration>) -> Result<Received, Error> {
        self.shared
            .blocking(timeout, |m, now| m.recv(ContextId::SOCKET, now))
    }

    /// Sends in the background: `done` is called once the message is queued for a pipe, or
    /// with the error (`TimedOut` after `timeout`, `Closed`). `None` waits without limit.
    pub fn send_async(
        &self,
        body: Vec<u8>,
        pipe: Option<PipeId>,
        timeout: Option<Duration>,
        done: Done<()>,
    ) -> OpId {
        let op = Op::Send { body, pipe, done };
        self.shared.park(ContextId::SOCKET, timeout, op)
    }

    /// Receives in the background: `done` gets the message or the error. Pending receives
    /// are served in the order they were posted.
    pub fn recv_async(&self, timeout: Option<Duration>, done: Done<Received>) -> OpId {
        self.shared.park(ContextId::SOCKET, timeout, Op::Recv(done))
    }

    /// A handle for other threads on the socket's own operations.
    pub fn op_handle(&self) -> OpHandle {
        OpHandle {
            shared: Arc::clone(&self.shared),
            ctx: ContextId::SOCKET,
        }
    }

    /// Cancels a pending asynchronous operation of this socket or its contexts: its callback
    /// is dropped uncalled. Whether it was still pending.
    pub fn cancel(&self, op: OpId) -> bool {
        cancel(&self.shared, op)
    }

    fn send_on(
        &self,
        ctx: ContextId,
        mut body: Vec<u8>,
        pipe: Option<PipeId>,
        timeout: Option<Duration>,
    ) -> Result<(), Error> {
        self.shared
            .blocking(timeout, |m, now| m.send(ctx, &mut body, pipe, now))
    }

    /// Sets a protocol option on the socket (contexts opened later inherit it).
    pub fn set_option(&self, opt: SmOption) -> Result<(), Error> {
        let mut g = self.shared.lock();
        if g.closed {
            return Err(Error::Closed);
        }
        g.machine.set_option(ContextId::SOCKET, opt)?;
        self.shared.settle(g);
        Ok(())
    }

    /// Sets `recv-size-max` for connections made from now on (0: no limit).
    pub fn set_recv_max(&self, max: usize) {
        self.shared.lock().recv_max = max;
    }

    /// The current `recv-size-max`.
    pub fn recv_max(&self) -> usize {
        self.shared.lock().recv_max
    }

    /// Sets the pause between a dialer's reconnection attempts.
    pub fn set_reconnect(&self, d: Duration) {
        self.shared.lock().reconnect = d;
    }

    /// The pause between a dialer's reconnection attempts.
    pub fn reconnect(&self) -> Duration {
        self.shared.lock().reconnect
    }

    /// Installs (or removes, `None`) the observer of pipe events.
    pub fn set_pipe_observer(&self, observer: Option<PipeObserver>) {
        self.shared.lock().observer = observer;
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
        Ok(Context::new(Arc::clone(&self.shared), id))
    }

    /// Ids of the connected pipes.
    pub fn pipes(&self) -> Vec<PipeId> {
        let mut v: Vec<_> = self.shared.lock().pipes.keys().copied().collect();
        v.sort();
        v
    }

    /// Number of dialers and of listeners (not closed).
    pub fn endpoint_counts(&self) -> (usize, usize) {
        let g = self.shared.lock();
        let d = g
            .endpoints
            .values()
            .filter(|e| e.kind == EndpointKind::Dialer)
            .count();
        (d, g.endpoints.len() - d)
    }

    /// Whether the socket is closed.
    pub fn is_closed(&self) -> bool {
        self.shared.lock().closed
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

    /// Closes the socket: endpoints stop, pipes drop, blocked calls and pending asynchronous
    /// operations fail with `Closed`. Closing twice reports `Closed`.
    pub fn close(&self) -> Result<(), Error> {
        let mut g = self.shared.lock();
        if g.closed {
            return Err(Error::Closed);
        }
        g.closed = true;
        let endpoints: Vec<_> = g.endpoints.drain().map(|(_, e)| e).collect();
        for p in g.pipes.values() {
            if let Some(s) = &p.stream {
                s.shutdown();
            }
        }
        let fires = g.fail_waiters(None, || Error::Closed);
        drop(g);
        self.shared.wake_all();
        // Unlocked: a listener's stop waits for its accept thread to let go of the address.
        for e in endpoints {
            e.stop();
        }
        fire(fires);
        Ok(())
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        // Dropping the owner closes the socket, as nng_close; contexts then report Closed.
        let _already_closed = self.close();
    }
}

/// A handle on a socket's or context's operations for other threads (completion callbacks,
/// cancellers): cancel parked operations, send without waiting. Keeps the socket's state
/// alive, not the socket open.
#[derive(Clone)]
pub struct OpHandle {
    shared: Arc<Shared>,
    ctx: ContextId,
}

impl std::fmt::Debug for OpHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpHandle")
            .field("ctx", &self.ctx.0)
            .finish()
    }
}

impl OpHandle {
    /// Cancels a pending asynchronous operation (see [`Socket::cancel`]).
    pub fn cancel(&self, op: OpId) -> bool {
        cancel(&self.shared, op)
    }

    /// Sends on the socket or context (`timeout` as for [`Socket::send`]).
    pub fn send(&self, body: &[u8], timeout: Option<Duration>) -> Result<(), Error> {
        let (ctx, mut body) = (self.ctx, body.to_vec());
        self.shared
            .blocking(timeout, |m, now| m.send(ctx, &mut body, None, now))
    }
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
