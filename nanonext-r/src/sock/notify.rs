//! Pipe events (spec §3.4, §5.7): `pipe_notify()` signals cvs (tripping their flag), monitors
//! record pipe ids. One hub per socket, installed as the driver's pipe observer; it runs on
//! driver threads and touches only cvs and its own lists, never R.

use std::sync::{Arc, Mutex, Weak};

use mirai_rapi::{RError, RResult, Scope, Sexp, Tag};
use mirai_sp::driver::PipeEvent;

use super::{err_value, set_attr_int, sock_arg};
use crate::cv::Cv;

static MONITOR_TAG: Tag = Tag::new(c"nanoMonitor");

const BAD_MONITOR: &str = "`x` is not a valid Monitor";

/// What a monitor records: pipe ids, positive when added, negative when removed.
struct MonitorState {
    events: Mutex<Vec<i32>>,
    cv: Arc<Cv>,
}

/// The pipe-event registrations of one socket.
#[derive(Default)]
pub(crate) struct PipeHub {
    add: Mutex<Option<Arc<Cv>>>,
    remove: Mutex<Option<Arc<Cv>>>,
    monitors: Mutex<Vec<Weak<MonitorState>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl PipeHub {
    fn event(&self, e: PipeEvent) {
        let (cv, id) = match e {
            PipeEvent::Added(p) => (lock(&self.add).clone(), p.0 as i32),
            PipeEvent::Removed(p) => (lock(&self.remove).clone(), -(p.0 as i32)),
        };
        let mut mons = lock(&self.monitors);
        mons.retain(|m| match m.upgrade() {
            Some(m) => {
                lock(&m.events).push(id);
                m.cv.signal();
                true
            }
            None => false,
        });
        drop(mons);
        if let Some(cv) = cv {
            cv.pipe_event();
        }
    }
}

/// The hub of socket `so`, installing it as the socket's observer on first use.
fn hub(so: &super::SockObj) -> Arc<PipeHub> {
    let mut h = so.hub.borrow_mut();
    if let Some(h) = h.as_ref() {
        return Arc::clone(h);
    }
    let new = Arc::new(PipeHub::default());
    let obs = Arc::clone(&new);
    so.sock
        .set_pipe_observer(Some(Arc::new(move |e| obs.event(e))));
    *h = Some(Arc::clone(&new));
    new
}

fn is_true(x: Sexp<'_>) -> bool {
    matches!(x.lgls().or_else(|| x.ints()).and_then(|v| v.first()), Some(&v) if v != 0 && v != i32::MIN)
}

/// `.Call(nano_pipe_notify, socket, cv, add, remove, flag)`: `0L`, or errorValue 7 for a
/// closed socket (R raises it).
pub(crate) fn nano_pipe_notify<'a>(
    s: &'a Scope,
    socket: Sexp<'a>,
    cv: Sexp<'a>,
    add: Sexp<'a>,
    remove: Sexp<'a>,
    flag: Sexp<'a>,
) -> RResult<Sexp<'a>> {
    let so = sock_arg(socket, s)?;
    let cv = if cv.is_null() {
        None
    } else {
        Some(Arc::clone(crate::cvr::cv_arg(cv, s)?))
    };
    if so.sock.is_closed() {
        return Ok(err_value(s, 7));
    }
    let h = hub(so);
    if let Some(cv) = &cv {
        let f = match flag.lgls().or_else(|| flag.ints()).and_then(|v| v.first()) {
            Some(&i32::MIN) | None => flag
                .reals()
                .and_then(|v| v.first())
                .map_or(0, |&d| d as i32),
            Some(&v) => v,
        };
        cv.set_flag(f);
    }
    if is_true(add) {
        *lock(&h.add) = cv.clone();
    }
    if is_true(remove) {
        *lock(&h.remove) = cv;
    }
    Ok(s.int(0))
}

/// `.Call(nano_monitor, socket, cv)`: a Monitor (class `c("nanoMonitor", "nano")`); errors in
/// NNG format are returned as errorValue 7 for a closed socket.
pub(crate) fn nano_monitor<'a>(s: &'a Scope, socket: Sexp<'a>, cv: Sexp<'a>) -> RResult<Sexp<'a>> {
    let so = sock_arg(socket, s)?;
    let cv = Arc::clone(crate::cvr::cv_arg(cv, s)?);
    if so.sock.is_closed() {
        return Ok(err_value(s, 7));
    }
    let m = Arc::new(MonitorState {
        events: Mutex::new(Vec::new()),
        cv,
    });
    lock(&hub(so).monitors).push(Arc::downgrade(&m));
    let x = s.extptr(m, &MONITOR_TAG, false);
    set_attr_int(s, x, c"socket", so.id);
    x.set_class(s, &[c"nanoMonitor", c"nano"]);
    Ok(x)
}

/// `.Call(nano_read_monitor, x)`: the pipe changes since the last read, or `NULL`.
pub(crate) fn nano_read_monitor<'a>(s: &'a Scope, x: Sexp<'a>) -> RResult<Sexp<'a>> {
    let m = x
        .extptr_ref::<Arc<MonitorState>>(&MONITOR_TAG, s.r())
        .ok_or_else(|| RError::from(BAD_MONITOR))?;
    let ev = std::mem::take(&mut *lock(&m.events));
    Ok(if ev.is_empty() {
        Sexp::null()
    } else {
        s.int_vec(&ev)
    })
}
