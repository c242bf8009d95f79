//! Pipelining ([`Config::pipeline`], dispatcher mode): when no daemon is idle, the head of the
//! queue may go to a daemon that evaluates exactly one task and whose recent tasks were short,
//! so that it starts the next task without waiting a host round trip. And take-back: a
//! pipelined task that has not started is asked back ([`Action::Withdraw`]) once another
//! daemon is idle with nothing queued, and requeued when its daemon confirms
//! ([`Scheduler::withdrawn`]).
//!
//! Two candidate lists, both [`LazyDeque`]s bounded by the number of daemons: daemons that
//! may take a pipelined task, in the order they started their current task, and pipelined
//! tasks in the order they were sent. Entries are checked against the daemon's record when
//! taken, so events that invalidate them need not touch the lists.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use crate::daemon::{Daemon, DaemonState};
use crate::lazy::LazyDeque;
use crate::task::TaskState;
use crate::{Action, DaemonId, Mode, Scheduler, TaskId, PIPELINE_MIN_SAMPLES};

#[cfg(doc)]
use crate::Config;

/// The pipelining state.
pub(crate) struct Pipeline {
    /// [`Config::pipeline`] (dispatcher mode only; `None` in direct mode).
    threshold: Option<Duration>,
    /// Daemons that may be able to take a pipelined task, as `(daemon, gen)`, in the order
    /// they started their current task.
    ready: LazyDeque<(DaemonId, u64)>,
    /// Pipelined tasks in the order they were sent, `(daemon, gen, task)`: candidates for a
    /// take-back.
    pub(crate) piped: LazyDeque<(DaemonId, u64, TaskId)>,
    /// Withdraw requests not yet answered.
    pub(crate) withdrawing: u64,
}

impl Pipeline {
    pub(crate) const fn new(threshold: Option<Duration>) -> Self {
        Pipeline {
            threshold,
            ready: LazyDeque::new(),
            piped: LazyDeque::new(),
            withdrawing: 0,
        }
    }

    pub(crate) fn enabled(&self) -> bool {
        self.threshold.is_some()
    }

    /// [`Config::pipeline`] (`None` in direct mode).
    pub(crate) fn threshold(&self) -> Option<Duration> {
        self.threshold
    }

    /// Forgets every candidate and request (reset).
    pub(crate) fn clear(&mut self) {
        self.ready.clear();
        self.piped.clear();
        self.withdrawing = 0;
    }
}

impl Daemon {
    /// Its current task was answered at `now`: feeds the task's time, from the moment the
    /// daemon could start it, into the moving average.
    pub(crate) fn sample(&mut self, now: Option<Instant>) {
        if let (Some(now), Some(since)) = (now, self.since) {
            let ns = duration_ns(now.saturating_duration_since(since));
            self.ewma_ns = ewma(self.ewma_ns, self.samples, ns);
            self.samples = self.samples.saturating_add(1);
        }
    }
}

