//! Options and statistics (spec §5.6): `opt()`, `opt<-`, `stat()`, `subscribe()`.
//!
//! Failures come back as errorValues (the R functions raise them with the user's call).

use std::time::Duration;

use mirai_rapi::{Kind, Preserved, RError, RResult, Scope, Sexp};
use mirai_sp::sm::SmOption;

use super::endpoint::{DialerObj, ListenerObj};
use super::{codec, err_value, Con, DIALER_TAG, LISTENER_TAG};

const BAD_OPT: &str = "`object` is not a valid Socket, Context, Stream, Listener, or Dialer";
const BAD_OPT_SET: &str = "`object` is not a valid Socket, Context, Stream, Listener or Dialer";
const BAD_STAT: &str = "`object` is not a valid Socket, Listener or Dialer";
const BAD_TYPE: &str = "type of `value` not supported";
const BAD_SUB: &str = "`object` is not a valid Socket or Context";

const NOT_SUPPORTED: i32 = 9;
const BAD_ARG: i32 = 3;
const INCORRECT_TYPE: i32 = 30;
const READ_ONLY: i32 = 24;

enum Obj<'a> {
    Con(Con<'a>),
    Dialer(&'a DialerObj),
    Listener(&'a ListenerObj),
}

fn obj<'a>(x: Sexp<'a>, s: &Scope) -> Option<Obj<'a>> {
    let r = s.r();
    if let Some(c) = Con::of(x, s) {
        return Some(Obj::Con(c));
    }
    if let Some(d) = x.extptr_ref::<DialerObj>(&DIALER_TAG, r) {
        return Some(Obj::Dialer(d));
    }
    x.extptr_ref::<ListenerObj>(&LISTENER_TAG, r)
        .map(Obj::Listener)
}

/// A setter's value, by R type.
enum Val {
    Null,
    Str(String),
    Num(f64),
    Bool(bool),
}

/// Whether the `tcp-*` options apply: tcp and tls+tcp endpoints (both run over tcp).
fn is_tcp(url: &str) -> bool {
    url.starts_with("tcp") || url.starts_with("tls+tcp")
}

fn ms(d: Duration) -> i32 {
    i32::try_from(d.as_millis()).unwrap_or(i32::MAX)
}

/// `.Call(nano_opt, object, name)`: the option's value, or an errorValue.
pub(crate) fn nano_opt<'a>(s: &'a Scope, object: Sexp<'a>, name: Sexp<'a>) -> RResult<Sexp<'a>> {
    let o = obj(object, s).ok_or(BAD_OPT)?;
    let name = name
        .str_elt(0)
        .and_then(|c| c.char_text())
        .unwrap_or_default();
    let code = |c| Ok(err_value(s, c));
    match o {
        Obj::Con(c) => {
            let so = c.socket();
            if so.sock.is_closed() {
                return code(7);
            }
            let o = c.opts().borrow();
            let is_sock = matches!(c, Con::Sock(_));
            Ok(match name.as_str() {
                "send-timeout" => s.int(o.send_timeout),
                "recv-timeout" => s.int(o.recv_timeout),
                "send-buffer" if is_sock => s.int(o.send_buffer),
                "recv-buffer" if is_sock => s.int(o.recv_buffer),
                "recv-size-max" if is_sock => s.int(so.sock.recv_max() as i32),
                "reconnect-time-min" if is_sock => s.int(ms(so.sock.reconnect())),
                "reconnect-time-max" if is_sock => s.int(o.reconnect_max),
                "socket-name" if is_sock => s.string(&so.name.borrow()),
                "req:resend-time" if so.proto == "req" => s.int(o.resend),
                "surveyor:survey-time" if so.proto == "surveyor" => s.int(o.survey),
                "sub:prefnew" if so.proto == "sub" => s.r().lgl(o.prefnew),
                _ => return code(NOT_SUPPORTED),
            })
        }
        Obj::Dialer(d) => Ok(match name.as_str() {
            "url" => s.string(&d.url),
            "recv-size-max" => match d.d.recv_max() {
                Ok(v) => s.int(v as i32),
                Err(e) => return code(e.code()),
            },
            "reconnect-time-min" => match d.d.reconnect() {
                Ok(v) => s.int(ms(v)),
                Err(e) => return code(e.code()),
            },
            "reconnect-time-max" => s.int(0),
            "tcp-nodelay" | "tcp-keepalive" if is_tcp(&d.url) => match d.d.tcp_options() {
                Ok((nodelay, keepalive)) => s.r().lgl(if name == "tcp-nodelay" {
                    nodelay
                } else {
                    keepalive
                }),
                Err(e) => return code(e.code()),
            },
            _ => return code(NOT_SUPPORTED),
        }),
        Obj::Listener(l) => Ok(match name.as_str() {
            "url" => s.string(&l.resolved.borrow()),
            "recv-size-max" => match l.l.recv_max() {
                Ok(v) => s.int(v as i32),
                Err(e) => return code(e.code()),
            },
            "tcp-bound-port" if is_tcp(&l.url) => match l.l.bound_port() {
                Some(p) => s.int(i32::from(p)),
                None => return code(11),
            },
            "tcp-nodelay" | "tcp-keepalive" if is_tcp(&l.url) => match l.l.tcp_options() {
                Ok((nodelay, keepalive)) => s.r().lgl(if name == "tcp-nodelay" {
                    nodelay
                } else {
                    keepalive
                }),
                Err(e) => return code(e.code()),
            },
            _ => return code(NOT_SUPPORTED),
        }),
    }
}

