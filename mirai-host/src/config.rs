//! How a host and its tasks are set up: [`HostConfig`], [`RepairPolicy`], [`SubmitOptions`]
//! and their defaults.

use std::time::Duration;

use mirai_proto::RngStream;
use mirai_sched::Mode;

use mirai_trace::TraceParent;

use crate::{CompletionNotifier, TransportOptions};
#[cfg(doc)]
use crate::{Host, TaskHandle};

/// How a host is set up.
#[derive(Debug, Clone)]
#[non_exhaustive]
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
    /// Called once per task this host resolves, whatever the outcome (see
    /// [`CompletionNotifier`]): an event-driven "something finished" for callers that wait on
    /// their own primitive. `None` (the default): nothing is called.
    pub on_complete: Option<CompletionNotifier>,
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
    /// no repair, default hello timeout and pending-connection cap, no completion notifier.
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
            on_complete: None,
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
#[non_exhaustive]
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

impl RepairPolicy {
    /// Sets [`RepairPolicy::backoff`].
    #[must_use]
    pub fn with_backoff(mut self, backoff: Duration) -> Self {
        self.backoff = backoff;
        self
    }

    /// Sets [`RepairPolicy::max_backoff`].
    #[must_use]
    pub fn with_max_backoff(mut self, max_backoff: Duration) -> Self {
        self.max_backoff = max_backoff;
        self
    }

    /// Sets [`RepairPolicy::stable`].
    #[must_use]
    pub fn with_stable(mut self, stable: Duration) -> Self {
        self.stable = stable;
        self
    }

    /// Sets [`RepairPolicy::max_per_minute`].
    #[must_use]
    pub fn with_max_per_minute(mut self, max_per_minute: u32) -> Self {
        self.max_per_minute = max_per_minute;
        self
    }
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
#[non_exhaustive]
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

impl SubmitOptions {
    /// No timeout, no caller traceparent or span parent, the profile's retry budget: the same
    /// as [`SubmitOptions::default`].
    #[must_use]
    pub fn new() -> Self {
        SubmitOptions::default()
    }

    /// Sets [`SubmitOptions::timeout`] (`None`: none).
    #[must_use]
    pub fn with_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets [`SubmitOptions::trace`] (`None`: the host traces the task itself).
    #[must_use]
    pub fn with_trace(mut self, trace: Option<String>) -> Self {
        self.trace = trace;
        self
    }

    /// Sets [`SubmitOptions::parent`] (`None`: no parent span).
    #[must_use]
    pub fn with_parent(mut self, parent: Option<TraceParent>) -> Self {
        self.parent = parent;
        self
    }

    /// Sets [`SubmitOptions::retries`] (`None`: the profile's default).
    #[must_use]
    pub fn with_retries(mut self, retries: Option<u32>) -> Self {
        self.retries = retries;
        self
    }
}
