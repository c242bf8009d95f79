//! The completion slot of an Aio: where a background thread (a socket operation, a timer)
//! stores the outcome of an asynchronous operation, once, and where R's main thread finds it.
//! Plain Rust, shared between threads (`Arc<AioSlot>`).
//!
//! Completion order (spec §3.2): the outcome is stored and the slot's own waiters are woken
//! first, then the completion hook runs (promises, `.keep`), then the cv is signalled, so a
//! thread woken by the cv always finds the Aio complete.

use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::cv::Cv;

/// NNG's "Operation canceled": the outcome of a stopped Aio.
pub(crate) const CANCELED: i32 = 20;

/// A received message (or, for a send, nothing) and the pipe it came through.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Msg {
    /// The message body (empty for a send).
    pub(crate) bytes: Vec<u8>,
    /// The pipe id (> 0) the message came through; 0 when unknown.
    pub(crate) pipe: i32,
}

/// How an operation ended: a message, or an NNG error code (> 0).
pub(crate) type Outcome = Result<Msg, i32>;

/// A callback run once, on the completing thread, right after the outcome is stored.
pub(crate) type Hook = Box<dyn FnOnce(&Outcome) + Send>;

/// Aborts the underlying operation (run on `stop()`, on R's main thread).
pub(crate) type Canceller = Box<dyn FnOnce() + Send>;

/// One asynchronous operation's outcome, set once (the first completion wins).
pub(crate) struct AioSlot {
    outcome: OnceLock<Outcome>,
    lock: Mutex<()>,
    done: Condvar,
    /// Signalled once per completion, after the outcome is stored.
    cv: Option<Arc<Cv>>,
    /// Raise `SIGINT` in the own process on a successful completion (spec §2.5).
    interrupt: bool,
    hook: Mutex<Option<Hook>>,
    canceller: Mutex<Option<Canceller>>,
}

impl std::fmt::Debug for AioSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AioSlot")
            .field("outcome", &self.outcome.get())
            .finish_non_exhaustive()
    }
}

impl AioSlot {
    /// A pending slot; `cv` is signalled on completion; `interrupt` raises `SIGINT` in the
    /// own process when the operation succeeds.
    pub(crate) fn new(cv: Option<Arc<Cv>>, interrupt: bool) -> Arc<AioSlot> {
        Arc::new(AioSlot {
            outcome: OnceLock::new(),
            lock: Mutex::new(()),
            done: Condvar::new(),
            cv,
            interrupt,
            hook: Mutex::new(None),
            canceller: Mutex::new(None),
        })
    }

    /// Stores `outcome` if the slot is still pending, wakes its waiters, runs the hook,
    /// raises the interrupt (success only) and signals the cv. Whether this call completed
    /// it. Any thread.
    pub(crate) fn complete(&self, outcome: Outcome) -> bool {
        if self.outcome.set(outcome).is_err() {
            return false;
        }
        drop(self.lock.lock().unwrap_or_else(|e| e.into_inner()));
        self.done.notify_all();
        let Some(out) = self.outcome.get() else {
            return true;
        };
        let hook = self.hook.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(h) = hook {
            h(out);
        }
        self.canceller
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if self.interrupt && out.is_ok() {
            mirai_rapi::os::raise_signal(mirai_rapi::os::SIGINT);
        }
        if let Some(cv) = &self.cv {
            cv.signal();
        }
        true
    }

    /// The outcome, once complete.
    pub(crate) fn outcome(&self) -> Option<&Outcome> {
        self.outcome.get()
    }

    /// Whether the operation is still in flight.
    pub(crate) fn pending(&self) -> bool {
        self.outcome.get().is_none()
    }