fn as_val(v: Sexp<'_>) -> Option<Val> {
    Some(match v.kind() {
        Kind::NILSXP => Val::Null,
        Kind::STRSXP => Val::Str(v.str_elt(0).and_then(|c| c.char_text()).unwrap_or_default()),
        Kind::INTSXP => Val::Num(f64::from(*v.ints()?.first()?)),
        Kind::REALSXP => Val::Num(*v.reals()?.first()?),
        Kind::LGLSXP => Val::Bool(*v.lgls()?.first()? != 0),
        _ => return None,
    })
}

/// A number for an option whose valid range is `lo..=hi` (as NNG's conversions: else 30).
fn num_in(v: &Val, lo: i64, hi: i64) -> Result<i64, i32> {
    match v {
        Val::Num(n) if n.is_finite() && (n.trunc() as i64) >= lo && (n.trunc() as i64) <= hi => {
            Ok(n.trunc() as i64)
        }
        Val::Null | Val::Str(_) | Val::Bool(_) | Val::Num(_) => Err(INCORRECT_TYPE),
    }
}

fn dur(v: &Val) -> Result<i32, i32> {
    num_in(v, -1, i64::from(i32::MAX)).map(|n| n as i32)
}

fn size(v: &Val) -> Result<usize, i32> {
    num_in(v, 0, i64::from(i32::MAX)).map(|n| n as usize)
}

fn boolean(v: &Val) -> Result<bool, i32> {
    match v {
        Val::Bool(b) => Ok(*b),
        _ => Err(INCORRECT_TYPE),
    }
}

