//! The daemon side: `mirai_daemon_run` runs `mirai_daemon::run` on R's main thread with an
//! evaluator that calls the R package's `init` and `eval` closures.
//!
//! Cancellation while `eval` runs: the engine reports a cancel through [`EvalControl`], which
//! is polled from R's own event loop on the main thread — from `R_PolledEvents` (called by
//! `R_CheckUserInterrupt`, which R's evaluator runs regularly even in busy loops; rate-limited
//! to one poll per millisecond) and from an input handler on the connection's descriptor
//! (which wakes `Sys.sleep` and other select-based waits at once). A cancel sets
//! `R_interrupts_pending`, so R raises an ordinary interrupt in the evaluation, which the R
//! code turns into a `miraiInterrupt`.

// Not yet ported to mirai_rapi's safe API: raw R calls, each under the rules its comments state.
#![allow(unsafe_code)]

use std::cell::Cell;
use std::os::raw::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use std::time::{Duration, Instant};

use mirai::daemon::{
    self, AutoExit, DaemonConfig, DaemonError, EvalControl, Evaluation, Evaluator, Init, Status,
    Task,
};
use mirai::proto::flags;
use mirai_rapi::sys::*;

use crate::serial::{serialize, unserialize, Hooks};
use crate::sexp::*;
use mirai_rapi::ffi::{
    addInputHandler, removeInputHandler, InputHandler, R_InputHandlers, R_PolledEvents,
    MIRAI_ACTIVITY,
};
use mirai_rapi::guard::protect_raw as protect;
use mirai_rapi::{Caught, Preserved, RError, RResult, Scope, Sexp};

/// Shortest interval between two cancel polls from `R_PolledEvents`, which R calls very often.
const POLL_EVERY: Duration = Duration::from_millis(1);

/// After this many input-handler wake-ups in a row that brought no cancel, the descriptor is
/// taken to be readable for another reason (e.g. a hang-up the engine reports differently) and
/// the handler is removed, so that `Sys.sleep` does not spin; polling goes on from
/// `R_PolledEvents`.
const MAX_IDLE_WAKEUPS: u32 = 64;

/// What the event-loop callbacks need while one evaluation runs.
struct Watch {
    /// The evaluation's control, type-erased (`*mut EvalControl<'_>`).
    ctl: *mut c_void,
    /// Our input handler, or null once removed (or never added).
    handler: *mut InputHandler,
    /// The `R_PolledEvents` we replaced, chained to and restored afterwards.
    prev_polled: Option<unsafe extern "C" fn()>,
    last_poll: Option<Instant>,
    /// A cancel arrived and the interrupt was requested (once per task).
    raised: bool,
    /// The user's code has finished (see [`evaluation_done`]): cancels are no longer acted on.
    done: bool,
    idle_wakeups: u32,
    /// The watch of an enclosing evaluation (nested daemon runs), restored afterwards.
    outer: *mut Watch,
}

thread_local! {
    /// The watch of the evaluation now running on this (R's main) thread, or null.
    static ACTIVE: Cell<*mut Watch> = const { Cell::new(ptr::null_mut()) };
}

/// Installs the watch for one evaluation; dropping it restores R's event-loop state.
struct CancelWatch {
    w: Box<Watch>,
}

impl CancelWatch {
    /// # Safety
    /// Main thread. The returned guard must be dropped before `ctl`'s borrow ends (it is a
    /// local of the `evaluate` frame that holds that borrow).
    unsafe fn install(ctl: &mut EvalControl<'_>) -> CancelWatch {
        let mut w = Box::new(Watch {
            ctl: ctl as *mut EvalControl<'_> as *mut c_void,
            handler: ptr::null_mut(),
            // Chained to by `polled_events` (unless it is ours: a nested watch) and restored.
            prev_polled: R_PolledEvents,
            last_poll: None,
            raised: false,
            done: false,
            idle_wakeups: 0,
            outer: ACTIVE.with(Cell::get),
        });
        if let Some(fd) = ctl.raw_fd() {
            w.handler = addInputHandler(R_InputHandlers, fd, Some(input_ready), MIRAI_ACTIVITY);
        }
        ACTIVE.with(|a| a.set(&mut *w as *mut Watch));
        R_PolledEvents = Some(polled_events);
        // A cancel that came in the same read as its task waits in the connection's buffer,
        // where it never makes the descriptor readable: look for it once before R starts.
        poll(&mut *w);
        CancelWatch { w }
    }
}

