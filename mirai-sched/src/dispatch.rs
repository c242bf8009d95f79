//! Dispatch: matching the head of the queue to a daemon and sending it there, and (dispatcher
//! mode) a daemon's result, which frees it for the next task.
//!
//! The head goes to the longest-idle daemon (dispatcher mode), the next daemon of the ring
//! (direct mode, see `direct`), or failing those a daemon it may be pipelined to (see
//! `pipeline`). Nothing behind the head moves while the head waits.

use crate::daemon::{is_idle, DaemonState};
use crate::task::TaskState;
use crate::{Action, DaemonId, Delivery, Mode, Scheduler, TaskId};

impl<P> Scheduler<P> {
    /// A result for `task` came from `daemon`. If the daemon was evaluating that task, the
    /// daemon becomes idle (or, if `last`, leaves the pool and is sent [`Action::Ack`]) and
    /// queued work is dispatched; the result is delivered unless the task was cancelled or
    /// timed out. A result for any other task (unknown, or not the one this daemon holds) is
    /// discarded and changes nothing, with one exception:
    ///
    /// A `last` result from a daemon in the pool that holds no task (dispatcher mode: idle;
    /// direct mode: any daemon in the ring) is a *leave notice*. A daemon that reaches its
    /// idle time or wall time while idle cannot just hang up: a task may be on its way to it,
    /// and would be lost (error 19). So it sends the notice and keeps serving until
    /// acknowledged. The daemon leaves the pool at once and is sent [`Action::Ack`]; every
    /// task already sent to it arrives before the ack, and is answered. A notice from a busy
    /// daemon (it crossed the task on its way) is discarded: that daemon marks the task's
    /// result `last` instead, and leaves then. The notice's task id is not looked at.
    ///
    /// Pipelining: a result for a daemon's current task promotes its pipelined task, if any,
    /// to current. A daemon that leaves (`last`) while holding a pipelined task keeps it until
    /// it answers it: with its result (a daemon leaving on an idle limit serves what it was
    /// sent before the ack) or with [`Scheduler::withdrawn`] (a daemon at its task or time
    /// limit starts nothing more), which puts the task back at the head of the queue.
    /// The result's time (see [`Scheduler::set_time`]) feeds the daemon's task-time average.
    pub fn result(&mut self, daemon: DaemonId, task: TaskId, last: bool) -> Delivery {
        match self.mode {
            Mode::Dispatcher => self.result_dispatcher(daemon, task, last),
            Mode::Direct => self.result_direct(daemon, task, last),
        }
    }

    fn result_dispatcher(&mut self, daemon: DaemonId, task: TaskId, last: bool) -> Delivery {
        let Some(d) = self.daemons.get_mut(&daemon) else {
            return Delivery::Discard;
        };
        if last && d.state == DaemonState::Idle {
            // A leave notice (see `result`).
            d.state = DaemonState::Left;
            self.n_idle -= 1;
            self.actions.push_back(Action::Ack { daemon });
            self.compact_idle();
            return Delivery::Discard;
        }
        if d.state == DaemonState::Left && d.piped == Some(task) {
            // The pipelined task of a daemon that has left, served before it goes.
            d.piped = None;
            if d.withdraw == Some(task) {
                d.withdraw = None;
                self.pipeline.withdrawing -= 1;
            }
            self.executing -= 1;
            let delivery = self.finish(task);
            self.drain();
            return delivery;
        }
        if d.state != DaemonState::Busy(task) {
            return Delivery::Discard;
        }
        d.sample(self.now);
        if d.withdraw == Some(task) {
            d.withdraw = None;
            self.pipeline.withdrawing -= 1;
        }
        let gen = d.gen;
        if last {
            d.state = DaemonState::Left;
            d.since = None;
            self.actions.push_back(Action::Ack { daemon });
        } else if let Some(next) = d.piped.take() {
            d.state = DaemonState::Busy(next);
            d.since = self.now;
            self.offer_pipeline(daemon);
        } else if let Some(next) = d.units.pop_front() {
            // The daemon starts the next unit of its batch now (a pipelined batch's first
            // unit was `piped`, promoted above).
            d.state = DaemonState::Busy(next);
            d.since = self.now;
            d.units_back &= !d.units.is_empty();
            d.running_known = false;
            self.units.unstarted -= 1;
            self.offer_pipeline(daemon);
        } else {
            d.state = DaemonState::Idle;
            d.since = None;
            self.n_idle += 1;
            self.idle.push_back((daemon, gen));
        }
        self.executing -= 1;
        let delivery = self.finish(task);
        self.drain();
        delivery
    }

