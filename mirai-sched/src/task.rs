//! The task record, and a task's life outside dispatch: submission, cancellation, settling
//! when its result comes, and loss (failure or retry) when its daemon goes away or gives it
//! back.

use std::time::Instant;

use crate::{Action, DaemonId, Delivery, ErrorCode, Mode, Scheduler, TaskId, TaskKind, TaskSpec};

/// A task the scheduler still holds. Kept small: a host holds one per queued task (design.md,
/// memory per unresolved task), so settings few tasks have live behind `extra`, and the state
/// is flat fields rather than an enum with data (56 bytes for a 16-byte payload, where an
/// enum's tag and padding and a 64-bit size cost 16 more).
pub(crate) struct Task<P> {
    /// Submission order; also tells a live queue entry from a stale one.
    pub(crate) seq: u64,
    /// The payload's size in bytes, or `u32::MAX` if it is that or more: then the size is in
    /// `extra` (see [`Task::bytes`]).
    bytes: u32,
    /// Deadline, round and a size of 4 GiB or more, boxed only for tasks that have any.
    extra: Option<Box<TaskExtra>>,
    /// Times it was sent to a daemon.
    pub(crate) attempts: u32,
    /// Sends left after a lost daemon (see [`TaskSpec::retries`]).
    pub(crate) retries_left: u32,
    /// Submitted with [`Scheduler::submit_with`]: a copy of the payload may be kept while it
    /// runs (`Scheduler::copy`), so it may be retried or pipelined.
    pub(crate) keep: bool,
    /// Sent (this time) to a daemon that was busy: it may not have started.
    pub(crate) piped: bool,
    pub(crate) state: TaskState,
    /// Queued: the payload (always `Some`). Sent: a copy of it, for a task that will be
    /// retried if its daemon is lost, or that was pipelined (it may come back unstarted).
    pub(crate) payload: Option<P>,
    /// The daemon it was sent to; meaningful only once sent (see [`Task::sent_to`]).
    pub(crate) daemon: DaemonId,
}

/// The per-task settings that most tasks do not have.
struct TaskExtra {
    deadline: Option<Instant>,
    /// The everywhere round it belongs to (dispatcher mode).
    round: Option<u64>,
    /// The payload's size when it does not fit `Task::bytes`.
    bytes: u64,
    /// A unit ([`Scheduler::submit_unit`]): its index among the payload's elements.
    unit: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TaskState {
    /// In the queue (direct mode: never sent).
    Queued,
    /// Sent to `Task::daemon`, unanswered.
    Running,
    /// Sent to `Task::daemon`, unanswered, and cancelled or timed out: its handle is already
    /// resolved and the reply will be discarded.
    Abandoned,
}

impl<P> Task<P> {
    /// A queued task.
    #[allow(clippy::too_many_arguments)]
    fn new(
        seq: u64,
        payload: P,
        bytes: u64,
        deadline: Option<Instant>,
        round: Option<u64>,
        retries: u32,
        keep: bool,
        unit: Option<u32>,
    ) -> Self {
        let small = u32::try_from(bytes).ok().filter(|&b| b < u32::MAX);
        Task {
            seq,
            bytes: small.unwrap_or(u32::MAX),
            extra: (deadline.is_some() || round.is_some() || small.is_none() || unit.is_some())
                .then(|| {
                    Box::new(TaskExtra {
                        deadline,
                        round,
                        bytes,
                        unit,
                    })
                }),
            attempts: 0,
            retries_left: retries,
            keep,
            piped: false,
            state: TaskState::Queued,
            payload: Some(payload),
            daemon: DaemonId(0),
        }
    }

    /// The payload's size in bytes, as submitted.
    pub(crate) fn bytes(&self) -> u64 {
        match (self.bytes, &self.extra) {
            (u32::MAX, Some(x)) => x.bytes,
            (b, _) => u64::from(b),
        }
    }

    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.extra.as_ref().and_then(|x| x.deadline)
    }

    pub(crate) fn round(&self) -> Option<u64> {
        self.extra.as_ref().and_then(|x| x.round)
    }

    /// A unit's index among its payload's elements; `None` for a whole task.
    pub(crate) fn unit(&self) -> Option<u32> {
        self.extra.as_ref().and_then(|x| x.unit)
    }

    /// The daemon holding it, once sent (running or abandoned).
    pub(crate) fn sent_to(&self) -> Option<DaemonId> {
        (self.state != TaskState::Queued).then_some(self.daemon)
    }
}

