//! Keeping R's non-local exits and Rust's unwinding apart.
//!
//! R reports errors and interrupts by `longjmp`, which must never skip a Rust frame that owns
//! something with a destructor; Rust panics must never unwind into R's C frames. Hence:
//!
//! 1. Every routine and callback runs under [`crate::routine`]'s trampolines: its body runs
//!    under `catch_unwind`, so a panic becomes an [`RError`].
//! 2. Inside the body, every R call that may jump (evaluating R code, R's serializer) runs
//!    through [`protect_raw`] (or the safe [`crate::Scope::eval`] built on it), under
//!    `R_ToplevelExec` with a C-level calling error handler: errors are captured as condition
//!    objects and interrupts as [`Caught::Jump`], and the jump ends inside `R_ToplevelExec`,
//!    never in Rust code that owns anything. The only Rust frames a jump crosses are the small
//!    trampolines below, which own nothing (plain old frames).
//! 3. When the body returns an error, the trampoline first drops everything the body owned
//!    (its scope included), copies the message into a fixed stack buffer, and only then raises
//!    the R error or interrupt.

use std::cell::Cell;
use std::os::raw::{c_char, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};

use libR_sys::*;

use crate::token::R;

/// Room for an error message raised to R (R's own message buffer has the same size).
const MSG_CAP: usize = 8192;

/// Why a routine failed; raised to R once the routine's Rust values are dropped.
pub enum RError {
    /// An R error with this message and no call.
    Msg(String),
    /// A condition caught from R code, signalled again as it was (`stop(cond)`).
    Cond(Preserved),
    /// The user interrupted: raised as R's interrupt condition.
    Interrupt,
}

/// The result type of routine bodies.
pub type RResult<T> = Result<T, RError>;

impl From<String> for RError {
    fn from(s: String) -> Self {
        RError::Msg(s)
    }
}

impl From<&str> for RError {
    fn from(s: &str) -> Self {
        RError::Msg(s.to_owned())
    }
}

impl From<Caught> for RError {
    fn from(c: Caught) -> Self {
        match c {
            Caught::Error(cond) => RError::Cond(cond),
            Caught::Jump => RError::Interrupt,
        }
    }
}

impl RError {
    /// A text for contexts that can only carry a string.
    pub fn message(&self) -> String {
        match self {
            RError::Msg(m) => m.clone(),
            RError::Cond(c) => c.sexp().condition_message(),
            RError::Interrupt => "interrupted".to_owned(),
        }
    }
}

/// An R object kept alive with `R_PreserveObject` (R's precious list) until dropped: for
/// objects that outlive a routine call. Not `Send`: it is released on R's main thread.
pub struct Preserved(SEXP);

impl Preserved {
    /// Preserves `x`.
    pub fn new(_r: R, x: crate::Sexp<'_>) -> Self {
        // SAFETY: `x` is a live object (a `Sexp` is valid for its lifetime) and the token
        // proves we are on R's main thread.
        unsafe { R_PreserveObject(x.raw()) };
        Preserved(x.raw())
    }

    /// Takes over an object already preserved with `R_PreserveObject` (released when dropped).
    ///
    /// # Safety
    /// `x` must have been preserved once for this value; main thread only.
    pub unsafe fn adopt(x: SEXP) -> Self {
        Preserved(x)
    }

    /// The object, valid while this value lives.
    pub fn sexp(&self) -> crate::Sexp<'_> {
        // SAFETY: preserved objects stay alive until released in `drop`.
        unsafe { crate::Sexp::from_raw(self.0) }
    }

    /// The raw object (for code not ported to the safe API).
    pub fn get(&self) -> SEXP {
        self.0
    }

    /// Gives up ownership without releasing: the caller must `R_ReleaseObject` it.
    pub(crate) fn into_raw(self) -> SEXP {
        let x = self.0;
        std::mem::forget(self);
        x
    }
}

impl Drop for Preserved {
    fn drop(&mut self) {
        // SAFETY: preserved in `new` (or before `adopt`), released once here; Preserved is
        // !Send (holds a raw pointer), so this runs on R's main thread.
        unsafe { R_ReleaseObject(self.0) }
    }
}

