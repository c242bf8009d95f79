//! `.keep()` (spec §2.4): when an Aio completes, a callback (`resolve(<value>)` in the
//! promise's context, built by the R code) runs on R's main thread through `later`'s event
//! loop. nanonext's own Aios register it on their completion slot, which runs it at once if
//! the operation has already completed (the wake-up upstream can lose).

use mirai_rapi::{eprint, Binding, Kind, Later, LaterJob, RResult, Scope, Sexp};

use crate::aio::NanoAio;

/// `.Call(nano_keep, x, ctx, fun)`: for an environment `x` whose `aio` binding is a live
/// handle: `0L` if it is none (nothing done), `1L` once `fun()` is registered to run through
/// `later` on completion (nanonext's own Aio; `ctx` becomes `x`'s enclosure, keeping it alive
/// with `x`), `2L` for another package's handle (the R code then watches it itself).
pub(crate) fn nano_keep<'a>(
    s: &'a Scope,
    x: Sexp<'a>,
    ctx: Sexp<'a>,
    fun: Sexp<'a>,
) -> RResult<Sexp<'a>> {
    let r = s.r();
    let Some(Binding::Value(h)) = x.frame_binding(r.sym(c"aio")) else {
        return Ok(s.int(0));
    };
    let Some(foreign) = h.aio(r) else {
        return Ok(s.int(0));
    };
    let Some(a) = NanoAio::of(foreign.handle(), r) else {
        return Ok(s.int(2));
    };
    if ctx.kind() == Kind::ENVSXP {
        x.set_enclosure(ctx);
    }
    let later = Later::get(s)?;
    let job = LaterJob::new(r, fun, |r, msg| {
        eprint(r, &format!("Error in promise callback: {msg}\n"))
    });
    a.slot()
        .on_complete(Box::new(move |_| later.schedule(job, 0)));
    Ok(s.int(1))
}
