//! An internal Aio for tests (`nanonext:::.timer_aio()`): a real Aio completed by a thread
//! after a delay, so that every query can be tested without sockets.

use std::sync::Arc;
use std::time::Duration;

use mirai_rapi::{AioOps, AioVtable, Binding, RResult, Scope, Sexp, R};

use crate::aio::{new_aio, AioKind, Decoder};
use crate::cv::Cv;
use crate::slot::{AioSlot, Msg};

/// `.Call(nano_timer_aio, ms, value, cv, error, send, interrupt)`: a real Aio completed by a thread
/// after `ms` ms (internal, for tests): with error `error` if > 0, else with the serialized
/// `value` (raw), which the receive decodes with `unserialize()`; a send (`send = TRUE`)
/// resolves to `0L`. `cv` (a cv or `NULL`) is signalled on completion; `interrupt = TRUE`
/// makes a successful completion interrupt R (spec §2.5).
pub(crate) fn nano_timer_aio<'a>(
    s: &'a Scope,
    ms: Sexp<'a>,
    value: Sexp<'a>,
    cv: Sexp<'a>,
    error: Sexp<'a>,
    send: Sexp<'a>,
    interrupt: Sexp<'a>,
) -> RResult<Sexp<'a>> {
    let ms = mirai_rapi::args::num(ms, "ms")?;
    let ms = if ms.is_finite() && ms > 0.0 {
        ms as u64
    } else {
        0
    };
    let bytes = mirai_rapi::args::raw(value, "value")?.to_vec();
    let cv = if cv.is_null() {
        None
    } else {
        Some(Arc::clone(crate::cvr::cv_arg(cv, s)?))
    };
    let error = mirai_rapi::args::num(error, "error")? as i32;
    let send = mirai_rapi::args::lgl(send, "send")?.unwrap_or(false);
    let interrupt = mirai_rapi::args::lgl(interrupt, "interrupt")?.unwrap_or(false);
    let slot = start(ms, bytes, cv, error, interrupt);
    if send {
        return new_aio(s, slot, AioKind::Send, &[c"sendAio"]);
    }
    let decode: Decoder = Box::new(|s, msg| unserialize(s, &msg.bytes));
    new_aio(s, slot, AioKind::Recv(decode), &[c"recvAio"])
}

/// A slot completed by a new thread after `ms` ms (earlier if stopped).
fn start(
    ms: u64,
    bytes: Vec<u8>,
    cv: Option<Arc<Cv>>,
    error: i32,
    interrupt: bool,
) -> Arc<AioSlot> {
    let slot = AioSlot::new(cv, interrupt);
    let worker = Arc::clone(&slot);
    std::thread::spawn(move || {
        // Sleeps on the slot, so a stopped timer ends at once.
        if !worker.wait(Some(Duration::from_millis(ms))) {
            let pipe = 1 + (ms % 1000) as i32;
            worker.complete(if error > 0 {
                Err(error)
            } else {
                Ok(Msg { bytes, pipe })
            });
        }
    });
    slot
}

/// `unserialize(bytes)`.
fn unserialize<'s>(s: &'s Scope<'_>, bytes: &[u8]) -> RResult<Sexp<'s>> {
    let r = s.r();
    let raw = s.raw(bytes);
    let call = s.lang(r.sym(c"unserialize"), &[raw]);
    Ok(s.eval(call, r.base_env())?)
}

/// A timer handle of another kind than nanonext's own Aios: it stands for another package's
/// Aio (mirai's) in tests of the queries, which reach it only through the shared ABI.
struct ForeignTimer(Arc<AioSlot>);

static FOREIGN: AioVtable = AioVtable::of::<ForeignTimer>();

impl AioOps for ForeignTimer {
    fn pending(handle: Sexp<'_>, r: R) -> bool {
        handle
            .aio_value::<ForeignTimer>(&FOREIGN, r)
            .is_some_and(|t| t.0.pending())
    }

    fn wait(handle: Sexp<'_>, r: R, ms: i32) -> bool {
        let t = u64::try_from(ms).ok().map(Duration::from_millis);
        handle
            .aio_value::<ForeignTimer>(&FOREIGN, r)
            .is_none_or(|a| a.0.wait(t))
    }

    fn stop(handle: Sexp<'_>, r: R) {
        if let Some(a) = handle.aio_value::<ForeignTimer>(&FOREIGN, r) {
            a.0.stop();
        }
    }
}

/// `.Call(nano_foreign_timer, ms, value, cv)`: a foreign-kind timer handle (see
/// [`ForeignTimer`]); the R code builds the object around it as another package would.
pub(crate) fn nano_foreign_timer<'a>(
    s: &'a Scope,
    ms: Sexp<'a>,
    value: Sexp<'a>,
    cv: Sexp<'a>,
) -> RResult<Sexp<'a>> {
    let ms = mirai_rapi::args::num(ms, "ms")?.max(0.0) as u64;
    let bytes = mirai_rapi::args::raw(value, "value")?.to_vec();
    let cv = match cv.is_null() {
        true => None,
        false => Some(Arc::clone(crate::cvr::cv_arg(cv, s)?)),
    };
    Ok(s.aio_box(&FOREIGN, ForeignTimer(start(ms, bytes, cv, 0, false))))
}

/// `.Call(nano_foreign_get, env)`: the `data` binding of a foreign-kind object: the sentinel
/// while pending, then the value, bound as `value` with `aio` rebound to the pipe id.
pub(crate) fn nano_foreign_get<'a>(s: &'a Scope, env: Sexp<'a>) -> RResult<Sexp<'a>> {
    let r = s.r();
    if let Some(Binding::Value(v)) = env.frame_binding(r.sym(c"value")) {
        return Ok(v);
    }
    let Some(Binding::Value(h)) = env.frame_binding(r.sym(c"aio")) else {
        return Ok(Sexp::null());
    };
    let Some(t) = h.aio_value::<ForeignTimer>(&FOREIGN, r) else {
        return Ok(Sexp::null());
    };
    let (v, pipe) = match t.0.outcome() {
        None => return crate::aio::unresolved_value(r),
        Some(Err(code)) => (crate::aio::error_value(s, *code), 0),
        Some(Ok(msg)) => (unserialize(s, &msg.bytes)?, msg.pipe),
    };
    env.define(r.sym(c"value"), v);
    env.define(r.sym(c"aio"), s.int(pipe));
    Ok(v)
}