/// How protected R code ended abnormally.
pub enum Caught {
    /// It signalled an error: the condition object.
    Error(Preserved),
    /// It jumped out otherwise: an interrupt (or a restart such as `abort`).
    Jump,
}

thread_local! {
    /// `invokeRestart("abort")`, preserved for the life of the process.
    static ABORT_CALL: Cell<SEXP> = const { Cell::new(std::ptr::null_mut()) };
}

/// `invokeRestart("abort")` (preserved): jumps, silently, to the innermost top-level context.
///
/// # Safety
/// Main thread only.
pub unsafe fn abort_call() -> SEXP {
    ABORT_CALL.with(|c| {
        if c.get().is_null() {
            // SAFETY (whole block): main thread; the call is protected until preserved.
            let call = Rf_protect(Rf_lang2(
                Rf_install(c"invokeRestart".as_ptr()),
                Rf_mkString(c"abort".as_ptr()),
            ));
            R_PreserveObject(call);
            Rf_unprotect(1);
            c.set(call);
        }
        c.get()
    })
}

struct Ctx<F> {
    f: F,
    result: SEXP,
    cond: SEXP,
}

// The three trampolines below may be skipped by a longjmp; they own nothing.
unsafe extern "C" fn body_tramp<F: FnMut() -> SEXP>(data: *mut c_void) -> SEXP {
    // SAFETY: `data` is the `Ctx<F>` of `protect_raw`, alive for the whole R_ToplevelExec.
    let ctx = data as *mut Ctx<F>;
    ((*ctx).f)()
}

unsafe extern "C" fn error_tramp<F>(cond: SEXP, data: *mut c_void) -> SEXP {
    // SAFETY: as in body_tramp; `cond` is the live condition R passes to its handler.
    let ctx = data as *mut Ctx<F>;
    R_PreserveObject(cond);
    (*ctx).cond = cond;
    // The abort restart always exists and jumps, silently, to the innermost top-level
    // context: the R_ToplevelExec in `protect_raw`. Without it R would print the error first.
    Rf_eval(abort_call(), R_BaseEnv);
    R_NilValue
}

unsafe extern "C" fn top_tramp<F: FnMut() -> SEXP>(data: *mut c_void) {
    // SAFETY: as in body_tramp.
    let ctx = data as *mut Ctx<F>;
    (*ctx).result =
        R_withCallingErrorHandler(Some(body_tramp::<F>), data, Some(error_tramp::<F>), data);
}

/// Runs `f` (which calls R) so that no R error or interrupt escapes it.
///
/// The returned SEXP is not protected: protect it before the next allocation. `f` must not own
/// values with destructors while it calls R (it normally just calls one R API function); values
/// it borrows live in the caller's frame, which no jump crosses.
///
/// # Safety
/// Main thread only; `f` must uphold the rule above.
pub unsafe fn protect_raw<F: FnMut() -> SEXP>(f: F) -> Result<SEXP, Caught> {
    abort_call();
    let mut ctx = Ctx {
        f,
        result: R_NilValue,
        cond: std::ptr::null_mut(),
    };
    let ok = R_ToplevelExec(Some(top_tramp::<F>), &mut ctx as *mut Ctx<F> as *mut c_void);
    if !ctx.cond.is_null() {
        // Preserved by error_tramp; take over that preservation.
        return Err(Caught::Error(Preserved(ctx.cond)));
    }
    match ok {
        Rboolean::TRUE => Ok(ctx.result),
        Rboolean::FALSE => Err(Caught::Jump),
    }
}

/// True when the user has pressed Ctrl-C (or sent SIGINT) and R may act on it now.
pub fn interrupt_pending(_r: R) -> bool {
    // SAFETY: plain reads of R globals, on the main thread (the token says so).
    unsafe { R_interrupts_pending != 0 && R_interrupts_suspended == Rboolean::FALSE }
}

/// What remains of an RError once every Rust value is gone: plain data (the message lives
/// in a stack buffer on purpose: nothing may need freeing when R jumps).
#[allow(clippy::large_enum_variant)]
pub(crate) enum Pending {
    Msg([u8; MSG_CAP]),
    Cond(SEXP),
    Interrupt,
}

