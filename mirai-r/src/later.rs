//! Event-driven promise settlement: run an R closure on R's main thread, through the `later`
//! package's event loop, once a task resolves.
//!
//! The engine calls completion callbacks on its dispatcher thread, which must never call R;
//! [`mirai_rapi::Later`] hands the closure to `later`, which runs it on the main thread.

use mirai_rapi::{args, eprint, Caught, Later, LaterJob, RError, RResult, Scope, Sexp, R};

use crate::handles::task_handle_of;

/// Reports an error of a promise callback: nobody to raise it to, so on the console, as later
/// does for R callbacks.
fn report(r: R, msg: &str) {
    eprint(r, &format!("mirai: error in a promise callback: {msg}\n"));
}

/// `.Call(mirai_later, task, fun, loop_id)`: schedules `fun()` on `later` loop `loop_id` once
/// `task` resolves (at once if it has).
pub(crate) fn mirai_later<'a>(
    s: &'a Scope,
    task: Sexp<'a>,
    fun: Sexp<'a>,
    loop_id: Sexp<'a>,
) -> RResult<Sexp<'a>> {
    let handle = task_handle_of(s.r(), task, "task")?;
    let fun = args::function(fun, "fun")?;
    let loop_id = args::num(loop_id, "loop_id")?;
    if !loop_id.is_finite() {
        return Err("`loop_id` must be a later loop id".into());
    }
    let later = Later::get(s).map_err(|c| match c {
        Caught::Error(cond) => RError::Cond(cond),
        Caught::Jump => "the `later` package's C interface is not available".into(),
    })?;
    let job = LaterJob::new(s.r(), fun, report);
    let loop_id = loop_id as i32;
    handle
        .handle
        .on_complete(Box::new(move || later.schedule(job, loop_id)));
    Ok(Sexp::null())
}
