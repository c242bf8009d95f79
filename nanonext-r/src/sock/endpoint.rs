//! Dialers and listeners (spec §5.3): `dial()`, `listen()`, `start()`, `close()`.

use std::cell::{Cell, RefCell};
use std::ffi::CStr;

use mirai_rapi::{RError, RResult, Scope, Sexp};

use super::{err_value, set_attr_int, set_attr_str, sock_arg, DIALER_TAG, LISTENER_TAG};

/// A dialer as R holds it.
pub(crate) struct DialerObj {
    pub(crate) d: mirai_sp::driver::Dialer,
    pub(crate) url: String,
    pub(crate) socket: i32,
}

/// A listener as R holds it: the configured URL (for `stat()`), and the URL with its port
/// resolved once started (the `url` attribute and `opt()`).
pub(crate) struct ListenerObj {
    pub(crate) l: mirai_sp::driver::Listener,
    pub(crate) url: String,
    pub(crate) resolved: RefCell<String>,
    pub(crate) socket: i32,
    /// `ipc:permissions` set before start, applied to the socket file once bound.
    pub(crate) perms: Cell<Option<u32>>,
}

impl ListenerObj {
    /// Applies `ipc:permissions` to a started ipc listener's file.
    fn apply_perms(&self) -> Result<(), mirai_sp::Error> {
        use std::os::unix::fs::PermissionsExt;
        let (Some(mode), Some((_, path))) = (self.perms.get(), self.url.split_once("://")) else {
            return Ok(());
        };
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
        Ok(())
    }
}

/// The NNG code of a failure to create an endpoint: a URL the driver cannot parse is an
/// invalid argument (3), as in NNG.
fn create_code(e: &mirai_sp::Error) -> i32 {
    e.code()
}

/// `autostart`: `TRUE` (1), `NA` (synchronous, 2) or `FALSE` (0).
fn autostart(x: Sexp<'_>) -> i32 {
    match x.lgls().or_else(|| x.ints()).and_then(|v| v.first()) {
        Some(&i32::MIN) => 2,
        Some(&0) => 0,
        _ => 1,
    }
}

/// The socket, URL and transport options of a `dial()` or `listen()`.
fn endpoint_args<'a>(
    socket: Sexp<'a>,
    url: Sexp<'a>,
    tls: Sexp<'a>,
    s: &Scope,
) -> RResult<(
    &'a super::SockObj,
    String,
    mirai_sp::driver::TransportOptions,
)> {
    let so = sock_arg(socket, s)?;
    let url = url
        .str_elt(0)
        .and_then(|c| c.char_text())
        .unwrap_or_default();
    Ok((so, url, transport(tls, s)?))
}

/// The transport options of `tls` (`NULL` or a `tlsConfig`; anything else is the §1.4 error).
fn transport(tls: Sexp<'_>, s: &Scope) -> RResult<mirai_sp::driver::TransportOptions> {
    let mut o = mirai_sp::driver::TransportOptions::new();
    if let Some(cfg) = crate::tlsr::tls_arg(tls, s.r())? {
        o = o.with_tls(cfg);
    }
    Ok(o)
}

/// Appends `obj` to the list attribute `name` of `socket`.
fn append_attr(s: &Scope, socket: Sexp<'_>, name: &CStr, obj: Sexp<'_>) {
    let sym = s.r().sym(name);
    let old = socket.attr(sym);
    let n = if old.is_null() { 0 } else { old.len() };
    let list = s.list(n + 1);
    for i in 0..n {
        list.set_list_elt(i, old.list_elt(i).unwrap_or(Sexp::null()));
    }
    list.set_list_elt(n, obj);
    socket.set_attr(sym, list);
}

/// `.Call(nano_dial, socket, url, tls, autostart)`: `0L` with the new Dialer appended to the
/// socket's `dialer` attribute, or the NNG code (an integer) on failure.
pub(crate) fn nano_dial<'a>(
    s: &'a Scope,
    socket: Sexp<'a>,
    url: Sexp<'a>,
    tls: Sexp<'a>,
    start: Sexp<'a>,
) -> RResult<Sexp<'a>> {
    let (so, url, opts) = endpoint_args(socket, url, tls, s)?;
    let d = match so.sock.dialer_with(&url, &opts) {
        Ok(d) => d,
        Err(e) => return Ok(s.int(create_code(&e))),
    };
    let mode = autostart(start);
    if mode != 0 {
        if let Err(e) = d.start(mode == 2) {
            let _gone = d.close();
            return Ok(s.int(e.code()));
        }
    }
    let id = d.id() as i32;
    let obj = DialerObj {
        d,
        url: url.clone(),
        socket: so.id,
    };
    let x = s.extptr(obj, &DIALER_TAG, false);
    set_attr_int(s, x, c"id", id);
    set_attr_str(s, x, c"url", &url);
    set_attr_str(
        s,
        x,
        c"state",
        if mode != 0 { "started" } else { "not started" },
    );
    set_attr_int(s, x, c"socket", so.id);
    x.set_class(s, &[c"nanoDialer", c"nano"]);
    append_attr(s, socket, c"dialer", x);
    Ok(s.int(0))
}

