//! Evaluation with a handler run at the point of an error, before R unwinds (while the
//! frames of the failing code still exist, e.g. to record a stack trace), and R's error
//! message buffer.

use std::ffi::CStr;
use std::os::raw::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};

use libR_sys::*;

use crate::ffi::R_curErrorBuf;
use crate::guard::{abort_call, Caught, Preserved};
use crate::scope::Scope;
use crate::sexp::Sexp;
use crate::token::R;

/// What [`Scope::eval_traced`] calls with the error condition, at the point of the error.
pub type OnError<'h> = dyn for<'s> FnMut(&'s Scope<'s>, Sexp<'s>) + 'h;

struct Ctx<'f, 'h> {
    call: SEXP,
    env: SEXP,
    on_error: &'f mut OnError<'h>,
    result: SEXP,
    /// The error condition, preserved; null if none.
    cond: SEXP,
}

// The trampolines may be skipped by a longjmp; they own nothing when R jumps.
unsafe extern "C" fn body(data: *mut c_void) -> SEXP {
    // SAFETY: `data` is the `Ctx` of the running `eval_traced`.
    let ctx = data as *mut Ctx<'_, '_>;
    Rf_eval((*ctx).call, (*ctx).env)
}

unsafe extern "C" fn handler(cond: SEXP, data: *mut c_void) -> SEXP {
    // SAFETY: as in `body`; R passes the live condition. The user's handler runs in a scope
    // dropped before the jump, under catch_unwind (a panic there is dropped: the error is
    // reported all the same).
    let ctx = &mut *(data as *mut Ctx<'_, '_>);
    if ctx.cond.is_null() {
        R_PreserveObject(cond);
        ctx.cond = cond;
        let scope = Scope::root();
        let c = Sexp::from_raw(cond);
        let f = &mut *ctx.on_error;
        let _ = catch_unwind(AssertUnwindSafe(|| f(&scope, c)));
        drop(scope);
    }
    // Jumps, silently, to the R_ToplevelExec in `eval_traced`.
    Rf_eval(abort_call(), R_BaseEnv);
    R_NilValue
}

unsafe extern "C" fn top(data: *mut c_void) {
    // SAFETY: as in `body`.
    let ctx = data as *mut Ctx<'_, '_>;
    (*ctx).result = R_withCallingErrorHandler(Some(body), data, Some(handler), data);
}

impl<'p> Scope<'p> {
    /// Evaluates `call` in `env` like [`Scope::eval`], but calls `on_error` with an error's
    /// condition where it is signalled, before R unwinds: R code it runs (through
    /// [`Scope::eval`]) sees the frames of the failing code. The value is protected by this
    /// scope; an error is returned as [`Caught::Error`] once `on_error` has run, and other
    /// jumps (interrupts, restarts, errors raised with handlers off) as [`Caught::Jump`].
    pub fn eval_traced(
        &self,
        call: Sexp<'_>,
        env: Sexp<'_>,
        on_error: &mut OnError<'_>,
    ) -> Result<Sexp<'_>, Caught> {
        let mut ctx = Ctx {
            call: call.raw(),
            env: env.raw(),
            on_error,
            // SAFETY: main thread (a scope exists); a read of R's permanent NULL.
            result: unsafe { R_NilValue },
            cond: std::ptr::null_mut(),
        };
        // SAFETY: main thread; the context outlives R_ToplevelExec, which confines every jump
        // of the evaluation and of the handler's abort; the objects are alive (borrowed).
        let ok = unsafe {
            abort_call();
            R_ToplevelExec(Some(top), &mut ctx as *mut Ctx<'_, '_> as *mut c_void)
        };
        if !ctx.cond.is_null() {
            // SAFETY: preserved once by `handler`; this takes over that preservation.
            return Err(Caught::Error(unsafe { Preserved::adopt(ctx.cond) }));
        }
        match ok {
            // SAFETY: just returned by R_eval, nothing allocated since.
            Rboolean::TRUE => Ok(unsafe { self.protect_raw(ctx.result) }),
            Rboolean::FALSE => Err(Caught::Jump),
        }
    }
}

/// The text of R's last error message (what `geterrmessage()` returns), as bytes. An error R
/// reports with calling handlers off (C stack overflow) leaves its text only there.
pub fn error_buffer(_r: R) -> Vec<u8> {
    // SAFETY: main thread (token); R's buffer is NUL-terminated and copied at once.
    unsafe {
        let p = R_curErrorBuf();
        if p.is_null() {
            Vec::new()
        } else {
            CStr::from_ptr(p).to_bytes().to_vec()
        }
    }
}
