//! The `later` package's C interface: run an R function on R's main thread from any thread,
//! through `later`'s event loop.
//!
//! `later` registers `execLaterNative2` (documented as safe to call from any thread), which
//! queues a C callback that `later` runs on the main thread.

use std::cell::Cell;
use std::os::raw::{c_int, c_void};

use libR_sys::*;

use crate::guard::{protect_raw, quietly, Caught, Preserved};
use crate::scope::Scope;
use crate::sexp::Sexp;
use crate::token::R;

/// `void execLaterNative2(void (*func)(void*), void* data, double secs, int loop_id)`.
type ExecLater =
    unsafe extern "C" fn(Option<unsafe extern "C" fn(*mut c_void)>, *mut c_void, f64, c_int);

thread_local! {
    static EXEC_LATER: Cell<Option<ExecLater>> = const { Cell::new(None) };
}

/// `later`'s scheduling entry point; `Copy` and `Send`, so an engine thread can use it.
#[derive(Clone, Copy)]
pub struct Later(ExecLater);

/// An R function to run once on a `later` loop, with what to do with its error. `Send`, so
/// it can travel to the thread that schedules it; it is only opened on the main thread. A
/// job never scheduled is leaked (it cannot be released off the main thread).
pub struct LaterJob(*mut Job);

struct Job {
    fun: Preserved,
    on_error: fn(R, &str),
}

// SAFETY: the pointee (holding a preserved R object) is touched only on the main thread: other
// threads pass the pointer to execLaterNative2, and only `run_job`, called by later on the
// main thread, dereferences and frees it.
unsafe impl Send for LaterJob {}

impl LaterJob {
    /// A job calling `fun()` in the global environment; `on_error` gets the message of an
    /// error it signals (there is nobody to raise it to).
    pub fn new(r: R, fun: Sexp<'_>, on_error: fn(R, &str)) -> LaterJob {
        LaterJob(Box::into_raw(Box::new(Job {
            fun: Preserved::new(r, fun),
            on_error,
        })))
    }
}

extern "C" fn run_job(data: *mut c_void) {
    quietly(|| {
        // SAFETY: later calls us on the main thread with the pointer of a LaterJob, once.
        let (r, job) = unsafe { (R::assume(), Box::from_raw(data as *mut Job)) };
        // SAFETY: main thread, inside R (later's callback); dropped at the end of this call.
        let s = unsafe { Scope::root() };
        let call = s.lang(job.fun.sexp(), &[]);
        if let Err(Caught::Error(cond)) = s.eval(call, r.global_env()) {
            (job.on_error)(r, &cond.sexp().condition_message());
        }
        drop(s);
        drop(job);
    });
}

impl Later {
    /// Looks up `execLaterNative2` (the `later` namespace must be loaded). An R error (package
    /// or routine missing) is returned as caught; `Jump` if later returned no address.
    pub fn get(_s: &Scope<'_>) -> Result<Later, Caught> {
        if let Some(f) = EXEC_LATER.with(Cell::get) {
            return Ok(Later(f));
        }
        let mut addr: DL_FUNC = None;
        // SAFETY: main thread (a scope exists); R_GetCCallable raises an R error when the
        // package or the routine is missing, confined by protect_raw; the closure owns nothing.
        unsafe {
            protect_raw(|| {
                addr = R_GetCCallable(c"later".as_ptr(), c"execLaterNative2".as_ptr());
                R_NilValue
            })?;
        }
        // SAFETY: later registers execLaterNative2 with exactly this signature (later_api.h).
        let f = addr.map(|a| unsafe {
            std::mem::transmute::<unsafe extern "C" fn() -> *mut c_void, ExecLater>(a)
        });
        match f {
            Some(f) => {
                EXEC_LATER.with(|c| c.set(Some(f)));
                Ok(Later(f))
            }
            None => Err(Caught::Jump),
        }
    }

    /// Schedules `job` on loop `loop_id`, to run as soon as the loop runs. Any thread.
    pub fn schedule(self, job: LaterJob, loop_id: i32) {
        // SAFETY: execLaterNative2 is documented thread-safe; run_job takes over the job.
        unsafe { (self.0)(Some(run_job_c), job.0 as *mut c_void, 0.0, loop_id) }
    }
}

unsafe extern "C" fn run_job_c(data: *mut c_void) {
    run_job(data)
}

/// Prints `msg` on R's console (standard error), as R's own messages are.
pub fn eprint(_r: R, msg: &str) {
    if let Ok(c) = std::ffi::CString::new(msg.replace('\0', " ")) {
        // SAFETY: main thread (token); a "%s" format with a NUL-terminated argument.
        unsafe { REprintf(c"%s".as_ptr(), c.as_ptr()) };
    }
}