    /// Sends queued work wherever it can go now, strictly from the head.
    pub(crate) fn drain(&mut self) {
        if self.closed {
            return;
        }
        while let Some(task) = self.head() {
            let Some((d, piped)) = self.target(task) else {
                break;
            };
            self.queue.pop_head();
            self.start(d, task, true, piped);
        }
        self.take_back();
    }

    /// Where `task`, at the head of the queue, can go now: a daemon that is free (the
    /// longest-idle one, or in direct mode the next of the ring), else one it may be pipelined
    /// to (`true`).
    pub(crate) fn target(&mut self, task: TaskId) -> Option<(DaemonId, bool)> {
        let free = match self.mode {
            Mode::Dispatcher => self.take_idle(),
            Mode::Direct => self.next_in_ring(),
        };
        match free {
            Some(d) => Some((d, false)),
            None => self.pipeline_target(task).map(|d| (d, true)),
        }
    }

    /// Dispatcher mode: the longest-idle daemon that may take the head, if any. Daemons that
    /// had a task of the open round are parked until it closes.
    fn take_idle(&mut self) -> Option<DaemonId> {
        while let Some(entry) = self.idle.pop(|&e| is_idle(&self.daemons, e)) {
            if self.rounds.excludes(entry.0) {
                self.rounds.park(entry);
                continue;
            }
            return Some(entry.0);
        }
        None
    }

    /// Sends a queued task to `daemon`, chosen by `target`: as its current task, or (`piped`)
    /// behind the one it runs. `from_queue`: the task had been queued (its entry is popped).
    pub(crate) fn start(&mut self, daemon: DaemonId, task: TaskId, from_queue: bool, piped: bool) {
        let Some(t) = self.tasks.get_mut(&task) else {
            return;
        };
        debug_assert_eq!(t.state, TaskState::Queued, "only queued tasks are started");
        let Some(payload) = t.payload.take() else {
            unreachable!("a queued task holds its payload");
        };
        t.state = TaskState::Running;
        t.daemon = daemon;
        t.attempts = t.attempts.saturating_add(1);
        t.piped = piped;
        let unit = t.unit();
        // A unit is kept too: it may come back unstarted if it turns out to be a follower.
        let kept = t.retries_left > 0 || piped || unit.is_some();
        if let (true, Some(copy)) = (kept && t.keep, self.copy) {
            t.payload = Some(copy(&payload));
        }
        let (bytes, seq, round) = (t.bytes(), t.seq, t.round());
        self.executing += 1;
        if from_queue {
            self.queue.left(bytes);
        }
        let mut offer = false;
        if let Some(d) = self.daemons.get_mut(&daemon) {
            match self.mode {
                Mode::Dispatcher if piped => {
                    d.piped = Some(task);
                    self.pipeline.piped.push_back((daemon, d.gen, task));
                }
                Mode::Dispatcher => {
                    d.state = DaemonState::Busy(task);
                    d.since = self.now;
                    self.n_idle -= 1;
                    offer = true;
                }
                Mode::Direct => {
                    d.sent.push_back((task, seq));
                    d.outstanding += 1;
                }
            }
        }
        if let Some(offset) = unit {
            // Followers go behind it, whether it is the daemon's current task or pipelined.
            let (count, coalesce) = match self.mode {
                Mode::Dispatcher => self.follow_units(daemon, task, offset),
                Mode::Direct => (1, false),
            };
            if offer {
                self.offer_pipeline(daemon);
            }
            if piped {
                self.compact_piped();
            }
            self.actions.push_back(Action::Batch {
                daemon,
                task,
                offset,
                count,
                coalesce,
                payload,
            });
            return;
        }
        if offer {
            self.offer_pipeline(daemon);
        }
        if piped {
            self.compact_piped();
        }
        self.actions.push_back(Action::Dispatch {
            daemon,
            task,
            payload,
        });
        if let Some(r) = round {
            self.round_dispatched(r, daemon);
        }
    }
}
