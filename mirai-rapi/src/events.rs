//! R's event loop, shared: an input handler on a descriptor and a hook in `R_PolledEvents`
//! (which R calls whenever it processes events: `R_CheckUserInterrupt`, `Sys.sleep`, ...),
//! installed for the length of one call, and R's pending-interrupt flag.

use std::cell::Cell;
use std::os::raw::c_void;
use std::ptr;

use libR_sys::*;

use crate::ffi::{
    addInputHandler, removeInputHandler, InputHandler, R_InputHandlers, R_PolledEvents,
    MIRAI_ACTIVITY,
};
use crate::guard::quietly;
use crate::token::R;

/// What R's event loop calls while a watch is installed ([`with_event_watch`]). Callbacks run
/// on the main thread, one at a time; a panic in one is dropped.
pub trait EventWatch {
    /// R processes events (called very often: rate-limit expensive work).
    fn polled(&mut self, r: R);
    /// The watched descriptor is readable. Returns whether to keep the input handler.
    fn input_ready(&mut self, r: R) -> bool;
}

/// The installed watch, type-erased.
struct Active {
    data: *mut c_void,
    polled: unsafe fn(*mut c_void, R),
    input: unsafe fn(*mut c_void, R) -> bool,
    /// Our input handler, or null once removed (or never added).
    handler: *mut InputHandler,
    /// The `R_PolledEvents` we replaced, chained to and restored afterwards.
    prev_polled: Option<unsafe extern "C" fn()>,
    /// A callback is running (R may process events from inside one).
    busy: bool,
    /// The watch of an enclosing call, restored afterwards.
    outer: *mut Active,
}

thread_local! {
    /// The watch installed on this (R's main) thread, or null.
    static ACTIVE: Cell<*mut Active> = const { Cell::new(ptr::null_mut()) };
}

/// # Safety
/// `data` is the `&mut W` of the running [`with_event_watch`], not otherwise borrowed now.
unsafe fn call_polled<W: EventWatch>(data: *mut c_void, r: R) {
    // SAFETY: see the function's contract.
    (*(data as *mut W)).polled(r)
}

/// # Safety
/// As for [`call_polled`].
unsafe fn call_input<W: EventWatch>(data: *mut c_void, r: R) -> bool {
    // SAFETY: see the function's contract.
    (*(data as *mut W)).input_ready(r)
}

/// Runs `body` with `watch` installed in R's event loop: an input handler on `fd` (if any) and
/// a hook in `R_PolledEvents` (chained to the one it replaces, unless that is an enclosing
/// watch's). Both are removed when `body` returns; nested calls restore the enclosing watch.
/// `body` must not leave by an R jump (R code it runs goes through [`crate::Scope::eval`] or
/// another confining API, which every API of this crate does).
pub fn with_event_watch<W: EventWatch, T>(
    _r: R,
    fd: Option<i32>,
    watch: &mut W,
    body: impl FnOnce() -> T,
) -> T {
    let mut active = Active {
        data: watch as *mut W as *mut c_void,
        polled: call_polled::<W>,
        input: call_input::<W>,
        handler: ptr::null_mut(),
        // SAFETY: main thread (token): a read of R's global.
        prev_polled: unsafe { R_PolledEvents },
        busy: false,
        outer: ACTIVE.with(Cell::get),
    };
    if let Some(fd) = fd {
        // SAFETY: main thread; R copies nothing but the callback and the descriptor.
        active.handler =
            unsafe { addInputHandler(R_InputHandlers, fd, Some(input_ready), MIRAI_ACTIVITY) };
    }
    let ap: *mut Active = &mut active;
    ACTIVE.with(|a| a.set(ap));
    // SAFETY: main thread; the hook reads ACTIVE, set above.
    unsafe { R_PolledEvents = Some(polled_events) };
    struct Restore(*mut Active);
    impl Drop for Restore {
        fn drop(&mut self) {
            // SAFETY: main thread; undoes exactly what the install did, innermost first. The
            // Active lives in the frame below, which outlives this guard.
            unsafe {
                R_PolledEvents = (*self.0).prev_polled;
                remove_handler(self.0);
                ACTIVE.with(|a| a.set((*self.0).outer));
            }
        }
    }
    let restore = Restore(ap);
    let out = body();
    drop(restore);
    out
}

/// Removes the input handler of `a`, if it has one.
///
/// # Safety
/// Main thread; `a` is an installed (or being uninstalled) watch.
unsafe fn remove_handler(a: *mut Active) {
    // SAFETY: see the function's contract; R unlinks and frees its handler record.
    if !(*a).handler.is_null() {
        removeInputHandler(ptr::addr_of_mut!(R_InputHandlers), (*a).handler);
        (*a).handler = ptr::null_mut();
    }
}

/// `R_PolledEvents` while a watch is installed (R calls it on the main thread).
unsafe extern "C" fn polled_events() {
    // SAFETY: a non-null ACTIVE is the watch whose frame is running `body` (it is reset
    // before that frame returns), so it is alive; `prev` is the hook R had before ours.
    let a = ACTIVE.with(Cell::get);
    if a.is_null() {
        return;
    }
    if let Some(prev) = (*a).prev_polled {
        if !std::ptr::fn_addr_eq(prev, polled_events as unsafe extern "C" fn()) {
            // May jump (e.g. a GUI's R callback erroring); this frame owns nothing.
            prev();
        }
    }
    // SAFETY (the block): `a` is the installed watch (alive: its frame is running `body`);
    // `busy` keeps the watch's &mut unique if R processes events from inside a callback.
    let a = ACTIVE.with(Cell::get);
    if a.is_null() || (*a).busy {
        return;
    }
    (*a).busy = true;
    let (data, f) = ((*a).data, (*a).polled);
    quietly(|| f(data, R::assume()));
    (*a).busy = false;
}

/// Our input handler's callback (R calls it on the main thread when the descriptor is readable).
unsafe extern "C" fn input_ready(_user_data: *mut c_void) {
    // SAFETY: as in `polled_events`.
    let a = ACTIVE.with(Cell::get);
    if a.is_null() || (*a).busy {
        return;
    }
    (*a).busy = true;
    let (data, f) = ((*a).data, (*a).input);
    let mut keep = false;
    quietly(|| keep = f(data, R::assume()));
    (*a).busy = false;
    if !keep {
        remove_handler(a);
    }
}

/// Asks R to raise an interrupt at its next check (as Ctrl-C does).
pub fn request_interrupt(_r: R) {
    // SAFETY: main thread (token); a plain write of R's flag.
    unsafe { R_interrupts_pending = 1 };
}

/// Drops a pending interrupt request.
pub fn clear_interrupt(_r: R) {
    // SAFETY: main thread (token); a plain write of R's flag.
    unsafe { R_interrupts_pending = 0 };
}
