//! Task handles: the completion cell ([`Slot`]) of each task and the [`TaskHandle`] over it,
//! a future that can also be waited on from any thread or given callbacks.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use mirai_proto::Status;
use mirai_sched::{ErrorCode, TaskId};
use mirai_trace::Span;

use crate::deferred::{set_span_outcome, Deferred};
use crate::state::Shared;
use crate::sync::{lock, wait_on};
#[cfg(doc)]
use crate::{Host, SubmitOptions};

/// How a task ended.
///
/// Exhaustive on purpose: a task ends with a reply or an error code, and every caller must
/// handle both (an error that is not a reply is an [`ErrorCode`], which is open-ended).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The daemon answered.
    Value {
        /// How the evaluation ended.
        status: Status,
        /// The daemon's reply bytes.
        payload: Vec<u8>,
    },
    /// No answer will come: timed out (5), closed (7), connection reset (19), cancelled (20).
    Error(ErrorCode),
}

/// The shared completion cell of one task.
pub(crate) struct Slot {
    pub(crate) inner: Mutex<SlotInner>,
    pub(crate) cv: Condvar,
    /// Dispatches so far (written under the state lock, read anywhere).
    pub(crate) attempts: AtomicU32,
}

#[derive(Default)]
pub(crate) struct SlotInner {
    /// Boxed: a queued task pays one pointer rather than the 32 bytes of an `Outcome` (the
    /// slot's allocation goes from 96 to 64 bytes); resolution allocates it.
    pub(crate) outcome: Option<Box<Outcome>>,
    pub(crate) resolved: bool,
    pub(crate) taken: bool,
    /// Threads blocked in `wait`; the condvar is signalled only if there are any.
    pub(crate) waiters: u32,
    /// What only some tasks use (a future's waker, callbacks, a recording span), boxed on
    /// first use so that a queued task waited on by blocking calls pays one pointer (the
    /// host's memory per unresolved task, design.md). `None` again once resolved.
    pub(crate) extra: Option<Box<SlotExtra>>,
}

#[derive(Default)]
pub(crate) struct SlotExtra {
    pub(crate) waker: Option<Waker>,
    pub(crate) callbacks: Vec<Box<dyn FnOnce() + Send>>,
    /// The task's `mirai` span, ended at resolution.
    pub(crate) span: Span,
}

impl SlotInner {
    /// The extras, boxed now if this is their first use.
    pub(crate) fn extra(&mut self) -> &mut SlotExtra {
        self.extra.get_or_insert_with(Box::default)
    }
}

impl Slot {
    pub(crate) fn new(span: Span) -> Arc<Slot> {
        // A span that does not record (none, or dropped by the sampler) has nothing to report
        // at resolution: it is dropped (ended) now rather than kept.
        let extra = span.is_recording().then(|| {
            Box::new(SlotExtra {
                span,
                ..SlotExtra::default()
            })
        });
        Arc::new(Slot {
            inner: Mutex::new(SlotInner {
                extra,
                ..SlotInner::default()
            }),
            cv: Condvar::new(),
            attempts: AtomicU32::new(0),
        })
    }

    /// Resolves the slot unless it already was; its waker and callbacks go to `d`, to be run
    /// once every lock is released. True if this call resolved it.
    pub(crate) fn complete(&self, outcome: Outcome, d: &mut Deferred) -> bool {
        let mut g = lock(&self.inner);
        if g.resolved {
            return false;
        }
        g.resolved = true;
        // Nothing registers extras once resolved (`poll` finds the outcome, `on_complete`
        // runs at once), so the box goes now.
        let extra = g.extra.take();
        if let Some(x) = extra {
            let SlotExtra {
                waker,
                mut callbacks,
                mut span,
            } = *x;
            if span.is_recording() {
                set_span_outcome(&mut span, &outcome);
                d.spans.push(span);
            }
            if let Some(w) = waker {
                d.wakers.push(w);
            }
            d.callbacks.append(&mut callbacks);
        }
        g.outcome = Some(Box::new(outcome));
        if g.waiters > 0 {
            self.cv.notify_all();
        }
        true
    }
}

