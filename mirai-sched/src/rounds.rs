//! Everywhere rounds ([`TaskKind::Everywhere`]), dispatcher mode: a round's tasks reach each
//! daemon at most once.
//!
//! A round is open from its first task's dispatch until its closing task is dispatched, or
//! until none of its tasks is left in the queue after the closing one was submitted. While it
//! is open, an idle daemon that already had one of its tasks is *parked*: taken out of the
//! idle list (it takes nothing, of any kind) and put back at its front, in order, when the
//! round closes.

use std::collections::{HashMap, HashSet};

use crate::lazy::LazyDeque;
use crate::{DaemonId, Scheduler};

#[cfg(doc)]
use crate::TaskKind;

/// An everywhere round's tasks not yet dispatched or removed.
struct Round {
    pending: u64,
    closer_submitted: bool,
}

/// The round being dispatched, and the daemons that had one of its tasks.
struct OpenRound {
    id: u64,
    received: HashSet<DaemonId>,
}

/// The state of every round.
pub(crate) struct Rounds {
    /// Rounds with tasks still to dispatch, by id.
    pending: HashMap<u64, Round>,
    /// The round the next `Everywhere` submission joins.
    submitting: u64,
    open: Option<OpenRound>,
    /// Idle daemons that already had a task of the open round, as `(daemon, gen)` idle-list
    /// entries, in the order they left the idle list.
    parked: Vec<(DaemonId, u64)>,
}

impl Rounds {
    pub(crate) fn new() -> Self {
        Rounds {
            pending: HashMap::new(),
            submitting: 0,
            open: None,
            parked: Vec::new(),
        }
    }

    /// A task of the submitting round was submitted: its round id. A task with
    /// `closes_round` ends the round, and the next one starts a new round.
    pub(crate) fn join(&mut self, closes_round: bool) -> u64 {
        let id = self.submitting;
        let r = self.pending.entry(id).or_insert(Round {
            pending: 0,
            closer_submitted: false,
        });
        r.pending += 1;
        if closes_round {
            r.closer_submitted = true;
            self.submitting += 1;
        }
        id
    }

    /// True while a round is open.
    pub(crate) fn is_open(&self) -> bool {
        self.open.is_some()
    }

    /// True if `daemon` may take nothing now: it had a task of the open round.
    pub(crate) fn excludes(&self, daemon: DaemonId) -> bool {
        self.open
            .as_ref()
            .is_some_and(|o| o.received.contains(&daemon))
    }

    /// Sets an excluded idle daemon's entry aside until the round closes.
    pub(crate) fn park(&mut self, entry: (DaemonId, u64)) {
        self.parked.push(entry);
    }

    /// A task of round `r` went to `daemon`: opens the round if it is not open (closing any
    /// other), notes the daemon, and counts the task out of the queue.
    fn dispatched(&mut self, r: u64, daemon: DaemonId, idle: &mut LazyDeque<(DaemonId, u64)>) {
        if self.open.as_ref().is_none_or(|o| o.id != r) {
            self.close(idle);
            self.open = Some(OpenRound {
                id: r,
                received: HashSet::new(),
            });
        }
        if let Some(o) = self.open.as_mut() {
            o.received.insert(daemon);
        }
        self.left_queue(r, idle);
    }

    /// A task of round `r` was dispatched or removed; the round closes once its closing task
    /// was submitted and none of its tasks is left waiting.
    fn left_queue(&mut self, r: u64, idle: &mut LazyDeque<(DaemonId, u64)>) {
        let Some(round) = self.pending.get_mut(&r) else {
            return;
        };
        round.pending -= 1;
        if round.pending == 0 && round.closer_submitted {
            self.pending.remove(&r);
            if self.open.as_ref().is_some_and(|o| o.id == r) {
                self.close(idle);
            }
        }
    }

    fn close(&mut self, idle: &mut LazyDeque<(DaemonId, u64)>) {
        if self.open.take().is_some() {
            // Parked daemons left the front of `idle` before the ones still in it became
            // idle, so they go back in front, in order.
            for p in self.parked.drain(..).rev() {
                idle.push_front(p);
            }
        }
    }

    /// Forgets every round (reset); the next submission still joins a new round.
    pub(crate) fn clear(&mut self) {
        self.pending.clear();
        self.open = None;
        self.parked.clear();
    }
}

impl<P> Scheduler<P> {
    /// A task of round `r` was dispatched to `daemon`.
    pub(crate) fn round_dispatched(&mut self, r: u64, daemon: DaemonId) {
        self.rounds.dispatched(r, daemon, &mut self.idle);
    }

    /// A task of round `r` left the queue without being dispatched (cancel, timeout).
    pub(crate) fn round_left_queue(&mut self, r: u64) {
        self.rounds.left_queue(r, &mut self.idle);
    }
}
