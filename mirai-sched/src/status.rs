//! Read-only views of the scheduler: the task and daemon [`Counters`], the queued-bytes
//! [`Memory`], and the other queries a caller polls. None of them changes anything.

use crate::{Mode, Scheduler, TaskId};

/// Task and daemon counts at one moment, as reported to the pool's users.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counters {
    /// Daemons connected now. Dispatcher mode: those that completed the handshake (including
    /// ones that sent a `last` result, until their connection closes). Direct mode: every open
    /// connection.
    pub connections: u64,
    /// Daemons that ever completed the handshake.
    pub cumulative: u64,
    /// Tasks in the queue (everywhere tasks included), and tasks pipelined or batched to a
    /// daemon that has not started them. Direct mode: tasks never sent yet.
    pub awaiting: u64,
    /// Tasks sent to a daemon and not yet answered, cancelled-but-unanswered ones included;
    /// a pipelined task counts here once its daemon has started it (at most one per daemon).
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

impl<P> Scheduler<P> {
    /// Current counters.
    pub fn counters(&self) -> Counters {
        // A pipelined task that has not started counts as awaiting, not executing: it may yet
        // be given back, and so `executing` never exceeds the daemons, as without pipelining.
        // Units sent behind a daemon's current task count as awaiting too: they start only
        // once the daemon has answered the one before.
        let piped = self.pipelined() + self.units.unstarted;
        let queued = self.queue.len();
        Counters {
            connections: match self.mode {
                Mode::Dispatcher => self.hello_connected,
                Mode::Direct => self.connected,
            },
            cumulative: self.cumulative,
            awaiting: queued + piped,
            executing: self.executing - piped,
            completed: self.submitted - queued - self.executing,
        }
    }

    /// Tasks pipelined to a daemon behind the one it runs, not started yet (counted in
    /// [`Counters::awaiting`]). One walk over the daemons when pipelining is on, 0 otherwise.
    pub fn pipelined(&self) -> u64 {
        if self.mode == Mode::Dispatcher && self.pipeline.enabled() {
            self.daemons.values().filter(|d| d.piped.is_some()).count() as u64
        } else {
            0
        }
    }

    /// Daemons connected now that completed the handshake, in either mode. (In direct mode
    /// [`Counters::connections`] counts open connections; a daemon takes tasks only after its
    /// handshake, which is what a caller waiting for ready daemons needs.)
    pub fn ready_daemons(&self) -> u64 {
        self.hello_connected
    }

    /// Current queued-bytes accounting (all zero and no limit in direct mode).
    pub fn memory(&self) -> Memory {
        self.queue.memory()
    }

    /// True if a new task would be admitted under the budget (used < limit, or no limit).
    /// Always true in direct mode.
    pub fn admit(&self) -> bool {
        self.queue.admit()
    }

    /// The configured mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The number of times `task` has been sent to a daemon so far (more than one only for a
    /// retried task), while the scheduler holds it; `None` once it has left (answered, failed,
    /// cancelled while queued) or if unknown.
    pub fn attempts(&self, task: TaskId) -> Option<u32> {
        self.tasks.get(&task).map(|t| t.attempts)
    }
}

/// A summary (mode, counters, memory, closed), not the queue's contents: `P` need not be
/// `Debug`.
impl<P> std::fmt::Debug for Scheduler<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler")
            .field("mode", &self.mode)
            .field("closed", &self.closed)
            .field("counters", &self.counters())
            .field("memory", &self.memory())
            .finish_non_exhaustive()
    }
}