/// Wakers and callbacks collected while locked, run after unlocking; with tracing, also the
/// spans to end or record, so that no span work happens under a lock.
/// A panicking callback must not take the dispatcher thread down with it.
pub(crate) fn run_callback(f: Box<dyn FnOnce() + Send>) {
    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).is_err() {
        log::error!("mirai host: a task completion callback panicked");
    }
}

/// A submitted task. Resolves exactly once. A `Future` whose output is the [`Outcome`], and
/// waitable from any thread.
pub struct TaskHandle {
    pub(crate) id: TaskId,
    pub(crate) slot: Arc<Slot>,
    /// The host, so that a waiting thread can drive the listener itself.
    pub(crate) host: Weak<Shared>,
}

impl std::fmt::Debug for TaskHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskHandle")
            .field("id", &self.id)
            .field("resolved", &self.is_resolved())
            .finish()
    }
}

impl TaskHandle {
    /// The task's id (unique and increasing within the process).
    pub fn id(&self) -> TaskId {
        self.id
    }

    /// How many times the task has been sent to a daemon so far: 0 while it waits in the
    /// queue, 1 once dispatched, more if it was retried after its daemon was lost
    /// ([`SubmitOptions::retries`]). Stays at its final value after resolution.
    pub fn attempts(&self) -> u32 {
        self.slot.attempts.load(Ordering::Acquire)
    }

    /// True once resolved (whether or not the outcome was taken).
    pub fn is_resolved(&self) -> bool {
        lock(&self.slot.inner).resolved
    }

    /// Waits up to `timeout` (`None`: forever) and takes the outcome. `None` on timeout, or if
    /// the outcome was already taken. While it waits, this thread may drive the host's
    /// listener (see the crate docs), running other handles' callbacks.
    pub fn wait(&self, timeout: Option<Duration>) -> Option<Outcome> {
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        // Drive the listener from this thread when no other waiter does: the reply then wakes
        // this thread directly rather than the dispatcher thread, which would wake us.
        if !self.is_resolved() {
            if let Some(host) = self.host.upgrade() {
                host.drive(deadline, &|| self.is_resolved());
            }
        }
        let mut g = lock(&self.slot.inner);
        loop {
            if let Some(o) = g.outcome.take() {
                g.taken = true;
                return Some(*o);
            }
            if g.taken {
                return None;
            }
            g.waiters += 1;
            g = match deadline {
                None => self.slot.cv.wait(g).unwrap_or_else(|e| e.into_inner()),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        g.waiters -= 1;
                        return None;
                    }
                    wait_on(&self.slot.cv, g, d - now)
                }
            };
            g.waiters -= 1;
        }
    }

    /// Takes the outcome if resolved, without waiting.
    pub fn try_take(&self) -> Option<Outcome> {
        let mut g = lock(&self.slot.inner);
        let o = g.outcome.take();
        if o.is_some() {
            g.taken = true;
        }
        o.map(|o| *o)
    }

    /// Runs `f` once when the task resolves: at once, on this thread, if it already has;
    /// otherwise on the thread that resolves it (the dispatcher thread, a thread waiting on
    /// this host, or one calling [`Host::cancel`] or [`Host::reset`]), after every engine lock
    /// is released. `f` must be quick and must not call R. A panic in `f` is caught and logged.
    pub fn on_complete(&self, f: Box<dyn FnOnce() + Send>) {
        let mut g = lock(&self.slot.inner);
        if g.resolved {
            drop(g);
            run_callback(f);
        } else {
            g.extra().callbacks.push(f);
        }
    }
}

impl Future for TaskHandle {
    type Output = Outcome;

    /// Ready with the outcome once resolved.
    ///
    /// # Panics
    /// If polled after the outcome was taken (by an earlier `Ready`, [`TaskHandle::wait`] or
    /// [`TaskHandle::try_take`]), like any future polled after completion.
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outcome> {
        let mut g = lock(&self.slot.inner);
        if let Some(o) = g.outcome.take() {
            g.taken = true;
            return Poll::Ready(*o);
        }
        assert!(!g.taken, "TaskHandle polled after its outcome was taken");
        let x = g.extra();
        match &x.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => x.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}
