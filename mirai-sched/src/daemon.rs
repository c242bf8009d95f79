//! The daemon record, and a daemon's life in the pool: connection, handshake (which makes it
//! idle and sends it its init bundle) and disconnection (which loses or requeues what it
//! held). What happens when it answers is in `dispatch` and `direct`.

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use crate::lazy::LazyDeque;
use crate::{Action, DaemonId, Scheduler, TaskId};

#[cfg(doc)]
use crate::{ErrorCode, TaskSpec};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DaemonState {
    /// Connected, no hello yet.
    Connected,
    /// In the pool. Dispatcher mode: no task. Direct mode: in the round-robin ring.
    Idle,
    /// Dispatcher mode: evaluating this task (or about to: a pipelined task whose predecessor
    /// was answered).
    Busy(TaskId),
    /// Sent its `last` result: out of the pool until its connection closes. It may still hold
    /// its pipelined task (`Daemon::piped`) until it answers it.
    Left,
}

pub(crate) struct Daemon {
    /// Connection order, unique for the scheduler's life: tells a live entry of the idle list
    /// from a stale one even if the caller reuses a daemon id.
    pub(crate) gen: u64,
    pub(crate) state: DaemonState,
    /// Direct mode: `(task, seq)` of the tasks sent to it, in order; stale once answered.
    pub(crate) sent: LazyDeque<(TaskId, u64)>,
    /// Direct mode: tasks sent to it and unanswered (the live entries of `sent`).
    pub(crate) outstanding: u64,
    /// Dispatcher mode: the task sent behind the one it is evaluating (pipelining).
    pub(crate) piped: Option<TaskId>,
    /// Dispatcher mode: units sent behind its current task in one batch, in order, not
    /// started (see `units`).
    pub(crate) units: VecDeque<TaskId>,
    /// Some of `units` were asked back (a take-back, see `units`); reset once `units` is
    /// empty.
    pub(crate) units_back: bool,
    /// `units` are of a coalesced batch ([`Action::Batch`]`::coalesce`): they may have
    /// started without the host knowing.
    pub(crate) coalesced: bool,
    /// A coalesced batch's daemon said it runs its current unit ([`Scheduler::running`]), and
    /// has sent no result since: the units behind it have not started.
    pub(crate) running_known: bool,
    /// The task it was asked to give back ([`Action::Withdraw`]), until answered.
    pub(crate) withdraw: Option<TaskId>,
    /// When it could start its current task: dispatch to it while idle, or the answer to its
    /// previous task. `None` when idle or when the time was never given.
    pub(crate) since: Option<Instant>,
    /// Moving average of its task times, in nanoseconds, over `samples` results.
    pub(crate) ewma_ns: u64,
    pub(crate) samples: u32,
}

impl Daemon {
    fn new(gen: u64) -> Self {
        Daemon {
            gen,
            state: DaemonState::Connected,
            sent: LazyDeque::new(),
            outstanding: 0,
            piped: None,
            units: VecDeque::new(),
            units_back: false,
            coalesced: false,
            running_known: false,
            withdraw: None,
            since: None,
            ewma_ns: 0,
            samples: 0,
        }
    }
}

/// True if the idle-list entry `(daemon, gen)` is live: that connection, and idle.
pub(crate) fn is_idle(daemons: &HashMap<DaemonId, Daemon>, (id, gen): (DaemonId, u64)) -> bool {
    daemons
        .get(&id)
        .is_some_and(|d| d.gen == gen && d.state == DaemonState::Idle)
}

impl<P> Scheduler<P> {
    /// A transport connection opened. The daemon takes no task until [`Scheduler::hello`].
    /// A repeated call for a connected daemon is ignored.
    pub fn connected(&mut self, daemon: DaemonId) {
        if self.daemons.contains_key(&daemon) {
            return;
        }
        self.insert_daemon(daemon);
    }