impl<P> Scheduler<P> {
    /// Adds a task at the back of the queue, with `bytes` counted against the budget while it
    /// waits, and an optional deadline after which it fails with [`ErrorCode::TIMED_OUT`].
    ///
    /// A task that can go to a daemon at once (empty queue and an eligible daemon) is
    /// dispatched straight away and its bytes are never counted. After [`Scheduler::reset`] the
    /// task fails at once with [`ErrorCode::OBJECT_CLOSED`]. Task ids must be unique: a
    /// submission reusing the id of a task still held is a caller bug and is ignored (it
    /// panics in debug builds).
    pub fn submit(
        &mut self,
        task: TaskId,
        payload: P,
        bytes: u64,
        kind: TaskKind,
        deadline: Option<Instant>,
    ) {
        self.submit_inner(task, payload, bytes, kind, deadline, 0, false, None);
    }

    #[allow(clippy::too_many_arguments)]
    fn submit_inner(
        &mut self,
        task: TaskId,
        payload: P,
        bytes: u64,
        kind: TaskKind,
        deadline: Option<Instant>,
        retries: u32,
        keep: bool,
        unit: Option<u32>,
    ) {
        if self.tasks.contains_key(&task) {
            debug_assert!(false, "task id {task} submitted while still held");
            return;
        }
        self.submitted += 1;
        if self.closed {
            self.actions.push_back(Action::Fail {
                task,
                code: ErrorCode::OBJECT_CLOSED,
            });
            return;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let round = match (self.mode, kind) {
            (Mode::Dispatcher, TaskKind::Everywhere { closes_round }) => {
                Some(self.rounds.join(closes_round))
            }
            _ => None,
        };
        if let Some(at) = deadline {
            self.deadlines.insert(at, seq, task);
        }
        let t = Task::new(seq, payload, bytes, deadline, round, retries, keep, unit);
        self.tasks.insert(task, t);
        if self.queue.is_empty() {
            if let Some((d, piped)) = self.target(task) {
                self.start(d, task, false, piped);
                return;
            }
        }
        self.queue.push(task, seq, bytes);
    }

    /// Cancels a task. True if the scheduler still held it (queued: removed and its bytes
    /// released; executing: its daemon is asked to interrupt it with [`Action::Cancel`] and
    /// stays busy until it answers); false if it had completed, was already cancelled or
    /// timed out, or is unknown, and then nothing is queued. The caller resolves the handle
    /// (with 20); no `Fail` is queued for it. Direct mode, or after reset: always false.
    pub fn cancel(&mut self, task: TaskId) -> bool {
        if self.mode == Mode::Direct || self.closed {
            return false;
        }
        let Some(t) = self.tasks.get_mut(&task) else {
            return false;
        };
        match t.state {
            TaskState::Queued => {
                self.remove_queued(task);
                self.drain();
                true
            }
            TaskState::Abandoned => false,
            TaskState::Running => {
                t.state = TaskState::Abandoned;
                let daemon = t.daemon;
                self.deadlines.forget(t);
                self.actions.push_back(Action::Cancel { daemon, task });
                true
            }
        }
    }

    /// Removes an answered task: deliver its result unless its handle was already resolved.
    pub(crate) fn finish(&mut self, task: TaskId) -> Delivery {
        match self.tasks.remove(&task) {
            Some(t) if t.state == TaskState::Running => {
                self.deadlines.forget(&t);
                Delivery::Deliver
            }
            _ => Delivery::Discard,
        }
    }

    /// Removes a task whose daemon went away, failing it with 19 unless already resolved.
    /// Or, if it may be retried, puts it back in the queue at its submission position (ahead
    /// of every waiting task) and returns true; the caller then drains the queue.
    pub(crate) fn lose(&mut self, task: TaskId) -> bool {
        let closed = self.closed;
        let Some(t) = self.tasks.get_mut(&task) else {
            return false;
        };
        // The kept copy, if any, becomes the queued payload again.
        if t.state == TaskState::Running && t.retries_left > 0 && !closed && t.payload.is_some() {
            t.retries_left -= 1;
            t.state = TaskState::Queued;
            // The queue is in submission order (stale entries included): a lost task was
            // dispatched before everything queued, so this lands at the head.
            self.queue.requeue(task, t.seq, t.bytes());
            return true;
        }
        if let Some(t) = self.tasks.remove(&task) {
            if t.state == TaskState::Running {
                self.deadlines.forget(&t);
                self.actions.push_back(Action::Fail {
                    task,
                    code: ErrorCode::CONNECTION_RESET,
                });
            }
        }
        false
    }

    /// Puts a task its daemon gave back unstarted at its submission position (the head), or
    /// drops it if its handle is already resolved.
    pub(crate) fn give_back(&mut self, task: TaskId) {
        let Some(t) = self.tasks.get_mut(&task) else {
            return;
        };
        if t.state != TaskState::Running {
            self.tasks.remove(&task);
            return;
        }
        if t.payload.is_none() {
            // Not pipelined and not kept (see `withdrawn`): never lose a handle silently.
            if let Some(t) = self.tasks.remove(&task) {
                self.deadlines.forget(&t);
            }
            self.actions.push_back(Action::Fail {
                task,
                code: ErrorCode::CONNECTION_RESET,
            });
            return;
        }
        // The kept copy becomes the queued payload again.
        t.state = TaskState::Queued;
        t.attempts = t.attempts.saturating_sub(1);
        t.piped = false;
        self.queue.requeue(task, t.seq, t.bytes());
    }
}

impl<P: Clone> Scheduler<P> {
    /// [`Scheduler::submit`] with every per-task setting, including a retry budget
    /// ([`TaskSpec::retries`]; why a retried task goes to the head of the queue is explained
    /// there). With `TaskSpec::default()` it is exactly `submit`. Needs `P: Clone` because a
    /// retryable task's payload is copied at each dispatch and kept until its daemon answers.
    pub fn submit_with(&mut self, task: TaskId, payload: P, bytes: u64, spec: TaskSpec) {
        let retries = match spec.kind {
            TaskKind::Normal => spec.retries,
            TaskKind::Everywhere { .. } => 0,
        };
        // Also kept for tasks without retries: a pipelined task may come back unstarted.
        self.copy = Some(P::clone);
        self.submit_inner(
            task,
            payload,
            bytes,
            spec.kind,
            spec.deadline,
            retries,
            true,
            None,
        );
    }

