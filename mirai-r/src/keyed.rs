//! Keyed tasks: for the common mirai made by `mirai()`, the task lives in a table keyed by
//! the mirai environment's address (R's collector never moves objects), and the handle R
//! passes around is the mirai itself. A keyed mirai thus costs R no external pointer and no
//! `.aio` binding, only the weak reference whose finalizer drops its table entry (the
//! bridge's largest share of the memory of an unresolved mirai; see bench/NOTES.md). Only the
//! mirai itself reaches its task: nothing R code can change (such as its attributes) names
//! the entry.

// Not yet ported to mirai_rapi's safe API: raw R calls, each under the rules its comments state.
#![allow(unsafe_code)]

use std::cell::RefCell;
use std::collections::HashMap;

use mirai_rapi::sys::*;

use crate::sexp::*;
use mirai_rapi::{quietly, RResult, Scope, Sexp};

use crate::handles::*;
use crate::task::submit_handle;

thread_local! {
    /// Keyed tasks by their mirai's address (main thread only). Boxed so that a `&mut TaskBox`
    /// handed out by `task_of` stays valid while the table grows. The table is borrowed only
    /// for a lookup, an insertion or a removal, and never while R code can run, so a finalizer
    /// (which R runs only from inside its API) always finds it free. An entry goes when its
    /// mirai settles or is collected, so an address is never reused while in the table.
    static KEYED: RefCell<HashMap<usize, Box<TaskBox>>> = RefCell::new(HashMap::new());
}
/// The table key of `x` if it could be a keyed handle: an environment's address.
unsafe fn key_of(x: SEXP) -> Option<usize> {
    (type_of(x) == SEXPTYPE::ENVSXP).then_some(x as usize)
}

/// The box of the keyed task of `x`, if `x` is a mirai with one.
pub(crate) unsafe fn keyed_box(x: SEXP) -> Option<*mut TaskBox> {
    let key = key_of(x)?;
    KEYED.with(|t| {
        t.borrow_mut()
            .get_mut(&key)
            .map(|b| &mut **b as *mut TaskBox)
    })
}

/// Submits `data` to `host` as the keyed task of mirai `m`, whose weak reference (from
/// [`watch_keyed`]) is `weak` (see the module docs).
///
/// # Safety
/// Main thread, valid SEXPs; `m` a new mirai without a task.
pub(crate) unsafe fn submit_keyed(
    host: SEXP,
    data: SEXP,
    timeout: SEXP,
    hooks: SEXP,
    m: SEXP,
    weak: SEXP,
) -> RResult<()> {
    let hb = host_of(host, "host")?;
    let handle = submit_handle(hb, data, timeout, hooks)?;
    let tb = TaskBox {
        handle: HandleRef::Own(handle),
        host: hb.host.clone(),
        outcome: None,
        weak,
    };
    KEYED.with(|t| t.borrow_mut().insert(m as usize, Box::new(tb)));
    Ok(())
}

/// Drops the keyed task of mirai `m` once `m` has settled. Its weak reference's finalizer does it,
/// run now: that also frees the weak reference, so that the mirai's environment, when it dies,
/// is not kept for one more collection to be finalized (which made every mirai cost ~2 us
/// more at the next collection; bench/NOTES.md).
///
/// # Safety
/// Main thread.
pub(crate) unsafe fn release_keyed(m: SEXP) {
    let weak = KEYED.with(|t| t.borrow().get(&(m as usize)).map(|b| b.weak));
    if let Some(w) = weak {
        R_RunWeakRefFinalizer(w);
    }
}

/// Drops the keyed task under `key` (its mirai settled, or was collected). The box is dropped
/// after the table is released.
fn forget_keyed(key: usize) {
    let gone = KEYED.with(|t| t.borrow_mut().remove(&key));
    drop(gone);
}

/// Finalizer of a keyed mirai (run by R when the mirai is collected, or by `release_keyed`
/// when it settles): drops its task.
unsafe extern "C" fn keyed_finalizer(m: SEXP) {
    quietly(|| forget_keyed(m as usize));
}

/// Registers the finalizer of keyed mirai `m` (before its task is submitted, so that a failed
/// registration leaves no task behind): the weak reference, for [`submit_keyed`].
///
/// # Safety
/// Main thread; `m` a mirai environment.
pub(crate) unsafe fn watch_keyed(m: SEXP) -> SEXP {
    R_MakeWeakRefC(m, R_NilValue, Some(keyed_finalizer), Rboolean::FALSE)
}

/// The handle of mirai `m`'s keyed task, if it has one: `m` itself.
///
/// # Safety
/// Main thread, valid SEXPs.
pub(crate) unsafe fn keyed_handle(m: SEXP) -> Option<SEXP> {
    keyed_box(m).map(|_| m)
}

/// Is `x` a keyed handle (a mirai with a keyed task) rather than an external pointer?
pub(crate) unsafe fn is_keyed(x: SEXP) -> bool {
    keyed_box(x).is_some()
}

/// `.Call` routine (docs/r-bridge.md): how many keyed tasks the bridge holds (mirai neither
/// settled nor collected): for tests and for diagnosing leaks.
pub(crate) fn mirai_keyed_tasks<'a>(s: &'a Scope) -> RResult<Sexp<'a>> {
    // SAFETY: not yet ported to the safe API: a routine runs on R's main thread with
    // live arguments; the body's raw calls keep the rules of `legacy`.
    unsafe {
        legacy(s, || {
            let n = KEYED.with(|t| t.borrow().len());
            Ok(Rf_ScalarReal(n as f64))
        })
    }
}