/// The configured URL with a tcp-style port 0 replaced by the bound port (the scheme kept, a
/// wildcard host `*` left empty).
pub(crate) fn resolve_url(url: &str, port: Option<u16>) -> String {
    let (Some(port), Some((scheme, rest))) = (port, url.split_once("://")) else {
        return url.to_string();
    };
    let (auth, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match auth.rsplit_once(':') {
        Some((host, "0")) => {
            let host = if host == "*" { "" } else { host };
            format!("{scheme}://{host}:{port}{path}")
        }
        _ => url.to_string(),
    }
}

/// `.Call(nano_listen, socket, url, tls, autostart)`: as `nano_dial` for a listener
/// (attribute `listener`); a started listener's `url` shows the bound port.
pub(crate) fn nano_listen<'a>(
    s: &'a Scope,
    socket: Sexp<'a>,
    url: Sexp<'a>,
    tls: Sexp<'a>,
    start: Sexp<'a>,
) -> RResult<Sexp<'a>> {
    let (so, url, opts) = endpoint_args(socket, url, tls, s)?;
    let l = match so.sock.listener_with(&url, &opts) {
        Ok(l) => l,
        Err(e) => return Ok(s.int(create_code(&e))),
    };
    let started = autostart(start) != 0;
    let mut resolved = url.clone();
    if started {
        if let Err(e) = l.start() {
            let _gone = l.close();
            return Ok(s.int(e.code()));
        }
        resolved = resolve_url(&url, l.bound_port());
    }
    let id = l.id() as i32;
    let obj = ListenerObj {
        l,
        url,
        resolved: RefCell::new(resolved.clone()),
        socket: so.id,
        perms: Cell::new(None),
    };
    let x = s.extptr(obj, &LISTENER_TAG, false);
    set_attr_int(s, x, c"id", id);
    set_attr_str(s, x, c"url", &resolved);
    set_attr_str(
        s,
        x,
        c"state",
        if started { "started" } else { "not started" },
    );
    set_attr_int(s, x, c"socket", so.id);
    x.set_class(s, &[c"nanoListener", c"nano"]);
    append_attr(s, socket, c"listener", x);
    Ok(s.int(0))
}

/// `.Call(nano_start, x, async)`: starts a Dialer (asynchronously unless `async` is `FALSE`)
/// or a Listener; `0L` with `state` "started", or the NNG code. A closed endpoint gives 12.
pub(crate) fn nano_start<'a>(s: &'a Scope, x: Sexp<'a>, r#async: Sexp<'a>) -> RResult<Sexp<'a>> {
    let r = s.r();
    let res = if let Some(d) = x.extptr_ref::<DialerObj>(&DIALER_TAG, r) {
        let sync = matches!(r#async.lgls(), Some([0]));
        d.d.start(sync).map(|()| None)
    } else if let Some(l) = x.extptr_ref::<ListenerObj>(&LISTENER_TAG, r) {
        l.l.start().and_then(|_| {
            let u = resolve_url(&l.url, l.l.bound_port());
            l.resolved.replace(u.clone());
            l.apply_perms()?;
            Ok(Some(u))
        })
    } else if x.inherits(c"nanoListener") {
        return Err(RError::from("`listener` is not a valid Listener"));
    } else {
        return Err(RError::from("`dialer` is not a valid Dialer"));
    };
    Ok(match res {
        Ok(u) => {
            if let Some(u) = u {
                set_attr_str(s, x, c"url", &u);
            }
            set_attr_str(s, x, c"state", "started");
            s.int(0)
        }
        Err(mirai_sp::Error::Closed) => s.int(12),
        Err(e) => s.int(e.code()),
    })
}

/// `.Call(nano_close_endpoint, x)`: closes a Dialer or Listener; `0L` (state "closed") or the
/// errorValue 12 when already closed.
pub(crate) fn nano_close_endpoint<'a>(s: &'a Scope, x: Sexp<'a>) -> RResult<Sexp<'a>> {
    let r = s.r();
    let res = if let Some(d) = x.extptr_ref::<DialerObj>(&DIALER_TAG, r) {
        d.d.close()
    } else if let Some(l) = x.extptr_ref::<ListenerObj>(&LISTENER_TAG, r) {
        l.l.close()
    } else if x.inherits(c"nanoListener") {
        return Err(RError::from("`listener` is not a valid Listener"));
    } else {
        return Err(RError::from("`dialer` is not a valid Dialer"));
    };
    Ok(match res {
        Ok(()) => {
            set_attr_str(s, x, c"state", "closed");
            s.int(0)
        }
        Err(_) => err_value(s, 12),
    })
}

#[cfg(test)]
mod tests {
    use super::resolve_url;

    #[test]
    fn port_zero_is_resolved() {
        assert_eq!(
            resolve_url("tcp://127.0.0.1:0", Some(40411)),
            "tcp://127.0.0.1:40411"
        );
        assert_eq!(resolve_url("tcp://*:0", Some(40449)), "tcp://:40449");
        assert_eq!(resolve_url("tcp4://*:0", Some(1)), "tcp4://:1");
        assert_eq!(
            resolve_url("ws://127.0.0.1:0/path", Some(4321)),
            "ws://127.0.0.1:4321/path"
        );
        assert_eq!(resolve_url("tcp://[::1]:0", Some(5)), "tcp://[::1]:5");
        assert_eq!(resolve_url("tcp://h:80", Some(5)), "tcp://h:80");
        assert_eq!(resolve_url("ipc:///tmp/x", None), "ipc:///tmp/x");
    }
}
