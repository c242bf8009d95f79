//! The host side of mirai: a compute profile's engine.
//!
//! A [`Host`] listens at a URL, accepts daemons as they dial in, and runs a dispatcher that
//! drives the `mirai-sched` state machine over a `mirai-transport` listener. Submitting returns
//! a [`TaskHandle`] at once; the handle resolves when the daemon replies, fails, or the task is
//! cancelled or times out. A handle is a [`std::future::Future`] and can also be waited on with
//! a timeout, or given a callback (how the R bridge schedules promise settlement).
//!
//! Also here: L'Ecuyer-CMRG stream generation identical to R's `parallel::nextRNGStream`
//! ([`rng`]), and the launcher that starts local daemon processes ([`launch`]).
//!
//! This crate is not the R API: profiles by name, ephemeral and sync modes and launch command
//! strings for R live in the R package and its bridge, which drive a `Host` per profile.
//!
//! How a task travels, with as few thread hand-offs as the socket floor allows (design.md §2):
//! - the submitting thread encodes the task frame, then, holding the state lock, hands it to the
//!   scheduler and carries out what the scheduler asks at once, so a task for an idle daemon is
//!   written to its socket from the submitting thread;
//! - one thread at a time polls the listener (replies, daemons coming and going, deadlines) and
//!   carries out the resulting actions: the dispatcher thread by default, but a thread blocked
//!   in [`TaskHandle::wait`] or [`Host::wait_completion`] takes that role over, so the reply
//!   wakes the waiting thread directly. After a waiter gives the role back the dispatcher leaves
//!   it free for a couple of milliseconds, so that a submit-then-wait loop keeps it;
//! - wakers and completion callbacks run on whichever thread resolved the handle, always after
//!   the state lock is released.
//!
//! Reliability (every task resolves exactly once, to its value or to an error code saying what
//! happened):
//! - a daemon lost while evaluating a task (killed, crashed, cut off) fails that task with 19,
//!   at once, and nothing else; tasks waiting in the queue go to the other daemons;
//! - opt-in retry: with [`SubmitOptions::retries`] (or the profile default
//!   [`HostConfig::retries`]) such a task is sent again instead, from the head of the queue,
//!   and [`TaskHandle::attempts`] counts its dispatches;
//! - opt-in pool repair: with [`HostConfig::repair`], a daemon started by [`Host::launch`] that
//!   crashes is relaunched with the same command, with back-off and a per-minute cap
//!   ([`RepairPolicy`]);
//! - daemons leaving on a limit never take a task with them: a `last` result, or for idle
//!   exits a leave notice, is acknowledged before they go (see `mirai_sched::Scheduler::result`);
//! - bad input on the listener (garbage, truncated or oversized frames, other protocol
//!   versions, connections that never say hello) is dropped with a logged reason; connections
//!   must say hello within [`HostConfig::hello_timeout`], and at most
//!   [`HostConfig::max_pending`] may be waiting to, so half-open connections cannot pile up;
//! - task payloads and results never appear in log messages or errors: logs name tasks by id
//!   and frames by kind and size.
//!
//! Tracing (OpenTelemetry, spec §3.15; the spans and their configuration are described in
//! [`mirai_trace`], re-exported as [`trace`]). [`Host::start`] takes the process's decision
//! (from the `OTEL_*` environment; off unless an OTLP endpoint is configured) and an untraced
//! host does no span work at all. A tracing host records:
//! - `daemons set <url>` for [`Host::start`] and `daemons reset <url>` for [`Host::reset`]
//!   (or the drop of the last clone), with the profile's name from [`HostConfig::compute`];
//!   the reset then exports everything buffered ([`mirai_trace::flush`]);
//! - a `mirai` span per task of [`Host::submit`] and [`Host::map`], from submission to
//!   resolution, with an error status when the evaluation failed (`miraiError`,
//!   `miraiInterrupt`) or no daemon answered (`errorValue 19 | Connection reset`, ...). Its
//!   traceparent travels in the task frame, so the daemon's `daemon eval` span is its child;
//! - `mirai_map` around [`Host::map`]'s submission, parent of its tasks' `mirai` spans;
//! - `daemon connect <url>` when a daemon completes its handshake, `daemon disconnect <url>`
//!   when its connection ends (children of the `daemons reset` span when the reset ends them).
//!
//! For the R bridge: set [`HostConfig::compute`] to the profile's name; for tasks submitted one
//! by one that belong to a map, open the map's span with [`Host::map_span`] and pass its
//! context as [`SubmitOptions::parent`]; a caller with its own span (e.g. R's `otel` package)
//! passes its traceparent through [`TraceParent::parse`] as the parent, or carries it verbatim
//! in [`SubmitOptions::trace`], in which case the host makes no `mirai` span for that task.
//! [`Host::everywhere`] rounds have no `mirai` spans. [`Host::tracing`] tells whether spans
//! are recorded.
//!
//! ```no_run
//! use mirai_host::{Host, HostConfig, SubmitOptions};
//! let host = Host::start(HostConfig::new("abstract://example"))?;
//! // ... start daemons that dial host.url() ...
//! let handle = host.submit(b"payload".to_vec(), SubmitOptions::default())?;
//! let outcome = handle.wait(None);
//! # Ok::<(), mirai_host::HostError>(())
//! ```

pub mod launch;
pub mod remote;
pub mod rng;

use std::collections::HashMap;
use std::collections::VecDeque;
use std::future::Future;
use std::os::unix::process::ExitStatusExt;
use std::pin::Pin;
use std::process::{Child, ExitStatus};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll, Waker};
use std::thread::{JoinHandle, ThreadId};
use std::time::{Duration, Instant, SystemTime};

use mirai_proto::{flags, DecodeError, Frame, Init, PROTOCOL_VERSION};
use mirai_sched::{Action, Config as SchedConfig, Delivery, Scheduler, TaskKind, TaskSpec};
use mirai_trace::Span;
use mirai_transport::{Backend, DisconnectReason, Event, Listener, PeerId};

pub use mirai_proto::{RngStream, Status};
pub use mirai_sched::{Counters, ErrorCode, Memory, Mode};
/// OpenTelemetry spans (see the crate docs, "Tracing").
pub use mirai_trace as trace;
pub use mirai_trace::TraceParent;
pub use mirai_transport::Options as TransportOptions;

/// How a host is set up.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// The URL to listen at (port 0 picks one; see [`Host::url`]).
    pub url: String,
    /// Transport settings. `max_message` also bounds the frames the host decodes.
    pub transport: TransportOptions,
    /// Dispatcher (FIFO, cancellation, budget) or direct round-robin.
    pub mode: Mode,
    /// Budget in bytes on queued payloads (dispatcher mode).
    pub memory_limit: Option<u64>,
    /// Base RNG stream: the k-th daemon to connect gets `nextRNGStream` applied k times.
    /// `None`: daemons get no stream in their init bundle.
    pub stream: Option<RngStream>,
    /// Opaque serialization config sent to every daemon in its init bundle.
    pub serial: Vec<u8>,
    /// The profile's default retry budget: how many times a task is sent again after the
    /// daemon evaluating it was lost, before it resolves with error 19. Per task,
    /// [`SubmitOptions::retries`] overrides it. 0 (the default): no retry, as in mirai.
    /// Applies to [`Host::submit`] and [`Host::map`], never to [`Host::everywhere`].
    pub retries: u32,
    /// Keep the pool of daemons started by [`Host::launch`] at strength: relaunch one that
    /// crashed (see [`RepairPolicy`]). `None` (the default): exited daemons are only reaped.
    pub repair: Option<RepairPolicy>,
    /// A connection that has not said hello within this time is dropped (10 s by default), so
    /// that half-open connections cannot pile up.
    pub hello_timeout: Duration,
    /// At most this many connections may be waiting to say hello at once (1024 by default);
    /// newer ones are dropped at once. Raise it when launching more daemons than this at once.
    pub max_pending: usize,
    /// The compute profile's name (`"default"` by default), for the `mirai.compute` attribute
    /// of the `daemons set` / `daemons reset` spans (see "Tracing" in the crate docs).
    pub compute: String,
    /// Pipelining in dispatcher mode (on by default, [`DEFAULT_PIPELINE`]): when no daemon is
    /// idle, a daemon evaluating one task may be sent the next one if its recent tasks took
    /// less than this each, so that it starts it without waiting for a round trip to the host.
    /// A pipelined task that has not started is asked back when another daemon becomes free
    /// and nothing else is queued; a task is never evaluated twice (see `mirai_sched`, and
    /// [`mirai_sched::Config::pipeline`]). Needs daemons of this version. `None`: a daemon
    /// gets its next task only after answering the previous one. Ignored in direct mode, and
    /// over the NNG backend (whose pair protocol drops messages queued beyond two per peer).
    pub pipeline: Option<Duration>,
}

/// Default of [`HostConfig::pipeline`]: daemons whose tasks take under a millisecond are
/// pipelined to (a round trip to the host is tens of microseconds, so this is where it
/// matters).
pub const DEFAULT_PIPELINE: Option<Duration> = Some(Duration::from_millis(1));

/// The largest first message the host accepts on a connection (its hello), unless
/// [`HostConfig::transport`] sets `max_first_message` itself.
pub const MAX_FIRST_MESSAGE: usize = 64 << 10;

/// Default of [`HostConfig::hello_timeout`].
pub const DEFAULT_HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// Default of [`HostConfig::max_pending`].
pub const DEFAULT_MAX_PENDING: usize = 1024;

impl HostConfig {
    /// Dispatcher mode at `url`, no budget, no streams, no serialization config, no retries,
    /// no repair, default hello timeout and pending-connection cap.
    pub fn new(url: impl Into<String>) -> Self {
        HostConfig {
            url: url.into(),
            transport: TransportOptions::default(),
            mode: Mode::Dispatcher,
            memory_limit: None,
            stream: None,
            serial: Vec::new(),
            retries: 0,
            repair: None,
            hello_timeout: DEFAULT_HELLO_TIMEOUT,
            max_pending: DEFAULT_MAX_PENDING,
            compute: "default".to_string(),
            pipeline: DEFAULT_PIPELINE,
        }
    }
}

