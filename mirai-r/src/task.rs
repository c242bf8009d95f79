//! The task routines: submitting, waiting on, taking, cancelling tasks, and serialization.

// Not yet ported to mirai_rapi's safe API: raw R calls, each under the rules its comments state.
#![allow(unsafe_code)]

use std::cell::Cell;
use std::rc::Rc;

use mirai::sched::Mode;
use mirai::{Outcome, SubmitOptions, TaskHandle};
use mirai_rapi::sys::*;

use crate::serial::{serialize, to_raw_vector, unserialize, Hooks};
use crate::sexp::*;
use crate::wait::{Deadline, SLICE};
use mirai_rapi::{RError, RResult, Scope, Sexp};

use crate::handles::*;
// ---- task routines ----------------------------------------------------------------------

/// `.Call` routine (docs/r-bridge.md): serializes `data` and submits it as a task.
pub(crate) fn mirai_submit<'a>(
    s: &'a Scope,
    host: Sexp<'a>,
    data: Sexp<'a>,
    timeout: Sexp<'a>,
    hooks: Sexp<'a>,
) -> RResult<Sexp<'a>> {
    let (host, data, timeout, hooks) = (host.raw(), data.raw(), timeout.raw(), hooks.raw());
    // SAFETY: not yet ported to the safe API: a routine runs on R's main thread with
    // live arguments; the body's raw calls keep the rules of `legacy`.
    unsafe { submit(s, host, data, timeout, hooks) }
}

/// Serializes `data` and submits it to `host`: the new task handle, protected by `s`.
///
/// # Safety
/// Main thread, valid SEXPs.
pub(crate) unsafe fn submit<'s>(
    s: &'s Scope,
    host: SEXP,
    data: SEXP,
    timeout: SEXP,
    hooks: SEXP,
) -> RResult<Sexp<'s>> {
    let hb = host_of(host, "host")?;
    Ok(new_task(s, submit_handle(hb, data, timeout, hooks)?, hb))
}

pub(crate) unsafe fn submit_handle(
    hb: &HostBox,
    data: SEXP,
    timeout: SEXP,
    hooks: SEXP,
) -> RResult<TaskHandle> {
    let hooks = Hooks::from_sexp(hooks, "hooks")?;
    let timeout = if is_null(timeout) {
        None
    } else {
        limit_ms(arg_num(timeout, "timeout")?, "timeout")?
    };
    let payload = serialize(data, hooks.as_ref())?;
    let mut parent = None;
    if let Some((span, tasks)) = hb.map_span.borrow_mut().as_mut() {
        parent = span.context();
        *tasks += 1;
    }
    hb.host
        .submit(
            payload,
            SubmitOptions {
                timeout,
                parent,
                ..SubmitOptions::default()
            },
        )
        .map_err(host_error)
}

/// [`submit_handle`] on borrowed objects.
pub(crate) fn submit_handle_of(
    hb: &HostBox,
    data: Sexp<'_>,
    timeout: Sexp<'_>,
    hooks: Sexp<'_>,
) -> RResult<TaskHandle> {
    // SAFETY: main thread (a Sexp exists only there), live objects.
    unsafe { submit_handle(hb, data.raw(), timeout.raw(), hooks.raw()) }
}

