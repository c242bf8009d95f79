//! Queries on Aio objects of any package (spec §2.2, §2.3): `unresolved()`, `.unresolved()`,
//! `call_aio()`, `collect_aio()`, `stop_aio()`, `race_aio()`. An Aio object is an environment
//! whose `aio` binding holds a handle of the shared ABI (`mirai_rapi::abi`) while pending; its
//! value binding (`data`, `result` for sends, `status` for HTTP) is read to observe resolution.

use std::time::Duration;

use mirai_rapi::{Binding, ForeignAio, Kind, RError, RResult, Scope, Sexp, R};

use crate::aio::{is_sentinel, observe, NanoAio};
use crate::cv::Cv;

const NOT_AIO: &str = "object is not an Aio or list of Aios";

/// The longest wait between interrupt checks (spec: at least every 400 ms).
const SLICE_MS: i32 = 400;

/// The live handle in `x`'s `aio` binding, if `x` is an environment holding one.
fn handle_of<'a>(x: Sexp<'a>, r: R) -> Option<ForeignAio<'a>> {
    if x.kind() != Kind::ENVSXP {
        return None;
    }
    match x.frame_binding(r.sym(c"aio")) {
        Some(Binding::Value(h)) => h.aio(r),
        _ => None,
    }
}

/// Reads `x`'s value binding (observing resolution): nanonext's own Aios directly, others
/// by evaluating the binding (an active binding runs its package's code). `None` when `x`
/// has no value binding.
fn read_value<'s>(s: &'s Scope<'_>, x: Sexp<'_>) -> RResult<Option<Sexp<'s>>> {
    let r = s.r();
    if let Some(h) = handle_of(x, r) {
        if NanoAio::of(h.handle(), r).is_some() {
            return observe(s, x).map(Some);
        }
    }
    let name = if x.inherits(c"sendAio") {
        c"result"
    } else if x.inherits(c"ncurlAio") {
        c"status"
    } else {
        c"data"
    };
    let sym = r.sym(name);
    match x.frame_binding(sym) {
        None => Ok(None),
        Some(Binding::Value(v)) if v.kind() != Kind::PROMSXP => Ok(Some(s.protect(v))),
        Some(_) => Ok(Some(s.eval(sym, x)?)),
    }
}

/// Waits for `h` to complete: without limit, or in slices with interrupt checks.
fn wait_for(h: ForeignAio<'_>, r: R, interruptible: bool) -> RResult<()> {
    if !interruptible {
        h.wait(r, -1);
        return Ok(());
    }
    while !h.wait(r, SLICE_MS) {
        if mirai_rapi::interrupt_pending(r) {
            return Err(RError::Interrupt);
        }
    }
    Ok(())
}

/// Whether environment `x` is an Aio whose value is still the sentinel.
fn env_unresolved(s: &Scope<'_>, x: Sexp<'_>) -> RResult<bool> {
    let r = s.r();
    if handle_of(x, r).is_none() {
        return Ok(false);
    }
    let q = s.child();
    Ok(read_value(&q, x)?.is_some_and(|v| is_sentinel(v, r)))
}

/// `.Call(nano_unresolved, x)`: `unresolved(x)` (may observe resolution).
pub(crate) fn nano_unresolved<'a>(s: &'a Scope, x: Sexp<'a>) -> RResult<Sexp<'a>> {
    let r = s.r();
    let out = match x.kind() {
        Kind::ENVSXP => env_unresolved(s, x)?,
        Kind::LGLSXP => is_sentinel(x, r),
        Kind::VECSXP => {
            let mut any = false;
            for i in 0..x.len() {
                let e = x.list_elt(i).unwrap_or(Sexp::null());
                let u = match e.kind() {
                    Kind::ENVSXP => env_unresolved(s, e)?,
                    _ => is_sentinel(e, r),
                };
                if u {
                    any = true;
                    break;
                }
            }
            any
        }
        _ => false,
    };
    Ok(r.lgl(out))
}

/// `.Call(nano_unresolved2, x)`: `.unresolved(x)`: in flight (never observes); a list gives
/// the number in flight.
pub(crate) fn nano_unresolved2<'a>(s: &'a Scope, x: Sexp<'a>) -> RResult<Sexp<'a>> {
    let r = s.r();
    let pending = |e: Sexp<'_>| handle_of(e, r).is_some_and(|h| h.pending(r));
    Ok(match x.kind() {
        Kind::VECSXP => {
            let n = (0..x.len())
                .filter(|&i| x.list_elt(i).is_some_and(pending))
                .count();
            s.int(i32::try_from(n).unwrap_or(i32::MAX))
        }
        Kind::ENVSXP => r.lgl(pending(x)),
        _ => r.lgl(false),
    })
}

