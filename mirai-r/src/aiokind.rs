//! Every mirai is an Aio of the handle ABI shared with `nanonext` (`mirai_rapi::abi`; spec
//! nanonext-api §2.6, §9.1), so that `nanonext`'s `.unresolved()`, `unresolved()`,
//! `call_aio()`, `collect_aio()`, `stop_aio()` and `race_aio()` (and crew, through them) work on
//! mirai.
//!
//! A mirai's `aio` binding holds, while its task waits, a handle of this kind: an external
//! pointer to the `static` [`HEADER`] whose protected field is the mirai itself, so that one
//! handle serves every kind of mirai (keyed, chunk element, `everywhere()`, ephemeral) and
//! costs no finalizer; the task stays where it was (the keyed table, or `.aio`). Settling
//! rebinds `aio` to an integer: 1 when a daemon answered (a value or a `miraiError`), 0 for an
//! error value (5, 7, 19, 20), like a receive Aio's pipe id.
//!
//! The handle's functions run on R's main thread and may not raise R errors, so none of them
//! allocates.

use std::time::Duration;

use mirai_rapi::{AioHeader, AioOps, AioVtable, Kind, RResult, Scope, Sexp, R};

use crate::aio::statics_of;
use crate::handles::{is_task_ref, task_ref, task_resolved_of};
use crate::keyed::keyed_handle;
use crate::task::cancel_task;

/// mirai's kind of Aio handle.
pub(crate) struct MiraiAio;

static VTABLE: AioVtable = AioVtable::of::<MiraiAio>();

/// The header of every mirai's `aio` handle.
pub(crate) static HEADER: AioHeader = AioHeader::new(&VTABLE);

/// A new `aio` handle for mirai `m`, protected by `s`.
pub(crate) fn new_handle<'s>(s: &'s Scope, m: Sexp<'_>) -> Sexp<'s> {
    s.aio_handle(&HEADER, m)
}

/// Is `x` a mirai (an environment inheriting "mirai")?
pub(crate) fn is_mirai(x: Sexp<'_>) -> bool {
    x.kind() == Kind::ENVSXP && x.is_object() && x.inherits(c"mirai")
}

/// The mirai of handle `h` (its protected field).
fn mirai_of(h: Sexp<'_>) -> Option<Sexp<'_>> {
    let m = h.extptr_protected();
    is_mirai(m).then_some(m)
}

/// The task handle of mirai `m`: its `.aio` binding if an external pointer, else `m` itself
/// while its keyed task is in the table; `None` once settled.
pub(crate) fn task_of<'a>(r: R, m: Sexp<'a>) -> RResult<Option<Sexp<'a>>> {
    let s = statics_of(r)?;
    if let Some(aio) = m.frame_get(s.s_aio) {
        // Only an external pointer: a keyed handle (another mirai) is reached through itself.
        return Ok((aio.kind() == Kind::EXTPTRSXP).then_some(aio));
    }
    Ok(keyed_handle(m))
}

/// Whether mirai `m` has a task that has not resolved (never waits, never consumes).
pub(crate) fn waiting(r: R, m: Sexp<'_>) -> RResult<bool> {
    Ok(task_of(r, m)?.is_some_and(|t| is_task_ref(r, t) && !task_resolved_of(r, t)))
}

/// `stop_mirai()` on mirai `m`: a waiting task is cancelled on its own host (it resolves to 20
/// at once; a chunk element is a task of its own). True if the profile's dispatcher still held
/// the task. Allocates nothing.
pub(crate) fn stop_mirai(r: R, m: Sexp<'_>) -> RResult<bool> {
    let Some(task) = task_of(r, m)? else {
        return Ok(false);
    };
    if !is_task_ref(r, task) {
        return Ok(false);
    }
    cancel_task(r, task)
}

/// `.Call` routine (docs/r-bridge.md): the task handle of mirai `x` (its `.aio`, or `x` itself
/// while its keyed task waits), `NULL` once settled, or for anything but a mirai.
pub(crate) fn mirai_aio<'a>(s: &'a Scope, x: Sexp<'a>) -> RResult<Sexp<'a>> {
    if !is_mirai(x) {
        return Ok(Sexp::null());
    }
    Ok(task_of(s.r(), x)?.unwrap_or(Sexp::null()))
}

/// `.Call` routine (docs/r-bridge.md): TRUE while mirai `x` has a task that has not resolved
/// (never waits, never consumes; what the handle's `pending` answers); FALSE for anything else.
pub(crate) fn mirai_pending<'a>(s: &'a Scope, x: Sexp<'a>) -> RResult<Sexp<'a>> {
    let r = s.r();
    Ok(r.lgl(is_mirai(x) && waiting(r, x)?))
}

impl AioOps for MiraiAio {
    fn pending(h: Sexp<'_>, r: R) -> bool {
        mirai_of(h).is_some_and(|m| waiting(r, m).unwrap_or(false))
    }

    fn wait(h: Sexp<'_>, r: R, ms: i32) -> bool {
        let Some(m) = mirai_of(h) else {
            return true;
        };
        let Ok(Some(task)) = task_of(r, m) else {
            return true;
        };
        let Ok(tb) = task_ref(r, task, "task") else {
            return true;
        };
        if !tb.is_resolved() {
            let timeout = u64::try_from(ms).ok().map(Duration::from_millis);
            if let Some(o) = tb.handle.wait(timeout) {
                tb.set_outcome(o);
            }
        }
        tb.is_resolved()
    }

    fn stop(h: Sexp<'_>, r: R) {
        if let Some(m) = mirai_of(h) {
            let _ = stop_mirai(r, m);
        }
    }
}