/// How many times the task of handle `x` has been sent to a daemon (more than once only when
/// it was retried after losing its daemon; 0 while queued).
///
/// # Safety
/// Main thread; `x` a task handle.
pub(crate) unsafe fn task_attempts(x: SEXP) -> RResult<u32> {
    Ok(task_of(x, "task")?.handle.attempts())
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
    let (host, data, min, hooks) = (host.raw(), data.raw(), min.raw(), hooks.raw());
    // SAFETY: not yet ported to the safe API: a routine runs on R's main thread with
    // live arguments; the body's raw calls keep the rules of `legacy`.
    unsafe {
        legacy(s, || {
            let hb = host_of(host, "host")?;
            let hooks = Hooks::from_sexp(hooks, "hooks")?;
            let min = arg_num(min, "min")?;
            if min.is_nan() || min < 0.0 {
                return Err("`min` must be a non-negative number".into());
            }
            // Each of the `min` tasks is built up front: a runaway value must be an error, not an
            // allocation failure that aborts R.
            if min > MAX_EVERYWHERE as f64 {
                return Err(format!(
                    "`min` must be at most {MAX_EVERYWHERE} (one task per daemon)"
                )
                .into());
            }
            let payload = serialize(data, hooks.as_ref())?;
            let handles = hb
                .host
                .everywhere(payload, min as usize)
                .map_err(host_error)?;
            let mut p = Protector::new();
            let out = p.protect(Rf_allocVector(SEXPTYPE::VECSXP, handles.len() as R_xlen_t));
            for (i, h) in handles.into_iter().enumerate() {
                let q = s.child();
                SET_VECTOR_ELT(out, i as R_xlen_t, new_task(&q, h, hb).raw());
            }
            Ok(out)
        })
    }
}

/// `.Call` routine (docs/r-bridge.md): whether a task has resolved (never waits, never consumes).
pub(crate) fn mirai_resolved<'a>(s: &'a Scope, task: Sexp<'a>) -> RResult<Sexp<'a>> {
    let task = task.raw();
    // SAFETY: not yet ported to the safe API: a routine runs on R's main thread with
    // live arguments; the body's raw calls keep the rules of `legacy`.
    unsafe {
        legacy(s, || {
            task_of(task, "task")?;
            Ok(lgl(task_resolved(task)))
        })
    }
}

/// `.Call` routine (docs/r-bridge.md): the value of a resolved task (cached), or `sentinel`.
pub(crate) fn mirai_take<'a>(
    s: &'a Scope,
    task: Sexp<'a>,
    hooks: Sexp<'a>,
    sentinel: Sexp<'a>,
) -> RResult<Sexp<'a>> {
    let (task, hooks, sentinel) = (task.raw(), hooks.raw(), sentinel.raw());
    // SAFETY: not yet ported to the safe API: a routine runs on R's main thread with
    // live arguments; the body's raw calls keep the rules of `legacy`.
    unsafe { legacy(s, || take(task, hooks, sentinel)) }
}

/// The value of a resolved task (cached in the handle), or `sentinel` (see `mirai_take`).
///
/// # Safety
/// Main thread, valid SEXPs.
pub(crate) unsafe fn take(task: SEXP, hooks: SEXP, sentinel: SEXP) -> RResult<SEXP> {
    let tb = task_of(task, "task")?;
    if let Some(v) = cached(task) {
        return Ok(v);
    }
    let outcome = match tb.take_outcome() {
        Some(o) => o,
        None => return Ok(sentinel),
    };
    let hooks = match Hooks::from_sexp(hooks, "hooks") {
        Ok(h) => h,
        Err(e) => {
            tb.set_outcome(outcome);
            return Err(e);
        }
    };
    // No reference into the box is held while R code (hooks) runs.
    let value = match &outcome {
        Outcome::Error(code) => Ok(error_value(*code as i32)),
        Outcome::Value { payload, .. } => unserialize(payload, hooks.as_ref()),
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
    if type_of(task) != SEXPTYPE::EXTPTRSXP {
        return Ok(value);
    }
    let mut p = Protector::new();
    p.protect(value);
    let cell = p.protect(Rf_allocVector(SEXPTYPE::VECSXP, 1));
    SET_VECTOR_ELT(cell, 0, value);
    R_SetExternalPtrProtected(task, cell);
    Ok(value)
}

/// Waits, interruptibly, until task handle `x` resolves or the deadline passes: true if
/// resolved. `x` must be a task handle.
///
/// # Safety
/// Main thread, valid SEXPs.
pub(crate) unsafe fn wait_task(x: SEXP, dl: &Deadline) -> RResult<bool> {
    while !task_resolved(x) {
        let got = task_of(x, "tasks")?.handle.wait(Some(dl.slice(SLICE)));
        if let Some(o) = got {
            task_of(x, "tasks")?.set_outcome(o);
            break;
        }
        if dl.expired() {
            return Ok(false);
        }
        if interrupt_pending_raw() {
            return Err(RError::Interrupt);
        }
    }
    Ok(true)
}

/// Submits a chunk of `n` `mirai_map()` elements (see `crate::chunk`): the task handle,
/// protected by `s`.
pub(crate) fn submit_chunk_in<'s>(
    s: &'s Scope,
    host: Sexp<'_>,
    data: Sexp<'_>,
    hooks: Sexp<'_>,
    n: usize,
) -> RResult<Sexp<'s>> {
    let hb = host_ref(s.r(), host, "host")?;
    let shared = Rc::new(submit_handle_of(hb, data, Sexp::null(), hooks)?);
    let task = new_task_ref(s, HandleRef::Shared(Rc::clone(&shared), Cell::new(n)), hb);
    let mut chunks = hb.chunks.borrow_mut();
    if chunks.len() >= 256 && chunks.len().is_power_of_two() {
        drop(chunks);
        hb.chunk_extras();
        chunks = hb.chunks.borrow_mut();
    }
    chunks.push((shared, n.saturating_sub(1) as u64));
    Ok(task)
}

