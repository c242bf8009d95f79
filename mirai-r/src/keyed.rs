//! Keyed tasks: for the common mirai made by `mirai()`, the task lives in a table keyed by
//! the mirai environment's address (R's collector never moves objects), and the handle R
//! passes around is the mirai itself. A keyed mirai thus costs R no external pointer and no
//! `.aio` binding, only the weak reference whose finalizer drops its table entry (the
//! bridge's largest share of the memory of an unresolved mirai; see bench/NOTES.md). Only the
//! mirai itself reaches its task: nothing R code can change (such as its attributes) names
//! the entry.

use std::rc::Rc;

use mirai_rapi::{Kind, RResult, Scope, Sexp, Watch, WeakMap, WeakTable, R};

use crate::handles::{host_ref, HandleRef, TaskBox};
use crate::task::submit_handle;

thread_local! {
    /// Keyed tasks by their mirai (main thread only). An entry goes when its mirai settles or
    /// is collected, so an address is never reused while in the table.
    static KEYED: WeakMap<TaskBox> = WeakMap::new();
}

/// The table of keyed tasks.
pub(crate) struct Keyed;

impl WeakTable for Keyed {
    type Value = TaskBox;

    fn with<X>(f: impl FnOnce(&WeakMap<TaskBox>) -> X) -> X {
        KEYED.with(f)
    }
}

/// The box of the keyed task of `x`, if `x` is a mirai with one.
pub(crate) fn keyed_box(x: Sexp<'_>) -> Option<Rc<TaskBox>> {
    if x.kind() != Kind::ENVSXP {
        return None;
    }
    Keyed::get(x)
}

/// Registers the finalizer of keyed mirai `m` (before its task is submitted, so that a failed
/// registration leaves no task behind), for [`submit_keyed`].
pub(crate) fn watch_keyed(m: Sexp<'_>) -> Watch<'_, Keyed> {
    Keyed::watch(m)
}

/// Submits `data` to `host` as the keyed task of the mirai `watch` was made for (see the
/// module docs).
pub(crate) fn submit_keyed(
    r: R,
    host: Sexp<'_>,
    data: Sexp<'_>,
    timeout: Sexp<'_>,
    hooks: Sexp<'_>,
    watch: Watch<'_, Keyed>,
) -> RResult<()> {
    let hb = host_ref(r, host, "host")?;
    let handle = submit_handle(hb, data, timeout, hooks)?;
    Keyed::insert(watch, TaskBox::new(HandleRef::Own(handle), hb.host.clone()));
    Ok(())
}

/// Drops the keyed task of mirai `m` once `m` has settled. Its weak reference's finalizer is run
/// now: that also frees the weak reference, so that the mirai's environment, when it dies, is
/// not kept for one more collection to be finalized (which made every mirai cost ~2 us more at
/// the next collection; bench/NOTES.md).
pub(crate) fn release_keyed(r: R, m: Sexp<'_>) {
    Keyed::release(r, m);
}

/// Is `x` a keyed handle (a mirai with a keyed task) rather than an external pointer?
pub(crate) fn is_keyed(x: Sexp<'_>) -> bool {
    x.kind() == Kind::ENVSXP && Keyed::contains(x)
}

/// The handle of mirai `m`'s keyed task, if it has one: `m` itself.
pub(crate) fn keyed_handle(m: Sexp<'_>) -> Option<Sexp<'_>> {
    is_keyed(m).then_some(m)
}

/// `.Call` routine (docs/r-bridge.md): how many keyed tasks the bridge holds (mirai neither
/// settled nor collected): for tests and for diagnosing leaks.
pub(crate) fn mirai_keyed_tasks<'a>(s: &'a Scope) -> RResult<Sexp<'a>> {
    Ok(s.real(Keyed::len() as f64))
}