impl Drop for CancelWatch {
    fn drop(&mut self) {
        // SAFETY: main thread; undoes exactly what `install` did, innermost first.
        unsafe {
            R_PolledEvents = self.w.prev_polled;
            remove_handler(&mut *self.w);
            ACTIVE.with(|a| a.set(self.w.outer));
            if self.w.raised {
                // The evaluation ended before R acted on our interrupt: it must not hit the
                // reply or the next task.
                R_interrupts_pending = 0;
            }
        }
    }
}

unsafe fn remove_handler(w: *mut Watch) {
    if !(*w).handler.is_null() {
        removeInputHandler(ptr::addr_of_mut!(R_InputHandlers), (*w).handler);
        (*w).handler = ptr::null_mut();
    }
}

/// Polls the engine for a cancel; on one, asks R to raise an interrupt.
///
/// # Safety
/// `w` is the active watch. Its `ctl` points to the `EvalControl` that `evaluate` borrowed for
/// the whole evaluation: R calls our callbacks only on the main thread, synchronously within
/// that evaluation (the watch is uninstalled before `evaluate` touches `ctl` again), so this is
/// the only live reference to it.
unsafe fn poll(w: *mut Watch) -> bool {
    if (*w).raised || (*w).done {
        return false;
    }
    let ctl = &mut *((*w).ctl as *mut EvalControl<'_>);
    // A panic must not unwind into R's event loop; a failing poll means "no cancel seen".
    if catch_unwind(AssertUnwindSafe(|| ctl.poll_cancel())).unwrap_or(false) {
        (*w).raised = true;
        R_interrupts_pending = 1;
        return true;
    }
    false
}

unsafe extern "C" fn polled_events() {
    let w = ACTIVE.with(Cell::get);
    if w.is_null() {
        return;
    }
    if let Some(prev) = (*w).prev_polled {
        if !std::ptr::fn_addr_eq(prev, polled_events as unsafe extern "C" fn()) {
            // May jump (e.g. a GUI's R callback erroring); this frame owns nothing.
            prev();
        }
    }
    let now = Instant::now();
    if (*w)
        .last_poll
        .is_some_and(|last| now.duration_since(last) < POLL_EVERY)
    {
        return;
    }
    (*w).last_poll = Some(now);
    poll(w);
}

unsafe extern "C" fn input_ready(_user_data: *mut c_void) {
    let w = ACTIVE.with(Cell::get);
    if w.is_null() {
        return;
    }
    if (*w).raised || (*w).done || poll(w) {
        remove_handler(w);
        return;
    }
    let ctl = &*((*w).ctl as *const EvalControl<'_>);
    (*w).idle_wakeups += 1;
    let exiting = catch_unwind(AssertUnwindSafe(|| ctl.should_exit())).unwrap_or(true);
    if exiting || (*w).idle_wakeups >= MAX_IDLE_WAKEUPS {
        remove_handler(w);
    }
}

/// Marks the evaluation now running as finished with the user's code (`mirai_eval` calls it
/// once the task's expression has been evaluated): a cancel arriving during the cleanup that
/// follows is not raised, so it cannot replace the result. A no-op outside a daemon's task.
pub(crate) fn evaluation_done() {
    let w = ACTIVE.with(Cell::get);
    if !w.is_null() {
        // SAFETY: main thread; the active watch lives until its evaluation returns.
        unsafe { (*w).done = true };
    }
}

/// Whether a cancel for the task now running was seen and raised as an interrupt.
pub(crate) fn cancel_seen() -> bool {
    let w = ACTIVE.with(Cell::get);
    // SAFETY: as in `evaluation_done`.
    !w.is_null() && unsafe { (*w).raised }
}

/// Calls the R package's `init` and `eval` closures.
struct REvaluator {
    init_fn: SEXP,
    eval_fn: SEXP,
    /// The hooks parsed from `hooks_value` (borrowing from it; declared first so it is dropped
    /// first).
    hooks: Option<Hooks>,
    /// `init()`'s value, kept alive.
    hooks_value: Option<Preserved>,
    /// Why `init()` failed, raised as it was once `run` returns.
    init_failure: Option<RError>,
}

unsafe fn reply_error(msg: &str) -> Evaluation {
    let mut p = Protector::new();
    let v = p.protect(mirai_error(msg));
    Evaluation {
        status: Status::Error,
        payload: serialize(v, None).unwrap_or_default(),
    }
}

unsafe fn reply_interrupt() -> Evaluation {
    let mut p = Protector::new();
    let v = p.protect(mirai_interrupt());
    Evaluation {
        status: Status::Interrupted,
        payload: serialize(v, None).unwrap_or_default(),
    }
}

unsafe fn reply_failure(e: RError) -> Evaluation {
    match e {
        RError::Interrupt => reply_interrupt(),
        other => reply_error(&other.message()),
    }
}

impl Evaluator for REvaluator {
    fn init(&mut self, init: &Init) -> Result<(), String> {
        // SAFETY: `run` calls this on the thread that called it: R's main thread.
        unsafe {
            let mut p = Protector::new();
            let stream = match init.stream {
                Some(s) => {
                    let v = p.protect(Rf_allocVector(SEXPTYPE::INTSXP, 7));
                    std::slice::from_raw_parts_mut(INTEGER(v), 7).copy_from_slice(&s);
                    v
                }
                None => R_NilValue,
            };
            let serial = p.protect(mk_raw(&init.serial));
            let call = p.protect(Rf_lang3(self.init_fn, stream, serial));
            let failure = match protect(|| Rf_eval(call, R_GlobalEnv)) {
                Ok(v) => {
                    p.protect(v);
                    match Hooks::from_sexp(v, "the value of init()") {
                        Ok(hooks) => {
                            self.hooks = None;
                            self.hooks_value = Some(preserve(v));
                            self.hooks = hooks;
                            return Ok(());
                        }
                        Err(e) => e,
                    }
                }
                Err(caught) => caught.into(),
            };
            let msg = failure.message();
            self.init_failure = Some(failure);
            Err(msg)
        }
    }

    fn evaluate(&mut self, task: Task, ctl: &mut EvalControl<'_>) -> Evaluation {
        // SAFETY: as in `init`; R values are protected for as long as they are used, and R's
        // jumps are confined by `protect`.
        unsafe {
            // An interrupt left from between tasks must not hit this one.
            R_interrupts_pending = 0;
            let Task {
                payload,
                flags: task_flags,
                ..
            } = task;
            let mut p = Protector::new();
            let data = match unserialize(&payload, self.hooks.as_ref()) {
                Ok(d) => p.protect(d),
                Err(e) => return reply_failure(e),
            };
            drop(payload);
            let everywhere = p.protect(lgl(task_flags & flags::EVERYWHERE != 0));
            let call = p.protect(Rf_lang3(self.eval_fn, data, everywhere));
            let result = {
                let _watch = CancelWatch::install(ctl);
                protect(|| Rf_eval(call, R_GlobalEnv))
            };
            match result {
                Ok(v) => {
                    p.protect(v);
                    let status = if inherits(v, c"miraiError") {
                        Status::Error
                    } else if inherits(v, c"miraiInterrupt") {
                        Status::Interrupted
                    } else {
                        Status::Ok
                    };
                    match serialize(v, self.hooks.as_ref()) {
                        Ok(payload) => Evaluation { status, payload },
                        Err(RError::Interrupt) => reply_interrupt(),
                        Err(e) => reply_error(&format!(
                            "the result could not be serialized: {}",
                            e.message()
                        )),
                    }
                }
                Err(Caught::Error(cond)) => reply_error(&condition_message(cond.get())),
                Err(Caught::Jump) => reply_interrupt(),
            }
        }
    }
}

/// `autoexit`: `TRUE` (or any non-zero number) exits, `NA` finishes the task, `FALSE` stays.
fn autoexit_mode(v: Option<bool>) -> AutoExit {
    match v {
        Some(true) => AutoExit::Exit,
        None => AutoExit::Finish,
        Some(false) => AutoExit::Stay,
    }
}

/// `.Call` routine (docs/r-bridge.md): runs the daemon loop on R's main thread.
#[allow(clippy::too_many_arguments)]
pub(crate) fn mirai_daemon_run<'a>(
    s: &'a Scope,
    url: Sexp<'a>,
    asyncdial: Sexp<'a>,
    autoexit: Sexp<'a>,
    idletime: Sexp<'a>,
    walltime: Sexp<'a>,
    maxtasks: Sexp<'a>,
    init: Sexp<'a>,
    eval: Sexp<'a>,
) -> RResult<Sexp<'a>> {
    let (url, asyncdial, autoexit, idletime, walltime, maxtasks, init, eval) = (
        url.raw(),
        asyncdial.raw(),
        autoexit.raw(),
        idletime.raw(),
        walltime.raw(),
        maxtasks.raw(),
        init.raw(),
        eval.raw(),
    );
    // SAFETY: not yet ported to the safe API: a routine runs on R's main thread with
    // live arguments; the body's raw calls keep the rules of `legacy`.
    unsafe {
        legacy(s, || {
            // The CA chain travels as an attribute of `url` (routines have a fixed arity).
            let tlscert = Rf_getAttrib(url, Rf_install(c"tlscert".as_ptr()));
            let tls = if is_null(tlscert) {
                None
            } else {
                Some(crate::tls::client_config(Sexp::from_raw(tlscert))?)
            };
            daemon_run(
                url, asyncdial, autoexit, idletime, walltime, maxtasks, init, eval, tls,
            )
        })
    }
}

