//! Asynchronous sends and receives, requests (spec §5.5): driver operations whose callbacks
//! complete an Aio core slot (`crate::slot`) on the driver's thread; the R objects are the
//! Aio core's (`crate::aio::new_aio`).

use std::sync::Arc;
use std::time::Duration;

use mirai_rapi::{Preserved, RError, RResult, Scope, Sexp};
use mirai_sp::driver::OpHandle;
use mirai_sp::sm::Received;

use super::codec::{self, Decoded, Mode};
use super::sendrecv::{aio_timeout, body, con_arg, pipe_arg, BAD_CON, BAD_CON_AIO};
use super::{set_attr_int, Con};
use crate::aio::{new_aio, AioKind, Decoder};
use crate::slot::{AioSlot, Msg};

const BAD_CTX: &str = "`con` is not a valid Context";

/// The outcome of a driver receive, as a slot takes it.
fn outcome(r: Result<Received, mirai_sp::Error>) -> Result<Msg, i32> {
    r.map(|m| Msg {
        pipe: m.pipe.0 as i32,
        bytes: m.into_body(),
    })
    .map_err(|e| e.code())
}

/// The cv argument: `NULL` (none), a cv, or the missing argument (interrupt on success);
/// anything else is ignored.
fn cv_arg(cv: Sexp<'_>, s: &Scope) -> RResult<(Option<Arc<crate::cv::Cv>>, bool)> {
    if cv.is_missing_arg() {
        return Ok((None, true));
    }
    if cv.is_null() {
        return Ok((None, false));
    }
    Ok((crate::cvr::cv_arg(cv, s).ok().map(Arc::clone), false))
}

/// The decoder of receive mode `mode`: at once for most modes, else through the package's R
/// function `finish(value, mode, cfg)` (unserializing with the hooks `cfg`, or warning).
fn decoder(mode: i32, finish: Preserved, cfg: Option<Preserved>) -> Decoder {
    Box::new(move |s, msg| {
        let d = codec::decode(s, &msg.bytes, Mode::of(mode));
        if let Decoded::Value(v) = d {
            return Ok(v);
        }
        let v = d.into_sexp(s);
        let cfg = cfg.as_ref().map_or(Sexp::null(), |c| c.sexp());
        let call = s.lang(finish.sexp(), &[v, s.int(mode), cfg]);
        Ok(s.eval(call, s.r().base_env())?)
    })
}

fn op_handle(c: Con<'_>) -> OpHandle {
    match c {
        Con::Sock(so) => so.sock.op_handle(),
        Con::Ctx(cx, _) => cx.ctx.op_handle(),
    }
}

/// Posts a receive on `c` completing `slot` (and cancellable through it). `cancel_msg`: sent
/// (without waiting) if the receive times out.
fn post_recv(
    c: Con<'_>,
    slot: &Arc<AioSlot>,
    timeout: Option<Duration>,
    cancel_msg: Option<Vec<u8>>,
) {
    let worker = Arc::clone(slot);
    let h = op_handle(c);
    let h2 = h.clone();
    let done = Box::new(move |r: Result<Received, mirai_sp::Error>| {
        if let (Some(m), Err(mirai_sp::Error::TimedOut)) = (&cancel_msg, &r) {
            let _sent = h2.send(m, Some(Duration::ZERO));
        }
        worker.complete(outcome(r));
    });
    let op = match c {
        Con::Ctx(cx, _) if cx.closed.get() => {
            slot.complete(Err(7));
            return;
        }
        Con::Sock(so) => so.sock.recv_async(timeout, done),
        Con::Ctx(cx, _) => cx.ctx.recv_async(timeout, done),
    };
    slot.set_canceller(Box::new(move || {
        h.cancel(op);
    }));
}

/// `.Call(nano_recv_aio, con, mode, timeout, cv, finish, cfg)`: a recvAio.
pub(crate) fn nano_recv_aio<'a>(
    s: &'a Scope,
    con: Sexp<'a>,
    mode: Sexp<'a>,
    timeout: Sexp<'a>,
    cv: Sexp<'a>,
    finish: Sexp<'a>,
    cfg: Sexp<'a>,
) -> RResult<Sexp<'a>> {
    let c = con_arg(con, s, BAD_CON)?;
    let mode = mode.ints().and_then(|v| v.first().copied()).unwrap_or(1);
    let (cv, interrupt) = cv_arg(cv, s)?;
    let timeout = aio_timeout(timeout, c.opts().borrow().recv_timeout);
    let slot = AioSlot::new(cv, interrupt);
    post_recv(c, &slot, timeout, None);
    let r = s.r();
    let cfg = (!cfg.is_null()).then(|| Preserved::new(r, cfg));
    let dec = decoder(mode, Preserved::new(r, finish), cfg);
    new_aio(s, slot, AioKind::Recv(dec), &[c"recvAio"])
}

