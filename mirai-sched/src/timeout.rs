//! Time: the instants the caller hands in ([`Scheduler::set_time`]), and task deadlines, which
//! fail their tasks with [`ErrorCode::TIMED_OUT`] when [`Scheduler::handle_timeout`] passes them.

use std::collections::BTreeMap;
use std::time::Instant;

use crate::task::{Task, TaskState};
use crate::{Action, ErrorCode, Mode, Scheduler, TaskId};

/// Pending deadlines in order, keyed by `(deadline, seq)` so that equal instants stay apart.
pub(crate) struct Deadlines(BTreeMap<(Instant, u64), TaskId>);

impl Deadlines {
    pub(crate) const fn new() -> Self {
        Deadlines(BTreeMap::new())
    }

    pub(crate) fn insert(&mut self, at: Instant, seq: u64, task: TaskId) {
        self.0.insert((at, seq), task);
    }

    /// Drops the task's deadline, if it has one: it is settled or its handle resolved.
    pub(crate) fn forget<P>(&mut self, t: &Task<P>) {
        if let Some(at) = t.deadline() {
            self.0.remove(&(at, t.seq));
        }
    }

    /// Removes and returns the earliest task due at or before `now`.
    fn pop_due(&mut self, now: Instant) -> Option<TaskId> {
        let entry = self.0.first_entry()?;
        if entry.key().0 > now {
            return None;
        }
        Some(entry.remove())
    }

    fn first(&self) -> Option<Instant> {
        self.0.keys().next().map(|k| k.0)
    }

    pub(crate) fn clear(&mut self) {
        self.0.clear();
    }
}

impl<P> Scheduler<P> {
    /// Tells the scheduler the time now, for pipelining: tasks are timed from the last time
    /// given before their dispatch to the last time given before their result. Call it before
    /// the events it dates (a result, a submission); a time earlier than one already given is
    /// ignored.
    pub fn set_time(&mut self, now: Instant) {
        if self.now.is_none_or(|t| now > t) {
            self.now = Some(now);
        }
    }

    /// Fails every task whose deadline is at or before `now` with [`ErrorCode::TIMED_OUT`], in
    /// deadline order. A queued task is removed (in direct mode too: it is never sent). An
    /// executing one is, in dispatcher mode, also cancelled as [`Scheduler::cancel`] would
    /// (`Fail` then `Cancel`); in direct mode only its reply is discarded later.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.set_time(now);
        while let Some(task) = self.deadlines.pop_due(now) {
            let Some(t) = self.tasks.get_mut(&task) else {
                continue;
            };
            match t.state {
                TaskState::Queued => {
                    self.remove_queued(task);
                    self.actions.push_back(Action::Fail {
                        task,
                        code: ErrorCode::TIMED_OUT,
                    });
                }
                TaskState::Abandoned => continue,
                TaskState::Running => {
                    t.state = TaskState::Abandoned;
                    let daemon = t.daemon;
                    self.actions.push_back(Action::Fail {
                        task,
                        code: ErrorCode::TIMED_OUT,
                    });
                    if self.mode == Mode::Dispatcher {
                        self.actions.push_back(Action::Cancel { daemon, task });
                    }
                }
            }
        }
        self.drain();
    }

    /// The earliest pending deadline, for the caller's timer.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadlines.first()
    }
}
