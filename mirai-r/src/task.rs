//! The task routines: submitting, waiting on, taking, cancelling tasks, and serialization.

use mirai::sched::Mode;
use mirai::{Outcome, SubmitOptions, TaskHandle};
use mirai_rapi::{args, interrupt_pending, Kind, RError, RResult, Scope, Sexp, R};

use crate::handles::*;
use crate::serial::{serialize_of, to_raw_in, unserialize_in, HooksOf};
use crate::sexp::{limit_ms, wait_timeout};
use crate::values::error_value;
use crate::wait::{Deadline, SLICE};

// ---- task routines ----------------------------------------------------------------------

/// `.Call` routine (docs/r-bridge.md): serializes `data` and submits it as a task.
pub(crate) fn mirai_submit<'a>(
    s: &'a Scope,
    host: Sexp<'a>,
    data: Sexp<'a>,
    timeout: Sexp<'a>,
    hooks: Sexp<'a>,
) -> RResult<Sexp<'a>> {
    let hb = host_ref(s.r(), host, "host")?;
    Ok(new_task(s, submit_handle(hb, data, timeout, hooks)?, hb))
}

/// Serializes `data` with `hooks` and submits it to `hb`'s engine (`timeout` in milliseconds
/// or `NULL`).
pub(crate) fn submit_handle(
    hb: &HostBox,
    data: Sexp<'_>,
    timeout: Sexp<'_>,
    hooks: Sexp<'_>,
) -> RResult<TaskHandle> {
    let hooks = HooksOf::new(hooks, "hooks")?;
    let timeout = if timeout.is_null() {
        None
    } else {
        limit_ms(args::num(timeout, "timeout")?, "timeout")?
    };
    let payload = serialize_of(data, &hooks)?;
    let mut parent = None;
    if let Some((span, tasks)) = hb.map_span.borrow_mut().as_mut() {
        parent = span.context();
        *tasks += 1;
    }
    hb.host
        .submit(
            payload,
            SubmitOptions::new()
                .with_timeout(timeout)
                .with_parent(parent),
        )
        .map_err(host_error)
}

/// How many times the task of handle `x` has been sent to a daemon (more than once only when
/// it was retried after losing its daemon; 0 while queued).
pub(crate) fn task_attempts(r: R, x: Sexp<'_>) -> RResult<u32> {
    Ok(task_ref(r, x, "task")?.handle.attempts())
}

/// The largest `everywhere()` round `mirai_everywhere` builds.
const MAX_EVERYWHERE: u32 = 100_000;

/// `.Call` routine (docs/r-bridge.md): submits an `everywhere()` round.
pub(crate) fn mirai_everywhere<'a>(
    s: &'a Scope,
    host: Sexp<'a>,
    data: Sexp<'a>,
    min: Sexp<'a>,
    hooks: Sexp<'a>,
) -> RResult<Sexp<'a>> {
    let hb = host_ref(s.r(), host, "host")?;
    let hooks = HooksOf::new(hooks, "hooks")?;
    let min = args::num(min, "min")?;
    if min.is_nan() || min < 0.0 {
        return Err("`min` must be a non-negative number".into());
    }
    // Each of the `min` tasks is built up front: a runaway value must be an error, not an
    // allocation failure that aborts R.
    if min > MAX_EVERYWHERE as f64 {
        return Err(format!("`min` must be at most {MAX_EVERYWHERE} (one task per daemon)").into());
    }
    let payload = serialize_of(data, &hooks)?;
    let handles = hb
        .host
        .everywhere(payload, min as usize)
        .map_err(host_error)?;
    let out = s.list(handles.len());
    for (i, h) in handles.into_iter().enumerate() {
        let q = s.child();
        out.set_list_elt(i, new_task(&q, h, hb));
    }
    Ok(out)
}

/// `.Call` routine (docs/r-bridge.md): whether a task has resolved (never waits, never consumes).
pub(crate) fn mirai_resolved<'a>(s: &'a Scope, task: Sexp<'a>) -> RResult<Sexp<'a>> {
    let r = s.r();
    task_ref(r, task, "task")?;
    Ok(r.lgl(task_resolved_of(r, task)))
}

/// `.Call` routine (docs/r-bridge.md): the value of a resolved task (cached), or `sentinel`.
pub(crate) fn mirai_take<'a>(
    s: &'a Scope,
    task: Sexp<'a>,
    hooks: Sexp<'a>,
    sentinel: Sexp<'a>,
) -> RResult<Sexp<'a>> {
    take(s, task, hooks, sentinel)
}

