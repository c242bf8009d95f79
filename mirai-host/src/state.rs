//! What the dispatcher thread, the pollers and the handles of one host share: the state under
//! its lock (the protocol [`Session`] with its scheduler, the task slots), and how a locked
//! section carries out the session's outputs.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use mirai_sched::{ErrorCode, Mode, TaskId};
use mirai_transport::{Listener, PeerId};

use crate::body::TaskBody;
use crate::deferred::{Deferred, HostTrace};
use crate::handle::{Outcome, Slot};
use crate::outbox::{Outbox, Outgoing};
use crate::poll::PollRole;
use crate::session::{Output, Session};
use crate::supervise::{Launched, Relaunch};
use crate::sync::lock;
#[cfg(doc)]
use crate::HostConfig;
use crate::{CompletionNotifier, RepairPolicy};

/// The host's state under its lock.
pub(crate) struct State {
    /// The protocol and the scheduler.
    pub(crate) session: Session<TaskBody>,
    pub(crate) slots: HashMap<TaskId, Arc<Slot>>,
    /// `None` once reset: dropping the last reference closes the sockets.
    pub(crate) listener: Option<Arc<Listener>>,
    pub(crate) closed: bool,
    /// Threads blocked on each condvar, so that signalling costs nothing when nobody waits.
    pub(crate) conn_waiters: u32,
    pub(crate) admit_waiters: u32,
    pub(crate) completion_waiters: u32,
}

/// Everything the dispatcher thread and the handles of one host share. The dispatcher holds
/// only this (not the `HostInner` guard), so dropping the last `Host` resets the host.
pub(crate) struct Shared {
    pub(crate) url: String,
    pub(crate) retries: u32,
    /// Dispatcher or direct mode ([`HostConfig::mode`]).
    pub(crate) mode: Mode,
    pub(crate) repair: Option<RepairPolicy>,
    /// Relaunches waiting for their time, and the recent ones (for the rate cap).
    pub(crate) relaunch: Mutex<Relaunch>,
    pub(crate) relaunches: AtomicU64,
    /// A daemon disconnected: the dispatcher should reap (and maybe relaunch) soon.
    pub(crate) reap_wanted: AtomicBool,
    pub(crate) state: Mutex<State>,
    pub(crate) conn_cv: Condvar,
    pub(crate) admit_cv: Condvar,
    pub(crate) completion_cv: Condvar,
    /// Grows by one at every task resolution; written under the state lock.
    pub(crate) completions: AtomicU64,
    pub(crate) children: Mutex<Vec<Launched>>,
    pub(crate) stop: AtomicBool,
    /// Who polls the listener now (see [`PollRole`]).
    pub(crate) role: Mutex<PollRole>,
    pub(crate) role_cv: Condvar,
    /// `Some` when this process traces (decided once, at start): the branch every span site
    /// takes, so that an untraced host does no span work at all.
    pub(crate) trace: Option<Arc<HostTrace>>,
    /// Frames to send, in the order the session asked for them (see [`Outbox::flush`]).
    pub(crate) outbox: Outbox,
    /// Called once per resolution, after the lock is released ([`HostConfig::on_complete`]).
    pub(crate) on_complete: Option<CompletionNotifier>,
}

/// What a locked section must do before or after unlocking: the condvars to signal, and
/// whether a daemon left (the dispatcher then reaps soon).
#[derive(Default)]
pub(crate) struct Notes {
    pub(crate) connections: bool,
    pub(crate) admit: bool,
    pub(crate) completed: bool,
    pub(crate) reap: bool,
}

impl Shared {
    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Resolves task `id` held by this host (if still held), counting the completion.
    pub(crate) fn resolve(
        &self,
        st: &mut State,
        id: TaskId,
        outcome: Outcome,
        d: &mut Deferred,
        notes: &mut Notes,
    ) {
        if let Some(slot) = st.slots.remove(&id) {
            if slot.complete(outcome, d) {
                self.completions.fetch_add(1, Ordering::Release);
                notes.completed = true;
                d.completed += 1;
            }
        }
    }