/// Copies `msg` into a NUL-terminated buffer, truncated on a UTF-8 boundary, with interior
/// NULs replaced by spaces.
fn message_buffer(msg: &str) -> [u8; MSG_CAP] {
    let mut buf = [0u8; MSG_CAP];
    let mut end = msg.len().min(MSG_CAP - 1);
    while !msg.is_char_boundary(end) {
        end -= 1;
    }
    for (dst, &src) in buf.iter_mut().zip(msg.as_bytes()[..end].iter()) {
        *dst = if src == 0 { b' ' } else { src };
    }
    buf
}

pub(crate) fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    let what = if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_owned()
    };
    format!("mirai internal error (please report): {what}")
}

impl Pending {
    pub(crate) fn from_error(e: RError) -> Pending {
        match e {
            RError::Msg(m) => Pending::Msg(message_buffer(&m)),
            RError::Cond(c) => Pending::Cond(c.into_raw()),
            RError::Interrupt => Pending::Interrupt,
        }
    }

    /// Raises to R. Only plain data may be alive in this frame and its callers' up to R.
    ///
    /// # Safety
    /// Main thread, inside a `.Call`; no Rust frame between here and R owns anything.
    pub(crate) unsafe fn raise(self) -> ! {
        match self {
            Pending::Msg(buf) => {
                Rf_errorcall(R_NilValue, c"%s".as_ptr(), buf.as_ptr() as *const c_char)
            }
            Pending::Cond(cond) => {
                let call = Rf_protect(Rf_lang2(Rf_install(c"stop".as_ptr()), cond));
                R_ReleaseObject(cond); // now protected through `call`
                Rf_eval(call, R_BaseEnv);
                Rf_errorcall(
                    R_NilValue,
                    c"%s".as_ptr(),
                    c"mirai: a condition could not be re-signalled".as_ptr(),
                )
            }
            Pending::Interrupt => {
                R_interrupts_pending = 1;
                R_CheckUserInterrupt();
                // Interrupts are suspended: say so as an error rather than return nothing.
                Rf_errorcall(R_NilValue, c"%s".as_ptr(), c"interrupted".as_ptr())
            }
        }
    }
}

/// Runs `f` for callbacks that cannot raise (finalizers, event-loop callbacks): a panic is
/// dropped rather than unwound into R.
pub fn quietly<F: FnOnce()>(f: F) {
    let _ = catch_unwind(AssertUnwindSafe(f));
}

/// Runs a routine body under `catch_unwind`: its value, or what to raise (a large error on
/// purpose: the message buffer lives on the stack, so nothing needs freeing when R jumps).
#[allow(clippy::result_large_err)]
pub(crate) fn run_body<F: FnOnce() -> RResult<SEXP>>(f: F) -> Result<SEXP, Pending> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(Pending::from_error(e)),
        Err(payload) => Err(Pending::from_error(RError::Msg(panic_text(&*payload)))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_buffer_is_nul_terminated_and_truncates_on_char_boundary() {
        let buf = message_buffer("abc");
        assert_eq!(&buf[..4], b"abc\0");
        let long = "é".repeat(MSG_CAP); // 2 bytes each
        let buf = message_buffer(&long);
        let n = buf.iter().position(|&b| b == 0).unwrap();
        assert!(n < MSG_CAP);
        assert!(std::str::from_utf8(&buf[..n]).is_ok());
        assert_eq!(n % 2, 0);
    }

    #[test]
    fn message_buffer_replaces_interior_nuls() {
        let buf = message_buffer("a\0b");
        assert_eq!(&buf[..4], b"a b\0");
    }

    #[test]
    fn panic_text_reads_str_and_string_payloads() {
        let p: Box<dyn std::any::Any + Send> = Box::new("boom");
        assert!(panic_text(&*p).ends_with("boom"));
        let p: Box<dyn std::any::Any + Send> = Box::new(String::from("bang"));
        assert!(panic_text(&*p).ends_with("bang"));
    }
}
