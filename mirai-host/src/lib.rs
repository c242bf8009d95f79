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
//! ```no_run
//! use mirai_host::{Host, HostConfig, SubmitOptions};
//! let host = Host::start(HostConfig::new("abstract://example"))?;
//! // ... start daemons that dial host.url() ...
//! let handle = host.submit(b"payload".to_vec(), SubmitOptions::default())?;
//! let outcome = handle.wait(None);
//! # Ok::<(), mirai_host::HostError>(())
//! ```

pub mod launch;
pub mod rng;

use std::time::Duration;

pub use mirai_proto::{RngStream, Status};
pub use mirai_sched::{Counters, ErrorCode, Memory, Mode};
pub use mirai_transport::Options as TransportOptions;

/// How a host is set up.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// The URL to listen at (port 0 picks one; see [`Host::url`]).
    pub url: String,
    /// Transport settings.
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
}

impl HostConfig {
    /// Dispatcher mode at `url`, no budget, no streams, no serialization config.
    pub fn new(url: impl Into<String>) -> Self {
        HostConfig {
            url: url.into(),
            transport: TransportOptions::default(),
            mode: Mode::Dispatcher,
            memory_limit: None,
            stream: None,
            serial: Vec::new(),
        }
    }
}

/// Per-task options.
#[derive(Debug, Clone, Default)]
pub struct SubmitOptions {
    /// Resolve with error 5 after this long (dispatcher mode also cancels the task).
    pub timeout: Option<Duration>,
    /// W3C traceparent to carry to the daemon.
    pub trace: Option<String>,
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
}

/// A compute profile's engine. Cheap to clone (shared); `Send + Sync`.
#[derive(Clone)]
pub struct Host {
    _p: (),
}

impl Host {
    /// Binds the URL and starts the dispatcher thread.
    pub fn start(config: HostConfig) -> Result<Host, HostError> {
        let _ = config;
        unimplemented!()
    }

    /// The URL daemons dial, with an ephemeral port resolved.
    pub fn url(&self) -> &str {
        unimplemented!()
    }

    /// Submits a task; returns its handle at once. If an idle daemon is waiting, the task is
    /// written to it from this thread.
    pub fn submit(&self, payload: Vec<u8>, opts: SubmitOptions) -> Result<TaskHandle, HostError> {
        let _ = (payload, opts);
        unimplemented!()
    }

    /// Submits an `everywhere` round: `max(min, connections)` copies of `payload`, each to a
    /// distinct daemon, the round blocking later tasks until all are dispatched.
    pub fn everywhere(&self, payload: Vec<u8>, min: usize) -> Result<Vec<TaskHandle>, HostError> {
        let _ = (payload, min);
        unimplemented!()
    }

    /// True if a task would be admitted under the memory budget now (`try_mirai`).
    pub fn admit(&self) -> bool {
        unimplemented!()
    }

    /// Waits until a task would be admitted, the host closes, or `timeout` passes; returns
    /// whether it would be admitted (the `mirai()` memory gate; callers loop to check for
    /// user interrupts).
    pub fn wait_admit(&self, timeout: Duration) -> bool {
        let _ = timeout;
        unimplemented!()
    }

    /// Cancels a task: its handle resolves with 20 at once unless already resolved. Returns
    /// what the scheduler returned (true if it still held the task).
    pub fn cancel(&self, handle: &TaskHandle) -> bool {
        let _ = handle;
        unimplemented!()
    }

    /// Counters and memory now.
    pub fn status(&self) -> HostStatus {
        unimplemented!()
    }

    /// Waits until at least `n` daemons are connected (handshake done), or `timeout` passes.
    pub fn wait_connections(&self, n: u64, timeout: Duration) -> bool {
        let _ = (n, timeout);
        unimplemented!()
    }

    /// A number that grows by one at every task completion on this host.
    pub fn completions(&self) -> u64 {
        unimplemented!()
    }

    /// Waits until [`Host::completions`] exceeds `seen`, or `timeout` passes; returns it.
    pub fn wait_completion(&self, seen: u64, timeout: Duration) -> u64 {
        let _ = (seen, timeout);
        unimplemented!()
    }

    /// Sends an exit instruction to every connected daemon (`daemons(NULL)`), about 10 ms apart.
    pub fn exit_daemons(&self) {
        unimplemented!()
    }

    /// Closes the host: every unresolved task resolves (19, or 7 if never sent in direct
    /// mode), the listener closes, and the dispatcher thread ends. Idempotent; also on drop of
    /// the last clone.
    pub fn reset(&self) {
        unimplemented!()
    }

    /// Starts `n` local daemon processes with `command` (not waited for; reaped by the host).
    pub fn launch(&self, command: &launch::Command, n: usize) -> Result<(), HostError> {
        let _ = (command, n);
        unimplemented!()
    }
}

/// A submitted task. Resolves exactly once. A `Future` whose output is the [`Outcome`], and
/// waitable from any thread.
pub struct TaskHandle {
    _p: (),
}

impl TaskHandle {
    /// The task's id (unique and increasing within the process).
    pub fn id(&self) -> u64 {
        unimplemented!()
    }

    /// True once resolved (whether or not the outcome was taken).
    pub fn is_resolved(&self) -> bool {
        unimplemented!()
    }

    /// Waits up to `timeout` (`None`: forever) and takes the outcome. `None` on timeout, or if
    /// the outcome was already taken.
    pub fn wait(&self, timeout: Option<Duration>) -> Option<Outcome> {
        let _ = timeout;
        unimplemented!()
    }

    /// Takes the outcome if resolved, without waiting.
    pub fn try_take(&self) -> Option<Outcome> {
        unimplemented!()
    }

    /// Runs `f` once when the task resolves (at once, on this thread, if it already has).
    /// `f` runs on the dispatcher thread: it must be quick and must not call R.
    pub fn on_complete(&self, f: Box<dyn FnOnce() + Send>) {
        let _ = f;
        unimplemented!()
    }
}