/// How a host relaunches the daemons it started ([`HostConfig::repair`]).
///
/// A daemon launched by [`Host::launch`] that exits on a signal (SIGKILL, SIGSEGV, the OOM
/// killer, ...) or with a non-zero code other than the limit codes 1, 2 and 3 (idletime,
/// walltime, maxtasks: a planned exit) is started again with the same command, unless the host
/// is being reset. Exit code 0 (told to exit, or its host went away) is not a crash either.
/// The relaunch waits `backoff`, doubled for each crash in a row of a daemon that did not
/// survive [`RepairPolicy::stable`] (up to `max_backoff`), and at most `max_per_minute`
/// relaunches happen in any minute, so that a daemon that cannot start never becomes a fork
/// loop. Relaunches are logged and counted ([`Host::relaunches`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepairPolicy {
    /// Delay before relaunching a daemon after a first crash.
    pub backoff: Duration,
    /// The longest delay, however many crashes in a row.
    pub max_backoff: Duration,
    /// A daemon that ran at least this long before crashing starts its back-off afresh.
    pub stable: Duration,
    /// At most this many relaunches in any 60 seconds; further ones wait their turn.
    pub max_per_minute: u32,
}

impl Default for RepairPolicy {
    /// 100 ms back-off doubling up to 10 s, reset after 10 s of life; 30 relaunches a minute.
    fn default() -> Self {
        RepairPolicy {
            backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
            stable: Duration::from_secs(10),
            max_per_minute: 30,
        }
    }
}

/// Per-task options.
#[derive(Debug, Clone, Default)]
pub struct SubmitOptions {
    /// Resolve with error 5 after this long (dispatcher mode also cancels the task).
    pub timeout: Option<Duration>,
    /// W3C traceparent to carry to the daemon verbatim, for callers that trace tasks
    /// themselves: the host then makes no `mirai` span for this task. `None` (the default):
    /// when tracing is on, the host makes the task's `mirai` span and sends its traceparent.
    pub trace: Option<String>,
    /// The parent of the task's `mirai` span (e.g. a `mirai_map` span from
    /// [`Host::map_span`], or the caller's own span via [`TraceParent::parse`]). Ignored when
    /// tracing is off or `trace` is given.
    pub parent: Option<TraceParent>,
    /// How many times to send the task again if the daemon evaluating it is lost (killed,
    /// crashed, disconnected) before answering; only then does it resolve with error 19.
    /// `None`: the profile's default ([`HostConfig::retries`]). A retried task goes to the head
    /// of the queue (it was dispatched before everything waiting there) and keeps its timeout;
    /// [`TaskHandle::attempts`] counts its dispatches. Use it only for tasks that are safe to
    /// run twice: the lost daemon may have done part of the work.
    pub retries: Option<u32>,
}

/// How a task ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The daemon answered.
    Value {
        /// How the evaluation ended.
        status: Status,
        /// The daemon's reply bytes.
        payload: Vec<u8>,
    },
    /// No answer will come: timed out (5), closed (7), connection reset (19), cancelled (20).
    Error(ErrorCode),
}

/// A snapshot of a host's state, for `status()` and `info()`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostStatus {
    /// The URL daemons dial.
    pub url: String,
    /// Task and daemon counters.
    pub counters: Counters,
    /// Queued-bytes accounting.
    pub memory: Memory,
    /// Of `counters.awaiting`, the tasks pipelined to a busy daemon and not started yet
    /// ([`HostConfig::pipeline`]).
    pub pipelined: u64,
}

/// Why a host could not start or take a task.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// Listening failed.
    #[error(transparent)]
    Transport(#[from] mirai_transport::Error),
    /// The host was reset; it takes no more tasks.
    #[error("the compute profile has been reset")]
    Closed,
    /// Starting daemon processes failed.
    #[error("cannot launch daemon '{program}': {source}")]
    Launch {
        /// The program that could not be started.
        program: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The dispatcher thread could not be started.
    #[error("cannot start the dispatcher thread: {0}")]
    Thread(#[source] std::io::Error),
}

/// Process-wide task ids: unique and increasing across every host of the process.
static NEXT_TASK_ID: AtomicU64 = AtomicU64::new(1);

/// How often the dispatcher reaps exited child processes when nothing else wakes it.
const REAP_EVERY: Duration = Duration::from_secs(1);
/// After a disconnect, when to look again for the exited process.
const REAP_SOON: Duration = Duration::from_millis(50);
/// How long the detached reaper left by a reset keeps collecting children.
const REAPER_LIFETIME: Duration = Duration::from_secs(10);
/// How long the dispatcher leaves the listener to waiting threads after one of them last
/// drove it, so that a thread that submits and waits in a loop keeps the poll role instead of
/// taking it over from the dispatcher every time (a wake-up each). Events wait at most this
/// long for a poller meanwhile.
const GRACE: Duration = Duration::from_millis(2);
/// Spacing of exit instructions in [`Host::exit_daemons`].
const EXIT_SPACING: Duration = Duration::from_millis(10);

/// Locks, ignoring poisoning: the state is kept consistent by never running foreign code
/// (callbacks, wakers) under a lock, so a poisoned lock only means a panic elsewhere.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn wait_on<'a, T>(cv: &Condvar, g: MutexGuard<'a, T>, timeout: Duration) -> MutexGuard<'a, T> {
    match cv.wait_timeout(g, timeout) {
        Ok((g, _)) => g,
        Err(e) => e.into_inner().0,
    }
}

/// Waits on `cv` under the state lock until `done` gives an answer or `deadline` (`None`:
/// never) passes, then returns the answer, or `timed_out` computed under the lock. `waiters`
/// picks the counter of threads blocked on `cv`, so that signalling it costs nothing when
/// nobody waits.
fn wait_state<R>(
    mut st: MutexGuard<'_, State>,
    cv: &Condvar,
    deadline: Option<Instant>,
    waiters: fn(&mut State) -> &mut u32,
    done: impl Fn(&State) -> Option<R>,
    timed_out: impl Fn(&State) -> R,
) -> R {
    loop {
        if let Some(r) = done(&st) {
            return r;
        }
        let now = Instant::now();
        let left = match deadline {
            Some(d) if now >= d => return timed_out(&st),
            Some(d) => d - now,
            None => Duration::from_secs(3600),
        };
        *waiters(&mut st) += 1;
        st = wait_on(cv, st, left);
        *waiters(&mut st) -= 1;
    }
}

// ---------------------------------------------------------------------------------------------
// Task slots and handles

/// The shared completion cell of one task.
struct Slot {
    inner: Mutex<SlotInner>,
    cv: Condvar,
    /// Dispatches so far (written under the state lock, read anywhere).
    attempts: AtomicU32,
}

#[derive(Default)]
struct SlotInner {
    /// Boxed: a queued task pays one pointer rather than the 32 bytes of an `Outcome` (the
    /// slot's allocation goes from 96 to 64 bytes); resolution allocates it.
    outcome: Option<Box<Outcome>>,
    resolved: bool,
    taken: bool,
    /// Threads blocked in `wait`; the condvar is signalled only if there are any.
    waiters: u32,
    /// What only some tasks use (a future's waker, callbacks, a recording span), boxed on
    /// first use so that a queued task waited on by blocking calls pays one pointer (the
    /// host's memory per unresolved task, design.md). `None` again once resolved.
    extra: Option<Box<SlotExtra>>,
}

#[derive(Default)]
struct SlotExtra {
    waker: Option<Waker>,
    callbacks: Vec<Box<dyn FnOnce() + Send>>,
    /// The task's `mirai` span, ended at resolution.
    span: Span,
}

impl SlotInner {
    /// The extras, boxed now if this is their first use.
    fn extra(&mut self) -> &mut SlotExtra {
        self.extra.get_or_insert_with(Box::default)
    }
}

impl Slot {
    fn new(span: Span) -> Arc<Slot> {
        // A span that does not record (none, or dropped by the sampler) has nothing to report
        // at resolution: it is dropped (ended) now rather than kept.
        let extra = span.is_recording().then(|| {
            Box::new(SlotExtra {
                span,
                ..SlotExtra::default()
            })
        });
        Arc::new(Slot {
            inner: Mutex::new(SlotInner {
                extra,
                ..SlotInner::default()
            }),
            cv: Condvar::new(),
            attempts: AtomicU32::new(0),
        })
    }

    /// Resolves the slot unless it already was; its waker and callbacks go to `d`, to be run
    /// once every lock is released. True if this call resolved it.
    fn complete(&self, outcome: Outcome, d: &mut Deferred) -> bool {
        let mut g = lock(&self.inner);
        if g.resolved {
            return false;
        }
        g.resolved = true;
        // Nothing registers extras once resolved (`poll` finds the outcome, `on_complete`
        // runs at once), so the box goes now.
        let extra = g.extra.take();
        if let Some(x) = extra {
            let SlotExtra {
                waker,
                mut callbacks,
                mut span,
            } = *x;
            if span.is_recording() {
                set_span_outcome(&mut span, &outcome);
                d.spans.push(span);
            }
            if let Some(w) = waker {
                d.wakers.push(w);
            }
            d.callbacks.append(&mut callbacks);
        }
        g.outcome = Some(Box::new(outcome));
        if g.waiters > 0 {
            self.cv.notify_all();
        }
        true
    }
}

/// Wakers and callbacks collected while locked, run after unlocking; with tracing, also the
/// spans to end or record, so that no span work happens under a lock.
#[derive(Default)]
struct Deferred {
    wakers: Vec<Waker>,
    callbacks: Vec<Box<dyn FnOnce() + Send>>,
    /// `mirai` spans of resolved tasks.
    spans: Vec<Span>,
    /// Daemons that connected or disconnected.
    peers: Vec<PeerEvent>,
    /// The parent of the disconnect spans (the `daemons reset` span during a reset).
    parent: Option<TraceParent>,
}

/// A daemon's handshake or disconnection, recorded as a span once the lock is released.
struct PeerEvent {
    connect: bool,
    pid: u32,
    at: SystemTime,
    trace: Arc<HostTrace>,
}

impl Deferred {
    /// Runs what waited for the state lock to be released: the host's queued frames first
    /// (so daemons get their work soonest), then wakers, callbacks and spans.
    fn run(self, shared: &Shared) {
        shared.flush();
        for w in self.wakers {
            w.wake();
        }
        for f in self.callbacks {
            run_callback(f);
        }
        drop(self.spans);
        for e in self.peers {
            let t = &e.trace;
            let span = if e.connect {
                mirai_trace::daemon_connect(&t.url, e.pid, t.set, e.at)
            } else {
                mirai_trace::daemon_disconnect(&t.url, e.pid, self.parent, t.set, e.at)
            };
            span.end();
        }
    }
}

/// What a tracing host needs to make its spans (see "Tracing" in the crate docs).
struct HostTrace {
    url: String,
    compute: String,
    dispatcher: bool,
    /// The `daemons set` span, which the profile's other spans link to.
    set: Option<TraceParent>,
}

impl HostTrace {
    fn event(self: &Arc<Self>, connect: bool, pid: u32) -> PeerEvent {
        PeerEvent {
            connect,
            pid,
            at: SystemTime::now(),
            trace: self.clone(),
        }
    }
}

/// A `mirai` span's status from its task's outcome: `miraiError` / `miraiInterrupt` for
/// evaluations that failed, the error value for tasks no daemon answered.
fn set_span_outcome(span: &mut Span, outcome: &Outcome) {
    match outcome {
        Outcome::Value { status, .. } => span.set_outcome(*status),
        Outcome::Error(code) => {
            let text = match code {
                ErrorCode::TimedOut => "Timed out",
                ErrorCode::ObjectClosed => "Object closed",
                ErrorCode::ConnectionReset => "Connection reset",
                ErrorCode::Canceled => "Operation canceled",
            };
            span.set_error(format!("errorValue {} | {text}", *code as u8));
        }
    }
}

/// A panicking callback must not take the dispatcher thread down with it.
fn run_callback(f: Box<dyn FnOnce() + Send>) {
    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).is_err() {
        log::error!("mirai host: a task completion callback panicked");
    }
}