/// The value of a resolved task (cached in the handle, and protected by `s` unless it is
/// `sentinel`), or `sentinel` (see `mirai_take`).
pub(crate) fn take<'s>(
    s: &'s Scope,
    task: Sexp<'_>,
    hooks: Sexp<'_>,
    sentinel: Sexp<'s>,
) -> RResult<Sexp<'s>> {
    let tb = task_ref(s.r(), task, "task")?;
    if let Some(v) = cached_of(task) {
        return Ok(s.protect(v));
    }
    let Some(outcome) = tb.take_outcome() else {
        return Ok(sentinel);
    };
    let hooks = match HooksOf::new(hooks, "hooks") {
        Ok(h) => h,
        Err(e) => {
            tb.set_outcome(outcome);
            return Err(e);
        }
    };
    let value = match &outcome {
        Outcome::Error(code) => Ok(error_value(s, code.code())),
        Outcome::Value { payload, .. } => unserialize_in(s, payload, &hooks),
    };
    let value = match value {
        Ok(v) => v,
        Err(e) => {
            // Keep the outcome so that a later call can try again.
            tb.set_outcome(outcome);
            return Err(e);
        }
    };
    drop(outcome);
    drop(tb);
    if task.kind() != Kind::EXTPTRSXP {
        return Ok(value);
    }
    let cell = s.list(1);
    cell.set_list_elt(0, value);
    task.set_extptr_protected(cell);
    Ok(value)
}

/// Waits, interruptibly, until task handle `x` resolves or the deadline passes: true if
/// resolved. `x` must be a task handle.
pub(crate) fn wait_task(r: R, x: Sexp<'_>, dl: &Deadline) -> RResult<bool> {
    while !task_resolved_of(r, x) {
        let tb = task_ref(r, x, "tasks")?;
        if let Some(o) = tb.handle.wait(Some(dl.slice(SLICE))) {
            tb.set_outcome(o);
            break;
        }
        if dl.expired() {
            return Ok(false);
        }
        if interrupt_pending(r) {
            return Err(RError::Interrupt);
        }
    }
    Ok(true)
}

/// Cancels the task of handle `task` on its own host: the task resolves at once with 20
/// unless already resolved. True if the profile has a dispatcher and it still held the task.
pub(crate) fn cancel_task(r: R, task: Sexp<'_>) -> RResult<bool> {
    let tb = task_ref(r, task, "task")?;
    let held = tb.host.cancel(&tb.handle);
    Ok(tb.host.mode() == Mode::Dispatcher && held)
}

/// `.Call` routine (docs/r-bridge.md): waits, interruptibly, until all tasks resolved or the timeout.
pub(crate) fn mirai_wait<'a>(
    s: &'a Scope,
    tasks: Sexp<'a>,
    timeout: Sexp<'a>,
) -> RResult<Sexp<'a>> {
    let r = s.r();
    let dl = Deadline::after(wait_timeout(args::num(timeout, "timeout")?));
    for (_, x) in task_list_of(r, tasks) {
        if !wait_task(r, x, &dl)? {
            return Ok(r.lgl(false));
        }
    }
    Ok(r.lgl(true))
}

/// `.Call` routine (docs/r-bridge.md): waits, interruptibly, for the first resolved task; its 1-based index.
pub(crate) fn mirai_race<'a>(
    s: &'a Scope,
    tasks: Sexp<'a>,
    timeout: Sexp<'a>,
) -> RResult<Sexp<'a>> {
    let r = s.r();
    let dl = Deadline::after(wait_timeout(args::num(timeout, "timeout")?));
    let list = task_list_of(r, tasks);
    let Some(&(_, first)) = list.first() else {
        return Ok(s.int(0));
    };
    // Wait on the profile of the first task; others are noticed at each rescan (every
    // slice, well within the 400 ms the spec asks for).
    let host = task_ref(r, first, "tasks")?.host.clone();
    loop {
        let seen = host.completions();
        if let Some(&(i, _)) = list.iter().find(|&&(_, x)| task_resolved_of(r, x)) {
            return Ok(s.int(i as i32 + 1));
        }
        if dl.expired() {
            return Ok(s.int(0));
        }
        host.wait_completion(seen, dl.slice(SLICE));
        if interrupt_pending(r) {
            return Err(RError::Interrupt);
        }
    }
}

/// `.Call` routine (docs/r-bridge.md): cancels a task.
pub(crate) fn mirai_cancel<'a>(s: &'a Scope, host: Sexp<'a>, task: Sexp<'a>) -> RResult<Sexp<'a>> {
    let r = s.r();
    let hb = host_ref(r, host, "host")?;
    let tb = task_ref(r, task, "task")?;
    Ok(r.lgl(hb.host.cancel(&tb.handle)))
}

/// `.Call` routine (docs/r-bridge.md): serializes `x` with hooks.
pub(crate) fn mirai_serialize<'a>(s: &'a Scope, x: Sexp<'a>, hooks: Sexp<'a>) -> RResult<Sexp<'a>> {
    let hooks = HooksOf::new(hooks, "hooks")?;
    let bytes = serialize_of(x, &hooks)?;
    to_raw_in(s, &bytes)
}

/// `.Call` routine (docs/r-bridge.md): unserializes a raw vector with hooks.
pub(crate) fn mirai_unserialize<'a>(
    s: &'a Scope,
    raw: Sexp<'a>,
    hooks: Sexp<'a>,
) -> RResult<Sexp<'a>> {
    let Some(bytes) = raw.bytes() else {
        return Err("`raw` must be a raw vector".into());
    };
    let hooks = HooksOf::new(hooks, "hooks")?;
    unserialize_in(s, bytes, &hooks)
}