/// Waits for (then observes) `x`: an Aio, or every Aio in a (nested) list.
fn call_one(s: &Scope<'_>, x: Sexp<'_>, interruptible: bool) -> RResult<()> {
    let r = s.r();
    match x.kind() {
        Kind::ENVSXP => {
            if let Some(h) = handle_of(x, r) {
                wait_for(h, r, interruptible)?;
                let q = s.child();
                read_value(&q, x)?;
            }
        }
        Kind::VECSXP => {
            for i in 0..x.len() {
                call_one(s, x.list_elt(i).unwrap_or(Sexp::null()), interruptible)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// `.Call(nano_call_aio, x, interruptible)`: `call_aio(x)` / `call_aio_(x)`; returns `x`.
pub(crate) fn nano_call_aio<'a>(
    s: &'a Scope,
    x: Sexp<'a>,
    interruptible: Sexp<'a>,
) -> RResult<Sexp<'a>> {
    call_one(s, x, is_true(interruptible))?;
    Ok(x)
}

/// The value of Aio object `x` once complete, or the collection error.
fn collect_one<'s>(s: &'s Scope<'_>, x: Sexp<'_>, interruptible: bool) -> RResult<Sexp<'s>> {
    let r = s.r();
    if x.kind() != Kind::ENVSXP {
        return Err(NOT_AIO.into());
    }
    if let Some(h) = handle_of(x, r) {
        wait_for(h, r, interruptible)?;
    }
    read_value(s, x)?;
    match x.frame_binding(r.sym(c"value")) {
        Some(Binding::Value(v)) => Ok(s.protect(v)),
        _ => Err(NOT_AIO.into()),
    }
}

/// `.Call(nano_collect_aio, x, interruptible)`: `collect_aio(x)` / `collect_aio_(x)`.
pub(crate) fn nano_collect_aio<'a>(
    s: &'a Scope,
    x: Sexp<'a>,
    interruptible: Sexp<'a>,
) -> RResult<Sexp<'a>> {
    let r = s.r();
    let intr = is_true(interruptible);
    if x.kind() != Kind::VECSXP {
        return collect_one(s, x, intr);
    }
    let n = x.len();
    // Every element is checked and waited for first: an error or interrupt then leaves the
    // list's Aios unobserved.
    for i in 0..n {
        let e = x.list_elt(i).unwrap_or(Sexp::null());
        if e.kind() != Kind::ENVSXP {
            return Err(NOT_AIO.into());
        }
        if let Some(h) = handle_of(e, r) {
            wait_for(h, r, intr)?;
        }
    }
    let out = s.list(n);
    for i in 0..n {
        let q = s.child();
        let v = collect_one(&q, x.list_elt(i).unwrap_or(Sexp::null()), intr)?;
        out.set_list_elt(i, v);
    }
    if let Some(names) = x.names() {
        out.set_attr(r.sym(c"names"), names);
    }
    Ok(out)
}

/// Stops `x` (an Aio, or each in a nested list) and waits for it to finish.
fn stop_one(r: R, x: Sexp<'_>) {
    match x.kind() {
        Kind::ENVSXP => {
            if let Some(h) = handle_of(x, r) {
                h.stop(r);
                h.wait(r, -1);
            }
        }
        Kind::VECSXP => {
            for i in 0..x.len() {
                stop_one(r, x.list_elt(i).unwrap_or(Sexp::null()));
            }
        }
        _ => {}
    }
}

/// `.Call(nano_stop_aio, x)`: `stop_aio(x)`: `NULL`; a pending R interrupt is dropped.
pub(crate) fn nano_stop_aio<'a>(s: &'a Scope, x: Sexp<'a>) -> RResult<Sexp<'a>> {
    let r = s.r();
    stop_one(r, x);
    mirai_rapi::clear_interrupt(r);
    Ok(Sexp::null())
}

/// The 1-based index of the first resolved Aio of list `x`; `Err(true)` if there is an
/// environment but none resolved, `Err(false)` if there is no environment at all.
fn first_resolved(x: Sexp<'_>, r: R) -> Result<usize, bool> {
    let mut envs = false;
    for i in 0..x.len() {
        let e = x.list_elt(i).unwrap_or(Sexp::null());
        if e.kind() != Kind::ENVSXP {
            continue;
        }
        envs = true;
        if handle_of(e, r).is_none_or(|h| !h.pending(r)) {
            return Ok(i + 1);
        }
    }
    Err(envs)
}

/// `.Call(nano_race_aio, x, cv)`: `race_aio(x, cv)` (spec §2.2): the index of the first
/// resolved Aio, waiting on `cv` (never consuming it) while none is; `0L` when impossible or
/// when `cv`'s flag is tripped.
pub(crate) fn nano_race_aio<'a>(s: &'a Scope, x: Sexp<'a>, cv: Sexp<'a>) -> RResult<Sexp<'a>> {
    let r = s.r();
    if x.kind() != Kind::VECSXP {
        return Ok(s.int(0));
    }
    let Some(cv) = cv.cv_ref::<Cv>(r) else {
        return Ok(s.int(match first_resolved(x, r) {
            Ok(i) => i32::try_from(i).unwrap_or(0),
            Err(_) => 0,
        }));
    };
    loop {
        // The count first: a completion after the scan then ends the wait at once.
        let seen = cv.signals();
        match first_resolved(x, r) {
            Ok(i) => return Ok(s.int(i32::try_from(i).unwrap_or(0))),
            Err(false) => return Ok(s.int(0)),
            Err(true) => {}
        }
        if cv.tripped() {
            return Ok(s.int(0));
        }
        cv.wait_change(seen, Duration::from_millis(SLICE_MS as u64));
        if mirai_rapi::interrupt_pending(r) {
            return Err(RError::Interrupt);
        }
    }
}

/// `TRUE` (a logical or number, non-zero, not `NA`).
fn is_true(x: Sexp<'_>) -> bool {
    mirai_rapi::args::lgl(x, "x")
        .ok()
        .flatten()
        .unwrap_or(false)
}
