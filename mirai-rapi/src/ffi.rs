//! Hand-written declarations of R C entry points that libR-sys does not bind, all exported by
//! `libR.so`: R's Unix event-loop interface (`R_ext/eventloop.h`), used by packages that share
//! R's event loop (tcltk, later) and documented by R as "not part of the API and subject to
//! change", of which only the long-stable subset is declared; and, at the end, the closure
//! setters and the error buffer of `Rinternals.h`.

use std::os::raw::{c_int, c_void};

/// An input handler's callback: called from R's event loop when its descriptor is readable.
pub type InputHandlerProc = Option<unsafe extern "C" fn(user_data: *mut c_void)>;

/// R's `InputHandler` (layout as in `R_ext/eventloop.h`, unchanged since R 2.x).
#[repr(C)]
pub struct InputHandler {
    pub activity: c_int,
    pub file_descriptor: c_int,
    pub handler: InputHandlerProc,
    pub next: *mut InputHandler,
    pub active: c_int,
    pub user_data: *mut c_void,
}

/// `activity` value for handlers added by packages (`XActivity` is 1, `StdinActivity` 2).
pub const MIRAI_ACTIVITY: c_int = 8;

extern "C" {
    /// The head of R's list of input handlers.
    pub static mut R_InputHandlers: *mut InputHandler;
    /// Called by R whenever it processes events (`R_CheckUserInterrupt`, `Sys.sleep`, ...).
    pub static mut R_PolledEvents: Option<unsafe extern "C" fn()>;

    pub fn addInputHandler(
        handlers: *mut InputHandler,
        fd: c_int,
        handler: InputHandlerProc,
        activity: c_int,
    ) -> *mut InputHandler;
    pub fn removeInputHandler(handlers: *mut *mut InputHandler, it: *mut InputHandler) -> c_int;
}

// Closure construction and R's error buffer: exported by libR.so and declared in Rinternals.h,
// but outside the subset libR-sys binds. `SEXP` is an opaque pointer on both sides (libR-sys
// allows the same lint for its own declarations).
#[allow(improper_ctypes)]
extern "C" {
    pub fn SET_FORMALS(x: libR_sys::SEXP, v: libR_sys::SEXP);
    pub fn SET_BODY(x: libR_sys::SEXP, v: libR_sys::SEXP);
    pub fn SET_CLOENV(x: libR_sys::SEXP, v: libR_sys::SEXP);
    /// The general-purpose bits of an object's header (`LEVELS` in R's serialization).
    pub fn LEVELS(x: libR_sys::SEXP) -> std::os::raw::c_int;
    pub fn SETLEVELS(x: libR_sys::SEXP, v: std::os::raw::c_int);
    /// A promise's environment (`NULL` once forced) and value (`R_UnboundValue` until forced).
    pub fn PRENV(x: libR_sys::SEXP) -> libR_sys::SEXP;
    pub fn PRVALUE(x: libR_sys::SEXP) -> libR_sys::SEXP;
    /// The text of R's last error message (what `geterrmessage()` returns).
    pub fn R_curErrorBuf() -> *const std::os::raw::c_char;
}
