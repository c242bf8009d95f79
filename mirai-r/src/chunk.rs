//! Chunked `mirai_map()`: several elements travel in one payload, yet each element is a task
//! of its own to the engine and keeps its own `mirai` (spec §2.2: "results, errors,
//! cancellation and `$data` stay per element").
//!
//! The chunk's payload carries the elements as `data$map` (and, for a seeded profile, their
//! streams as `data$seeds`). It is serialized once and submitted as units
//! (`Host::submit_units`): one engine task per element, with consecutive ids, so that each
//! element is counted in `status()`/`info()` only when its daemon starts it, is cancelled
//! alone, and if its daemon is lost is either failed (19) or retried, when it was running, or
//! sent elsewhere, when it had not started. The engine decides how many consecutive elements
//! go to a daemon at once from how long they take there (see `mirai_sched`'s units); the
//! daemon evaluates each as a chunk of one (`crate::daemon`) and answers each on its own.
//! Each element's mirai is an ordinary task mirai holding its own handle as `.aio`.
//!
//! No element made here carries `.idx` (a position in a shared chunk result, which the
//! settling code in `crate::aio` still understands); [`stop_element`], which `stop_mirai()`
//! calls for such a mirai, cancels its task like any other.

#![forbid(unsafe_code)]

use mirai::SubmitOptions;
use mirai_rapi::{args, RResult, Scope, Sexp};

use crate::aio::fields::{keep_attempts_of, new_mirai_in, syms};
use crate::handles::{host_error, host_ref, new_task, task_resolved_of};
use crate::serial::{serialize_of, HooksOf};
use crate::task::cancel_task;
use crate::values::error_value;

/// `.Call` routine: submits the chunk `data` (whose `map` holds `n` elements) to `host` and
/// returns the list of its `n` element mirai.
pub(crate) fn mirai_submit_chunk<'a>(
    s: &'a Scope,
    host: Sexp<'a>,
    data: Sexp<'a>,
    hooks: Sexp<'a>,
    n: Sexp<'a>,
) -> RResult<Sexp<'a>> {
    let n = args::num(n, "n")?;
    if !(n >= 1.0 && n <= f64::from(i32::MAX)) {
        return Err("`n` must be a positive count".into());
    }
    let n = n as usize;
    let hb = host_ref(s.r(), host, "host")?;
    let payload = serialize_of(data, &HooksOf::new(hooks, "hooks")?)?;
    let mut parent = None;
    if let Some((span, tasks)) = hb.map_span.borrow_mut().as_mut() {
        parent = span.context();
        *tasks += n as i64;
    }
    let handles = hb
        .host
        .submit_units(payload, n as u32, SubmitOptions::new().with_parent(parent))
        .map_err(host_error)?;
    let out = s.list(n);
    for (i, h) in handles.into_iter().enumerate() {
        let q = s.child();
        let aio = new_task(&q, h, hb);
        out.set_list_elt(i, new_mirai_in(&q, aio, hooks, Sexp::null())?);
    }
    Ok(out)
}

/// `stop_mirai()` on a mirai `x` with `.idx` whose task handle is `aio`: it resolves to 20
/// at once (unless its value has arrived) and its task is cancelled.
pub(crate) fn stop_element<'s>(s: &'s Scope, x: Sexp<'_>, aio: Sexp<'_>) -> RResult<Sexp<'s>> {
    let r = s.r();
    if task_resolved_of(r, aio) {
        // Its value has arrived: left untouched, as for any resolved mirai.
        return Ok(r.lgl(false));
    }
    let (s_aio, _, s_value) = syms(r)?;
    x.define(s_value, error_value(s, 20));
    let held = cancel_task(r, aio)?;
    keep_attempts_of(x, aio)?;
    x.define(s_aio, Sexp::null());
    Ok(r.lgl(held))
}