impl<P> Scheduler<P> {
    /// The daemon gave `task` back unevaluated: it had not started it when it received an
    /// [`Action::Withdraw`] or [`Action::Cancel`] for it, or it sent a `last` result before
    /// starting it. The task returns to the head of the queue (its attempt is not counted and
    /// no retry is spent) and is dispatched again, unless it was cancelled or timed out: then
    /// it is dropped. The daemon is free of it (idle if it was its only task). True if the
    /// scheduler took it back; false (and nothing changes) if the daemon did not hold it as a
    /// task, in direct mode, or after [`Scheduler::reset`]. (Only a pipelined task can come
    /// back unstarted and be dispatched again; any other task a daemon gives back is one it
    /// was told to cancel while leaving, or is failed with [`crate::ErrorCode::CONNECTION_RESET`]:
    /// it was not kept.)
    pub fn withdrawn(&mut self, daemon: DaemonId, task: TaskId) -> bool {
        if self.mode == Mode::Direct || self.closed {
            return false;
        }
        let held = self
            .tasks
            .get(&task)
            .is_some_and(|t| t.sent_to() == Some(daemon));
        let Some(d) = self.daemons.get_mut(&daemon) else {
            return false;
        };
        let second = d.piped == Some(task);
        let current = d.state == DaemonState::Busy(task);
        let follower = d.units.iter().position(|&u| u == task);
        if !held || !(second || current || follower.is_some()) {
            return false;
        }
        if d.withdraw == Some(task) {
            d.withdraw = None;
            self.pipeline.withdrawing -= 1;
        }
        let mut offer = false;
        if let Some(i) = follower {
            d.units.remove(i);
            d.units_back &= !d.units.is_empty();
            self.units.unstarted -= 1;
            offer = matches!(d.state, DaemonState::Busy(_));
        } else if second {
            d.piped = None;
            offer = matches!(d.state, DaemonState::Busy(_));
        } else if let Some(next) = d.piped.take() {
            d.state = DaemonState::Busy(next);
            d.since = self.now;
            offer = true;
        } else if let Some(next) = d.units.pop_front() {
            // The current unit was dropped unstarted: the daemon goes on with the next.
            d.state = DaemonState::Busy(next);
            d.since = self.now;
            d.units_back &= !d.units.is_empty();
            d.running_known = false;
            self.units.unstarted -= 1;
            offer = true;
        } else {
            d.state = DaemonState::Idle;
            d.since = None;
            self.n_idle += 1;
            self.idle.push_back((daemon, d.gen));
        }
        if offer {
            self.offer_pipeline(daemon);
        }
        self.executing -= 1;
        self.give_back(task);
        self.drain();
        self.queue.note_peak();
        true
    }

    /// A daemon evaluating one task that may be sent `task` as its second, if any (see
    /// [`Config::pipeline`]). Only asked when no daemon is idle.
    pub(crate) fn pipeline_target(&mut self, task: TaskId) -> Option<DaemonId> {
        let threshold = self.pipeline.threshold?;
        let now = self.now?;
        if self.rounds.is_open() {
            return None;
        }
        let t = self.tasks.get(&task)?;
        if t.round().is_some() || !t.keep {
            return None;
        }
        let (daemons, tasks) = (&self.daemons, &self.tasks);
        // A candidate that does not qualify is dropped: it is offered again when it next
        // starts a task.
        let fit = |&(id, gen): &(DaemonId, u64)| {
            let Some(d) = daemons.get(&id) else {
                return false;
            };
            let DaemonState::Busy(current) = d.state else {
                return false;
            };
            let short = d.samples >= PIPELINE_MIN_SAMPLES
                && d.ewma_ns < duration_ns(threshold)
                && d.since
                    .is_some_and(|s| now.saturating_duration_since(s) < threshold);
            // An everywhere task may be slow, and a round's daemons take nothing else.
            let plain = tasks.get(&current).is_some_and(|c| c.round().is_none());
            d.gen == gen
                && d.piped.is_none()
                && d.units.is_empty()
                && d.withdraw.is_none()
                && short
                && plain
        };
        self.pipeline.ready.pop(fit).map(|(id, _)| id)
    }

    /// Queues `daemon` as a pipelining candidate if it now evaluates exactly one task.
    pub(crate) fn offer_pipeline(&mut self, daemon: DaemonId) {
        if !self.pipeline.enabled() {
            return;
        }
        let Some(d) = self.daemons.get(&daemon) else {
            return;
        };
        if matches!(d.state, DaemonState::Busy(_))
            && d.piped.is_none()
            && d.units.is_empty()
            && d.withdraw.is_none()
        {
            self.pipeline.ready.push_back((daemon, d.gen));
        }
        // A daemon that takes task after task from idle is offered each time, so the list
        // holds repeats as well as stale entries: compaction keeps one live entry per daemon,
        // which leaves at most one per daemon and makes this O(1) amortised.
        // (The set is made only if the deque does compact: this runs at every dispatch.)
        let daemons = &self.daemons;
        let mut seen: Option<HashSet<DaemonId>> = None;
        self.pipeline.ready.compact(daemons.len(), |&(id, gen)| {
            let live = daemons.get(&id).is_some_and(|d| {
                d.gen == gen && matches!(d.state, DaemonState::Busy(_)) && d.piped.is_none()
            });
            live && seen
                .get_or_insert_with(|| HashSet::with_capacity(daemons.len()))
                .insert(id)
        });
    }

