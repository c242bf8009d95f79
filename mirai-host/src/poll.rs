//! The poll role: one thread at a time drives the listener, the dispatcher thread by default
//! or a thread waiting for a result, which then receives the reply itself instead of being
//! woken by the dispatcher (one hand-off fewer per round trip: design.md §2).

use std::sync::atomic::Ordering;
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use mirai_transport::{Event, Listener};

use crate::deferred::Deferred;
use crate::dispatcher::turn;
#[cfg(doc)]
use crate::dispatcher::GRACE;
use crate::state::Shared;
use crate::sync::{lock, wait_on};

/// Who drives the listener. One thread at a time polls it: the dispatcher thread by default,
/// or a thread waiting for a result, which then receives the reply itself instead of being
/// woken by the dispatcher (one hand-off fewer per round trip: design.md §2).
#[derive(Debug, Default)]
pub(crate) struct PollRole {
    pub(crate) holder: Holder,
    /// The thread holding the role: a callback running on it may wait too (re-entrantly).
    pub(crate) owner: Option<ThreadId>,
    /// Waiting threads that asked the dispatcher to hand the role over.
    pub(crate) wanting: u32,
    /// When a waiting thread last gave the role up (see [`GRACE`]).
    pub(crate) released_at: Option<Instant>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Holder {
    #[default]
    Nobody,
    Dispatcher,
    Waiter,
}

/// Polls once; on a listener failure closes the host (every task resolves) and returns false.
pub(crate) fn poll_listener(
    shared: &Shared,
    listener: &Listener,
    events: &mut Vec<Event>,
    timeout: Option<Duration>,
) -> bool {
    events.clear();
    match listener.poll(events, timeout) {
        Ok(()) => true,
        Err(e) => {
            log::error!(
                "mirai host: listener at {} failed: {e}; closing the host",
                shared.url
            );
            let mut d = Deferred::default();
            drop(shared.close(&mut d));
            d.run(shared);
            false
        }
    }
}

pub(crate) fn until(deadline: Option<Instant>) -> Option<Duration> {
    deadline.map(|t| t.saturating_duration_since(Instant::now()))
}

impl Shared {
    /// Drives the listener from the calling thread until `done()` or `deadline`, taking the
    /// poll role over from the dispatcher thread. Returns false without waiting if another
    /// waiting thread has the role or the host is closed: the caller then waits on its
    /// condvar, and that thread (or the dispatcher) resolves what it waits for.
    pub(crate) fn drive(&self, deadline: Option<Instant>, done: &dyn Fn() -> bool) -> bool {
        let Some(listener) = self.state().listener.clone() else {
            return false;
        };
        {
            let mut r = lock(&self.role);
            if r.owner == Some(std::thread::current().id()) {
                // A callback run by the poller itself is waiting: it is not polling at this
                // moment (callbacks run between polls, outside every lock), so it may poll.
                drop(r);
                self.drive_held(&listener, deadline, done);
                return true;
            }
            loop {
                if self.stop.load(Ordering::Acquire) {
                    return false;
                }
                match r.holder {
                    Holder::Nobody => break,
                    Holder::Waiter => return false,
                    Holder::Dispatcher => {
                        r.wanting += 1;
                        listener.wake();
                        let left = until(deadline);
                        r = match left {
                            None => self.role_cv.wait(r).unwrap_or_else(|e| e.into_inner()),
                            Some(left) => wait_on(&self.role_cv, r, left),
                        };
                        r.wanting -= 1;
                        let finished =
                            done() || left.is_some_and(|_| until(deadline) == Some(Duration::ZERO));
                        if finished {
                            // The dispatcher may be waiting for the want to go away.
                            if r.wanting == 0 {
                                self.role_cv.notify_all();
                            }
                            return true;
                        }
                    }
                }
            }
            r.holder = Holder::Waiter;
            r.owner = Some(std::thread::current().id());
        }
        let role = RoleGuard {
            shared: self,
            holder: Holder::Waiter,
        };
        self.drive_held(&listener, deadline, done);
        drop(role);
        true
    }

    /// The polling loop of [`Shared::drive`], for a thread that holds the poll role.
    pub(crate) fn drive_held(
        &self,
        listener: &Listener,
        deadline: Option<Instant>,
        done: &dyn Fn() -> bool,
    ) {
        let mut events = Vec::new();
        let mut next_deadline = crate::dispatcher::next_timer(&self.state());
        loop {
            if done() || self.stop.load(Ordering::Acquire) {
                break;
            }
            let timeout = match (until(deadline), until(next_deadline)) {
                (Some(Duration::ZERO), _) => break,
                (a, None) => a,
                (None, b) => b,
                (Some(a), Some(b)) => Some(a.min(b)),
            };
            if !poll_listener(self, listener, &mut events, timeout) {
                break;
            }
            if self.stop.load(Ordering::Acquire) {
                break;
            }
            let t = turn(self, &mut events);
            if t.closed {
                break;
            }
            next_deadline = t.next_deadline;
        }
    }
}

/// Gives the poll role up when dropped, also on unwinding, so that a panic in one poller
/// cannot leave every other thread waiting for the role forever.
pub(crate) struct RoleGuard<'a> {
    pub(crate) shared: &'a Shared,
    pub(crate) holder: Holder,
}

impl Drop for RoleGuard<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            log::error!(
                "mirai host: a thread panicked while driving the listener; closing the host"
            );
            let mut d = Deferred::default();
            drop(self.shared.close(&mut d));
            // Wakers and callbacks are not run while unwinding; their handles are resolved.
        }
        let mut r = lock(&self.shared.role);
        r.holder = Holder::Nobody;
        r.owner = None;
        if self.holder == Holder::Waiter {
            r.released_at = Some(Instant::now());
        }
        if r.wanting > 0 || std::thread::panicking() {
            self.shared.role_cv.notify_all();
        }
    }
}