    /// Submits element `index` of a chunk's payload as a task of its own, a *unit* (see
    /// `units` and [`Action::Batch`]): it is queued, cancelled, retried (under `spec.retries`,
    /// its own budget), timed and counted like any task, but the payload holds every element
    /// of its chunk, so consecutive units of one chunk submitted with consecutive ids (`task`
    /// the previous one's plus one, `index` too) may be sent to a daemon together, in one
    /// [`Action::Batch`]. `bytes` is the unit's share of the payload's size. Everywhere
    /// rounds cannot be units (`spec.kind` is taken as [`TaskKind::Normal`]).
    pub fn submit_unit(
        &mut self,
        task: TaskId,
        payload: P,
        bytes: u64,
        spec: TaskSpec,
        index: u32,
    ) {
        self.copy = Some(P::clone);
        self.submit_inner(
            task,
            payload,
            bytes,
            TaskKind::Normal,
            spec.deadline,
            spec.retries,
            true,
            Some(index),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Config;
    use crate::TaskId as T;

    /// A host holds one task record per queued task (design.md, memory per unresolved task):
    /// with a 16-byte payload handle (`Arc<[u8]>`, what mirai-host uses) it stays 56 bytes.
    #[test]
    fn task_record_is_56_bytes_with_a_shared_payload() {
        assert!(std::mem::size_of::<Task<std::sync::Arc<[u8]>>>() <= 56);
        assert!(std::mem::size_of::<Task<Vec<u8>>>() <= 64);
    }

    /// Sizes of 4 GiB and more are kept whole (in the task's extras) and released exactly.
    #[test]
    fn payload_sizes_past_32_bits_are_counted_exactly() {
        let mut s: Scheduler<&str> = Scheduler::new(Config::default());
        let sizes = [
            0,
            1,
            u64::from(u32::MAX) - 1,
            u64::from(u32::MAX),
            5 << 32,
            u64::MAX / 4,
        ];
        for (i, &b) in sizes.iter().enumerate() {
            s.submit(T(i as u64 + 1), "p", b, TaskKind::Normal, None);
        }
        assert_eq!(s.memory().used, sizes.iter().sum::<u64>());
        for (i, &b) in sizes.iter().enumerate() {
            let before = s.memory().used;
            assert!(s.cancel(T(i as u64 + 1)));
            assert_eq!(before - s.memory().used, b, "size {b}");
        }
        assert_eq!(s.memory().used, 0);
    }
}
