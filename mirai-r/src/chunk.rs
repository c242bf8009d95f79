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
//! Completion signals the profile's cv once per element, as for any task (the engine's
//! completion notifier), so `nextget("cv")` counts mirai.

use mirai::SubmitOptions;
use mirai_rapi::{args, RResult, Scope, Sexp};

use crate::aio::new_mirai;
use crate::handles::{host_error, host_ref, new_task};
use crate::serial::{serialize_of, HooksOf};

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
        out.set_list_elt(i, new_mirai(&q, Some(aio), hooks)?);
    }
    Ok(out)
}