fn set_con(c: Con<'_>, name: &str, v: &Val) -> Result<(), i32> {
    let so = c.socket();
    if so.sock.is_closed() {
        return Err(7);
    }
    let is_sock = matches!(c, Con::Sock(_));
    let sm = |opt: SmOption| -> Result<(), i32> {
        match c {
            Con::Sock(so) => so.sock.set_option(opt),
            Con::Ctx(cx, _) => cx.ctx.set_option(opt),
        }
        .map_err(|e| e.code())
    };
    let mut o = c.opts().borrow_mut();
    match name {
        "send-timeout" => o.send_timeout = dur(v)?,
        "recv-timeout" => o.recv_timeout = dur(v)?,
        "send-buffer" | "recv-buffer" if is_sock => {
            let n = num_in(v, 0, 8192)? as i32;
            if name == "send-buffer" {
                sm(SmOption::SendBuffer(n as usize))?;
                o.send_buffer = n;
            } else {
                sm(SmOption::RecvBuffer(n as usize))?;
                o.recv_buffer = n;
            }
        }
        "recv-size-max" if is_sock => so.sock.set_recv_max(size(v)?),
        "reconnect-time-min" if is_sock => so
            .sock
            .set_reconnect(Duration::from_millis(dur(v)?.max(0) as u64)),
        "reconnect-time-max" if is_sock => o.reconnect_max = dur(v)?,
        "socket-name" if is_sock => match v {
            Val::Str(t) => *so.name.borrow_mut() = t.clone(),
            Val::Null => return Err(BAD_ARG),
            _ => return Err(INCORRECT_TYPE),
        },
        "req:resend-time" if so.proto == "req" => {
            let n = dur(v)?;
            sm(SmOption::ResendTime(i64::from(n)))?;
            o.resend = n;
        }
        "surveyor:survey-time" if so.proto == "surveyor" => {
            let n = dur(v)?;
            sm(SmOption::SurveyTime(i64::from(n)))?;
            o.survey = n;
        }
        "sub:prefnew" if so.proto == "sub" => {
            let b = boolean(v)?;
            sm(SmOption::PreferNew(b))?;
            o.prefnew = b;
        }
        "sub:subscribe" | "sub:unsubscribe" if so.proto == "sub" => {
            let t = match v {
                Val::Str(t) => t.as_bytes().to_vec(),
                Val::Null => Vec::new(),
                _ => return Err(INCORRECT_TYPE),
            };
            sm(if name == "sub:subscribe" {
                SmOption::Subscribe(t)
            } else {
                SmOption::Unsubscribe(t)
            })?;
        }
        _ => return Err(NOT_SUPPORTED),
    }
    Ok(())
}

/// `.Call(nano_opt_set, object, name, value)`: `0L`, or an errorValue; type errors of §1.4 are
/// raised here.
pub(crate) fn nano_opt_set<'a>(
    s: &'a Scope,
    object: Sexp<'a>,
    name: Sexp<'a>,
    value: Sexp<'a>,
) -> RResult<Sexp<'a>> {
    let o = obj(object, s).ok_or(BAD_OPT_SET)?;
    let name = name
        .str_elt(0)
        .and_then(|c| c.char_text())
        .unwrap_or_default();
    if value.kind() == Kind::VECSXP {
        return match o {
            Obj::Con(Con::Sock(so)) if name == "serial" => {
                let keep = (!value.is_empty()).then(|| Preserved::new(s.r(), value));
                *so.serial.borrow_mut() = keep;
                Ok(s.int(0))
            }
            _ => Err(RError::from(BAD_TYPE)),
        };
    }
    let v = as_val(value).ok_or(BAD_TYPE)?;
    let r = match o {
        Obj::Con(c) => set_con(c, &name, &v),
        Obj::Dialer(d) => match name.as_str() {
            "url" => Err(READ_ONLY),
            "recv-size-max" => size(&v).and_then(|n| d.d.set_recv_max(n).map_err(|e| e.code())),
            "reconnect-time-min" => dur(&v).and_then(|n| {
                d.d.set_reconnect(Duration::from_millis(n.max(0) as u64))
                    .map_err(|e| e.code())
            }),
            "reconnect-time-max" => dur(&v).map(|_| ()),
            "tcp-nodelay" if is_tcp(&d.url) => {
                boolean(&v).and_then(|b| d.d.set_tcp_nodelay(b).map_err(|e| e.code()))
            }
            "tcp-keepalive" if is_tcp(&d.url) => {
                boolean(&v).and_then(|b| d.d.set_tcp_keepalive(b).map_err(|e| e.code()))
            }
            _ => Err(NOT_SUPPORTED),
        },
        Obj::Listener(l) => match name.as_str() {
            "url" | "tcp-bound-port" => Err(READ_ONLY),
            "recv-size-max" => size(&v).and_then(|n| l.l.set_recv_max(n).map_err(|e| e.code())),
            "tcp-nodelay" if is_tcp(&l.url) => {
                boolean(&v).and_then(|b| l.l.set_tcp_nodelay(b).map_err(|e| e.code()))
            }
            "tcp-keepalive" if is_tcp(&l.url) => {
                boolean(&v).and_then(|b| l.l.set_tcp_keepalive(b).map_err(|e| e.code()))
            }
            "ipc:permissions" if l.url.starts_with("ipc") || l.url.starts_with("unix") => {
                if l.l.is_started() {
                    Err(4)
                } else {
                    num_in(&v, 0, 0o7777).map(|n| l.perms.set(Some(n as u32)))
                }
            }
            _ => Err(NOT_SUPPORTED),
        },
    };
    Ok(match r {
        Ok(()) => s.int(0),
        Err(c) => err_value(s, c),
    })
}

