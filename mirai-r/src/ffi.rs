//! Hand-written declarations of R's Unix event-loop interface (`R_ext/eventloop.h`), which
//! libR-sys does not bind. They are exported by `libR.so` and used by packages that share R's
//! event loop (tcltk, later); R documents them as "not part of the API and subject to change",
//! so only the long-stable subset is declared here.

use std::os::raw::{c_int, c_void};

/// An input handler's callback: called from R's event loop when its descriptor is readable.
pub(crate) type InputHandlerProc = Option<unsafe extern "C" fn(user_data: *mut c_void)>;

/// R's `InputHandler` (layout as in `R_ext/eventloop.h`, unchanged since R 2.x).
#[repr(C)]
pub(crate) struct InputHandler {
    pub activity: c_int,
    pub file_descriptor: c_int,
    pub handler: InputHandlerProc,
    pub next: *mut InputHandler,
    pub active: c_int,
    pub user_data: *mut c_void,
}

/// `activity` value for handlers added by packages (`XActivity` is 1, `StdinActivity` 2).
pub(crate) const MIRAI_ACTIVITY: c_int = 8;

extern "C" {
    /// The head of R's list of input handlers.
    pub(crate) static mut R_InputHandlers: *mut InputHandler;
    /// Called by R whenever it processes events (`R_CheckUserInterrupt`, `Sys.sleep`, ...).
    pub(crate) static mut R_PolledEvents: Option<unsafe extern "C" fn()>;

    pub(crate) fn addInputHandler(
        handlers: *mut InputHandler,
        fd: c_int,
        handler: InputHandlerProc,
        activity: c_int,
    ) -> *mut InputHandler;
    pub(crate) fn removeInputHandler(handlers: *mut *mut InputHandler, it: *mut InputHandler) -> c_int;
}
