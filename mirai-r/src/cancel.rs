//! Cancellation while a daemon evaluates a task: the engine reports a cancel through
//! [`EvalControl`], which is polled from R's own event loop on the main thread
//! ([`mirai_rapi::with_event_watch`]): from `R_PolledEvents` (called by
//! `R_CheckUserInterrupt`, which R's evaluator runs regularly even in busy loops; rate-limited
//! to one poll per millisecond) and from an input handler on the connection's descriptor
//! (which wakes `Sys.sleep` and other select-based waits at once). A cancel requests an R
//! interrupt, which R raises in the evaluation and the R code turns into a `miraiInterrupt`.

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use mirai::daemon::EvalControl;
use mirai_rapi::{clear_interrupt, request_interrupt, with_event_watch, EventWatch, R};

/// Shortest interval between two cancel polls from `R_PolledEvents`, which R calls very often.
const POLL_EVERY: Duration = Duration::from_millis(1);

/// After this many input-handler wake-ups in a row that brought no cancel, the descriptor is
/// taken to be readable for another reason (e.g. a hang-up the engine reports differently) and
/// the handler is removed, so that `Sys.sleep` does not spin; polling goes on from
/// `R_PolledEvents`.
const MAX_IDLE_WAKEUPS: u32 = 64;

thread_local! {
    /// A cancel arrived for the evaluation now running and the interrupt was requested (once
    /// per task).
    static RAISED: Cell<bool> = const { Cell::new(false) };
    /// The user's code of the evaluation now running has finished (see [`evaluation_done`]):
    /// cancels are no longer acted on.
    static DONE: Cell<bool> = const { Cell::new(false) };
}

/// What the event-loop callbacks need while one evaluation runs.
struct Watch<'c, 'e> {
    ctl: &'c mut EvalControl<'e>,
    last_poll: Option<Instant>,
    idle_wakeups: u32,
}

impl Watch<'_, '_> {
    /// Polls the engine for a cancel; on one, asks R to raise an interrupt.
    fn poll(&mut self, r: R) -> bool {
        if RAISED.with(Cell::get) || DONE.with(Cell::get) {
            return false;
        }
        // A panic must not unwind into R's event loop; a failing poll means "no cancel seen".
        if catch_unwind(AssertUnwindSafe(|| self.ctl.poll_cancel())).unwrap_or(false) {
            RAISED.with(|c| c.set(true));
            request_interrupt(r);
            return true;
        }
        false
    }
}

impl EventWatch for Watch<'_, '_> {
    fn polled(&mut self, r: R) {
        let now = Instant::now();
        if self
            .last_poll
            .is_some_and(|last| now.duration_since(last) < POLL_EVERY)
        {
            return;
        }
        self.last_poll = Some(now);
        self.poll(r);
    }

    fn input_ready(&mut self, r: R) -> bool {
        if RAISED.with(Cell::get) || DONE.with(Cell::get) || self.poll(r) {
            return false;
        }
        self.idle_wakeups += 1;
        let exiting = catch_unwind(AssertUnwindSafe(|| self.ctl.should_exit())).unwrap_or(true);
        !(exiting || self.idle_wakeups >= MAX_IDLE_WAKEUPS)
    }
}

/// Runs `body` (one task's evaluation) with its cancels watched; nested evaluations (a daemon
/// run inside a task) keep their own state and restore the enclosing one.
pub(crate) fn watch_cancels<T>(r: R, ctl: &mut EvalControl<'_>, body: impl FnOnce() -> T) -> T {
    let outer = (
        RAISED.with(|c| c.replace(false)),
        DONE.with(|c| c.replace(false)),
    );
    let fd = ctl.raw_fd();
    let mut w = Watch {
        ctl,
        last_poll: None,
        idle_wakeups: 0,
    };
    // A cancel that came in the same read as its task waits in the connection's buffer,
    // where it never makes the descriptor readable: look for it once before R starts.
    w.poll(r);
    let out = with_event_watch(r, fd, &mut w, body);
    if RAISED.with(Cell::get) {
        // The evaluation ended before R acted on our interrupt: it must not hit the reply or
        // the next task.
        clear_interrupt(r);
    }
    RAISED.with(|c| c.set(outer.0));
    DONE.with(|c| c.set(outer.1));
    out
}

/// Marks the evaluation now running as finished with the user's code (`mirai_eval` calls it
/// once the task's expression has been evaluated): a cancel arriving during the cleanup that
/// follows is not raised, so it cannot replace the result. Outside a daemon's task it has no
/// effect (each evaluation starts afresh).
pub(crate) fn evaluation_done() {
    DONE.with(|c| c.set(true));
}

/// Whether a cancel for the task now running was seen and raised as an interrupt.
pub(crate) fn cancel_seen() -> bool {
    RAISED.with(Cell::get)
}