/// A submitted task. Resolves exactly once. A `Future` whose output is the [`Outcome`], and
/// waitable from any thread.
pub struct TaskHandle {
    id: u64,
    slot: Arc<Slot>,
    /// The host, so that a waiting thread can drive the listener itself.
    host: Weak<Shared>,
}

impl std::fmt::Debug for TaskHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskHandle")
            .field("id", &self.id)
            .field("resolved", &self.is_resolved())
            .finish()
    }
}

impl TaskHandle {
    /// The task's id (unique and increasing within the process).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// How many times the task has been sent to a daemon so far: 0 while it waits in the
    /// queue, 1 once dispatched, more if it was retried after its daemon was lost
    /// ([`SubmitOptions::retries`]). Stays at its final value after resolution.
    pub fn attempts(&self) -> u32 {
        self.slot.attempts.load(Ordering::Acquire)
    }

    /// True once resolved (whether or not the outcome was taken).
    pub fn is_resolved(&self) -> bool {
        lock(&self.slot.inner).resolved
    }

    /// Waits up to `timeout` (`None`: forever) and takes the outcome. `None` on timeout, or if
    /// the outcome was already taken. While it waits, this thread may drive the host's
    /// listener (see the crate docs), running other handles' callbacks.
    pub fn wait(&self, timeout: Option<Duration>) -> Option<Outcome> {
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        // Drive the listener from this thread when no other waiter does: the reply then wakes
        // this thread directly rather than the dispatcher thread, which would wake us.
        if !self.is_resolved() {
            if let Some(host) = self.host.upgrade() {
                host.drive(deadline, &|| self.is_resolved());
            }
        }
        let mut g = lock(&self.slot.inner);
        loop {
            if let Some(o) = g.outcome.take() {
                g.taken = true;
                return Some(*o);
            }
            if g.taken {
                return None;
            }
            g.waiters += 1;
            g = match deadline {
                None => self.slot.cv.wait(g).unwrap_or_else(|e| e.into_inner()),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        g.waiters -= 1;
                        return None;
                    }
                    wait_on(&self.slot.cv, g, d - now)
                }
            };
            g.waiters -= 1;
        }
    }

    /// Takes the outcome if resolved, without waiting.
    pub fn try_take(&self) -> Option<Outcome> {
        let mut g = lock(&self.slot.inner);
        let o = g.outcome.take();
        if o.is_some() {
            g.taken = true;
        }
        o.map(|o| *o)
    }

    /// Runs `f` once when the task resolves: at once, on this thread, if it already has;
    /// otherwise on the thread that resolves it (the dispatcher thread, a thread waiting on
    /// this host, or one calling [`Host::cancel`] or [`Host::reset`]), after every engine lock
    /// is released. `f` must be quick and must not call R. A panic in `f` is caught and logged.
    pub fn on_complete(&self, f: Box<dyn FnOnce() + Send>) {
        let mut g = lock(&self.slot.inner);
        if g.resolved {
            drop(g);
            run_callback(f);
        } else {
            g.extra().callbacks.push(f);
        }
    }
}

impl Future for TaskHandle {
    type Output = Outcome;

