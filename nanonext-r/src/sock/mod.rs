//! Sockets and protocols (spec §5): the R objects around `mirai_sp`'s sockets, contexts,
//! dialers and listeners, and the routines behind `socket()`, `dial()`, `send()`, ...
//!
//! Every object is an external pointer owning its Rust value (one tag per kind), with the
//! attributes the spec lists. What R sees of a failure is an NNG code: routines return an
//! errorValue (or a plain code) and the R functions turn it into a warning or an error with the
//! user's call, per `fail`.

pub(crate) mod aio;
pub(crate) mod codec;
pub(crate) mod endpoint;
pub(crate) mod notify;
pub(crate) mod opts;
pub(crate) mod sendrecv;
pub(crate) mod stdin;

pub(crate) use aio::{nano_cancel_request, nano_recv_aio, nano_request, nano_send_aio};
pub(crate) use endpoint::{nano_close_endpoint, nano_dial, nano_listen, nano_start};
pub(crate) use notify::{nano_monitor, nano_pipe_notify, nano_read_monitor};
pub(crate) use opts::{nano_opt, nano_opt_set, nano_stat, nano_subscribe};
pub(crate) use sendrecv::{nano_con_serial, nano_recv, nano_send};
pub(crate) use stdin::nano_read_stdin;

use std::cell::{Cell, RefCell};
use std::ffi::CStr;
use std::sync::atomic::{AtomicI32, Ordering};

use mirai_rapi::{Preserved, RError, RResult, Scope, Sexp, Tag};
use mirai_sp::Protocol;

pub(crate) static SOCKET_TAG: Tag = Tag::new(c"nanoSocket");
pub(crate) static CONTEXT_TAG: Tag = Tag::new(c"nanoContext");
pub(crate) static DIALER_TAG: Tag = Tag::new(c"nanoDialer");
pub(crate) static LISTENER_TAG: Tag = Tag::new(c"nanoListener");

pub(crate) const BAD_SOCKET: &str = "`socket` is not a valid Socket";
const BAD_PROTOCOL: &str = "`protocol` should be one of: bus, pair, poly, push, pull, pub, sub, req, rep, surveyor, respondent";

/// Process-wide ids of sockets and contexts (positive, never reused).
pub(crate) fn next_id() -> i32 {
    static NEXT: AtomicI32 = AtomicI32::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// The protocols by their nanonext names, with the shortest prefix each accepts.
pub(crate) const PROTOCOLS: [(&str, usize, Protocol); 11] = [
    ("bus", 1, Protocol::Bus0),
    ("pair", 2, Protocol::Pair0),
    ("poly", 2, Protocol::Pair1),
    ("push", 3, Protocol::Push0),
    ("pull", 3, Protocol::Pull0),
    ("pub", 3, Protocol::Pub0),
    ("sub", 3, Protocol::Sub0),
    ("req", 3, Protocol::Req0),
    ("rep", 3, Protocol::Rep0),
    ("surveyor", 3, Protocol::Surveyor0),
    ("respondent", 3, Protocol::Respondent0),
];

/// The protocol named by `name` (a prefix of at least the minimum length), or `None`.
pub(crate) fn match_protocol(name: &str) -> Option<(&'static str, Protocol)> {
    PROTOCOLS
        .iter()
        .find(|(full, min, _)| name.len() >= *min && full.starts_with(name))
        .map(|&(full, _, p)| (full, p))
}

/// Per-socket (and per-context) option values the driver does not keep itself.
#[derive(Debug, Clone)]
pub(crate) struct Opts {
    /// `send-timeout`, `recv-timeout` in ms (-1: none).
    pub(crate) send_timeout: i32,
    pub(crate) recv_timeout: i32,
    /// Protocol options as last set (defaults from NNG), for the getters.
    pub(crate) resend: i32,
    pub(crate) survey: i32,
    pub(crate) recv_buffer: i32,
    pub(crate) send_buffer: i32,
    pub(crate) prefnew: bool,
    pub(crate) reconnect_max: i32,
}

impl Opts {
    fn new(proto: &str) -> Opts {
        let (rb, sb) = match proto {
            "pair" | "poly" => (0, 0),
            "sub" => (128, 0),
            _ => (16, 16),
        };
        Opts {
            send_timeout: -1,
            recv_timeout: -1,
            resend: 60_000,
            survey: 1000,
            recv_buffer: rb,
            send_buffer: sb,
            prefnew: true,
            reconnect_max: 0,
        }
    }
}

/// A socket as R holds it.
pub(crate) struct SockObj {
    pub(crate) sock: mirai_sp::Socket,
    pub(crate) id: i32,
    pub(crate) proto: &'static str,
    pub(crate) opts: RefCell<Opts>,
    pub(crate) name: RefCell<String>,
    /// The `serial_config()` list set with `opt(s, "serial") <-`.
    pub(crate) serial: RefCell<Option<Preserved>>,
    /// Pipe-event registrations (`pipe_notify()`, monitors), made on first use.
    pub(crate) hub: RefCell<Option<std::sync::Arc<notify::PipeHub>>>,
}

/// A context as R holds it; its protected field is its socket (kept alive).
pub(crate) struct CtxObj {
    pub(crate) ctx: mirai_sp::driver::Context,
    pub(crate) id: i32,
    pub(crate) opts: RefCell<Opts>,
    pub(crate) closed: Cell<bool>,
}

/// A connection's sending/receiving end: a socket or one of its contexts.
#[derive(Clone, Copy)]
pub(crate) enum Con<'a> {
    Sock(&'a SockObj),
    Ctx(&'a CtxObj, &'a SockObj),
}

impl<'a> Con<'a> {
    /// `x` as a socket or context, if it is one.
    pub(crate) fn of(x: Sexp<'a>, s: &Scope) -> Option<Con<'a>> {
        let r = s.r();
        if let Some(so) = x.extptr_ref::<SockObj>(&SOCKET_TAG, r) {
            return Some(Con::Sock(so));
        }
        let c = x.extptr_ref::<CtxObj>(&CONTEXT_TAG, r)?;
        let so = x.extptr_protected().extptr_ref::<SockObj>(&SOCKET_TAG, r)?;
        Some(Con::Ctx(c, so))
    }

    pub(crate) fn socket(self) -> &'a SockObj {
        match self {
            Con::Sock(s) | Con::Ctx(_, s) => s,
        }
    }

    pub(crate) fn opts(self) -> &'a RefCell<Opts> {
        match self {
            Con::Sock(s) => &s.opts,
            Con::Ctx(c, _) => &c.opts,
        }
    }

    /// The context id for message headers (0 for a socket).
    pub(crate) fn ctx_id(self) -> i32 {
        match self {
            Con::Sock(_) => 0,
            Con::Ctx(c, _) => c.id,
        }
    }
}

