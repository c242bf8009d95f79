//! Units ([`Scheduler::submit_unit`]): the elements of a `mirai_map` chunk, each a task of
//! its own over the chunk's shared payload, and how several go to a daemon at once.
//!
//! Why: a map of tiny functions costs mostly per-task overhead (a host round trip, R's own
//! per-call work), so consecutive elements should travel and run together; but a map of slow
//! functions must spread its elements over every daemon as one task per element would. So
//! the batch size is decided here, at each dispatch, from what the daemon has shown:
//! - a daemon whose pace is unknown (fewer than [`PIPELINE_MIN_SAMPLES`] answers), or a
//!   scheduler that is not timed ([`Config::pipeline`] off), gets one unit at a time: exactly
//!   one task per element;
//! - otherwise about the pipelining threshold's worth of work at the daemon's moving average
//!   per unit (1 ms of 10 us elements is 100), capped at [`MAX_BATCH`] and at half its share
//!   of what is queued (guided scheduling: batches shrink as the queue drains, so every
//!   daemon stays busy to the end);
//! - and if a daemon falls idle with nothing queued while another holds units it has not
//!   started (its elements turned out slower than its average promised), the back half of
//!   those is asked back ([`Action::Withdraw`]) and requeued as each comes back
//!   ([`Scheduler::withdrawn`]).
//!
//! A batch of tiny units (a pace of at most 1/[`COALESCE_MIN_BATCH`] of the threshold, so
//! that the per-result send is a large part of each unit's cost) is *coalesced*
//! ([`Action::Batch`]`::coalesce`): the daemon may hold the results of its units and send them
//! together. Its units then may have started without the scheduler knowing, so if the daemon
//! is lost every unit of a coalesced batch that has begun and has no result is lost as
//! started (failed with 19, or retried with the attempt counted), never requeued silently;
//! except while the daemon has said that it runs its current unit ([`Scheduler::running`],
//! sent once a unit has run for a millisecond) and has answered nothing since: then the
//! units behind it had not started, as in a batch that is not coalesced.
//!
//! A batch may also be pipelined ([`Config::pipeline`]) behind a daemon's one current task,
//! its first unit as the pipelined task and the rest behind it, so that a daemon kept busy
//! by pipelining still gets its units in batches.
//!
//! Only the first unit of a batch is executing; the others (`Daemon::units`) count as
//! awaiting until the daemon answers the one before each (it runs them in order), so
//! `executing` never exceeds the daemons. A lost daemon's units behind its current one are
//! requeued unstarted (unless coalesced, above); its current one fails with 19 or is
//! retried, as any task.

use crate::daemon::DaemonState;
use crate::lazy::LazyDeque;
use crate::pipeline::duration_ns;
use crate::task::TaskState;
use crate::{Action, DaemonId, Scheduler, TaskId, PIPELINE_MIN_SAMPLES};

#[cfg(doc)]
use crate::Config;

/// The most units sent in one batch.
pub const MAX_BATCH: u32 = 512;

/// A batch is coalesced when the daemon's pace fits at least this many units in the
/// pipelining threshold (elements under 125 us at the 1 ms default): below that, the result
/// frames cost little next to the work, and a lost daemon's unstarted units are requeued.
pub const COALESCE_MIN_BATCH: u64 = 8;

/// The units' state.
pub(crate) struct Units {
    /// Daemons that were sent a batch of more than one unit, `(daemon, gen)`, in that order:
    /// candidates for a take-back (stale once their units have started or come back).
    holders: LazyDeque<(DaemonId, u64)>,
    /// Units sent behind a daemon's current task and not started (awaiting).
    pub(crate) unstarted: u64,
}

impl Units {
    pub(crate) const fn new() -> Self {
        Units {
            holders: LazyDeque::new(),
            unstarted: 0,
        }
    }

    /// Forgets everything (reset).
    pub(crate) fn clear(&mut self) {
        self.holders.clear();
        self.unstarted = 0;
    }
}