    /// Ready with the outcome once resolved.
    ///
    /// # Panics
    /// If polled after the outcome was taken (by an earlier `Ready`, [`TaskHandle::wait`] or
    /// [`TaskHandle::try_take`]), like any future polled after completion.
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outcome> {
        let mut g = lock(&self.slot.inner);
        if let Some(o) = g.outcome.take() {
            g.taken = true;
            return Poll::Ready(*o);
        }
        assert!(!g.taken, "TaskHandle polled after its outcome was taken");
        let x = g.extra();
        match &x.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => x.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

// ---------------------------------------------------------------------------------------------
// Shared state

/// What the host knows of a connected peer beyond the scheduler's view.
#[derive(Default)]
struct Peer {
    /// The daemon's pid once it said hello.
    hello: Option<u32>,
    /// The peer broke the protocol and is being disconnected: ignore what else it sends.
    bad: bool,
}

/// A task as the host keeps it until sent: what its frame needs beyond the task id, in one
/// allocation of exactly its length, shared so that a retryable or pipelined task is kept for
/// a possible resend without copying its payload. The frame's CBOR keys and tags (about 40
/// bytes a task) are not kept: they are made at send time (`mirai_proto::task_frame_parts`)
/// and written with the payload in one vectored write.
///
/// Layout: `flags`, then `0` (no traceparent) or `1` and the traceparent's length (8 bytes,
/// little-endian) and bytes, then the payload to the end.
#[derive(Clone)]
struct TaskBody(Arc<[u8]>);

impl TaskBody {
    fn new(flags: u8, trace: Option<&str>, payload: &[u8]) -> TaskBody {
        let head = match trace {
            Some(t) => 2 + 8 + t.len(),
            None => 2,
        };
        // An exact-size iterator collects into one allocation of exactly this length; the
        // zeros are then overwritten (cheaper than the payload copy, and safe code).
        let mut body: Arc<[u8]> = std::iter::repeat_n(0u8, head + payload.len()).collect();
        let buf = Arc::get_mut(&mut body).expect("a freshly built Arc has no other owner");
        buf[0] = flags;
        if let Some(t) = trace {
            buf[1] = 1;
            buf[2..10].copy_from_slice(&(t.len() as u64).to_le_bytes());
            buf[10..head].copy_from_slice(t.as_bytes());
        }
        buf[head..].copy_from_slice(payload);
        TaskBody(body)
    }

    /// Where the payload starts.
    fn head(&self) -> usize {
        match self.0[1] {
            0 => 2,
            _ => 10 + self.trace_len(),
        }
    }

    fn trace_len(&self) -> usize {
        let mut n = [0u8; 8];
        n.copy_from_slice(&self.0[2..10]);
        // Written from a `str` length in `new`: it fits.
        u64::from_le_bytes(n) as usize
    }

    fn flags(&self) -> u8 {
        self.0[0]
    }

    fn trace(&self) -> Option<&str> {
        if self.0[1] == 0 {
            return None;
        }
        // Written from a `str` in `new`: valid UTF-8 (checked again rather than trusted).
        std::str::from_utf8(&self.0[10..10 + self.trace_len()]).ok()
    }

    fn payload(&self) -> &[u8] {
        &self.0[self.head()..]
    }

    /// Sends task `id`'s frame to `peer`: the same bytes as `mirai_proto::encode` of the
    /// task, written without assembling them.
    fn send(
        &self,
        listener: &Listener,
        peer: PeerId,
        id: u64,
    ) -> Result<(), mirai_transport::Error> {
        let payload = self.payload();
        let parts = mirai_proto::task_frame_parts(id, self.flags(), payload.len(), self.trace());
        listener.send_parts(peer, &parts.slices(payload))
    }
}

struct State {
    sched: Scheduler<TaskBody>,
    slots: HashMap<u64, Arc<Slot>>,
    peers: HashMap<PeerId, Peer>,
    /// Peers connected, not yet said hello and not being dropped.
    pending: usize,
    /// `(deadline, peer)` for the hello of each connection, in connection order (so in
    /// deadline order). Entries of peers that said hello or left are skipped when reached.
    hello_deadlines: VecDeque<(Instant, PeerId)>,
    /// `None` once reset: dropping the last reference closes the sockets.
    listener: Option<Arc<Listener>>,
    closed: bool,
    /// Threads blocked on each condvar, so that signalling costs nothing when nobody waits.
    conn_waiters: u32,
    admit_waiters: u32,
    completion_waiters: u32,
}

/// Everything the dispatcher thread and the handles of one host share. The dispatcher holds
/// only this (not the [`HostInner`] guard), so dropping the last `Host` resets the host.
struct Shared {
    url: String,
    max_frame: usize,
    stream: Option<RngStream>,
    serial: Vec<u8>,
    retries: u32,
    /// Pipelining is on: the scheduler is told the time of submissions and results.
    timed: bool,
    /// Dispatcher or direct mode ([`HostConfig::mode`]).
    mode: Mode,
    hello_timeout: Duration,
    max_pending: usize,
    repair: Option<RepairPolicy>,
    /// Relaunches waiting for their time, and the recent ones (for the rate cap).
    relaunch: Mutex<Relaunch>,
    relaunches: AtomicU64,
    /// A daemon disconnected: the dispatcher should reap (and maybe relaunch) soon.
    reap_wanted: AtomicBool,
    state: Mutex<State>,
    conn_cv: Condvar,
    admit_cv: Condvar,
    completion_cv: Condvar,
    /// Grows by one at every task resolution; written under the state lock.
    completions: AtomicU64,
    children: Mutex<Vec<Launched>>,
    stop: AtomicBool,
    /// Who polls the listener now (see [`PollRole`]).
    role: Mutex<PollRole>,
    role_cv: Condvar,
    /// `Some` when this process traces (decided once, at start): the branch every span site
    /// takes, so that an untraced host does no span work at all.
    trace: Option<Arc<HostTrace>>,
    /// Frames to send, in the order the scheduler asked for them (see [`Shared::flush`]).
    outbox: Outbox,
}

/// Frames queued under the state lock and sent after it is released, so that a thread
/// submitting tasks is not kept waiting on the lock while another makes system calls.
#[derive(Default)]
struct Outbox {
    queue: Mutex<VecDeque<(Arc<Listener>, PeerId, Outgoing)>>,
    /// Held by the one thread sending: frames go out in queue order, so a daemon always sees
    /// its frames in the order the scheduler produced them (an init before its tasks, a task
    /// before its cancel).
    sending: Mutex<()>,
}

/// A frame waiting in the [`Outbox`].
enum Outgoing {
    /// Task `.0`, whose body is shared with the scheduler (which may keep it for a retry).
    Task(u64, TaskBody),
    /// Any other frame, encoded.
    Frame(Vec<u8>),
}

impl Outgoing {
    fn send(&self, listener: &Listener, peer: PeerId) -> Result<(), mirai_transport::Error> {
        match self {
            Outgoing::Task(id, body) => body.send(listener, peer, *id),
            Outgoing::Frame(v) => listener.send(peer, v),
        }
    }
}

/// Who drives the listener. One thread at a time polls it: the dispatcher thread by default,
/// or a thread waiting for a result, which then receives the reply itself instead of being
/// woken by the dispatcher (one hand-off fewer per round trip: design.md §2).
#[derive(Debug, Default)]
struct PollRole {
    holder: Holder,
    /// The thread holding the role: a callback running on it may wait too (re-entrantly).
    owner: Option<ThreadId>,
    /// Waiting threads that asked the dispatcher to hand the role over.
    wanting: u32,
    /// When a waiting thread last gave the role up (see [`GRACE`]).
    released_at: Option<Instant>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Holder {
    #[default]
    Nobody,
    Dispatcher,
    Waiter,
}

/// Which condvars a locked section must signal before unlocking.
#[derive(Default)]
struct Notes {
    connections: bool,
    admit: bool,
    completed: bool,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Resolves task `id` held by this host (if still held), counting the completion.
    fn resolve(
        &self,
        st: &mut State,
        id: u64,
        outcome: Outcome,
        d: &mut Deferred,
        notes: &mut Notes,
    ) {
        if let Some(slot) = st.slots.remove(&id) {
            if slot.complete(outcome, d) {
                self.completions.fetch_add(1, Ordering::Release);
                notes.completed = true;
            }
        }
    }

    /// Queues a frame for `peer`, to be sent by [`Shared::flush`] once the state lock is
    /// released. Nothing is queued once the listener is closed.
    fn post(&self, st: &State, peer: PeerId, frame: Outgoing) {
        if let Some(l) = &st.listener {
            lock(&self.outbox.queue).push_back((Arc::clone(l), peer, frame));
        }
    }

    /// Sends the queued frames, in order. Called without the state lock, after every section
    /// that may have queued some. If another thread is sending, it returns at once: that
    /// thread looks at the queue again before it stops, so nothing is left behind.
    fn flush(&self) {
        loop {
            let guard = match self.outbox.sending.try_lock() {
                Ok(g) => g,
                Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
                Err(std::sync::TryLockError::WouldBlock) => return,
            };
            loop {
                let batch = std::mem::take(&mut *lock(&self.outbox.queue));
                if batch.is_empty() {
                    break;
                }
                for (listener, peer, frame) in batch {
                    if let Err(e) = frame.send(&listener, peer) {
                        log::debug!("mirai host: send to daemon {peer} failed: {e}");
                    }
                }
            }
            drop(guard);
            if lock(&self.outbox.queue).is_empty() {
                return;
            }
        }
    }

    /// Carries out every action the scheduler has queued. Exit instructions go to `exits`
    /// when given (so that the caller can space them out), else are sent at once.
    fn carry_out(
        &self,
        st: &mut State,
        d: &mut Deferred,
        notes: &mut Notes,
        mut exits: Option<&mut Vec<PeerId>>,
    ) {
        while let Some(action) = st.sched.poll_action() {
            match action {
                Action::Init { daemon, ordinal } => {
                    let init = Init {
                        stream: self.stream.map(|s| rng::advance(s, ordinal)),
                        serial: self.serial.clone(),
                    };
                    self.post(
                        st,
                        daemon,
                        Outgoing::Frame(mirai_proto::encode(&Frame::Init(init))),
                    );
                    notes.connections = true;
                }
                Action::Dispatch {
                    daemon,
                    task,
                    payload,
                } => {
                    // The scheduler's count: a pipelined task given back unstarted does not
                    // count an attempt.
                    let attempt = match (st.slots.get(&task), st.sched.attempts(task)) {
                        (Some(s), Some(n)) => {
                            s.attempts.store(n, Ordering::Release);
                            n
                        }
                        (Some(s), None) => s.attempts.fetch_add(1, Ordering::AcqRel) + 1,
                        (None, _) => 0,
                    };
                    if attempt > 1 {
                        log::info!("mirai host: task {task} sent again, to daemon {daemon}, after its daemon was lost (attempt {attempt})");
                    } else {
                        log::trace!("mirai host: task {task} to daemon {daemon}");
                    }
                    self.post(st, daemon, Outgoing::Task(task, payload));
                    notes.admit = true;
                }
                Action::Cancel { daemon, task } => {
                    self.post(
                        st,
                        daemon,
                        Outgoing::Frame(mirai_proto::encode(&Frame::Cancel { id: task })),
                    );
                }
                Action::Withdraw { daemon, task } => {
                    log::trace!("mirai host: asking daemon {daemon} to give back task {task}");
                    self.post(
                        st,
                        daemon,
                        Outgoing::Frame(mirai_proto::encode(&Frame::Withdraw { id: task })),
                    );
                }
                Action::Ack { daemon } => self.post(
                    st,
                    daemon,
                    Outgoing::Frame(mirai_proto::encode(&Frame::Ack)),
                ),
                Action::Exit { daemon } => match exits.as_deref_mut() {
                    Some(v) => v.push(daemon),
                    None => self.post(
                        st,
                        daemon,
                        Outgoing::Frame(mirai_proto::encode(&Frame::Exit)),
                    ),
                },
                Action::Fail { task, code } => {
                    self.resolve(st, task, Outcome::Error(code), d, notes);
                    notes.admit = true;
                }
            }
        }
    }

    /// Signals the condvars named by `notes`, where someone waits on them.
    fn notify(&self, st: &State, notes: &Notes) {
        if notes.connections && st.conn_waiters > 0 {
            self.conn_cv.notify_all();
        }
        if notes.admit && st.admit_waiters > 0 {
            self.admit_cv.notify_all();
        }
        if notes.completed && st.completion_waiters > 0 {
            self.completion_cv.notify_all();
        }
    }

    /// Marks the host closed and resolves everything it holds. Idempotent. Returns the
    /// listener for the caller to drop once the dispatcher has stopped.
    fn close(&self, d: &mut Deferred) -> Option<Arc<Listener>> {
        let mut st = self.state();
        if !st.closed {
            st.closed = true;
            let mut notes = Notes::default();
            st.sched.reset();
            self.carry_out(&mut st, d, &mut notes, None);
            // Anything the scheduler did not account for still resolves: nothing can answer
            // it any more.
            let rest: Vec<u64> = st.slots.keys().copied().collect();
            for id in rest {
                self.resolve(
                    &mut st,
                    id,
                    Outcome::Error(ErrorCode::ConnectionReset),
                    d,
                    &mut notes,
                );
            }
            // Closing the listener ends every daemon's connection.
            if let Some(t) = &self.trace {
                d.peers.extend(
                    st.peers
                        .values()
                        .filter_map(|p| p.hello)
                        .map(|pid| t.event(false, pid)),
                );
            }
        }
        self.stop.store(true, Ordering::Release);
        // Every waiter must re-check: the host is closed. The role lock orders this notify
        // after a waiter's check of `stop` (state before role is the lock order).
        drop(lock(&self.role));
        self.role_cv.notify_all();
        self.conn_cv.notify_all();
        self.admit_cv.notify_all();
        self.completion_cv.notify_all();
        st.listener.take()
    }

    /// Reaps exited daemons, schedules the relaunch of crashed ones (with [`RepairPolicy`])
    /// and carries out the relaunches that are due. Returns when the next relaunch is due.
    /// Runs on the dispatcher thread only, outside the state lock.
    fn housekeep(&self) -> Option<Instant> {
        let now = Instant::now();
        let mut exited = Vec::new();
        {
            let mut children = lock(&self.children);
            children.retain_mut(|l| match l.child.try_wait() {
                Ok(Some(status)) => {
                    exited.push((
                        l.child.id(),
                        status,
                        l.command.clone(),
                        l.started,
                        l.crashes,
                    ));
                    false
                }
                Ok(None) => true,
                Err(e) => {
                    log::warn!(
                        "mirai host: cannot wait for daemon pid {}: {e}; no longer watched",
                        l.child.id()
                    );
                    false
                }
            });
        }
        let stopping = self.stop.load(Ordering::Acquire);
        let mut rl = lock(&self.relaunch);
        for (pid, status, command, started, crashes) in exited {
            let policy = match &self.repair {
                Some(p) if crashed(status) && !stopping => p,
                _ => {
                    log::debug!("mirai host: daemon pid {pid} exited ({status})");
                    continue;
                }
            };
            let crashes = if started.elapsed() >= policy.stable {
                1
            } else {
                crashes.saturating_add(1)
            };
            let delay = backoff(policy, crashes);
            log::warn!(
                "mirai host: daemon pid {pid} crashed ({status}); relaunching it in {delay:?}"
            );
            rl.due.push_back(Due {
                at: now + delay,
                command,
                crashes,
            });
        }
        let Some(policy) = self.repair.as_ref().filter(|_| !stopping) else {
            rl.due.clear();
            return None;
        };
        let minute = Duration::from_secs(60);
        while rl
            .recent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= minute)
        {
            rl.recent.pop_front();
        }
        let mut later = VecDeque::new();
        while let Some(due) = rl.due.pop_front() {
            if due.at > now {
                later.push_back(due);
                continue;
            }
            if rl.recent.len() >= policy.max_per_minute as usize {
                let at = rl.recent.front().map_or(now + minute, |t| *t + minute);
                if !rl.capped {
                    log::warn!(
                        "mirai host: {} daemon relaunches in the last minute (the limit); further ones wait",
                        rl.recent.len()
                    );
                    rl.capped = true;
                }
                later.push_back(Due { at, ..due });
                continue;
            }
            rl.capped = false;
            match due.command.spawn() {
                Ok(child) => {
                    log::info!(
                        "mirai host: relaunched a crashed daemon as pid {} ({}, crash {} in a row)",
                        child.id(),
                        due.command.program.display(),
                        due.crashes
                    );
                    rl.recent.push_back(now);
                    self.relaunches.fetch_add(1, Ordering::AcqRel);
                    lock(&self.children).push(Launched {
                        child,
                        command: due.command,
                        started: now,
                        crashes: due.crashes,
                    });
                }
                Err(e) => {
                    let crashes = due.crashes.saturating_add(1);
                    let delay = backoff(policy, crashes);
                    log::error!(
                        "mirai host: cannot relaunch daemon '{}': {e}; trying again in {delay:?}",
                        due.command.program.display()
                    );
                    rl.recent.push_back(now);
                    later.push_back(Due {
                        at: now + delay,
                        command: due.command,
                        crashes,
                    });
                }
            }
        }
        rl.due = later;
        rl.due.iter().map(|d| d.at).min()
    }
}

/// A daemon process started by [`Host::launch`] (or relaunched by repair).
struct Launched {
    child: Child,
    command: Arc<launch::Command>,
    started: Instant,
    /// Crashes in a row of this slot of the pool (0 for a first launch).
    crashes: u32,
}

/// A relaunch waiting for its time.
struct Due {
    at: Instant,
    command: Arc<launch::Command>,
    crashes: u32,
}

#[derive(Default)]
struct Relaunch {
    due: VecDeque<Due>,
    /// Relaunch times within the last minute.
    recent: VecDeque<Instant>,
    /// The per-minute cap was hit and logged; cleared at the next relaunch allowed.
    capped: bool,
}

/// A crash, as opposed to a planned exit: a signal, or a non-zero code other than the limit
/// codes 1/2/3 (idletime, walltime, maxtasks).
fn crashed(status: ExitStatus) -> bool {
    status.signal().is_some() || !matches!(status.code(), Some(0..=3))
}

/// The delay before relaunching after `crashes` crashes in a row (1 for the first).
fn backoff(policy: &RepairPolicy, crashes: u32) -> Duration {
    let doublings = crashes.saturating_sub(1).min(30);
    policy
        .backoff
        .saturating_mul(1u32 << doublings)
        .min(policy.max_backoff)
}

/// Sends, never blocking. A failure means the peer has gone: its disconnect event follows and
/// the scheduler deals with whatever it held.
/// Describes a decode failure for the log without quoting any of the peer's bytes beyond the
/// header (a CBOR error message may quote values).
fn describe(e: &DecodeError) -> String {
    match e {
        DecodeError::Malformed(_) => "malformed frame body".to_string(),
        other => other.to_string(),
    }
}

// ---------------------------------------------------------------------------------------------
// The dispatcher thread

/// What one turn of event handling found.
struct Turn {
    /// The host closed: stop driving.
    closed: bool,
    /// The scheduler's next deadline.
    next_deadline: Option<Instant>,
}

/// Handles the events of one poll under a single acquisition of the state lock, carries out
/// the resulting actions, and runs wakers and callbacks once the lock is released.
fn turn(shared: &Shared, listener: &Listener, events: &mut Vec<Event>) -> Turn {
    let mut d = Deferred::default();
    let mut notes = Notes::default();
    let mut reap = false;
    let next_deadline = {
        let mut st = shared.state();
        if st.closed {
            return Turn {
                closed: true,
                next_deadline: None,
            };
        }
        if shared.timed {
            // Dates the results of this poll (task times, for pipelining).
            st.sched.set_time(Instant::now());
        }
        for ev in events.drain(..) {
            match ev {
                Event::Connected(p) => connected(shared, &mut st, listener, p),
                Event::Message(p, bytes) => {
                    handle_message(shared, &mut st, listener, p, bytes, &mut d, &mut notes)
                }
                Event::Disconnected(p, reason) => {
                    match st.peers.remove(&p) {
                        Some(peer) if peer.hello.is_none() && !peer.bad => {
                            st.pending -= 1;
                            // A connection that never said hello: a port scan, a stray
                            // client or garbage. Say why it went (never quoting its bytes).
                            match &reason {
                                DisconnectReason::Closed => {
                                    log::info!(
                                        "mirai host: connection {p} closed before saying hello"
                                    )
                                }
                                other => log::warn!(
                                    "mirai host: connection {p} dropped before saying hello: {}",
                                    describe_disconnect(other)
                                ),
                            }
                        }
                        Some(peer) => {
                            log::debug!(
                                "mirai host: daemon {p} disconnected: {}",
                                describe_disconnect(&reason)
                            );
                            if let (Some(t), Some(pid)) = (&shared.trace, peer.hello) {
                                d.peers.push(t.event(false, pid));
                            }
                        }
                        None => {}
                    }
                    st.sched.disconnected(p);
                    notes.connections = true;
                    reap = true;
                }
            }
            // Carry out as we go so that replies are forwarded in arrival order.
            shared.carry_out(&mut st, &mut d, &mut notes, None);
        }
        let now = Instant::now();
        if st.sched.poll_timeout().is_some_and(|t| t <= now) {
            st.sched.handle_timeout(now);
            shared.carry_out(&mut st, &mut d, &mut notes, None);
        }
        expire_hellos(shared, &mut st, listener, now);
        shared.notify(&st, &notes);
        next_timer(&st)
    };
    if reap {
        shared.reap_wanted.store(true, Ordering::Release);
    }
    d.run(shared);
    Turn {
        closed: false,
        next_deadline,
    }
}

/// Polls once; on a listener failure closes the host (every task resolves) and returns false.
fn poll_listener(
    shared: &Shared,
    listener: &Listener,
    events: &mut Vec<Event>,
    timeout: Option<Duration>,
) -> bool {
    events.clear();
    match listener.poll(events, timeout) {
        Ok(()) => true,
        Err(e) => {
            log::error!(
                "mirai host: listener at {} failed: {e}; closing the host",
                shared.url
            );
            let mut d = Deferred::default();
            drop(shared.close(&mut d));
            d.run(shared);
            false
        }
    }
}

fn until(deadline: Option<Instant>) -> Option<Duration> {
    deadline.map(|t| t.saturating_duration_since(Instant::now()))
}

/// When the dispatcher next reaps exited daemons and relaunches crashed ones. This runs on
/// the dispatcher thread whether or not it holds the poll role, so that a thread waiting for
/// a long time does not hold up the repair of the pool.
struct Keeper {
    last: Instant,
    /// A quick second look after a disconnect: the process may not have been reapable yet
    /// when its connection dropped.
    follow_up: Option<Instant>,
    relaunch_at: Option<Instant>,
}

impl Keeper {
    /// When housekeeping is due next, if ever (nothing launched, nothing to relaunch: never).
    fn due(&self, shared: &Shared) -> Option<Instant> {
        let mut due = self.relaunch_at;
        if shared.reap_wanted.load(Ordering::Acquire) {
            return Some(Instant::now());
        }
        if !lock(&shared.children).is_empty() {
            let periodic = self.last + REAP_EVERY;
            due = Some(due.map_or(periodic, |d| d.min(periodic)));
        }
        if let Some(f) = self.follow_up {
            due = Some(due.map_or(f, |d| d.min(f)));
        }
        due
    }

    fn run(&mut self, shared: &Shared) {
        let now = Instant::now();
        if shared.reap_wanted.swap(false, Ordering::AcqRel) {
            self.follow_up = Some(now + REAP_SOON);
        } else if self.follow_up.is_some_and(|f| f <= now) {
            self.follow_up = None;
        }
        self.relaunch_at = shared.housekeep();
        self.last = now;
    }
}

fn dispatcher(shared: Arc<Shared>, listener: Arc<Listener>) {
    let mut events = Vec::new();
    let mut keeper = Keeper {
        last: Instant::now(),
        follow_up: None,
        relaunch_at: None,
    };
    // The scheduler's next deadline, as of the last turn: a turn takes the state lock once.
    // A submit with a deadline wakes the poll, which brings the loop back to recompute it;
    // after a waiting thread has driven the listener it is re-read.
    let mut next_deadline: Option<Instant> = None;
    let mut stale = false;
    loop {
        if keeper.due(&shared).is_some_and(|t| t <= Instant::now()) {
            keeper.run(&shared);
        }
        // Take the poll role, giving way to waiting threads that want it.
        let mut housekeeping = false;
        {
            let mut r = lock(&shared.role);
            loop {
                if shared.stop.load(Ordering::Acquire) {
                    return;
                }
                let keep_in = keeper
                    .due(&shared)
                    .map(|t| t.saturating_duration_since(Instant::now()));
                if keep_in == Some(Duration::ZERO) {
                    housekeeping = true;
                    break;
                }
                let nap = |d: Duration| keep_in.map_or(d, |k| k.min(d));
                if r.holder == Holder::Nobody && r.wanting == 0 {
                    match r.released_at.map(|t| t.elapsed()) {
                        Some(quiet) if quiet < GRACE => {
                            stale = true;
                            r = wait_on(&shared.role_cv, r, nap(GRACE - quiet));
                        }
                        _ => break,
                    }
                } else {
                    // A waiting thread has the role or is taking it. It does not signal its
                    // release (that would cost it a wake-up call), so look again after GRACE.
                    stale = true;
                    r = wait_on(&shared.role_cv, r, nap(GRACE));
                }
            }
            if !housekeeping {
                r.holder = Holder::Dispatcher;
                r.owner = Some(std::thread::current().id());
            }
        }
        if housekeeping {
            continue;
        }
        let role = RoleGuard {
            shared: &shared,
            holder: Holder::Dispatcher,
        };
        if stale {
            next_deadline = next_timer(&shared.state());
            stale = false;
        }
        let mut timeout = until(next_deadline);
        if let Some(k) = keeper.due(&shared) {
            let k = k.saturating_duration_since(Instant::now());
            timeout = Some(timeout.map_or(k, |t| t.min(k)));
        }
        let polled = poll_listener(&shared, &listener, &mut events, timeout);
        let t = if polled && !shared.stop.load(Ordering::Acquire) {
            turn(&shared, &listener, &mut events)
        } else {
            Turn {
                closed: true,
                next_deadline: None,
            }
        };
        next_deadline = t.next_deadline;
        drop(role);
        if t.closed {
            break;
        }
    }
    log::debug!("mirai host: dispatcher for {} stopped", shared.url);
}

impl Shared {
    /// Drives the listener from the calling thread until `done()` or `deadline`, taking the
    /// poll role over from the dispatcher thread. Returns false without waiting if another
    /// waiting thread has the role or the host is closed: the caller then waits on its
    /// condvar, and that thread (or the dispatcher) resolves what it waits for.
    fn drive(&self, deadline: Option<Instant>, done: &dyn Fn() -> bool) -> bool {
        let Some(listener) = self.state().listener.clone() else {
            return false;
        };
        {
            let mut r = lock(&self.role);
            if r.owner == Some(std::thread::current().id()) {
                // A callback run by the poller itself is waiting: it is not polling at this
                // moment (callbacks run between polls, outside every lock), so it may poll.
                drop(r);
                self.drive_held(&listener, deadline, done);
                return true;
            }
            loop {
                if self.stop.load(Ordering::Acquire) {
                    return false;
                }
                match r.holder {
                    Holder::Nobody => break,
                    Holder::Waiter => return false,
                    Holder::Dispatcher => {
                        r.wanting += 1;
                        listener.wake();
                        let left = until(deadline);
                        r = match left {
                            None => self.role_cv.wait(r).unwrap_or_else(|e| e.into_inner()),
                            Some(left) => wait_on(&self.role_cv, r, left),
                        };
                        r.wanting -= 1;
                        let finished =
                            done() || left.is_some_and(|_| until(deadline) == Some(Duration::ZERO));
                        if finished {
                            // The dispatcher may be waiting for the want to go away.
                            if r.wanting == 0 {
                                self.role_cv.notify_all();
                            }
                            return true;
                        }
                    }
                }
            }
            r.holder = Holder::Waiter;
            r.owner = Some(std::thread::current().id());
        }
        let role = RoleGuard {
            shared: self,
            holder: Holder::Waiter,
        };
        self.drive_held(&listener, deadline, done);
        drop(role);
        true
    }

    /// The polling loop of [`Shared::drive`], for a thread that holds the poll role.
    fn drive_held(&self, listener: &Listener, deadline: Option<Instant>, done: &dyn Fn() -> bool) {
        let mut events = Vec::new();
        let mut next_deadline = next_timer(&self.state());
        loop {
            if done() || self.stop.load(Ordering::Acquire) {
                break;
            }
            let timeout = match (until(deadline), until(next_deadline)) {
                (Some(Duration::ZERO), _) => break,
                (a, None) => a,
                (None, b) => b,
                (Some(a), Some(b)) => Some(a.min(b)),
            };
            if !poll_listener(self, listener, &mut events, timeout) {
                break;
            }
            if self.stop.load(Ordering::Acquire) {
                break;
            }
            let t = turn(self, listener, &mut events);
            if t.closed {
                break;
            }
            next_deadline = t.next_deadline;
        }
    }
}

/// Gives the poll role up when dropped, also on unwinding, so that a panic in one poller
/// cannot leave every other thread waiting for the role forever.
struct RoleGuard<'a> {
    shared: &'a Shared,
    holder: Holder,
}

impl Drop for RoleGuard<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            log::error!(
                "mirai host: a thread panicked while driving the listener; closing the host"
            );
            let mut d = Deferred::default();
            drop(self.shared.close(&mut d));
            // Wakers and callbacks are not run while unwinding; their handles are resolved.
        }
        let mut r = lock(&self.shared.role);
        r.holder = Holder::Nobody;
        r.owner = None;
        if self.holder == Holder::Waiter {
            r.released_at = Some(Instant::now());
        }
        if r.wanting > 0 || std::thread::panicking() {
            self.shared.role_cv.notify_all();
        }
    }
}