/// The socket behind `x`, or the spec's error.
pub(crate) fn sock_arg<'a>(x: Sexp<'a>, s: &Scope) -> RResult<&'a SockObj> {
    x.extptr_ref::<SockObj>(&SOCKET_TAG, s.r())
        .ok_or_else(|| RError::from(BAD_SOCKET))
}

/// An errorValue: the code with class `c("errorValue", "try-error")`.
pub(crate) fn err_value<'a>(s: &'a Scope, code: i32) -> Sexp<'a> {
    let x = s.int(code);
    x.set_class(s, &[c"errorValue", c"try-error"]);
    x
}

pub(crate) fn set_attr_str(s: &Scope, x: Sexp<'_>, name: &CStr, v: &str) {
    x.set_attr(s.r().sym(name), s.string(v));
}

pub(crate) fn set_attr_int(s: &Scope, x: Sexp<'_>, name: &CStr, v: i32) {
    x.set_attr(s.r().sym(name), s.int(v));
}

/// `.Call(nano_socket, protocol, raw)`: a new socket (class `c("nanoSocket", "nano")`).
pub(crate) fn nano_socket<'a>(
    s: &'a Scope,
    protocol: Sexp<'a>,
    raw: Sexp<'a>,
) -> RResult<Sexp<'a>> {
    let name = protocol
        .str_elt(0)
        .and_then(|c| c.char_text())
        .ok_or(BAD_PROTOCOL)?;
    let (full, proto) = match_protocol(&name).ok_or(BAD_PROTOCOL)?;
    if matches!(raw.lgls(), Some([v]) if *v == 1) {
        // Raw (header-passing) machines are not implemented in mirai-sp yet.
        return Err(RError::from("9 | Not supported"));
    }
    let sock = if full == "poly" {
        mirai_sp::Socket::poly()
    } else {
        mirai_sp::Socket::new(proto)
    }
    .map_err(|e| RError::Msg(mirai_proto::ErrorCode::from(e.code()).to_string()))?;
    let id = next_id();
    let obj = SockObj {
        sock,
        id,
        proto: full,
        opts: RefCell::new(Opts::new(full)),
        name: RefCell::new(id.to_string()),
        serial: RefCell::new(None),
        hub: RefCell::new(None),
    };
    let x = s.extptr(obj, &SOCKET_TAG, true);
    set_attr_int(s, x, c"id", id);
    set_attr_str(s, x, c"protocol", full);
    set_attr_str(s, x, c"state", "opened");
    x.set_class(s, &[c"nanoSocket", c"nano"]);
    Ok(x)
}

