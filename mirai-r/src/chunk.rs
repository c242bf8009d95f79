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

// Not yet ported to mirai_rapi's safe API: raw R calls, each under the rules its comments state.
#![allow(unsafe_code)]

use mirai_rapi::sys::*;

use crate::aio::{fields, keep_attempts, new_mirai};
use crate::handles::task_resolved;
use crate::sexp::*;
use crate::task::{cancel_task, release_one, submit_chunk, task_dispatcher};
use mirai_rapi::{RResult, Scope, Sexp};

/// `.Call` routine: submits the chunk `data` (whose `map` holds `n` elements) to `host` and
/// returns the list of its `n` element mirai.
pub(crate) fn mirai_submit_chunk<'a>(
    s: &'a Scope,
    host: Sexp<'a>,
    data: Sexp<'a>,
    hooks: Sexp<'a>,
    n: Sexp<'a>,
) -> RResult<Sexp<'a>> {
    let (host, data, hooks, n) = (host.raw(), data.raw(), hooks.raw(), n.raw());
    // SAFETY: not yet ported to the safe API: a routine runs on R's main thread with
    // live arguments; the body's raw calls keep the rules of `legacy`.
    unsafe {
        legacy(s, || {
            let n = arg_num(n, "n")?;
            if !(n >= 1.0 && n <= i32::MAX as f64) {
                return Err("`n` must be a positive count".into());
            }
            let n = n as usize;
            let mut p = Protector::new();
            let aio = p.protect(submit_chunk(host, data, hooks, n)?);
            let out = p.protect(Rf_allocVector(SEXPTYPE::VECSXP, n as R_xlen_t));
            for i in 0..n {
                let mut q = Protector::new();
                let idx = q.protect(Rf_ScalarInteger(i as i32 + 1));
                SET_VECTOR_ELT(out, i as R_xlen_t, new_mirai(aio, hooks, idx)?);
            }
            Ok(out)
        })
    }
}

/// `stop_mirai()` on element `x` of chunk `aio` (see the module docs).
///
/// # Safety
/// Main thread; `x` a chunk element mirai whose `.aio` is the task handle `aio`.
pub(crate) unsafe fn stop_element(x: SEXP, aio: SEXP) -> RResult<SEXP> {
    if task_resolved(aio) {
        // Its value has arrived: left untouched, as for any resolved mirai.
        return Ok(lgl(false));
    }
    let (s_aio, _, s_value) = fields::syms()?;
    let mut p = Protector::new();
    let v = p.protect(error_value(20));
    Rf_defineVar(s_value, v, x);
    keep_attempts(x, aio)?;
    Rf_defineVar(s_aio, R_NilValue, x);
    let dispatcher = task_dispatcher(aio)?;
    if release_one(aio)? == 0 {
        cancel_task(aio)?;
    }
    Ok(lgl(dispatcher))
}
