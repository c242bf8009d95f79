//! Chunked `mirai_map()`: several elements travel as one engine task, yet each element keeps
//! its own `mirai` (spec §2.2: "results, errors, cancellation and `$data` stay per element").
//!
//! The chunk's payload carries the elements as `data$map`; the daemon evaluates them in order,
//! each as a task of its own would be (`crate::evaluate`), and answers with the list of their
//! values, errors included. On the host each element's mirai holds the chunk's handle as `.aio`
//! and its 1-based position as `.idx`; settling takes its own entry from the chunk's value, or
//! the chunk's error value if the chunk as a whole failed (lost daemon 19, reset 19/7).
//!
//! Stopping one element resolves it alone to 20 at once. The chunk itself is cancelled in the
//! engine (removed from the queue, or interrupted on its daemon) once none of its elements is
//! waiting any more: `stop_mirai()` on the whole map (what the `.stop` collection option does)
//! therefore cancels every chunk exactly as it would cancel single tasks. A stopped element
//! whose chunk goes on running may still be evaluated (cancellation is best effort, spec §2.1).

#![forbid(unsafe_code)]

use mirai_rapi::{args, RResult, Scope, Sexp};

use crate::aio::fields::{keep_attempts_of, new_mirai_in, syms};
use crate::handles::task_resolved_of;
use crate::task::{cancel_task, release_one, submit_chunk_in, task_dispatcher};
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
    if !(n >= 1.0 && n <= i32::MAX as f64) {
        return Err("`n` must be a positive count".into());
    }
    let n = n as usize;
    let aio = submit_chunk_in(s, host, data, hooks, n)?;
    let out = s.list(n);
    for i in 0..n {
        let q = s.child();
        let idx = q.int(i as i32 + 1);
        out.set_list_elt(i, new_mirai_in(&q, aio, hooks, idx)?);
    }
    Ok(out)
}

/// `stop_mirai()` on element `x` of chunk `aio` (see the module docs); `x` is a chunk element
/// mirai whose `.aio` is the task handle `aio`.
pub(crate) fn stop_element<'s>(s: &'s Scope, x: Sexp<'_>, aio: Sexp<'_>) -> RResult<Sexp<'s>> {
    let r = s.r();
    if task_resolved_of(r, aio) {
        // Its value has arrived: left untouched, as for any resolved mirai.
        return Ok(r.lgl(false));
    }
    let (s_aio, _, s_value) = syms(r)?;
    x.define(s_value, error_value(s, 20));
    keep_attempts_of(x, aio)?;
    x.define(s_aio, Sexp::null());
    let dispatcher = task_dispatcher(r, aio)?;
    if release_one(r, aio)? == 0 {
        cancel_task(r, aio)?;
    }
    Ok(r.lgl(dispatcher))
}