/// [`release_one`] on a borrowed handle.
pub(crate) fn release_one_of(task: Sexp<'_>) -> RResult<usize> {
    // SAFETY: main thread (a Sexp exists only there), a live object.
    unsafe { release_one(task.raw()) }
}

/// [`task_dispatcher`] on a borrowed handle.
pub(crate) fn task_dispatcher_of(task: Sexp<'_>) -> RResult<bool> {
    // SAFETY: as for `release_one_of`.
    unsafe { task_dispatcher(task.raw()) }
}

/// [`cancel_task`] on a borrowed handle.
pub(crate) fn cancel_task_of(task: Sexp<'_>) -> RResult<bool> {
    // SAFETY: as for `release_one_of`.
    unsafe { cancel_task(task.raw()) }
}

/// One element of chunk task `task` was stopped: the number of elements still live.
///
/// # Safety
/// Main thread, valid SEXPs.
pub(crate) unsafe fn release_one(task: SEXP) -> RResult<usize> {
    match &task_of(task, "task")?.handle {
        HandleRef::Shared(_, live) => {
            live.set(live.get().saturating_sub(1));
            Ok(live.get())
        }
        HandleRef::Own(_) => Ok(0),
    }
}

/// Whether the profile of task handle `task` has a dispatcher.
///
/// # Safety
/// Main thread, valid SEXPs.
pub(crate) unsafe fn task_dispatcher(task: SEXP) -> RResult<bool> {
    Ok(task_of(task, "task")?.host.mode() == Mode::Dispatcher)
}

/// Cancels the task of handle `task` on its own host: the task resolves at once with 20
/// unless already resolved. True if the profile has a dispatcher and it still held the task.
///
/// # Safety
/// Main thread, valid SEXPs.
pub(crate) unsafe fn cancel_task(task: SEXP) -> RResult<bool> {
    let tb = task_of(task, "task")?;
    let held = tb.host.cancel(&tb.handle);
    Ok(tb.host.mode() == Mode::Dispatcher && held)
}

/// `.Call` routine (docs/r-bridge.md): waits, interruptibly, until all tasks resolved or the timeout.
pub(crate) fn mirai_wait<'a>(
    s: &'a Scope,
    tasks: Sexp<'a>,
    timeout: Sexp<'a>,
) -> RResult<Sexp<'a>> {
    let (tasks, timeout) = (tasks.raw(), timeout.raw());
    // SAFETY: not yet ported to the safe API: a routine runs on R's main thread with
    // live arguments; the body's raw calls keep the rules of `legacy`.
    unsafe {
        legacy(s, || {
            let dl = Deadline::after(wait_timeout(arg_num(timeout, "timeout")?));
            for (_, x) in task_list(tasks) {
                if !wait_task(x, &dl)? {
                    return Ok(lgl(false));
                }
            }
            Ok(lgl(true))
        })
    }
}

