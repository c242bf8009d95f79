//! The mirai dispatcher as a deterministic state machine, in the style of `quinn-proto`.
//!
//! [`Scheduler`] holds the FIFO queue of tasks and the state of every daemon. Its methods take
//! events (a daemon connected or said hello, a task was submitted or cancelled, a result came
//! back, time passed) and queue [`Action`]s that the caller drains with
//! [`Scheduler::poll_action`] and carries out (send a frame, resolve a handle).
//!
//! It does no I/O, starts no threads and never reads a clock: time is whatever `Instant` the
//! caller hands in. Payloads are an opaque type parameter `P` that it only moves around. So it
//! can be driven by any transport, and tested exhaustively with random event sequences.
//!
//! Rules it keeps (see `docs/architecture.md`):
//! - one FIFO queue; the head is dispatched first, and a later task never overtakes it;
//! - a task goes only to an idle daemon that has been sent its init bundle (dispatcher mode);
//! - cancelling a queued task removes it; cancelling an executing one asks its daemon to
//!   interrupt it and the daemon stays busy until it answers;
//! - a busy daemon that disconnects fails its task with [`ErrorCode::ConnectionReset`] (19);
//! - `everywhere` rounds reach each daemon at most once;
//! - a result marked `last` removes its daemon from the pool, which is acknowledged;
//! - queued payload bytes are accounted against an optional budget.
//!
//! ```
//! use mirai_sched::{Action, Config, Scheduler, TaskKind};
//! let mut s: Scheduler<&str> = Scheduler::new(Config::default());
//! s.submit(1, "work", 4, TaskKind::Normal, None);
//! s.connected(10);
//! s.hello(10);
//! assert!(matches!(s.poll_action(), Some(Action::Init { daemon: 10, ordinal: 1 })));
//! assert!(matches!(s.poll_action(), Some(Action::Dispatch { daemon: 10, task: 1, payload: "work" })));
//! ```

use std::time::Instant;

/// A daemon, named by the caller (the host uses transport peer ids).
pub type DaemonId = u64;
/// A task, named by the caller; ids are unique for the scheduler's life.
pub type TaskId = u64;

/// How tasks reach daemons.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// FIFO queue, dispatch to idle daemons only, cancellation, memory budget.
    #[default]
    Dispatcher,
    /// `dispatcher = FALSE`: each task is sent at submission to the next daemon round-robin,
    /// queueing at a busy daemon; tasks wait in the scheduler only while no daemon is connected.
    /// No cancellation and no budget.
    Direct,
}

/// Scheduler settings.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// See [`Mode`].
    pub mode: Mode,
    /// Budget on the bytes of queued tasks (dispatcher mode); `None` is unbounded.
    pub memory_limit: Option<u64>,
}

/// What kind of task is submitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskKind {
    /// An ordinary task.
    Normal,
    /// One task of an `everywhere` round. The round is open from its first task's dispatch
    /// until the task with `closes_round` is dispatched; while it is open no task goes to a
    /// daemon that already had one of the round.
    Everywhere {
        /// True for the round's last task.
        closes_round: bool,
    },
}

/// The error codes the scheduler resolves tasks with (R's integer error values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ErrorCode {
    /// 5: the task's deadline passed.
    TimedOut = 5,
    /// 7: the task was never sent and its profile closed.
    ObjectClosed = 7,
    /// 19: the daemon evaluating (or holding) the task went away, or the profile was reset.
    ConnectionReset = 19,
    /// 20: the task was cancelled.
    Canceled = 20,
}

/// Something the caller must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action<P> {
    /// Send the init bundle to a daemon that said hello. `ordinal` counts hellos over the
    /// scheduler's life (1 for the first), which picks the daemon's RNG stream.
    Init {
        /// The daemon.
        daemon: DaemonId,
        /// 1-based cumulative count of daemons that completed the handshake.
        ordinal: u64,
    },
    /// Send this task to this daemon.
    Dispatch {
        /// The daemon.
        daemon: DaemonId,
        /// The task.
        task: TaskId,
        /// Its payload, as submitted.
        payload: P,
    },
    /// Ask the daemon to interrupt this task.
    Cancel {
        /// The daemon evaluating it.
        daemon: DaemonId,
        /// The task.
        task: TaskId,
    },
    /// Acknowledge the daemon's `last` result; it exits.
    Ack {
        /// The daemon.
        daemon: DaemonId,
    },
    /// Tell the daemon to terminate (`daemons(NULL)`).
    Exit {
        /// The daemon.
        daemon: DaemonId,
    },
    /// Resolve this task's handle with an error code; nothing more will come for it.
    Fail {
        /// The task.
        task: TaskId,
        /// Why.
        code: ErrorCode,
    },
}

