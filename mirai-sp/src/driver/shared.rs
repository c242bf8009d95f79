//! The state every thread of a socket shares: the machine, pipes, endpoints and parked
//! operations behind one mutex, and the waits, wake-ups and timer around it.

use std::collections::{HashMap, VecDeque};
use std::sync::{mpsc, Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::aio::{Fire, Op, OpId, Waiter};
use super::endpoint::Endpoint;
use super::stream::{Local, Stream};
use super::{wire, PipeEvent, PipeObserver, SocketOptions};
use crate::error::Error;
use crate::frame::Framing;
use crate::protocol::Protocol;
use crate::sm::{ContextId, Machine, PipeId, SmError};

/// A connected pipe as the socket sees it.
pub(crate) struct PipeHandle {
    /// Frames for the writer thread, each with how many of its bytes (prefix included) were
    /// already written inline.
    tx: mpsc::Sender<(Arc<Vec<u8>>, usize)>,
    pub(super) stream: Option<Stream>,
    pub(super) endpoint: u32,
    framing: Framing,
    /// Frames handed to the writer thread and not yet reported written. Inline writes happen
    /// only at zero, so frames never overtake each other.
    queued: usize,
}

impl PipeHandle {
    pub(super) fn new(
        tx: mpsc::Sender<(Arc<Vec<u8>>, usize)>,
        stream: Option<Stream>,
        endpoint: u32,
        framing: Framing,
    ) -> PipeHandle {
        PipeHandle {
            tx,
            stream,
            endpoint,
            framing,
            queued: 0,
        }
    }
}

/// What the timer thread is doing, so that wake-ups go to it only when its next deadline
/// moves earlier (waking it on every message costs the hot path a lock hand-off).
#[derive(Clone, Copy)]
pub(super) enum TimerState {
    Busy,
    /// Asleep until then (`None`: until woken).
    Sleeping(Option<Instant>),
}

pub(crate) struct Inner {
    pub(super) machine: Box<dyn Machine>,
    pub(super) pipes: HashMap<PipeId, PipeHandle>,
    pub(super) endpoints: HashMap<u32, Endpoint>,
    pub(super) closed: bool,
    pub(super) next_pipe: u32,
    pub(super) recv_max: usize,
    pub(super) reconnect: Duration,
    pub(super) waiters: VecDeque<Waiter>,
    pub(super) next_op: u64,
    pub(super) observer: Option<PipeObserver>,
    timer: TimerState,
}

impl Inner {
    /// Hands the machine's transmits to their pipes: written at once from this thread when
    /// the pipe is idle and the bytes fit the socket buffer (a plain tcp or unix stream), else
    /// (or for what did not fit) queued for the pipe's writer thread. Returns whether an
    /// inline write made a pipe ready again (the machine may then have more to do).
    pub(super) fn flush(&mut self, now: Instant) -> bool {
        let mut ready = false;
        while let Some(t) = self.machine.poll_transmit() {
            let Some(p) = self.pipes.get_mut(&t.pipe) else {
                continue;
            };
            let mut done = 0;
            if p.queued == 0 {
                if let Some(fd) = p.stream.as_ref().and_then(Stream::socket_fd) {
                    // An error here is met again by the writer thread, which ends the pipe.
                    done = wire::write_now(fd, p.framing, &t.msg).unwrap_or(0);
                }
            }
            if done == p.framing.prefix_len() + t.msg.len() {
                self.machine.pipe_ready(t.pipe, now);
                ready = true;
            } else {
                p.queued += 1;
                // A dead writer means the pipe is going away; its reader removes it.
                let _queued = p.tx.send((t.msg, done));
            }
        }
        ready
    }

    /// The writer thread of `pipe` wrote `n` queued frames: one readiness each, as the
    /// machines count them.
    pub(super) fn written(&mut self, pipe: PipeId, n: usize, now: Instant) {
        if let Some(p) = self.pipes.get_mut(&pipe) {
            p.queued = p.queued.saturating_sub(n);
        }
        for _ in 0..n {
            self.machine.pipe_ready(pipe, now);
        }
    }

    /// When the timer thread must next run: the machine's timer or a parked deadline.
    fn next_timer(&self) -> Option<Instant> {
        match (self.machine.poll_timeout(), self.next_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Positive 31-bit ids that do not look sequential (as NNG's), never reused while live.
    pub(super) fn alloc_pipe_id(&mut self) -> PipeId {
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

    /// Shuts the connections of endpoint `ep` down (their readers then remove them).
    pub(super) fn shutdown_pipes_of(&self, ep: u32) {
        for p in self.pipes.values().filter(|p| p.endpoint == ep) {
            if let Some(s) = &p.stream {
                s.shutdown();
            }
        }
    }
}

pub(crate) struct Shared {
    pub(super) proto: Protocol,
    inner: Mutex<Inner>,
    /// Callers blocked in send, recv or a pipe wait.
    cv: Condvar,
    /// The timer thread alone.
    timer_cv: Condvar,
}

impl Shared {
    /// The state of a new socket around `machine`, its timer thread started.
    pub(super) fn start(
        machine: Box<dyn Machine>,
        opts: &SocketOptions,
        next_pipe: u32,
    ) -> Result<Arc<Shared>, Error> {
        let inner = Inner {
            machine,
            pipes: HashMap::new(),
            endpoints: HashMap::new(),
            closed: false,
            next_pipe,
            recv_max: opts.recv_max,
            reconnect: opts.reconnect,
            waiters: VecDeque::new(),
            next_op: 0,
            observer: None,
            timer: TimerState::Busy,
        };
        let shared = Arc::new(Shared {
            proto: inner.machine.protocol(),
            inner: Mutex::new(inner),
            cv: Condvar::new(),
            timer_cv: Condvar::new(),
        });
        spawn_timer(&shared)?;
        Ok(shared)
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere must not wedge the socket; the state stays consistent per call.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn wait<'a>(
        &self,
        g: MutexGuard<'a, Inner>,
        d: Option<Duration>,
    ) -> MutexGuard<'a, Inner> {
        wait_on(&self.cv, g, d)
    }

    /// Wakes every waiting thread, the timer included (close, endpoint and context changes).
    pub(super) fn wake_all(&self) {
        self.cv.notify_all();
        self.timer_cv.notify_one();
    }

    /// After a change of state: writes transmits, serves parked operations (again while
    /// inline writes free pipes), wakes blocked callers and, if its deadline moved earlier,
    /// the timer, then (unlocked) runs the completions.
    pub(super) fn settle(&self, mut g: MutexGuard<'_, Inner>) {
        let now = Instant::now();
        let mut fires = Vec::new();
        loop {
            let ready = g.flush(now);
            let served = g.service(now);
            if !ready && served.is_empty() {
                break;
            }
            fires.extend(served);
        }
        if let TimerState::Sleeping(at) = g.timer {
            if g.next_timer().is_some_and(|n| at.is_none_or(|a| n < a)) {
                g.timer = TimerState::Busy;
                self.timer_cv.notify_one();
            }
        }
        drop(g);
        self.cv.notify_all();
        fire(fires);
    }

    pub(super) fn drop_pipe(&self, pipe: PipeId) {
        let mut g = self.lock();
        if g.pipes.remove(&pipe).is_some() {
            g.machine.remove_pipe(pipe, Instant::now());
            let observer = g.observer.clone();
            self.settle(g);
            if let Some(o) = observer {
                o(PipeEvent::Removed(pipe));
            }
        } else {
            drop(g);
            self.cv.notify_all();
        }
    }

    /// Parks an asynchronous operation (or fails it at once on a closed socket).
    pub(super) fn park(&self, ctx: ContextId, timeout: Option<Duration>, op: Op) -> OpId {
        let mut g = self.lock();
        g.next_op += 1;
        let id = OpId(g.next_op);
        let w = Waiter::new(id, ctx, timeout, op);
        if g.closed {
            drop(g);
            fire(vec![w.fail(Error::Closed)]);
            return id;
        }
        g.waiters.push_back(w);
        self.settle(g);
        id
    }

    /// Runs `op` until it stops saying "try again", the timeout passes or the socket closes.
    /// `timeout`: `None` waits forever, zero does not wait (`TryAgain`), else `TimedOut`.
    pub(super) fn blocking<T>(
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
            match r {
                Ok(v) => {
                    self.settle(g);
                    return Ok(v);
                }
                Err(SmError::TryAgain) => {
                    // An inline write freed a pipe: serve parked operations, try again.
                    if g.flush(now) {
                        self.settle(g);
                        g = self.lock();
                        continue;
                    }
                }
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

/// What connections of socket `shared` need to know about it.
pub(super) fn local_of(shared: &Shared) -> Local {
    Local {
        proto: shared.proto,
        recv_max: shared.lock().recv_max,
    }
}

/// Runs completions (outside the socket's lock).
pub(super) fn fire(fires: Vec<Fire>) {
    for f in fires {
        f();
    }
}

pub(crate) fn cancel(shared: &Shared, op: OpId) -> bool {
    let mut g = shared.lock();
    let before = g.waiters.len();
    g.waiters.retain(|w| w.id != op);
    let gone = g.waiters.len() != before;
    drop(g);
    if gone {
        shared.cv.notify_all();
    }
    gone
}

fn wait_on<'a>(
    cv: &Condvar,
    g: MutexGuard<'a, Inner>,
    d: Option<Duration>,
) -> MutexGuard<'a, Inner> {
    match d {
        Some(d) => cv
            .wait_timeout(g, d)
            .map(|(g, _)| g)
            .unwrap_or_else(|e| e.into_inner().0),
        None => cv.wait(g).unwrap_or_else(|e| e.into_inner()),
    }
}

/// The timer thread: runs the machine's timers and expires parked operations when due, until
/// the socket closes.
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
                match g.next_timer() {
                    Some(t) if t <= now => {
                        if g.machine.poll_timeout().is_some_and(|m| m <= now) {
                            g.machine.handle_timeout(now);
                        }
                        sh.settle(g);
                        g = sh.lock();
                    }
                    next => {
                        g.timer = TimerState::Sleeping(next);
                        g = wait_on(&sh.timer_cv, g, next.map(|t| t - now));
                        g.timer = TimerState::Busy;
                    }
                }
            }
        })?;
    Ok(())
}
