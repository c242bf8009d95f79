//! An internal Aio for tests (`nanonext:::.timer_aio()`): a real Aio completed by a thread
//! after a delay, so that every query can be tested without sockets.

use std::sync::Arc;
use std::time::Duration;

use mirai_rapi::{RResult, Scope, Sexp};

use crate::aio::{new_aio, AioKind, Decoder};
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
    if send {
        return new_aio(s, slot, AioKind::Send, &[c"sendAio"]);
    }
    let decode: Decoder = Box::new(|s, msg| {
        let r = s.r();
        let raw = s.raw(&msg.bytes);
        let call = s.lang(r.sym(c"unserialize"), &[raw]);
        Ok(s.eval(call, r.base_env())?)
    });
    new_aio(s, slot, AioKind::Recv(decode), &[c"recvAio"])
}