impl<P> Scheduler<P> {
    /// How many units an idle `daemon` may be sent at once now, and whether they are tiny
    /// enough to be coalesced (see the module docs).
    pub(crate) fn batch_size(&self, daemon: DaemonId) -> (u32, bool) {
        let (Some(threshold), Some(d)) = (self.pipeline.threshold(), self.daemons.get(&daemon))
        else {
            return (1, false);
        };
        if self.now.is_none() || d.samples < PIPELINE_MIN_SAMPLES {
            return (1, false);
        }
        let by_time = duration_ns(threshold) / d.ewma_ns.max(1);
        // The unit being started has left the queue already.
        let share = (self.queue.len() + 1) / (2 * self.hello_connected.max(1));
        let k = by_time.min(share).clamp(1, u64::from(MAX_BATCH)) as u32;
        (k, by_time >= COALESCE_MIN_BATCH)
    }

    /// Unit `first` (element `offset`) was just sent to idle `daemon` as its current task:
    /// the consecutive units of its chunk queued right behind it follow it in the same batch,
    /// up to [`Scheduler::batch_size`]. Returns the batch's size and whether it is coalesced
    /// (only a batch of more than one unit is).
    pub(crate) fn follow_units(
        &mut self,
        daemon: DaemonId,
        first: TaskId,
        offset: u32,
    ) -> (u32, bool) {
        let (k, tiny) = self.batch_size(daemon);
        let mut count = 1;
        while count < k {
            let Some(next) = self.head() else {
                break;
            };
            let Some(t) = self.tasks.get_mut(&next) else {
                break;
            };
            let follows = first.get().checked_add(u64::from(count)) == Some(next.get())
                && t.unit() == offset.checked_add(count);
            if !follows {
                break;
            }
            // Its queued payload stays as the kept copy: it may come back unstarted.
            t.state = TaskState::Running;
            t.daemon = daemon;
            t.attempts = t.attempts.saturating_add(1);
            t.piped = false;
            let bytes = t.bytes();
            self.queue.pop_head();
            self.queue.left(bytes);
            self.executing += 1;
            self.units.unstarted += 1;
            if let Some(d) = self.daemons.get_mut(&daemon) {
                d.units.push_back(next);
            }
            count += 1;
        }
        let coalesce = tiny && count > 1;
        if let Some(d) = self.daemons.get_mut(&daemon) {
            // Its units were empty (an idle daemon, or pipelining to one with none).
            d.coalesced = coalesce;
            d.running_known = false;
        }
        if count > 1 {
            if let Some(d) = self.daemons.get(&daemon) {
                self.units.holders.push_back((daemon, d.gen));
            }
            let daemons = &self.daemons;
            self.units.holders.compact(daemons.len(), |&(id, gen)| {
                daemons
                    .get(&id)
                    .is_some_and(|d| d.gen == gen && !d.units.is_empty())
            });
        }
        (count, coalesce)
    }

    /// `daemon` says it is running `task`, every unit before it answered (its
    /// [`mirai_proto::Frame::Running`] notice): until its next result, the units behind
    /// `task` count as unstarted again if the daemon is lost. Ignored unless `task` is its
    /// current unit of a coalesced batch (a late or stray notice changes nothing).
    pub fn running(&mut self, daemon: DaemonId, task: TaskId) {
        if let Some(d) = self.daemons.get_mut(&daemon) {
            if d.coalesced && d.state == DaemonState::Busy(task) {
                d.running_known = true;
            }
        }
    }

    /// Take-back of units (see the module docs): while daemons are idle and the queue is
    /// empty, each idle daemon asks one holder of unstarted units for the back half of them.
    pub(crate) fn take_back_units(&mut self) {
        let mut idle = self.n_idle;
        while idle > 0 && self.queue.is_empty() {
            let Some((id, gen)) = self.units.holders.pop_front() else {
                return;
            };
            let Some(d) = self.daemons.get_mut(&id) else {
                continue;
            };
            if d.gen != gen
                || d.units.is_empty()
                || d.units_back
                || !matches!(d.state, DaemonState::Busy(_))
            {
                continue;
            }
            d.units_back = true;
            let keep = d.units.len() / 2;
            for &task in d.units.iter().skip(keep) {
                // A cancelled unit is being dropped by its daemon already.
                if self
                    .tasks
                    .get(&task)
                    .is_some_and(|t| t.state == TaskState::Running)
                {
                    self.actions
                        .push_back(Action::Withdraw { daemon: id, task });
                }
            }
            idle -= 1;
        }
    }
}
