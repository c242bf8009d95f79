//! nanonext's Aio objects (spec §2.1): an environment with no enclosure, a class, the handle
//! in binding `aio`, and an active value binding (`data` for receives, `result` for sends)
//! that observes resolution on its first read after completion.
//!
//! # Using it (for the socket code)
//!
//! 1. Make a slot: `let slot = AioSlot::new(cv, interrupt)` (`crate::slot`), hand an
//!    `Arc` clone to the thread doing the work, and have it call `slot.complete(Ok(Msg { bytes,
//!    pipe }))` or `slot.complete(Err(code))` once; `slot.set_canceller(..)` lets `stop_aio()`
//!    abort the underlying operation.
//! 2. Build the R object on the main thread: `new_aio(s, slot, AioKind::Recv(decoder),
//!    &[c"recvAio"])` where `decoder` says how the message bytes become an R value (the recv
//!    mode: `Box::new(|s, msg| ...)`, called on the main thread on observation; an `Err` is
//!    raised on that read and on every later one, the message is kept), or `AioKind::Send` for
//!    a sendAio (value `0L`). Set further attributes (a request's `id`) on the result.
//! 3. Completion with an error gives the value `errorValue(code)` whatever the kind.
//! 4. An operation that cannot even start: `new_failed_aio(s, code, send, class)` (plain
//!    `value` and `data`/`result` bindings, no handle).
//!
//! `cv` is signalled once per completion, after the outcome is stored; `interrupt = true`
//! raises `SIGINT` on a successful completion (`recv_aio(cv = substitute())`, spec §2.5).
//! `.keep()` (promises) registers its callback through `AioSlot::on_complete`.
//!
//! After observation `value` holds the value and `aio` is rebound: receives to the pipe id
//! (`0L` on error), sends to `NULL` (`0L` on error). The handle (and the message) is then
//! collected with the object's last reference to it.

use std::cell::Cell;
use std::ffi::CStr;
use std::sync::Arc;
use std::time::Duration;

use mirai_rapi::{AioOps, AioVtable, Binding, Kind, Preserved, RError, RResult, Scope, Sexp, R};

use crate::slot::{AioSlot, Msg, Outcome};

/// How a message becomes an R value, on R's main thread (a receive's mode).
pub(crate) type Decoder = Box<dyn for<'s> Fn(&'s Scope<'_>, &Msg) -> RResult<Sexp<'s>>>;

/// What an Aio's value is made of.
pub(crate) enum AioKind {
    /// A receive (`data`): the decoded message; `aio` becomes the pipe id.
    Recv(Decoder),
    /// A send (`result`): `0L`; `aio` becomes `NULL`.
    Send,
}

/// What nanonext's Aio handles own.
pub(crate) struct NanoAio {
    slot: Arc<AioSlot>,
    kind: AioKind,
}

/// The table of nanonext's Aio handles.
pub(crate) static NANO_AIO: AioVtable = AioVtable::of::<NanoAio>();

impl NanoAio {
    /// nanonext's Aio behind handle `h`, if it is one.
    pub(crate) fn of<'a>(h: Sexp<'a>, r: R) -> Option<&'a NanoAio> {
        h.aio_value::<NanoAio>(&NANO_AIO, r)
    }

    /// The completion slot.
    pub(crate) fn slot(&self) -> &Arc<AioSlot> {
        &self.slot
    }
}

impl AioOps for NanoAio {
    fn pending(handle: Sexp<'_>, r: R) -> bool {
        NanoAio::of(handle, r).is_some_and(|a| a.slot.pending())
    }

    fn wait(handle: Sexp<'_>, r: R, ms: i32) -> bool {
        let t = u64::try_from(ms).ok().map(Duration::from_millis);
        NanoAio::of(handle, r).is_none_or(|a| a.slot.wait(t))
    }

    fn stop(handle: Sexp<'_>, r: R) {
        if let Some(a) = NanoAio::of(handle, r) {
            a.slot.stop();
        }
    }
}

/// Objects every Aio shares, preserved for the life of the session.
struct Statics {
    /// The `unresolvedValue` sentinel (the namespace's `.unresolvedValue`).
    unresolved: Preserved,
    /// `.Call` and the registration object of `nano_aio_get`: the value bindings' bodies.
    dot_call: Preserved,
    get_routine: Preserved,
}

thread_local! {
    static STATICS: Cell<Option<&'static Statics>> = const { Cell::new(None) };
}

fn statics() -> RResult<&'static Statics> {
    STATICS
        .with(Cell::get)
        .ok_or_else(|| RError::from("nanonext: the package is not initialised"))
}

/// The `unresolvedValue` sentinel.
pub(crate) fn unresolved_value(_r: R) -> RResult<Sexp<'static>> {
    Ok(statics()?.unresolved.sexp())
}

/// Whether `x` is the sentinel itself (identity, spec §1.2).
pub(crate) fn is_sentinel(x: Sexp<'_>, r: R) -> bool {
    unresolved_value(r).is_ok_and(|u| u.raw() == x.raw())
}