    /// Compacts the take-back candidates once stale ones outnumber the daemons.
    pub(crate) fn compact_piped(&mut self) {
        let daemons = &self.daemons;
        self.pipeline.piped.compact(daemons.len(), |&(id, gen, t)| {
            daemons
                .get(&id)
                .is_some_and(|d| d.gen == gen && d.piped == Some(t))
        });
    }

    /// Take-back: while daemons are idle, the queue is empty and no round is open, asks for
    /// pipelined tasks (oldest first) that may not have started, one per idle daemon not
    /// already waiting for one.
    pub(crate) fn take_back(&mut self) {
        if !self.pipeline.enabled() || self.closed || self.rounds.is_open() {
            return;
        }
        self.take_back_units();
        while self.n_idle > self.pipeline.withdrawing {
            if self.head().is_some() {
                return;
            }
            let Some((id, gen, task)) = self.pipeline.piped.pop_front() else {
                return;
            };
            let Some(d) = self.daemons.get_mut(&id) else {
                continue;
            };
            let live = d.gen == gen
                && d.piped == Some(task)
                && d.withdraw.is_none()
                && matches!(d.state, DaemonState::Busy(_));
            // A cancelled task is being dropped by its daemon already.
            let wanted = self
                .tasks
                .get(&task)
                .is_some_and(|t| t.state == TaskState::Running);
            if live && wanted {
                d.withdraw = Some(task);
                self.pipeline.withdrawing += 1;
                self.actions
                    .push_back(Action::Withdraw { daemon: id, task });
            }
        }
    }
}

/// One step of the moving average of task times: the first sample is taken as is, then each
/// new one weighs a quarter.
fn ewma(avg: u64, samples: u32, sample: u64) -> u64 {
    if samples == 0 {
        sample
    } else {
        avg - avg / 4 + sample / 4
    }
}

pub(crate) fn duration_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lazy::SLACK;
    use crate::{Config, TaskKind, TaskSpec};
    use crate::{DaemonId as D, TaskId as T};

    /// The internal candidate lists stay bounded by the daemons, however many tasks pass: a
    /// daemon offered for pipelining at every task it takes while idle once made
    /// `offer_pipeline` walk an ever longer list (quadratic time, seen as 11 us -> 50 us round
    /// trips).
    #[test]
    fn candidate_lists_stay_bounded_over_many_tasks() {
        let mut s: Scheduler<u8> = Scheduler::new(Config {
            pipeline: Some(Duration::from_millis(1)),
            ..Config::default()
        });
        let t0 = Instant::now();
        s.set_time(t0);
        s.connected(D(1));
        s.hello(D(1));
        let spec = TaskSpec {
            kind: TaskKind::Normal,
            deadline: None,
            retries: 0,
        };
        for i in 0..10_000u64 {
            if i == 5_000 {
                s.connected(D(2));
                s.hello(D(2));
            }
            s.set_time(t0 + Duration::from_micros(10 * i));
            // One at a time on one daemon, then two at a time now and then on two daemons
            // (pipelining and take-back).
            s.submit_with(T(2 * i + 1), 0, 1, spec);
            if i >= 5_000 && i % 7 == 0 {
                s.submit_with(T(2 * i + 2), 0, 1, spec);
            }
            let mut sent = Vec::new();
            while let Some(a) = s.poll_action() {
                if let Action::Dispatch { daemon, task, .. } = a {
                    sent.push((daemon, task));
                }
            }
            for (daemon, task) in sent {
                s.set_time(t0 + Duration::from_micros(10 * i + 5));
                s.result(daemon, task, false);
                while let Some(a) = s.poll_action() {
                    if let Action::Withdraw { daemon, task } = a {
                        s.withdrawn(daemon, task);
                    }
                }
            }
            let bound = 2 * s.daemons.len() + SLACK + 1;
            assert!(
                s.pipeline.ready.len() <= bound,
                "pipe_ready {} at task {i}",
                s.pipeline.ready.len()
            );
            assert!(
                s.pipeline.piped.len() <= bound,
                "piped_list {} at task {i}",
                s.pipeline.piped.len()
            );
            assert!(
                s.idle.len() <= 2 * s.n_idle as usize + SLACK + 1,
                "idle {} at task {i}",
                s.idle.len()
            );
        }
    }
}