    /// The daemon completed the handshake: queues [`Action::Init`], makes it eligible, and
    /// dispatches queued work to it. A daemon not yet [`Scheduler::connected`] is taken as
    /// connected; a repeated hello, or a hello after [`Scheduler::reset`], is ignored.
    pub fn hello(&mut self, daemon: DaemonId) {
        if self.closed {
            return;
        }
        if !self.daemons.contains_key(&daemon) {
            self.insert_daemon(daemon);
        }
        let Some(d) = self.daemons.get_mut(&daemon) else {
            return;
        };
        if d.state != DaemonState::Connected {
            return;
        }
        d.state = DaemonState::Idle;
        let gen = d.gen;
        self.n_idle += 1;
        self.hello_connected += 1;
        self.cumulative += 1;
        self.actions.push_back(Action::Init {
            daemon,
            ordinal: self.cumulative,
        });
        self.idle.push_back((daemon, gen));
        self.drain();
    }

    /// The daemon's connection closed. Its task, if any (all of them in direct mode, in the
    /// order they were sent), fails with [`ErrorCode::CONNECTION_RESET`] unless already
    /// cancelled or timed out, or unless it has retries left ([`TaskSpec::retries`]): then it
    /// is queued again, ahead of every waiting task, and dispatched to the next free daemon.
    /// Queued tasks wait for other daemons.
    pub fn disconnected(&mut self, daemon: DaemonId) {
        let Some(d) = self.daemons.remove(&daemon) else {
            return;
        };
        self.connected -= 1;
        let mut requeued = false;
        if d.withdraw.is_some() {
            self.pipeline.withdrawing -= 1;
        }
        match d.state {
            DaemonState::Connected => return,
            DaemonState::Idle => self.n_idle -= 1,
            DaemonState::Busy(task) => {
                self.executing -= 1;
                requeued |= self.lose(task);
            }
            DaemonState::Left => {}
        }
        // A pipelined task may or may not have started: it is lost like the first (sent
        // after it, so failed after it). A pipelined unit has not: a daemon answers a unit's
        // predecessor before starting it, and that answer would have promoted it.
        if let Some(task) = d.piped {
            self.executing -= 1;
            if self.tasks.get(&task).is_some_and(|t| t.unit().is_some()) {
                self.give_back(task);
                requeued = true;
            } else {
                requeued |= self.lose(task);
            }
        }
        // Units behind the current one had not started (a daemon answers each unit before it
        // starts the next): back to the queue, at their places, with no attempt counted.
        // Unless their batch was coalesced and has begun (its first unit is not the pipelined
        // one given back above) and the daemon has not said where it is since its last
        // result: it may have run them and held their results, so they are lost as started,
        // in order (failed, or retried with the attempt counted).
        let started = d.coalesced && !d.running_known && d.piped.is_none();
        for task in d.units {
            self.executing -= 1;
            self.units.unstarted -= 1;
            if started {
                requeued |= self.lose(task);
            } else {
                self.give_back(task);
                requeued = true;
            }
        }
        self.hello_connected -= 1;
        for (task, seq) in d.sent {
            let mine = self
                .tasks
                .get(&task)
                .is_some_and(|t| t.seq == seq && t.sent_to() == Some(daemon));
            if mine {
                self.executing -= 1;
                requeued |= self.lose(task);
            }
        }
        self.compact_idle();
        if requeued {
            self.drain();
            self.queue.note_peak();
        } else {
            // A withdraw request may have gone with it.
            self.take_back();
        }
    }

    fn insert_daemon(&mut self, daemon: DaemonId) {
        let gen = self.next_gen;
        self.next_gen += 1;
        self.connected += 1;
        self.daemons.insert(daemon, Daemon::new(gen));
    }

    /// Compacts the idle list once its stale entries outnumber the idle daemons.
    pub(crate) fn compact_idle(&mut self) {
        let daemons = &self.daemons;
        self.idle
            .compact(self.n_idle as usize, |&e| is_idle(daemons, e));
    }
}