/// `.Call(nano_close, con)`: closes a Socket or Context, updating its `state`; `0L` or the
/// errorValue (7 when already closed). Anything else is an error.
pub(crate) fn nano_close<'a>(s: &'a Scope, con: Sexp<'a>) -> RResult<Sexp<'a>> {
    let r = s.r();
    if let Some(so) = con.extptr_ref::<SockObj>(&SOCKET_TAG, r) {
        return Ok(match so.sock.close() {
            Ok(()) => {
                set_attr_str(s, con, c"state", "closed");
                s.int(0)
            }
            Err(e) => err_value(s, e.code()),
        });
    }
    if let Some(c) = con.extptr_ref::<CtxObj>(&CONTEXT_TAG, r) {
        return Ok(match close_ctx(c) {
            0 => {
                set_attr_str(s, con, c"state", "closed");
                s.int(0)
            }
            code => err_value(s, code),
        });
    }
    Err(RError::from("`context` is not a valid Context"))
}

fn close_ctx(c: &CtxObj) -> i32 {
    if c.closed.replace(true) {
        return 7;
    }
    match c.ctx.close() {
        Ok(()) => 0,
        Err(e) => e.code(),
    }
}

/// `.Call(nano_reap, con)`: closes a Socket, Context, Dialer or Listener quietly: `0L`, or an
/// errorValue (7 when already closed, 3 for anything else).
pub(crate) fn nano_reap<'a>(s: &'a Scope, con: Sexp<'a>) -> RResult<Sexp<'a>> {
    let r = s.r();
    let code = if let Some(so) = con.extptr_ref::<SockObj>(&SOCKET_TAG, r) {
        so.sock.close().map_or(7, |()| 0)
    } else if let Some(c) = con.extptr_ref::<CtxObj>(&CONTEXT_TAG, r) {
        close_ctx(c).min(7)
    } else if let Some(d) = con.extptr_ref::<endpoint::DialerObj>(&DIALER_TAG, r) {
        d.d.close().map_or(7, |()| 0)
    } else if let Some(l) = con.extptr_ref::<endpoint::ListenerObj>(&LISTENER_TAG, r) {
        l.l.close().map_or(7, |()| 0)
    } else {
        3
    };
    Ok(if code == 0 {
        s.int(0)
    } else {
        err_value(s, code)
    })
}

/// `.Call(nano_context, socket, bare)`: a new context of `socket`; classed with attributes
/// unless `bare` (`.context()`). NNG failures are R errors in NNG format.
pub(crate) fn nano_context<'a>(
    s: &'a Scope,
    socket: Sexp<'a>,
    bare: Sexp<'a>,
) -> RResult<Sexp<'a>> {
    let so = sock_arg(socket, s)?;
    let ctx = so
        .sock
        .context()
        .map_err(|e| RError::Msg(mirai_proto::ErrorCode::from(e.code()).to_string()))?;
    let id = next_id();
    let opts = so.opts.borrow().clone();
    let obj = CtxObj {
        ctx,
        id,
        opts: RefCell::new(opts),
        closed: Cell::new(false),
    };
    let x = s.extptr(obj, &CONTEXT_TAG, false);
    x.set_extptr_protected(socket);
    if !matches!(bare.lgls(), Some([1])) {
        set_attr_int(s, x, c"id", id);
        set_attr_int(s, x, c"socket", so.id);
        set_attr_str(s, x, c"state", "opened");
        set_attr_str(s, x, c"protocol", so.proto);
        x.set_class(s, &[c"nanoContext", c"nano"]);
    }
    Ok(x)
}

/// `.Call(nano_err_text, code)`: `"%d | %s"` for an NNG code (integer).
pub(crate) fn nano_err_text<'a>(s: &'a Scope, code: Sexp<'a>) -> RResult<Sexp<'a>> {
    let c = code.ints().and_then(|v| v.first().copied()).unwrap_or(1000);
    Ok(s.string(&mirai_proto::ErrorCode::from(c).to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_prefixes() {
        let name = |s| match_protocol(s).map(|(n, _)| n);
        assert_eq!(name("b"), Some("bus"));
        assert_eq!(name("bu"), Some("bus"));
        assert_eq!(name("pa"), Some("pair"));
        assert_eq!(name("po"), Some("poly"));
        assert_eq!(name("pus"), Some("push"));
        assert_eq!(name("pul"), Some("pull"));
        assert_eq!(name("sur"), Some("surveyor"));
        assert_eq!(name("res"), Some("respondent"));
        assert_eq!(name("respondent"), Some("respondent"));
        for bad in ["p", "su", "re", "pairs", "", "nonsense", "pu"] {
            assert_eq!(name(bad), None, "{bad}");
        }
    }
}