#[allow(clippy::too_many_arguments)]
unsafe fn daemon_run(
    url: SEXP,
    asyncdial: SEXP,
    autoexit: SEXP,
    idletime: SEXP,
    walltime: SEXP,
    maxtasks: SEXP,
    init: SEXP,
    eval: SEXP,
    tls: Option<mirai::transport::TlsConfig>,
) -> RResult<SEXP> {
    {
        let mut config = DaemonConfig::new(arg_string(url, "url")?);
        // The bridge's settings ride as attributes of `url` too (R options `mirai.transport`
        // and `mirai.log`, see daemon.R).
        let attr =
            |name: &std::ffi::CStr| Sexp::from_raw(Rf_getAttrib(url, Rf_install(name.as_ptr())));
        config.transport = crate::host::transport_options(attr(c"transport"), "transport")?;
        crate::remote::set_log_level(attr(c"log"), "log")?;
        config.transport.tls = tls;
        config.asyncdial =
            arg_lgl(asyncdial, "asyncdial")?.ok_or("`asyncdial` must be TRUE or FALSE")?;
        config.autoexit = autoexit_mode(arg_lgl(autoexit, "autoexit")?);
        config.idletime = limit_ms(arg_num(idletime, "idletime")?, "idletime")?;
        config.walltime = limit_ms(arg_num(walltime, "walltime")?, "walltime")?;
        config.maxtasks = limit_count(arg_num(maxtasks, "maxtasks")?, "maxtasks")?;
        let mut ev = REvaluator {
            init_fn: arg_function(init, "init")?,
            eval_fn: arg_function(eval, "eval")?,
            hooks: None,
            hooks_value: None,
            init_failure: None,
        };
        match daemon::run(&config, &mut ev) {
            Ok(code) => Ok(Rf_ScalarInteger(code as i32)),
            Err(DaemonError::Init(msg)) => Err(ev
                .init_failure
                .take()
                .unwrap_or_else(|| RError::Msg(format!("daemon initialisation failed: {msg}")))),
            // A failed synchronous dial reads "<code> | <text>", e.g. "6 | Connection refused";
            // a refused TLS handshake (26, 27) also says why, e.g. which certificate failed.
            Err(DaemonError::Dial {
                code: code @ (26 | 27),
                text,
                source,
            }) => Err(RError::Msg(format!("{code} | {text}: {source}"))),
            Err(e) => Err(RError::Msg(e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn autoexit_maps_true_na_false() {
        assert_eq!(autoexit_mode(Some(true)), AutoExit::Exit);
        assert_eq!(autoexit_mode(None), AutoExit::Finish);
        assert_eq!(autoexit_mode(Some(false)), AutoExit::Stay);
    }
}