/// `.Call(nano_stat, object, name)`: a double, a string, or `NULL`.
pub(crate) fn nano_stat<'a>(s: &'a Scope, object: Sexp<'a>, name: Sexp<'a>) -> RResult<Sexp<'a>> {
    let o = match obj(object, s) {
        Some(Obj::Con(Con::Sock(so))) => Obj::Con(Con::Sock(so)),
        Some(Obj::Dialer(d)) => Obj::Dialer(d),
        Some(Obj::Listener(l)) => Obj::Listener(l),
        _ => return Err(RError::from(BAD_STAT)),
    };
    let name = name
        .str_elt(0)
        .and_then(|c| c.char_text())
        .unwrap_or_default();
    let n = |v: usize| s.real(v as f64);
    Ok(match o {
        Obj::Con(c) => {
            let so = c.socket();
            if so.sock.is_closed() {
                return Ok(Sexp::null());
            }
            let (d, l) = so.sock.endpoint_counts();
            match name.as_str() {
                "id" => n(so.id as usize),
                "name" => s.string(&so.name.borrow()),
                "protocol" => s.string(so.proto),
                "pipes" => n(so.sock.pipes().len()),
                "dialers" => n(d),
                "listeners" => n(l),
                _ => Sexp::null(),
            }
        }
        Obj::Dialer(d) => {
            let st = d.d.stats().unwrap_or_default();
            match name.as_str() {
                "id" => n(d.d.id() as usize),
                "socket" => n(d.socket as usize),
                "url" => s.string(&d.url),
                "pipes" => n(d.d.pipe_count()),
                "connect" => s.real(st.connect as f64),
                "reject" => s.real(st.reject as f64),
                "refused" => s.real(st.refused as f64),
                _ => Sexp::null(),
            }
        }
        Obj::Listener(l) => {
            let st = l.l.stats().unwrap_or_default();
            match name.as_str() {
                "id" => n(l.l.id() as usize),
                "socket" => n(l.socket as usize),
                "url" => s.string(&l.url),
                "pipes" => n(l.l.pipe_count()),
                "accept" => s.real(st.connect as f64),
                "reject" => s.real(st.reject as f64),
                _ => Sexp::null(),
            }
        }
    })
}

/// `.Call(nano_subscribe, con, topic, sub)`: subscribes (`sub` TRUE) or unsubscribes a sub
/// Socket or Context to `topic` (raw-mode bytes without a character topic's final NUL;
/// `NULL` = everything); `0L` or an errorValue.
pub(crate) fn nano_subscribe<'a>(
    s: &'a Scope,
    con: Sexp<'a>,
    topic: Sexp<'a>,
    sub: Sexp<'a>,
) -> RResult<Sexp<'a>> {
    let c = Con::of(con, s).ok_or(BAD_SUB)?;
    let mut t = codec::encode_raw(topic)?;
    if topic.kind() == Kind::STRSXP {
        t.pop();
    }
    let opt = if matches!(sub.lgls(), Some([1])) {
        SmOption::Subscribe(t)
    } else {
        SmOption::Unsubscribe(t)
    };
    let r = if c.socket().proto != "sub" {
        Err(NOT_SUPPORTED)
    } else {
        match c {
            Con::Sock(so) => so.sock.set_option(opt),
            Con::Ctx(cx, _) => cx.ctx.set_option(opt),
        }
        .map_err(|e| e.code())
    };
    Ok(match r {
        Ok(()) => s.int(0),
        Err(code) => err_value(s, code),
    })
}