/// The next instant the host must act at: a task deadline or a hello deadline.
fn next_timer(st: &State) -> Option<Instant> {
    let hello = st.hello_deadlines.front().map(|e| e.0);
    match (st.sched.poll_timeout(), hello) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// A new connection: admitted as pending (it must say hello within the hello timeout), or
/// dropped at once if too many are pending already.
fn connected(shared: &Shared, st: &mut State, listener: &Listener, p: PeerId) {
    if st.pending >= shared.max_pending {
        log::warn!(
            "mirai host: dropping connection {p}: {} connections are already waiting to say hello (the limit)",
            st.pending
        );
        st.peers.insert(
            p,
            Peer {
                hello: None,
                bad: true,
            },
        );
        listener.disconnect(p);
        return;
    }
    log::debug!("mirai host: connection {p} opened");
    st.peers.insert(p, Peer::default());
    st.pending += 1;
    let at = Instant::now().checked_add(shared.hello_timeout);
    if let Some(at) = at {
        st.hello_deadlines.push_back((at, p));
    }
    st.sched.connected(p);
}

/// Drops the connections whose hello is overdue.
fn expire_hellos(shared: &Shared, st: &mut State, listener: &Listener, now: Instant) {
    while let Some(&(at, p)) = st.hello_deadlines.front() {
        if at > now {
            break;
        }
        st.hello_deadlines.pop_front();
        if st
            .peers
            .get(&p)
            .is_some_and(|x| x.hello.is_none() && !x.bad)
        {
            let reason = format!("no hello within {:?}", shared.hello_timeout);
            drop_peer(st, listener, p, &reason);
        }
    }
}

/// Disconnects a peer that broke the protocol (or never spoke it), logging why; whatever else
/// it sends is ignored until its disconnect arrives.
fn drop_peer(st: &mut State, listener: &Listener, p: PeerId, reason: &str) {
    let Some(peer) = st.peers.get_mut(&p) else {
        return;
    };
    if peer.bad {
        return;
    }
    peer.bad = true;
    if peer.hello.is_none() {
        st.pending -= 1;
        log::warn!("mirai host: dropping connection {p}: {reason}");
    } else {
        log::warn!("mirai host: daemon {p} sent {reason}; disconnecting it");
    }
    listener.disconnect(p);
}

/// Describes why a connection ended, for the log. The transport's texts give lengths and
/// counts, never the bytes received.
fn describe_disconnect(r: &DisconnectReason) -> String {
    match r {
        DisconnectReason::Closed => "closed by the peer".to_string(),
        DisconnectReason::Local => "closed by the host".to_string(),
        DisconnectReason::Protocol(why) => format!("broken framing ({why})"),
        DisconnectReason::Io(why) => format!("I/O error ({why})"),
    }
}

fn handle_message(
    shared: &Shared,
    st: &mut State,
    listener: &Listener,
    p: PeerId,
    bytes: Vec<u8>,
    d: &mut Deferred,
    notes: &mut Notes,
) {
    let Some(peer) = st.peers.get_mut(&p) else {
        log::warn!("mirai host: message from unknown peer {p}; disconnecting it");
        listener.disconnect(p);
        return;
    };
    if peer.bad {
        return;
    }
    let violation = match mirai_proto::decode(&bytes, shared.max_frame) {
        Ok(Frame::Hello(_)) if peer.hello.is_some() => Some("a second hello".to_string()),
        Ok(Frame::Hello(h)) if h.protocol != PROTOCOL_VERSION => Some(format!(
            "a hello with protocol version {} (this host speaks {PROTOCOL_VERSION})",
            h.protocol
        )),
        Ok(Frame::Hello(h)) => {
            log::debug!("mirai host: daemon {p} (pid {}) said hello", h.pid);
            peer.hello = Some(h.pid);
            st.pending -= 1;
            st.sched.hello(p);
            if let Some(t) = &shared.trace {
                d.peers.push(t.event(true, h.pid));
            }
            None
        }
        Ok(Frame::Result(_)) if peer.hello.is_none() => Some("a result frame".to_string()),
        Ok(Frame::Withdrawn { .. }) if peer.hello.is_none() => {
            Some("a withdrawn frame".to_string())
        }
        Ok(Frame::Withdrawn { id }) => {
            if st.sched.withdrawn(p, id) {
                log::debug!("mirai host: daemon {p} gave back task {id} unstarted");
            } else {
                log::debug!("mirai host: ignored give-back of task {id} from daemon {p}");
            }
            None
        }
        Ok(Frame::Result(r)) => {
            match st.sched.result(p, r.id, r.last) {
                Delivery::Deliver => {
                    let outcome = Outcome::Value {
                        status: r.status,
                        payload: r.payload,
                    };
                    shared.resolve(st, r.id, outcome, d, notes);
                }
                Delivery::Discard if r.last => {
                    log::debug!("mirai host: daemon {p} is leaving (a limit was reached)")
                }
                Delivery::Discard => {
                    log::debug!(
                        "mirai host: discarded result of task {} from daemon {p}",
                        r.id
                    )
                }
            }
            None
        }
        Ok(other) => Some(format!("an unexpected {} frame", other.kind())),
        Err(e) => Some(describe(&e)),
    };
    if let Some(reason) = violation {
        let reason = match st.peers.get(&p) {
            Some(x) if x.hello.is_none() => {
                format!(
                    "it sent {reason} (a message of {} bytes) before saying hello",
                    bytes.len()
                )
            }
            _ => reason,
        };
        drop_peer(st, listener, p, &reason);
    }
}

// ---------------------------------------------------------------------------------------------
// Host

/// The guard whose drop (with the last [`Host`] clone) resets the host.
struct HostInner {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
    thread_id: ThreadId,
}

impl Drop for HostInner {
    fn drop(&mut self) {
        self.reset();
    }
}

impl HostInner {
    fn reset(&self) {
        // Only the call that closes the host records the reset (reset is idempotent).
        let span = match &self.shared.trace {
            Some(t) if !self.shared.state().closed => {
                mirai_trace::daemons_reset(&t.url, t.dispatcher, &t.compute, t.set)
            }
            _ => Span::none(),
        };
        let mut d = Deferred {
            parent: span.context(),
            ..Deferred::default()
        };
        let listener = self.shared.close(&mut d);
        d.run(&self.shared);
        if let Some(l) = &listener {
            l.wake();
        }
        // A callback running on the dispatcher thread may reset (or drop) the host: that
        // thread cannot join itself, and it stops on its own at its next loop turn.
        if std::thread::current().id() != self.thread_id {
            if let Some(t) = lock(&self.thread).take() {
                if t.join().is_err() {
                    log::error!("mirai host: the dispatcher thread panicked");
                }
            }
        }
        // Dropping the last reference to the listener closes every connection, so daemons
        // see the host go and follow their autoexit setting.
        drop(listener);
        let children: Vec<Child> = std::mem::take(&mut *lock(&self.shared.children))
            .into_iter()
            .map(|l| l.child)
            .collect();
        if !children.is_empty() {
            spawn_reaper(children);
        }
        // A span, sampled or not, exists only when tracing and this call closed the host.
        if span.context().is_some() {
            span.end();
            // Deliver the profile's spans now: the process may end soon after a reset.
            mirai_trace::flush();
        }
    }
}

/// Collects the exit status of daemons that exit after a reset, for a bounded time.
fn spawn_reaper(mut children: Vec<Child>) {
    let r = std::thread::Builder::new()
        .name("mirai-reaper".into())
        .spawn(move || {
            let end = Instant::now() + REAPER_LIFETIME;
            loop {
                children.retain_mut(|c| !matches!(c.try_wait(), Ok(Some(_)) | Err(_)));
                if children.is_empty() || Instant::now() >= end {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
    if let Err(e) = r {
        log::warn!("mirai host: cannot start a reaper thread ({e}); exited daemons stay unreaped");
    }
}

/// A compute profile's engine. Cheap to clone (shared); `Send + Sync`. Dropping the last
/// clone resets it ([`Host::reset`]).
#[derive(Clone)]
pub struct Host {
    inner: Arc<HostInner>,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host").field("url", &self.url()).finish()
    }
}

impl Host {
    /// Binds the URL and starts the dispatcher thread.
    pub fn start(config: HostConfig) -> Result<Host, HostError> {
        // The process decides whether it traces here, once (see "Tracing" in the crate docs).
        let tracing = mirai_trace::enabled();
        let started = SystemTime::now();
        let dispatcher_mode = config.mode == Mode::Dispatcher;
        // A daemon's first message is its hello (under 100 bytes): a stranger announcing more
        // is dropped at its length prefix, so that connections which have not said hello hold
        // at most this much each (with `max_pending` of them at once).
        let transport = TransportOptions {
            max_first_message: config
                .transport
                .max_first_message
                .or(Some(MAX_FIRST_MESSAGE)),
            ..config.transport.clone()
        };
        let listener = match Listener::bind(&config.url, &transport) {
            Ok(l) => Arc::new(l),
            Err(e) => {
                if tracing {
                    let mut span = mirai_trace::daemons_set(
                        &config.url,
                        dispatcher_mode,
                        &config.compute,
                        started,
                    );
                    span.set_error(e.to_string());
                }
                return Err(e.into());
            }
        };
        // Named after the resolved URL, so the span exists only once the listener does.
        let set_span = if tracing {
            mirai_trace::daemons_set(listener.url(), dispatcher_mode, &config.compute, started)
        } else {
            Span::none()
        };
        let trace = tracing.then(|| {
            Arc::new(HostTrace {
                url: listener.url().to_string(),
                compute: config.compute.clone(),
                dispatcher: dispatcher_mode,
                set: set_span.context(),
            })
        });
        // NNG's polyamorous pair drops messages beyond two queued for a peer (see
        // mirai-transport): a second task plus its cancel or withdraw could be lost there.
        let pipeline = config
            .pipeline
            .filter(|_| config.transport.backend != Backend::Nng);
        let sched = Scheduler::new(SchedConfig {
            mode: config.mode,
            memory_limit: config.memory_limit,
            pipeline,
        });
        let timed = config.mode == Mode::Dispatcher && pipeline.is_some();
        let shared = Arc::new(Shared {
            url: listener.url().to_string(),
            max_frame: config.transport.max_message,
            stream: config.stream,
            serial: config.serial,
            retries: config.retries,
            timed,
            mode: config.mode,
            hello_timeout: config.hello_timeout,
            max_pending: config.max_pending,
            repair: config.repair,
            relaunch: Mutex::new(Relaunch::default()),
            relaunches: AtomicU64::new(0),
            reap_wanted: AtomicBool::new(false),
            state: Mutex::new(State {
                sched,
                slots: HashMap::new(),
                peers: HashMap::new(),
                pending: 0,
                hello_deadlines: VecDeque::new(),
                listener: Some(listener.clone()),
                closed: false,
                conn_waiters: 0,
                admit_waiters: 0,
                completion_waiters: 0,
            }),
            conn_cv: Condvar::new(),
            admit_cv: Condvar::new(),
            completion_cv: Condvar::new(),
            completions: AtomicU64::new(0),
            children: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
            role: Mutex::new(PollRole::default()),
            role_cv: Condvar::new(),
            trace,
            outbox: Outbox::default(),
        });
        let s = shared.clone();
        let mut set_span = set_span;
        let thread = match std::thread::Builder::new()
            .name("mirai-dispatcher".into())
            .spawn(move || dispatcher(s, listener))
        {
            Ok(t) => t,
            Err(e) => {
                set_span.set_error(format!("cannot start the dispatcher thread: {e}"));
                return Err(HostError::Thread(e));
            }
        };
        let thread_id = thread.thread().id();
        set_span.end();
        Ok(Host {
            inner: Arc::new(HostInner {
                shared,
                thread: Mutex::new(Some(thread)),
                thread_id,
            }),
        })
    }

    fn shared(&self) -> &Shared {
        &self.inner.shared
    }

    /// The URL daemons dial, with an ephemeral port resolved.
    pub fn url(&self) -> &str {
        &self.inner.shared.url
    }

    /// Submits a task; returns its handle at once. If an idle daemon is waiting, the task is
    /// written to it from this thread.
    pub fn submit(&self, payload: Vec<u8>, opts: SubmitOptions) -> Result<TaskHandle, HostError> {
        let deadline = opts.timeout.and_then(|t| Instant::now().checked_add(t));
        let retries = opts.retries.unwrap_or(self.shared().retries);
        let task = match &self.shared().trace {
            Some(t) if opts.trace.is_none() => traced_task(t, payload, opts.parent),
            _ => encode_task(payload, 0, opts.trace),
        };
        let mut handles =
            self.submit_encoded(vec![task], deadline, retries, |_| TaskKind::Normal)?;
        Ok(handles.remove(0))
    }

    /// Submits one task per payload, in order, under one lock: the `mirai_map` path. Tasks get
    /// the profile's default retry budget ([`HostConfig::retries`]).
    ///
    /// When tracing, the submission is a `mirai_map` span, the parent of the tasks' `mirai`
    /// spans.
    pub fn map(
        &self,
        payloads: impl IntoIterator<Item = Vec<u8>>,
    ) -> Result<Vec<TaskHandle>, HostError> {
        let Some(t) = &self.shared().trace else {
            let tasks: Vec<EncodedTask> = payloads
                .into_iter()
                .map(|p| encode_task(p, 0, None))
                .collect();
            return self.submit_encoded(tasks, None, self.shared().retries, |_| TaskKind::Normal);
        };
        let mut span = mirai_trace::mirai_map(None, t.set);
        let parent = span.context();
        let tasks: Vec<EncodedTask> = payloads
            .into_iter()
            .map(|p| traced_task(t, p, parent))
            .collect();
        span.set_attribute("mirai.tasks", tasks.len() as i64);
        let r = self.submit_encoded(tasks, None, self.shared().retries, |_| TaskKind::Normal);
        if let Err(e) = &r {
            span.set_error(e.to_string());
        }
        r
    }

    /// Opens a `mirai_map` span, for a caller that submits a map's elements one by one: give
    /// its [`Span::context`](mirai_trace::Span::context) as [`SubmitOptions::parent`] of each
    /// element, and drop the span (or call `end`) once they are submitted. `parent` is the
    /// span's own parent, if any. The empty span when tracing is off. ([`Host::map`] does all
    /// of this itself.)
    pub fn map_span(&self, parent: Option<TraceParent>) -> mirai_trace::Span {
        match &self.shared().trace {
            Some(t) => mirai_trace::mirai_map(parent, t.set),
            None => Span::none(),
        }
    }

    /// The host's mode, as configured ([`HostConfig::mode`]): in dispatcher mode a cancel
    /// reports whether the host still held the task.
    pub fn mode(&self) -> Mode {
        self.shared().mode
    }

    /// True if this host records spans (the process's tracing decision, see the crate docs).
    pub fn tracing(&self) -> bool {
        self.shared().trace.is_some()
    }

    /// Submits an `everywhere` round: `max(min, connections)` copies of `payload`, each to a
    /// distinct daemon, the round blocking later tasks until all are dispatched. With no
    /// daemon connected and `min = 0` the round is empty.
    pub fn everywhere(&self, payload: Vec<u8>, min: usize) -> Result<Vec<TaskHandle>, HostError> {
        let connections = self.shared().state().sched.counters().connections;
        let k = (min as u64).max(connections) as usize;
        if k == 0 {
            return Ok(Vec::new());
        }
        // One body for every copy (the frames differ only in their ids). Ids are taken in
        // order, so the round's last task has the highest id.
        let body = TaskBody::new(flags::EVERYWHERE, None, &payload);
        let payload_len = payload.len() as u64;
        drop(payload);
        let tasks: Vec<EncodedTask> = (0..k)
            .map(|_| EncodedTask {
                id: NEXT_TASK_ID.fetch_add(1, Ordering::Relaxed),
                frame: body.clone(),
                payload_len,
                span: Span::none(),
            })
            .collect();
        self.submit_encoded(tasks, None, 0, |i| TaskKind::Everywhere {
            closes_round: i + 1 == k,
        })
    }

    /// Hands encoded tasks to the scheduler in order, under one lock, and carries out what it
    /// asks (sending to idle daemons from this thread).
    fn submit_encoded(
        &self,
        tasks: Vec<EncodedTask>,
        deadline: Option<Instant>,
        retries: u32,
        kind: impl Fn(usize) -> TaskKind,
    ) -> Result<Vec<TaskHandle>, HostError> {
        let shared = self.shared();
        let mut handles = Vec::with_capacity(tasks.len());
        let mut d = Deferred::default();
        let wake = {
            let mut st = shared.state();
            if st.closed {
                drop(st);
                for t in tasks {
                    let mut span = t.span;
                    span.set_error(HostError::Closed.to_string());
                }
                return Err(HostError::Closed);
            }
            if shared.timed {
                // Dates the dispatches (task times, for pipelining).
                st.sched.set_time(Instant::now());
            }
            for (i, t) in tasks.into_iter().enumerate() {
                let slot = Slot::new(t.span);
                st.slots.insert(t.id, slot.clone());
                let spec = TaskSpec {
                    kind: kind(i),
                    deadline,
                    retries,
                };
                st.sched.submit_with(t.id, t.frame, t.payload_len, spec);
                handles.push(TaskHandle {
                    id: t.id,
                    slot,
                    host: Arc::downgrade(&self.inner.shared),
                });
            }
            let mut notes = Notes::default();
            shared.carry_out(&mut st, &mut d, &mut notes, None);
            shared.notify(&st, &notes);
            // The dispatcher must recompute its timer for the new deadline.
            deadline.and_then(|_| st.listener.clone())
        };
        d.run(shared);
        if let Some(l) = wake {
            l.wake();
        }
        Ok(handles)
    }

    /// True if a task would be admitted under the memory budget now (`try_mirai`). Also true
    /// once the host has closed, so that the submit that follows reports the closure.
    pub fn admit(&self) -> bool {
        let st = self.shared().state();
        st.closed || st.sched.admit()
    }

    /// Waits until a task would be admitted, the host closes, or `timeout` passes; returns
    /// whether it would be admitted (true once closed, as [`Host::admit`]). This is the
    /// `mirai()` memory gate; callers loop to check for user interrupts.
    pub fn wait_admit(&self, timeout: Duration) -> bool {
        let shared = self.shared();
        let deadline = Instant::now().checked_add(timeout);
        wait_state(
            shared.state(),
            &shared.admit_cv,
            deadline,
            |st| &mut st.admit_waiters,
            |st| (st.closed || st.sched.admit()).then_some(true),
            |_| false,
        )
    }

    /// Cancels a task: its handle resolves with 20 at once unless already resolved. Returns
    /// what the scheduler returned (true if it still held the task). A handle of another host
    /// is left alone (false).
    pub fn cancel(&self, handle: &TaskHandle) -> bool {
        let shared = self.shared();
        let mut d = Deferred::default();
        let held = {
            let mut st = shared.state();
            let mine = st
                .slots
                .get(&handle.id)
                .is_some_and(|s| Arc::ptr_eq(s, &handle.slot));
            if !mine {
                return false;
            }
            let held = st.sched.cancel(handle.id);
            let mut notes = Notes {
                admit: held,
                ..Notes::default()
            };
            shared.carry_out(&mut st, &mut d, &mut notes, None);
            shared.resolve(
                &mut st,
                handle.id,
                Outcome::Error(ErrorCode::Canceled),
                &mut d,
                &mut notes,
            );
            shared.notify(&st, &notes);
            held
        };
        d.run(shared);
        held
    }

    /// Counters and memory now.
    pub fn status(&self) -> HostStatus {
        let st = self.shared().state();
        HostStatus {
            url: self.url().to_string(),
            counters: st.sched.counters(),
            memory: st.sched.memory(),
            pipelined: st.sched.pipelined(),
        }
    }

    /// Waits until at least `n` daemons are connected (handshake done), or `timeout` passes,
    /// or the host closes. Returns whether `n` are connected.
    pub fn wait_connections(&self, n: u64, timeout: Duration) -> bool {
        let shared = self.shared();
        let deadline = Instant::now().checked_add(timeout);
        wait_state(
            shared.state(),
            &shared.conn_cv,
            deadline,
            |st| &mut st.conn_waiters,
            |st| {
                if st.closed {
                    Some(false)
                } else {
                    (st.sched.ready_daemons() >= n).then_some(true)
                }
            },
            |_| false,
        )
    }

    /// A number that grows by one at every task completion on this host.
    pub fn completions(&self) -> u64 {
        self.shared().completions.load(Ordering::Acquire)
    }

    /// Waits until [`Host::completions`] exceeds `seen`, the host closes, or `timeout` passes;
    /// returns it.
    pub fn wait_completion(&self, seen: u64, timeout: Duration) -> u64 {
        let shared = self.shared();
        let deadline = Instant::now().checked_add(timeout);
        if shared.completions.load(Ordering::Acquire) <= seen {
            shared.drive(deadline, &|| {
                shared.completions.load(Ordering::Acquire) > seen
            });
        }
        let count = || shared.completions.load(Ordering::Acquire);
        wait_state(
            shared.state(),
            &shared.completion_cv,
            deadline,
            |st| &mut st.completion_waiters,
            |st| {
                let c = count();
                (c > seen || st.closed).then_some(c)
            },
            |_| count(),
        )
    }

    /// Sends an exit instruction to every connected daemon (`daemons(NULL)`), about 10 ms apart.
    /// The sends happen outside the state lock, so the host keeps serving meanwhile.
    pub fn exit_daemons(&self) {
        let shared = self.shared();
        let mut d = Deferred::default();
        let mut exits = Vec::new();
        let listener = {
            let mut st = shared.state();
            if st.closed {
                return;
            }
            st.sched.exit_all();
            let mut notes = Notes::default();
            shared.carry_out(&mut st, &mut d, &mut notes, Some(&mut exits));
            shared.notify(&st, &notes);
            st.listener.clone()
        };
        d.run(shared);
        let Some(listener) = listener else { return };
        let frame = mirai_proto::encode(&Frame::Exit);
        for (i, peer) in exits.into_iter().enumerate() {
            if i > 0 {
                std::thread::sleep(EXIT_SPACING);
            }
            if let Err(e) = listener.send(peer, &frame) {
                log::debug!("mirai host: exit to daemon {peer} not sent: {e}");
            }
        }
    }

    /// Closes the host: every unresolved task resolves (19, or 7 if never sent in direct
    /// mode), the dispatcher thread ends, and the listener closes so that daemons see the host
    /// go. Idempotent; also on drop of the last clone.
    pub fn reset(&self) {
        self.inner.reset();
    }

    /// True once [`Host::reset`] has run (or the listener failed).
    pub fn is_closed(&self) -> bool {
        self.shared().state().closed
    }

    /// Starts `n` local daemon processes with `command` (not waited for; reaped by the host,
    /// and relaunched if they crash when [`HostConfig::repair`] is set).
    pub fn launch(&self, command: &launch::Command, n: usize) -> Result<(), HostError> {
        if self.is_closed() {
            return Err(HostError::Closed);
        }
        let shared_command = Arc::new(command.clone());
        for _ in 0..n {
            let child = command.spawn().map_err(|source| HostError::Launch {
                program: command.program.display().to_string(),
                source,
            })?;
            lock(&self.shared().children).push(Launched {
                child,
                command: shared_command.clone(),
                started: Instant::now(),
                crashes: 0,
            });
        }
        // The dispatcher may be sleeping without a timer: let it start its reaping period.
        if let Some(l) = self.shared().state().listener.clone() {
            l.wake();
        }
        Ok(())
    }

    /// The process ids of the daemons this host launched that have not been reaped yet.
    pub fn launched_pids(&self) -> Vec<u32> {
        lock(&self.shared().children)
            .iter()
            .map(|l| l.child.id())
            .collect()
    }

    /// How many crashed daemons this host has relaunched ([`HostConfig::repair`]).
    pub fn relaunches(&self) -> u64 {
        self.shared().relaunches.load(Ordering::Acquire)
    }
}

/// A task made ready outside the lock.
struct EncodedTask {
    id: u64,
    frame: TaskBody,
    payload_len: u64,
    /// Its `mirai` span (empty when not tracing).
    span: Span,
}

fn encode_task(payload: Vec<u8>, flags: u8, trace: Option<String>) -> EncodedTask {
    let id = NEXT_TASK_ID.fetch_add(1, Ordering::Relaxed);
    encode_task_with(id, payload, flags, trace, Span::none())
}

/// A task with its `mirai` span, whose traceparent goes in the frame.
fn traced_task(t: &HostTrace, payload: Vec<u8>, parent: Option<TraceParent>) -> EncodedTask {
    let id = NEXT_TASK_ID.fetch_add(1, Ordering::Relaxed);
    let span = mirai_trace::mirai(id, parent, t.set);
    let trace = span.context().map(|c| c.to_string());
    encode_task_with(id, payload, 0, trace, span)
}

fn encode_task_with(
    id: u64,
    payload: Vec<u8>,
    flags: u8,
    trace: Option<String>,
    span: Span,
) -> EncodedTask {
    let payload_len = payload.len() as u64;
    let frame = TaskBody::new(flags, trace.as_deref(), &payload);
    EncodedTask {
        id,
        frame,
        payload_len,
        span,
    }
}

#[cfg(test)]
mod tests;