    /// Carries out every output the session has queued: frames go to the outbox, peers are
    /// disconnected, tasks resolve. Exit instructions go to `exits` when given (so that the
    /// caller can space them out), else are queued at once.
    pub(crate) fn carry_out(
        &self,
        st: &mut State,
        d: &mut Deferred,
        notes: &mut Notes,
        mut exits: Option<&mut Vec<PeerId>>,
    ) {
        while let Some(output) = st.session.poll_output() {
            match output {
                Output::Init { peer, frame } => {
                    self.outbox.post(st, peer, Outgoing::Frame(frame));
                    notes.connections = true;
                }
                Output::Task {
                    peer,
                    task,
                    body,
                    attempts,
                } => {
                    let attempt = match (st.slots.get(&task), attempts) {
                        (Some(s), Some(n)) => {
                            s.attempts.store(n, Ordering::Release);
                            n
                        }
                        (Some(s), None) => s.attempts.fetch_add(1, Ordering::AcqRel) + 1,
                        (None, _) => 0,
                    };
                    if attempt > 1 {
                        log::info!("mirai host: task {task} sent again, to daemon {peer}, after its daemon was lost (attempt {attempt})");
                    } else {
                        log::trace!("mirai host: task {task} to daemon {peer}");
                    }
                    self.outbox.post(st, peer, Outgoing::Task(task, body));
                    notes.admit = true;
                }
                Output::Batch {
                    peer,
                    task,
                    offset,
                    count,
                    coalesce,
                    body,
                } => {
                    for id in (0..u64::from(count)).filter_map(|i| task.get().checked_add(i)) {
                        let id = TaskId(id);
                        let n = st.session.sched().attempts(id).unwrap_or(0);
                        if let Some(s) = st.slots.get(&id) {
                            s.attempts.store(n, Ordering::Release);
                        }
                        if n > 1 {
                            log::info!("mirai host: task {id} sent again, to daemon {peer}, after its daemon was lost (attempt {n})");
                        }
                    }
                    log::trace!("mirai host: tasks {task} (+{count}) to daemon {peer}");
                    self.outbox.post(
                        st,
                        peer,
                        Outgoing::Batch(task, offset, count, coalesce, body),
                    );
                    notes.admit = true;
                }
                Output::Send { peer, frame } => self.outbox.post(st, peer, Outgoing::Frame(frame)),
                Output::Exit { peer } => match exits.as_deref_mut() {
                    Some(v) => v.push(peer),
                    None => {
                        let frame = mirai_proto::encode(&mirai_proto::Frame::Exit);
                        self.outbox.post(st, peer, Outgoing::Frame(frame));
                    }
                },
                Output::Resolve { task, outcome } => {
                    // An error resolution is the scheduler letting go of a task: a slot in
                    // the memory budget may have opened.
                    notes.admit |= matches!(outcome, Outcome::Error(_));
                    self.resolve(st, task, outcome, d, notes);
                }
                Output::Drop { peer, reason } => {
                    log::warn!("mirai host: {reason}");
                    if let Some(l) = &st.listener {
                        l.disconnect(peer);
                    }
                }
                Output::Joined { pid, .. } => {
                    if let Some(t) = &self.trace {
                        d.peers.push(t.event(true, pid));
                    }
                }
                Output::Left { pid, .. } => {
                    if let (Some(t), Some(pid)) = (&self.trace, pid) {
                        d.peers.push(t.event(false, pid));
                    }
                    notes.connections = true;
                    notes.reap = true;
                }
            }
        }
    }

    /// Signals the condvars named by `notes`, where someone waits on them.
    pub(crate) fn notify(&self, st: &State, notes: &Notes) {
        if notes.connections && st.conn_waiters > 0 {
            self.conn_cv.notify_all();
        }
        if notes.admit && st.admit_waiters > 0 {
            self.admit_cv.notify_all();
        }
        if notes.completed && st.completion_waiters > 0 {
            self.completion_cv.notify_all();
        }
    }

    /// Marks the host closed and resolves everything it holds. Idempotent. Returns the
    /// listener for the caller to drop once the dispatcher has stopped.
    pub(crate) fn close(&self, d: &mut Deferred) -> Option<Arc<Listener>> {
        let mut st = self.state();
        if !st.closed {
            st.closed = true;
            let mut notes = Notes::default();
            st.session.sched_mut().reset();
            self.carry_out(&mut st, d, &mut notes, None);
            // Anything the scheduler did not account for still resolves: nothing can answer
            // it any more.
            let rest: Vec<TaskId> = st.slots.keys().copied().collect();
            for id in rest {
                self.resolve(
                    &mut st,
                    id,
                    Outcome::Error(ErrorCode::CONNECTION_RESET),
                    d,
                    &mut notes,
                );
            }
            // Closing the listener ends every daemon's connection.
            if let Some(t) = &self.trace {
                d.peers
                    .extend(st.session.daemon_pids().map(|pid| t.event(false, pid)));
            }
        }
        self.stop.store(true, Ordering::Release);
        // Every waiter must re-check: the host is closed. The role lock orders this notify
        // after a waiter's check of `stop` (state before role is the lock order).
        drop(lock(&self.role));
        self.role_cv.notify_all();
        self.conn_cv.notify_all();
        self.admit_cv.notify_all();
        self.completion_cv.notify_all();
        st.listener.take()
    }
}
