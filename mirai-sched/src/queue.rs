//! The FIFO queue of tasks waiting for a daemon, and the budget on their bytes.
//!
//! The queue holds `(task, seq)` entries in submission order. A task leaves it at the head
//! when dispatched, or out of line when cancelled or timed out: then its entry stays behind
//! as a stale marker in the [`LazyDeque`] (the task is gone from the task table, or has a new
//! state). A task put back after a lost daemon or a take-back returns at its submission
//! position, which is at or near the head. Queued bytes count against the budget in
//! dispatcher mode only.

use std::collections::HashMap;

use crate::lazy::LazyDeque;
use crate::task::{Task, TaskState};
use crate::{Memory, Scheduler, TaskId};

/// The queue and its byte accounting.
pub(crate) struct Queue {
    /// `(task, seq)` in submission order; stale once the task left out of line.
    entries: LazyDeque<(TaskId, u64)>,
    /// Live entries.
    len: u64,
    /// Bytes of queued tasks now (dispatcher mode).
    used: u64,
    /// Highest `used` seen.
    peak: u64,
    /// The budget, if any (dispatcher mode).
    limit: Option<u64>,
    /// False in direct mode, where bytes are not accounted.
    count_bytes: bool,
}

/// True if `(task, seq)` is a live entry: that task, submitted then, and waiting.
fn is_queued<P>(tasks: &HashMap<TaskId, Task<P>>, (task, seq): (TaskId, u64)) -> bool {
    tasks
        .get(&task)
        .is_some_and(|t| t.seq == seq && t.state == TaskState::Queued)
}

impl Queue {
    pub(crate) const fn new(limit: Option<u64>, count_bytes: bool) -> Self {
        Queue {
            entries: LazyDeque::new(),
            len: 0,
            used: 0,
            peak: 0,
            limit,
            count_bytes,
        }
    }

    /// Tasks waiting.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Adds a newly submitted task at the back.
    pub(crate) fn push(&mut self, task: TaskId, seq: u64, bytes: u64) {
        self.entries.push_back((task, seq));
        self.len += 1;
        if self.count_bytes {
            self.used += bytes;
            self.peak = self.peak.max(self.used);
        }
    }

    /// Puts a task that had left back at its submission position, ahead of every task
    /// submitted after it. The peak is left to [`Queue::note_peak`], once the queue has been
    /// drained, so that a task sent straight on to a free daemon leaves no trace.
    pub(crate) fn requeue(&mut self, task: TaskId, seq: u64, bytes: u64) {
        self.entries.insert_sorted((task, seq), seq, |&(_, s)| s);
        self.len += 1;
        if self.count_bytes {
            self.used += bytes;
        }
    }

    /// Takes the peak of the bytes queued now.
    pub(crate) fn note_peak(&mut self) {
        self.peak = self.peak.max(self.used);
    }

    /// The live head, dropping stale entries in front of it.
    pub(crate) fn head<P>(&mut self, tasks: &HashMap<TaskId, Task<P>>) -> Option<TaskId> {
        self.entries
            .front(|&e| is_queued(tasks, e))
            .map(|&(t, _)| t)
    }

    /// Removes the head's entry, after [`Queue::head`] returned it; the task's accounting goes
    /// with [`Queue::left`].
    pub(crate) fn pop_head(&mut self) {
        self.entries.pop_front();
    }

    /// A task of `bytes` left the queue (dispatched, cancelled, timed out).
    pub(crate) fn left(&mut self, bytes: u64) {
        self.len -= 1;
        if self.count_bytes {
            self.used -= bytes;
        }
    }

    /// Compacts the entries once stale ones outnumber the live ones, after a task left out of
    /// line.
    pub(crate) fn compact<P>(&mut self, tasks: &HashMap<TaskId, Task<P>>) {
        self.entries
            .compact(self.len as usize, |&e| is_queued(tasks, e));
    }

    /// Empties the queue and frees it (reset); the peak stays.
    pub(crate) fn release(&mut self) {
        self.entries.release();
        self.len = 0;
        self.used = 0;
    }

    /// True if a new task would be admitted under the budget.
    pub(crate) fn admit(&self) -> bool {
        self.limit.is_none_or(|l| self.used < l)
    }

    pub(crate) fn memory(&self) -> Memory {
        Memory {
            used: self.used,
            peak: self.peak,
            limit: self.limit,
        }
    }
}

impl<P> Scheduler<P> {
    /// The live head of the queue.
    pub(crate) fn head(&mut self) -> Option<TaskId> {
        self.queue.head(&self.tasks)
    }

    /// Takes a queued task out of line (cancel, timeout), releasing everything it held.
    pub(crate) fn remove_queued(&mut self, task: TaskId) {
        let Some(t) = self.tasks.remove(&task) else {
            return;
        };
        self.queue.left(t.bytes());
        self.deadlines.forget(&t);
        if let Some(r) = t.round() {
            self.round_left_queue(r);
        }
        self.queue.compact(&self.tasks);
    }
}