    /// Waits up to `timeout` (`None`: no limit) for completion; whether complete.
    pub(crate) fn wait(&self, timeout: Option<Duration>) -> bool {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        while self.pending() {
            g = match deadline {
                None => self.done.wait(g).unwrap_or_else(|e| e.into_inner()),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return false;
                    }
                    self.done
                        .wait_timeout(g, d - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
        }
        true
    }

    /// Completes a pending operation with [`CANCELED`] (no interrupt is raised: it is not a
    /// success) and aborts it through its canceller.
    pub(crate) fn stop(&self) {
        let canceller = self
            .canceller
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        self.complete(Err(CANCELED));
        if let Some(c) = canceller {
            c();
        }
    }

    #[allow(dead_code)] // Used by the socket code (crate::sock).
    /// Sets the hook run on completion; if the slot is already complete it runs now, on
    /// this thread (spec §2.4: a completion before `.keep` must not lose the callback).
    pub(crate) fn on_complete(&self, hook: Hook) {
        let mut h = self.hook.lock().unwrap_or_else(|e| e.into_inner());
        match self.outcome.get() {
            // `complete` stores the outcome before taking the hook, so once the outcome is
            // seen here the hook would never be taken: run it instead.
            Some(out) => {
                drop(h);
                hook(out);
            }
            None => {
                *h = Some(hook);
                drop(h);
                // Completed between the check and the store: `complete` may have taken the
                // hook already (then it ran), or not (then run it now).
                if let Some(out) = self.outcome.get() {
                    let late = self.hook.lock().unwrap_or_else(|e| e.into_inner()).take();
                    if let Some(hook) = late {
                        hook(out);
                    }
                }
            }
        }
    }

    #[allow(dead_code)] // Used by the socket code (crate::sock).
    /// Sets how `stop()` aborts the underlying operation (dropped on completion).
    pub(crate) fn set_canceller(&self, c: Canceller) {
        if self.pending() {
            *self.canceller.lock().unwrap_or_else(|e| e.into_inner()) = Some(c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn first_completion_wins_and_signals_once() {
        let cv = Arc::new(Cv::default());
        let s = AioSlot::new(Some(Arc::clone(&cv)), false);
        assert!(s.pending());
        assert!(s.complete(Ok(Msg {
            bytes: vec![1],
            pipe: 3
        })));
        assert!(!s.complete(Err(5)));
        s.stop();
        assert_eq!(s.outcome().unwrap().as_ref().unwrap().pipe, 3);
        assert_eq!(cv.lock().value, 1);
    }

    #[test]
    fn stop_completes_with_20_and_runs_the_canceller() {
        let n = Arc::new(AtomicUsize::new(0));
        let s = AioSlot::new(None, false);
        let m = Arc::clone(&n);
        s.set_canceller(Box::new(move || {
            m.fetch_add(1, Ordering::SeqCst);
        }));
        s.stop();
        s.stop();
        assert_eq!(s.outcome(), Some(&Err(CANCELED)));
        assert_eq!(n.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn waits_wake_on_completion_from_another_thread() {
        let s = AioSlot::new(None, false);
        assert!(!s.wait(Some(Duration::from_millis(10))));
        let t = {
            let s = Arc::clone(&s);
            std::thread::spawn(move || s.wait(None))
        };
        std::thread::sleep(Duration::from_millis(10));
        s.complete(Err(7));
        assert!(t.join().unwrap());
    }

    #[test]
    fn hooks_run_once_whether_set_before_or_after_completion() {
        let n = Arc::new(AtomicUsize::new(0));
        let s = AioSlot::new(None, false);
        let m = Arc::clone(&n);
        s.on_complete(Box::new(move |_| {
            m.fetch_add(1, Ordering::SeqCst);
        }));
        s.complete(Err(5));
        let m = Arc::clone(&n);
        s.on_complete(Box::new(move |o| {
            assert_eq!(o, &Err(5));
            m.fetch_add(1, Ordering::SeqCst);
        }));
        assert_eq!(n.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn cv_waiters_find_the_slot_complete() {
        let cv = Arc::new(Cv::default());
        let s = AioSlot::new(Some(Arc::clone(&cv)), false);
        let t = {
            let (s, cv) = (Arc::clone(&s), Arc::clone(&cv));
            std::thread::spawn(move || {
                cv.until(None);
                s.pending()
            })
        };
        std::thread::sleep(Duration::from_millis(5));
        s.complete(Err(5));
        assert!(!t.join().unwrap());
    }
}