/// `.Call` routine (docs/r-bridge.md): waits, interruptibly, for the first resolved task; its 1-based index.
pub(crate) fn mirai_race<'a>(
    s: &'a Scope,
    tasks: Sexp<'a>,
    timeout: Sexp<'a>,
) -> RResult<Sexp<'a>> {
    let (tasks, timeout) = (tasks.raw(), timeout.raw());
    // SAFETY: not yet ported to the safe API: a routine runs on R's main thread with
    // live arguments; the body's raw calls keep the rules of `legacy`.
    unsafe {
        legacy(s, || {
            let dl = Deadline::after(wait_timeout(arg_num(timeout, "timeout")?));
            let list = task_list(tasks);
            let Some(&(_, first)) = list.first() else {
                return Ok(Rf_ScalarInteger(0));
            };
            // Wait on the profile of the first task; others are noticed at each rescan (every
            // slice, well within the 400 ms the spec asks for).
            let host = task_of(first, "tasks")?.host.clone();
            loop {
                let seen = host.completions();
                if let Some(&(i, _)) = list.iter().find(|&&(_, x)| task_resolved(x)) {
                    return Ok(Rf_ScalarInteger(i as i32 + 1));
                }
                if dl.expired() {
                    return Ok(Rf_ScalarInteger(0));
                }
                host.wait_completion(seen, dl.slice(SLICE));
                if interrupt_pending_raw() {
                    return Err(RError::Interrupt);
                }
            }
        })
    }
}

/// `.Call` routine (docs/r-bridge.md): cancels a task.
pub(crate) fn mirai_cancel<'a>(s: &'a Scope, host: Sexp<'a>, task: Sexp<'a>) -> RResult<Sexp<'a>> {
    let (host, task) = (host.raw(), task.raw());
    // SAFETY: not yet ported to the safe API: a routine runs on R's main thread with
    // live arguments; the body's raw calls keep the rules of `legacy`.
    unsafe {
        legacy(s, || {
            let hb = host_of(host, "host")?;
            let tb = task_of(task, "task")?;
            Ok(lgl(hb.host.cancel(&tb.handle)))
        })
    }
}

/// `.Call` routine (docs/r-bridge.md): serializes `x` with hooks.
pub(crate) fn mirai_serialize<'a>(s: &'a Scope, x: Sexp<'a>, hooks: Sexp<'a>) -> RResult<Sexp<'a>> {
    let (x, hooks) = (x.raw(), hooks.raw());
    // SAFETY: not yet ported to the safe API: a routine runs on R's main thread with
    // live arguments; the body's raw calls keep the rules of `legacy`.
    unsafe {
        legacy(s, || {
            let hooks = Hooks::from_sexp(hooks, "hooks")?;
            let bytes = serialize(x, hooks.as_ref())?;
            to_raw_vector(&bytes)
        })
    }
}

/// `.Call` routine (docs/r-bridge.md): unserializes a raw vector with hooks.
pub(crate) fn mirai_unserialize<'a>(
    s: &'a Scope,
    raw: Sexp<'a>,
    hooks: Sexp<'a>,
) -> RResult<Sexp<'a>> {
    let (raw, hooks) = (raw.raw(), hooks.raw());
    // SAFETY: not yet ported to the safe API: a routine runs on R's main thread with
    // live arguments; the body's raw calls keep the rules of `legacy`.
    unsafe {
        legacy(s, || {
            if type_of(raw) != SEXPTYPE::RAWSXP {
                return Err("`raw` must be a raw vector".into());
            }
            let hooks = Hooks::from_sexp(hooks, "hooks")?;
            unserialize(raw_slice(raw), hooks.as_ref())
        })
    }
}