/// `.Call(nano_send_aio, con, data, mode, timeout, pipe)`: a sendAio.
pub(crate) fn nano_send_aio<'a>(
    s: &'a Scope,
    con: Sexp<'a>,
    data: Sexp<'a>,
    mode: Sexp<'a>,
    timeout: Sexp<'a>,
    pipe: Sexp<'a>,
) -> RResult<Sexp<'a>> {
    let c = con_arg(con, s, BAD_CON_AIO)?;
    let msg = body(data, mode, None)?;
    let timeout = aio_timeout(timeout, c.opts().borrow().send_timeout);
    let slot = AioSlot::new(None, false);
    let worker = Arc::clone(&slot);
    let done = Box::new(move |r: Result<(), mirai_sp::Error>| {
        worker.complete(r.map(|()| Msg::default()).map_err(|e| e.code()));
    });
    let op = match c {
        Con::Ctx(cx, _) if cx.closed.get() => {
            slot.complete(Err(7));
            None
        }
        Con::Sock(so) => Some(so.sock.send_async(msg, pipe_arg(pipe), timeout, done)),
        Con::Ctx(cx, _) => Some(cx.ctx.send_async(msg, timeout, done)),
    };
    if let Some(op) = op {
        let h = op_handle(c);
        slot.set_canceller(Box::new(move || {
            h.cancel(op);
        }));
    }
    new_aio(s, slot, AioKind::Send, &[c"sendAio"])
}

/// The cancellation message of a request on context `id`: a 4-byte zero, then the id.
fn cancel_msg(id: i32) -> Vec<u8> {
    let mut m = vec![0u8; 4];
    m.extend_from_slice(&id.to_ne_bytes());
    m
}

/// `.Call(nano_request, context, data, send_mode, recv_mode, timeout, cv, finish, cfg, id)`:
/// sends `data` (serial bodies get the header with the context id) and posts the receive; a
/// request aio (class `c("mirai", "recvAio")`, attribute `id`). With a non-`NULL` `id`, a
/// timeout sends the cancellation message.
#[allow(clippy::too_many_arguments)]
pub(crate) fn nano_request<'a>(
    s: &'a Scope,
    context: Sexp<'a>,
    data: Sexp<'a>,
    send_mode: Sexp<'a>,
    recv_mode: Sexp<'a>,
    timeout: Sexp<'a>,
    cv: Sexp<'a>,
    finish: Sexp<'a>,
    cfg: Sexp<'a>,
    id: Sexp<'a>,
) -> RResult<Sexp<'a>> {
    let c = match Con::of(context, s) {
        Some(c @ Con::Ctx(..)) => c,
        _ => return Err(RError::from(BAD_CTX)),
    };
    let ctx_id = c.ctx_id();
    let msg = body(data, send_mode, Some(ctx_id))?;
    let mode = recv_mode
        .ints()
        .and_then(|v| v.first().copied())
        .unwrap_or(1);
    let (cv, interrupt) = cv_arg(cv, s)?;
    let timeout = aio_timeout(timeout, c.opts().borrow().recv_timeout);
    let slot = AioSlot::new(cv, interrupt);
    let sent = match c {
        Con::Ctx(cx, _) if cx.closed.get() => Err(7),
        // Requests and surveys are queued by the protocol: this never waits.
        Con::Ctx(cx, _) => cx
            .ctx
            .send(&msg, Some(Duration::ZERO))
            .map_err(|e| e.code()),
        Con::Sock(_) => Err(3),
    };
    match sent {
        Ok(()) => post_recv(
            c,
            &slot,
            timeout,
            (!id.is_null()).then(|| cancel_msg(ctx_id)),
        ),
        Err(code) => {
            slot.complete(Err(code));
        }
    }
    let r = s.r();
    let cfg = (!cfg.is_null()).then(|| Preserved::new(r, cfg));
    let dec = decoder(mode, Preserved::new(r, finish), cfg);
    let x = new_aio(s, slot, AioKind::Recv(dec), &[c"mirai", c"recvAio"])?;
    set_attr_int(s, x, c"id", ctx_id);
    if !id.is_null() {
        x.define(r.sym(c".context"), context);
    }
    Ok(x)
}

/// `.Call(nano_cancel_request, context)`: sends the cancellation message over `context`
/// (1000 ms to send and to receive the reply); whether a non-zero 4-byte reply came back.
pub(crate) fn nano_cancel_request<'a>(s: &'a Scope, context: Sexp<'a>) -> RResult<Sexp<'a>> {
    let Some(Con::Ctx(cx, _)) = Con::of(context, s) else {
        return Ok(s.r().lgl(false));
    };
    let t = Some(Duration::from_millis(1000));
    let ok = !cx.closed.get()
        && cx.ctx.send(&cancel_msg(cx.id), t).is_ok()
        && cx.ctx.recv(t).is_ok_and(|b| match b.get(..4) {
            Some(w) => i32::from_ne_bytes([w[0], w[1], w[2], w[3]]) != 0,
            None => false,
        });
    Ok(s.r().lgl(ok))
}
