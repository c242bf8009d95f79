//! Synchronous `send()` and `recv()` (spec §5.4) on sockets and contexts.

use std::time::Duration;

use mirai_rapi::{Kind, RError, RResult, Scope, Sexp};
use mirai_sp::sm::PipeId;

use super::codec::{self, Mode};
use super::{err_value, Con};

pub(crate) const BAD_CON: &str = "`con` is not a valid Socket, Context or Stream";
pub(crate) const BAD_CON_AIO: &str = "`con` is not a valid Socket, Context, or Stream";

/// `con` as a socket or context, or the error `msg`.
pub(crate) fn con_arg<'a>(x: Sexp<'a>, s: &Scope, msg: &str) -> RResult<Con<'a>> {
    Con::of(x, s).ok_or_else(|| RError::from(msg))
}

/// The wait of `block` (spec §5.4): `Some(0)` non-blocking; `None` no limit. `TRUE` uses the
/// option value `default` (ms, negative: no limit).
pub(crate) fn block_timeout(block: Sexp<'_>, default: i32) -> Option<Duration> {
    let ms = |n: i64| {
        if n > 0 {
            Some(Duration::from_millis(n as u64))
        } else {
            Some(Duration::ZERO)
        }
    };
    match block.kind() {
        Kind::LGLSXP => match block.lgls().and_then(|v| v.first()) {
            Some(&1) => (default >= 0).then(|| Duration::from_millis(default as u64)),
            _ => Some(Duration::ZERO),
        },
        Kind::INTSXP => match block.ints().and_then(|v| v.first()) {
            Some(&n) if n != i32::MIN => ms(n as i64),
            _ => Some(Duration::ZERO),
        },
        Kind::REALSXP => match block.reals().and_then(|v| v.first()) {
            Some(&n) if n.is_finite() => ms(n.trunc() as i64),
            Some(&n) if n == f64::INFINITY => None,
            _ => Some(Duration::ZERO),
        },
        _ => Some(Duration::ZERO),
    }
}

/// An aio-style `timeout` (`NULL`: the option value `default`; else ms, `0` expires at once).
pub(crate) fn aio_timeout(timeout: Sexp<'_>, default: i32) -> Option<Duration> {
    let v = timeout
        .ints()
        .and_then(|v| v.first().copied())
        .filter(|&n| n != i32::MIN)
        .map(i64::from)
        .or_else(|| {
            timeout
                .reals()
                .and_then(|v| v.first())
                .filter(|n| n.is_finite())
                .map(|n| n.trunc() as i64)
        });
    match v {
        Some(n) if n >= 0 => Some(Duration::from_millis(n as u64)),
        Some(_) => None,
        None => (default >= 0).then(|| Duration::from_millis(default as u64)),
    }
}

/// The body to send: `data` is a raw vector already serialized by R (`mode` 1, header added
/// here), or any atomic vector encoded as raw (`mode` 2).
pub(crate) fn body(data: Sexp<'_>, mode: Sexp<'_>, ctx: Option<i32>) -> RResult<Vec<u8>> {
    if matches!(mode.ints(), Some([2])) {
        codec::encode_raw(data)
    } else {
        Ok(codec::serial_body(data.bytes().unwrap_or(&[]), ctx))
    }
}

/// `pipe` as a pipe id (0 or anything else: none).
pub(crate) fn pipe_arg(pipe: Sexp<'_>) -> Option<PipeId> {
    let p = pipe
        .ints()
        .and_then(|v| v.first().copied())
        .or_else(|| pipe.reals().and_then(|v| v.first()).map(|&d| d as i32))?;
    (p > 0).then_some(PipeId(p as u32))
}

/// `.Call(nano_send, con, data, mode, block, pipe)`: `0L` or an errorValue.
pub(crate) fn nano_send<'a>(
    s: &'a Scope,
    con: Sexp<'a>,
    data: Sexp<'a>,
    mode: Sexp<'a>,
    block: Sexp<'a>,
    pipe: Sexp<'a>,
) -> RResult<Sexp<'a>> {
    let c = con_arg(con, s, BAD_CON)?;
    let msg = body(data, mode, None)?;
    let timeout = block_timeout(block, c.opts().borrow().send_timeout);
    let r = match c {
        Con::Sock(so) => match pipe_arg(pipe) {
            Some(p) => so.sock.send_to(p, &msg, timeout),
            None => so.sock.send_vec(msg, timeout),
        },
        Con::Ctx(cx, _) if cx.closed.get() => Err(mirai_sp::Error::Closed),
        Con::Ctx(cx, _) => cx.ctx.send_vec(msg, timeout),
    };
    Ok(match r {
        Ok(()) => s.int(0),
        Err(e) => err_value(s, e.code()),
    })
}

/// `.Call(nano_recv, con, mode, block)`: the decoded message (see `codec::Decoded`) or an
/// errorValue.
pub(crate) fn nano_recv<'a>(
    s: &'a Scope,
    con: Sexp<'a>,
    mode: Sexp<'a>,
    block: Sexp<'a>,
) -> RResult<Sexp<'a>> {
    let c = con_arg(con, s, BAD_CON)?;
    let mode = Mode::of(mode.ints().and_then(|v| v.first().copied()).unwrap_or(1));
    let timeout = block_timeout(block, c.opts().borrow().recv_timeout);
    // Decoded from where the body starts: the protocol header is never stripped off.
    let r = match c {
        Con::Sock(so) => so.sock.recv_msg(timeout),
        Con::Ctx(cx, _) if cx.closed.get() => Err(mirai_sp::Error::Closed),
        Con::Ctx(cx, _) => cx.ctx.recv_msg(timeout),
    };
    Ok(match r {
        Ok(m) => codec::decode(s, m.body(), mode).into_sexp(s),
        Err(e) => err_value(s, e.code()),
    })
}

/// `.Call(nano_con_serial, con, aio)`: the `serial_config()` of `con`'s socket (`NULL` if none);
/// validates `con` with the message of `send` (or of `send_aio` if `aio` is `TRUE`).
pub(crate) fn nano_con_serial<'a>(s: &'a Scope, con: Sexp<'a>, aio: Sexp<'a>) -> RResult<Sexp<'a>> {
    let msg = if matches!(aio.lgls(), Some([1])) {
        BAD_CON_AIO
    } else {
        BAD_CON
    };
    let c = con_arg(con, s, msg)?;
    let cfg = c.socket().serial.borrow();
    Ok(match cfg.as_ref() {
        Some(p) => s.protect(p.sexp()),
        None => Sexp::null(),
    })
}