/// What to do with a result that came back from a daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Resolve the task's handle with it.
    Deliver,
    /// Drop it: the task was cancelled, timed out, or is unknown.
    Discard,
}

/// The counters behind `status()` and `info()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counters {
    /// Daemons connected now that completed the handshake.
    pub connections: u64,
    /// Daemons that ever completed the handshake.
    pub cumulative: u64,
    /// Tasks in the queue (everywhere tasks included).
    pub awaiting: u64,
    /// Tasks sent to a daemon and not yet answered (cancelled-but-unanswered included).
    pub executing: u64,
    /// Submitted minus awaiting minus executing.
    pub completed: u64,
}

/// Queued-bytes accounting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Memory {
    /// Bytes of queued tasks now.
    pub used: u64,
    /// Highest `used` seen.
    pub peak: u64,
    /// The budget, if any.
    pub limit: Option<u64>,
}

/// The dispatcher state machine. See the crate docs.
pub struct Scheduler<P> {
    _p: std::marker::PhantomData<P>,
}

impl<P> Scheduler<P> {
    /// A scheduler with no daemons and no tasks.
    pub fn new(config: Config) -> Self {
        let _ = config;
        unimplemented!()
    }

    /// A transport connection opened. The daemon takes no task until [`Scheduler::hello`].
    pub fn connected(&mut self, daemon: DaemonId) {
        let _ = daemon;
        unimplemented!()
    }

    /// The daemon completed the handshake: queues [`Action::Init`], makes it eligible, and
    /// dispatches queued work to it.
    pub fn hello(&mut self, daemon: DaemonId) {
        let _ = daemon;
        unimplemented!()
    }

    /// The daemon's connection closed. Its task, if any (all of them in direct mode), fails
    /// with [`ErrorCode::ConnectionReset`] unless already cancelled or timed out.
    pub fn disconnected(&mut self, daemon: DaemonId) {
        let _ = daemon;
        unimplemented!()
    }

    /// A result for `task` came from `daemon`. The daemon becomes idle (or, if `last`, leaves
    /// the pool and is sent [`Action::Ack`]) and queued work is dispatched.
    pub fn result(&mut self, daemon: DaemonId, task: TaskId, last: bool) -> Delivery {
        let _ = (daemon, task, last);
        unimplemented!()
    }

    /// Adds a task at the back of the queue, with `bytes` counted against the budget while it
    /// waits, and an optional deadline after which it fails with [`ErrorCode::TimedOut`].
    pub fn submit(&mut self, task: TaskId, payload: P, bytes: u64, kind: TaskKind, deadline: Option<Instant>) {
        let _ = (task, payload, bytes, kind, deadline);
        unimplemented!()
    }

    /// Cancels a task. True if the scheduler still held it (queued: removed; executing: its
    /// daemon is asked to interrupt it); false if it had completed or was already cancelled.
    /// The caller resolves the handle (with 20); no `Fail` is queued for it. Direct mode: false.
    pub fn cancel(&mut self, task: TaskId) -> bool {
        let _ = task;
        unimplemented!()
    }

    /// True if a new task would be admitted under the budget (used < limit, or no limit).
    pub fn admit(&self) -> bool {
        unimplemented!()
    }

    /// Fails every task whose deadline is at or before `now` with [`ErrorCode::TimedOut`],
    /// cancelling it as [`Scheduler::cancel`] would (dispatcher mode).
    pub fn handle_timeout(&mut self, now: Instant) {
        let _ = now;
        unimplemented!()
    }

    /// The earliest pending deadline, for the caller's timer.
    pub fn poll_timeout(&self) -> Option<Instant> {
        unimplemented!()
    }

    /// Queues [`Action::Exit`] for every connected daemon.
    pub fn exit_all(&mut self) {
        unimplemented!()
    }

    /// Closes the scheduler: every task still held fails ([`ErrorCode::ConnectionReset`];
    /// [`ErrorCode::ObjectClosed`] in direct mode for tasks never sent), and the queue empties.
    pub fn reset(&mut self) {
        unimplemented!()
    }

    /// The next action to carry out, in the order they arose.
    pub fn poll_action(&mut self) -> Option<Action<P>> {
        unimplemented!()
    }

    /// Current counters.
    pub fn counters(&self) -> Counters {
        unimplemented!()
    }

    /// Current queued-bytes accounting.
    pub fn memory(&self) -> Memory {
        unimplemented!()
    }

    /// The configured mode.
    pub fn mode(&self) -> Mode {
        unimplemented!()
    }
}
