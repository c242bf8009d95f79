//! Event-driven promise settlement: run an R closure on R's main thread, through the `later`
//! package's event loop, once a task resolves.
//!
//! The engine calls completion callbacks on its dispatcher thread, which must never call R;
//! `later`'s C entry point `execLaterNative2` is documented as safe to call from any thread and
//! queues a C callback that `later` runs on the main thread, where the closure is evaluated.

use std::cell::Cell;
use std::os::raw::{c_int, c_void};

use libR_sys::*;

use crate::guard::{entry, protect, Caught, Preserved, Protector};
use crate::handles::task_handle;
use crate::sexp::{arg_function, arg_num, condition_message};

/// `void execLaterNative2(void (*func)(void*), void* data, double secs, int loop_id)`.
type ExecLater =
    unsafe extern "C" fn(Option<unsafe extern "C" fn(*mut c_void)>, *mut c_void, f64, c_int);

thread_local! {
    static EXEC_LATER: Cell<Option<ExecLater>> = const { Cell::new(None) };
}

/// Looks up `later`'s C entry point (the `later` namespace must be loaded: the R code calls
/// `later::current_loop()` first).
unsafe fn exec_later() -> Result<ExecLater, Caught> {
    if let Some(f) = EXEC_LATER.with(Cell::get) {
        return Ok(f);
    }
    let mut addr: DL_FUNC = None;
    // R_GetCCallable raises an R error when the package or the routine is missing.
    protect(|| {
        addr = R_GetCCallable(c"later".as_ptr(), c"execLaterNative2".as_ptr());
        R_NilValue
    })?;
    // SAFETY: later registers execLaterNative2 with exactly this signature (later_api.h).
    let f =
        addr.map(|a| std::mem::transmute::<unsafe extern "C" fn() -> *mut c_void, ExecLater>(a));
    match f {
        Some(f) => {
            EXEC_LATER.with(|c| c.set(Some(f)));
            Ok(f)
        }
        None => Err(Caught::Jump),
    }
}

/// Lets a raw pointer travel to the dispatcher thread, which only hands it back to `later`.
struct SendPtr(*mut c_void);
// SAFETY: the pointee (a Box<Preserved>) is never touched off the main thread: the dispatcher
// thread passes the pointer to execLaterNative2, and only `run_later`, on the main thread,
// dereferences it.
unsafe impl Send for SendPtr {}

/// Called by `later` on R's main thread: evaluates the closure once and releases it.
unsafe extern "C" fn run_later(data: *mut c_void) {
    crate::guard::quietly(|| run_later_inner(data));
}

unsafe fn run_later_inner(data: *mut c_void) {
    let keep = Box::from_raw(data as *mut Preserved);
    let mut p = Protector::new();
    let call = p.protect(Rf_lang1(keep.get()));
    // Nobody to raise to here: say so on the console, as later does for R callbacks.
    if let Err(Caught::Error(cond)) = protect(|| Rf_eval(call, R_GlobalEnv)) {
        let msg = condition_message(cond.get()).replace('\0', " ");
        if let Ok(c) =
            std::ffi::CString::new(format!("mirai: error in a promise callback: {msg}\n"))
        {
            REprintf(c"%s".as_ptr(), c.as_ptr());
        }
    }
    drop(p);
    drop(keep);
}

/// `.Call(mirai_later, task, fun, loop_id)`: schedules `fun()` on `later` loop `loop_id` once
/// `task` resolves (at once if it has).
///
/// # Safety
/// Called by R through `.Call` on its main thread, with valid SEXP arguments.
#[no_mangle]
pub unsafe extern "C" fn mirai_later(task: SEXP, fun: SEXP, loop_id: SEXP) -> SEXP {
    // SAFETY: called by R through .Call on the main thread with valid SEXPs.
    entry(|| unsafe {
        let handle = task_handle(task, "task")?;
        let fun = arg_function(fun, "fun")?;
        let loop_id = arg_num(loop_id, "loop_id")?;
        if !loop_id.is_finite() {
            return Err("`loop_id` must be a later loop id".into());
        }
        let later = exec_later().map_err(|c| match c {
            Caught::Error(cond) => crate::guard::RError::Cond(cond),
            Caught::Jump => "the `later` package's C interface is not available".into(),
        })?;
        let ptr = SendPtr(Box::into_raw(Box::new(Preserved::new(fun))) as *mut c_void);
        let loop_id = loop_id as c_int;
        handle.on_complete(Box::new(move || {
            let ptr = ptr;
            // SAFETY (inherited unsafe context): see SendPtr; execLaterNative2 is thread-safe.
            later(Some(run_later), ptr.0, 0.0, loop_id)
        }));
        Ok(R_NilValue)
    })
}
