//! Settings: the scheduler's [`Config`] and [`Mode`], and the per-task [`TaskSpec`] and
//! [`TaskKind`] given at submission.

use std::time::{Duration, Instant};

#[cfg(doc)]
use crate::{ErrorCode, Scheduler};

/// How tasks reach daemons.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Mode {
    /// FIFO queue, dispatch to idle daemons only, cancellation, memory budget.
    #[default]
    Dispatcher,
    /// No dispatcher: each task is sent at submission to the next daemon round-robin, queueing
    /// at a busy daemon; tasks wait in the scheduler only while no daemon is connected. No
    /// cancellation and no budget.
    Direct,
}

/// Scheduler settings. Build one with [`Config::new`] and the `with_*` methods (or
/// [`Config::default`], which is the same).
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Config {
    /// See [`Mode`].
    pub mode: Mode,
    /// Budget on the bytes of queued tasks (dispatcher mode); `None` is unbounded. The caller
    /// maps its own "unbounded" spellings to `None`: `Some(0)` admits nothing. Ignored in
    /// direct mode.
    pub memory_limit: Option<u64>,
    /// Pipelining (dispatcher mode; ignored in direct mode): `Some(threshold)` lets a daemon
    /// that is evaluating one task be sent the next one when no daemon is idle, provided the
    /// tasks it evaluated recently took less than `threshold` each (an exponentially weighted
    /// moving average of the time from the moment it could start a task to its result, over
    /// at least [`PIPELINE_MIN_SAMPLES`] results) and its current task has not yet run that
    /// long. Timing uses the instants handed to [`Scheduler::set_time`] (and
    /// [`Scheduler::handle_timeout`]): a scheduler that is never told the time never
    /// pipelines. Only tasks submitted with [`Scheduler::submit_with`] are pipelined (taking
    /// one back needs a copy of its payload). `None` (the default): never.
    pub pipeline: Option<Duration>,
}

impl Config {
    /// Dispatcher mode, no budget, no pipelining.
    #[must_use]
    pub const fn new() -> Self {
        Config {
            mode: Mode::Dispatcher,
            memory_limit: None,
            pipeline: None,
        }
    }

    /// Sets [`Config::mode`].
    #[must_use]
    pub const fn with_mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// Sets [`Config::memory_limit`] (`None`: unbounded).
    #[must_use]
    pub const fn with_memory_limit(mut self, limit: Option<u64>) -> Self {
        self.memory_limit = limit;
        self
    }

    /// Sets [`Config::pipeline`] (`None`: never pipeline).
    #[must_use]
    pub const fn with_pipeline(mut self, threshold: Option<Duration>) -> Self {
        self.pipeline = threshold;
        self
    }
}

/// Results a daemon must have returned before it is pipelined to: until then its task times
/// are unknown, and its first task may be slow for reasons of its own (loading packages).
pub const PIPELINE_MIN_SAMPLES: u32 = 2;

/// What kind of task is submitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TaskKind {
    /// An ordinary task.
    Normal,
    /// One task of an everywhere round, which runs a task once on every daemon of the pool. A
    /// round is the run of `Everywhere` tasks submitted up to and including the one with
    /// `closes_round`. It is open from its first task's dispatch until the task with
    /// `closes_round` is dispatched (or, if that one was cancelled or timed out while queued,
    /// until no task of the round is left in the queue); while it is open no task of any kind
    /// goes to a daemon that already had one of the round.
    /// In direct mode this is the same as [`TaskKind::Normal`] (round-robin, best effort).
    Everywhere {
        /// True for the round's last task.
        closes_round: bool,
    },
}

/// Per-task settings of [`Scheduler::submit_with`]. Build one with [`TaskSpec::new`] and the
/// `with_*` methods (or [`TaskSpec::default`], which is the same).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct TaskSpec {
    /// Ordinary task or part of an everywhere round.
    pub kind: TaskKind,
    /// After this instant the task fails with [`ErrorCode::TIMED_OUT`].
    pub deadline: Option<Instant>,
    /// How many times the task may be sent again after the daemon evaluating it disconnected
    /// (0: never; it then fails with [`ErrorCode::CONNECTION_RESET`] as with
    /// [`Scheduler::submit`]).
    ///
    /// A retried task goes back to the *head* of the queue, not its back: it was dispatched in
    /// FIFO order before every task still waiting, so putting it behind them would let later
    /// submissions overtake it. (Precisely, it is reinserted at its submission position, which
    /// is ahead of every waiting task; among several retried tasks, the older goes first.) It
    /// keeps its deadline, and its bytes count against the budget again while it waits.
    ///
    /// Only a disconnect counts: an error the evaluation itself returned is a result, not a
    /// loss. Cancelled or timed-out tasks are never retried, nor is anything after
    /// [`Scheduler::reset`]. Everywhere tasks are never retried (a round must reach each
    /// daemon at most once, and its daemons are gone): this field is ignored for them.
    /// Keeping a task retryable costs one clone of its payload per dispatch, held until the
    /// daemon answers.
    pub retries: u32,
}

impl TaskSpec {
    /// An ordinary task with no deadline and no retries: what [`Scheduler::submit`] does.
    #[must_use]
    pub const fn new() -> Self {
        TaskSpec {
            kind: TaskKind::Normal,
            deadline: None,
            retries: 0,
        }
    }

    /// Sets [`TaskSpec::kind`].
    #[must_use]
    pub const fn with_kind(mut self, kind: TaskKind) -> Self {
        self.kind = kind;
        self
    }

    /// Sets [`TaskSpec::deadline`] (`None`: none).
    #[must_use]
    pub const fn with_deadline(mut self, deadline: Option<Instant>) -> Self {
        self.deadline = deadline;
        self
    }

    /// Sets [`TaskSpec::retries`].
    #[must_use]
    pub const fn with_retries(mut self, retries: u32) -> Self {
        self.retries = retries;
        self
    }
}

impl Default for TaskSpec {
    /// An ordinary task with no deadline and no retries: what [`Scheduler::submit`] does.
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_builder_sets_each_field_and_new_is_default() {
        let d = Config::default();
        let n = Config::new();
        assert_eq!(
            (n.mode, n.memory_limit, n.pipeline),
            (d.mode, d.memory_limit, d.pipeline)
        );
        let c = Config::new()
            .with_mode(Mode::Direct)
            .with_memory_limit(Some(7))
            .with_pipeline(Some(Duration::from_millis(3)));
        assert_eq!(c.mode, Mode::Direct);
        assert_eq!(c.memory_limit, Some(7));
        assert_eq!(c.pipeline, Some(Duration::from_millis(3)));
    }

    #[test]
    fn task_spec_builder_sets_each_field_and_new_is_default() {
        assert_eq!(TaskSpec::new(), TaskSpec::default());
        let at = Instant::now();
        let s = TaskSpec::new()
            .with_kind(TaskKind::Everywhere { closes_round: true })
            .with_deadline(Some(at))
            .with_retries(3);
        assert_eq!(
            s,
            TaskSpec {
                kind: TaskKind::Everywhere { closes_round: true },
                deadline: Some(at),
                retries: 3,
            }
        );
    }
}
