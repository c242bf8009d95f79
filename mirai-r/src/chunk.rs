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

use crate::aio::fields::new_mirai_in;
use crate::task::submit_chunk_in;

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