/// `.Call(nano_aio_init, unresolved, get_routine)` from `.onLoad`: keeps the sentinel and the
/// routine object the value bindings call.
pub(crate) fn nano_aio_init<'a>(
    s: &'a Scope,
    unresolved: Sexp<'a>,
    get_routine: Sexp<'a>,
) -> RResult<Sexp<'a>> {
    let r = s.r();
    if STATICS.with(Cell::get).is_some() {
        return Ok(Sexp::null());
    }
    let dot_call = r
        .base_env()
        .frame_get(r.sym(c".Call"))
        .ok_or_else(|| RError::from("nanonext: `.Call` not found"))?;
    let st: &'static Statics = Box::leak(Box::new(Statics {
        unresolved: Preserved::new(r, unresolved),
        dot_call: Preserved::new(r, dot_call),
        get_routine: Preserved::new(r, get_routine),
    }));
    STATICS.with(|c| c.set(Some(st)));
    Ok(Sexp::null())
}

/// `structure(code, class = c("errorValue", "try-error"))`.
pub(crate) fn error_value<'s>(s: &'s Scope<'_>, code: i32) -> Sexp<'s> {
    let v = s.int(code);
    v.set_class(s, &[c"errorValue", c"try-error"]);
    v
}

/// A new Aio object of class `class` over `slot` (see the module docs), protected by `s`.
pub(crate) fn new_aio<'s>(
    s: &'s Scope<'_>,
    slot: Arc<AioSlot>,
    kind: AioKind,
    class: &[&CStr],
) -> RResult<Sexp<'s>> {
    let r = s.r();
    let st = statics()?;
    let name = match kind {
        AioKind::Recv(_) => c"data",
        AioKind::Send => c"result",
    };
    let env = s.new_object_env(None, 4);
    let handle = s.aio_box(&NANO_AIO, NanoAio { slot, kind });
    env.define(r.sym(c"aio"), handle);
    let body = s.lang(st.dot_call.sexp(), &[st.get_routine.sexp(), env]);
    let f = s.closure0(body, r.base_env());
    env.make_active_binding(r.sym(name), f);
    env.set_class(s, class);
    Ok(env)
}

/// The value of `outcome` for an Aio of `kind`, and what `aio` becomes.
fn settle_value<'s>(
    s: &'s Scope<'_>,
    kind: &AioKind,
    outcome: &Outcome,
) -> RResult<(Sexp<'s>, Sexp<'s>)> {
    Ok(match (outcome, kind) {
        (Err(code), _) => (error_value(s, *code), s.int(0)),
        (Ok(msg), AioKind::Recv(decode)) => (decode(s, msg)?, s.int(msg.pipe)),
        (Ok(_), AioKind::Send) => (s.int(0), Sexp::null()),
    })
}

/// The value of Aio object `env`: `value` once observed; else, if complete, observes it now
/// (binds `value`, rebinds `aio`); else the sentinel. `NULL` for an environment without
/// either.
pub(crate) fn observe<'s>(s: &'s Scope<'_>, env: Sexp<'_>) -> RResult<Sexp<'s>> {
    let r = s.r();
    if let Some(Binding::Value(v)) = env.frame_binding(r.sym(c"value")) {
        return Ok(s.protect(v));
    }
    let Some(Binding::Value(h)) = env.frame_binding(r.sym(c"aio")) else {
        return Ok(Sexp::null());
    };
    let Some(a) = NanoAio::of(h, r) else {
        return Ok(Sexp::null());
    };
    let Some(outcome) = a.slot.outcome() else {
        return unresolved_value(r);
    };
    let (v, aio) = settle_value(s, &a.kind, outcome)?;
    env.define(r.sym(c"value"), v);
    env.define(r.sym(c"aio"), aio);
    Ok(v)
}

/// `.Call(nano_aio_get, env)`: the body of every value binding (see [`observe`]).
pub(crate) fn nano_aio_get<'a>(s: &'a Scope, env: Sexp<'a>) -> RResult<Sexp<'a>> {
    if env.kind() != Kind::ENVSXP {
        return Ok(Sexp::null());
    }
    observe(s, env)
}

/// An Aio object for an operation that could not even start (spec §2.1, "creation failure"):
/// class `class`, plain bindings `value` and `data` (`result` when `send`) both
/// `errorValue(code)`, and no `aio` binding.
#[allow(dead_code)] // Used by the socket code (crate::sock).
pub(crate) fn new_failed_aio<'s>(
    s: &'s Scope<'_>,
    code: i32,
    send: bool,
    class: &[&CStr],
) -> Sexp<'s> {
    let r = s.r();
    let env = s.new_object_env(None, 2);
    let v = error_value(s, code);
    env.define(r.sym(c"value"), v);
    env.define(r.sym(if send { c"result" } else { c"data" }), v);
    env.set_class(s, class);
    env
}
