//! The completion notifier: a function the host calls once per task it resolves, whatever the
//! outcome (a reply, an error, a timeout, a cancel, a lost daemon, a reset).
//!
//! Why: a caller that waits for "some task of this host finished" on its own primitive (the R
//! bridge signals a condition variable of another R package, `nanonext`'s `cv()`) must be woken
//! by an event, not find out by polling. The function runs on whichever thread resolved the
//! task (the dispatcher thread, a waiting thread driving the listener, one cancelling or
//! resetting), after every engine lock is released and after the task's handle shows it
//! resolved, so that a woken waiter always sees the task as done.

use std::fmt;
use std::sync::Arc;

/// A function called once per task completion ([`crate::HostConfig::on_complete`]). It must be
/// quick, must not block, and must not call back into the host's blocking functions.
#[derive(Clone)]
pub struct CompletionNotifier(Arc<dyn Fn() + Send + Sync>);

impl CompletionNotifier {
    /// A notifier calling `f` once per completion.
    pub fn new(f: impl Fn() + Send + Sync + 'static) -> CompletionNotifier {
        CompletionNotifier(Arc::new(f))
    }

    /// Calls the function `n` times, catching (and logging) a panic so that it cannot take
    /// the thread that resolved the tasks down.
    pub(crate) fn notify(&self, n: u32) {
        for _ in 0..n {
            if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (self.0)())).is_err() {
                log::error!("mirai host: the completion notifier panicked");
                return;
            }
        }
    }
}

impl fmt::Debug for CompletionNotifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CompletionNotifier")
    }
}
